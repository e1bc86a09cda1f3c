"""Normalization (weighttie.layers.normalization): shapes and variables against Keras."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from keras import layers

from layers.family import FamilyOracle, built
from layers.shape_oracle import Case, Shape, Sub, unique
from weighttie.layers import normalization


def _cases() -> Iterator[Case]:
    shape_preserving: list[tuple[str, dict[str, Any]]] = [
        ("UnitNormalization", {}),
        ("LayerNormalization", {"axis": [-1]}),
        ("BatchNormalization", {}),
        ("RMSNormalization", {}),
    ]
    shapes: list[Shape] = [(None, 5), (None, None, 6), (2, 3, 4, 5)]
    for (layer, kwargs), shape in itertools.product(shape_preserving, shapes):
        yield Case(layer, kwargs, (shape,))
    for axis, shape in itertools.product([1, -1, 3, [1, 2]], [(None, 4, 6), (None, 2, 3, 4)]):
        yield Case("BatchNormalization", {"axis": axis}, (shape,))
        yield Case("LayerNormalization", {"axis": axis}, (shape,))
        yield Case("UnitNormalization", {"axis": axis}, (shape,))
    for groups, shape in itertools.product([1, 2, 4], [(None, 4, 8), (None, 3, 3, 4)]):
        yield Case("GroupNormalization", {"groups": groups}, (shape,))
    for layer, shape in [
        (Sub("Dense", {"units": 5}), (None, 4, 6)),
        (Sub("Conv2D", {"filters": 2, "kernel_size": 3, "strides": 2}), (None, 9, 8, 3)),
    ]:
        yield Case("SpectralNormalization", {"layer": layer}, (shape,))


VARIABLE_CASES = {
    "BatchNormalization": lambda: built(layers.BatchNormalization(), 3),
    "BatchNormalization-no-scale": lambda: built(layers.BatchNormalization(scale=False), 3),
    "BatchNormalization-renorm": lambda: built(layers.BatchNormalization(renorm=True), 3),
    "LayerNormalization": lambda: built(layers.LayerNormalization(), 3),
    "GroupNormalization": lambda: built(layers.GroupNormalization(groups=1), 3),
    # SpectralNormalization holds its layer's kernel as its own: one variable, saved twice
    "SpectralNormalization-dense": lambda: built(layers.SpectralNormalization(layers.Dense(3)), 4),
    "SpectralNormalization-conv": lambda: built(
        layers.SpectralNormalization(layers.Conv2D(3, 2)), 5, 5, 2
    ),
    "SpectralNormalization-embedding": lambda: built(
        layers.SpectralNormalization(layers.Embedding(10, 3)), 4
    ),
}


class TestNormalization(FamilyOracle):
    family = normalization
    cases = unique(_cases())
    variable_cases = VARIABLE_CASES
    #: tf_keras only: tests/static/test_static_trainable.py reads its file against tf_keras's
    #: counts.
    checked_elsewhere = frozenset({"SyncBatchNormalization: variables"})
