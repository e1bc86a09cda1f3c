"""Pooling (weighttie.layers.pooling): shapes against Keras."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from layers.family import FamilyOracle
from layers.shape_oracle import SPATIAL, Case, data_format, image, unique
from weighttie.layers import pooling


def _cases() -> Iterator[Case]:
    for rank, kind in itertools.product((1, 2, 3), ("Max", "Average")):
        pools = {1: [2, 3], 2: [2, (3, 2)], 3: [2]}[rank]
        for pool, stride, padding, first, spatial in itertools.product(
            pools, [None, 1, 2], ["valid", "same"], (False, True), SPATIAL[rank]
        ):
            kwargs = {"pool_size": pool, "strides": stride, "padding": padding}
            kwargs["data_format"] = data_format(first)
            yield Case(f"{kind}Pooling{rank}D", kwargs, (image(spatial, first),))
        for keepdims, first, spatial in itertools.product(
            (False, True), (False, True), SPATIAL[rank]
        ):
            kwargs = {"keepdims": keepdims, "data_format": data_format(first)}
            yield Case(f"Global{kind}Pooling{rank}D", kwargs, (image(spatial, first),))
        for first in (False, True):
            size = {1: 3, 2: (2, 3), 3: 2}[rank]
            kwargs = {"output_size": size, "data_format": data_format(first)}
            yield Case(f"Adaptive{kind}Pooling{rank}D", kwargs, (image(SPATIAL[rank][0], first),))


class TestPooling(FamilyOracle):
    family = pooling
    cases = unique(_cases())
