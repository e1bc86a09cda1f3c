"""Merging (weighttie.layers.merging): shapes against Keras."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from layers.family import FamilyOracle
from layers.shape_oracle import Case, Shape, unique
from weighttie.layers import merging

MERGE_INPUTS: list[tuple[Shape, ...]] = [
    ((None, 4), (None, 4)),
    ((None, 3, 4), (None, 3, 4), (None, 3, 4)),
    ((None, 3, 4), (None, 1, 4)),
    ((None, 3, 4), (None, 4)),
    ((None, 1, 4), (None, 3, 1)),
    ((None, None, 4), (None, 5, 4)),
    ((None, 3, 4), (None, 3, 5)),
    ((2, 3), (None, 3)),
    ((None, 2, 3, 4), (None, 3, 4)),
]


def _cases() -> Iterator[Case]:
    for layer, inputs in itertools.product(
        ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"], MERGE_INPUTS
    ):
        yield Case(layer, {}, inputs, style="list")
    concat_inputs: list[tuple[Shape, ...]] = [
        ((None, 4), (None, 6)),
        ((None, 3, 4), (None, 3, 2), (None, 3, 1)),
        ((None, 3, 4), (None, 5, 4)),
        ((None, None, 4), (None, 5, 4)),
        ((None, 2, 3, 4), (None, 2, 3, 4)),
    ]
    for axis, inputs in itertools.product([-1, 1, 2, -2, 3], concat_inputs):
        yield Case("Concatenate", {"axis": axis}, inputs, style="list")
    dot_inputs: list[tuple[tuple[Shape, Shape], list[Any]]] = [
        (((None, 4), (None, 4)), [1, -1, (1, 1)]),
        (((None, 3, 4), (None, 5, 4)), [2, -1, (2, 2), (1, 1)]),
        (((None, 3, 4), (None, 4, 5)), [(2, 1), (-1, 1), (1, 2)]),
        (((None, None, 4), (None, 7, 4)), [2, (2, 2)]),
        (((None, 2, 3, 4), (None, 4, 5)), [(3, 1), (1, 2)]),
    ]
    for inputs, axes_list in dot_inputs:
        for axes, normalize in itertools.product(axes_list, (False, True)):
            yield Case("Dot", {"axes": axes, "normalize": normalize}, inputs, style="list")


UNSURE = {"one merge input unknown": ("Add", {}, [(None, 3), None], None)}


class TestMerging(FamilyOracle):
    family = merging
    cases = unique(_cases())
    unsure = UNSURE
