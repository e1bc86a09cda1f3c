"""Reshaping: ``Flatten``, ``Reshape`` (with ``-1``), ``Permute``, ``RepeatVector``,
cropping, zero padding and up-sampling 1D/2D/3D. None holds a variable; all count
0 MACs (docs/cost.md)."""

from __future__ import annotations

import math

from weighttie.layers.layer_class import weightless
from weighttie.layers.shapes import (
    Config,
    ShapeRule,
    int_of,
    ints_of,
    is_channels_first,
    join_channels,
    pairs_of,
    reshape,
    signed_int_of,
    single,
    split_channels,
    value_of,
    with_rank,
)
from weighttie.layers.unsure import Unsure
from weighttie.report import Shape

__all__ = ["CLASSES"]


def _flatten(config: Config, shape: Shape) -> Shape:
    rest = shape[1:]
    if not shape:
        raise Unsure
    if any(d is None for d in rest):
        return (shape[0], None)
    return (shape[0], math.prod(d for d in rest if d is not None))


def _reshape(config: Config, shape: Shape) -> Shape:
    target = value_of(config, "target_shape")
    if not isinstance(target, list | tuple) or not shape:
        raise Unsure
    dims = [None if d is None else signed_int_of(d) for d in target]
    return (shape[0], *reshape(shape[1:], dims))


def _permute(config: Config, shape: Shape) -> Shape:
    dims = value_of(config, "dims")
    if not isinstance(dims, list | tuple):
        raise Unsure
    order = [int_of(d, 1) for d in dims]
    if sorted(order) != list(range(1, len(order) + 1)) or len(shape) != len(order) + 1:
        raise Unsure
    return (shape[0], *(shape[d] for d in order))


def _repeat_vector(config: Config, shape: Shape) -> Shape:
    with_rank(shape, 2)
    return (shape[0], int_of(value_of(config, "n"), 1), shape[1])


def _crop(rank: int) -> ShapeRule:
    defaults = {1: (1, 1), 2: ((0, 0), (0, 0)), 3: ((1, 1), (1, 1), (1, 1))}

    def compute(config: Config, shape: Shape) -> Shape:
        value = config.get("cropping", defaults[rank])
        crops = (ints_of(value, 2, minimum=0),) if rank == 1 else pairs_of(value, rank)
        first = rank > 1 and is_channels_first(config)
        spatial, channels = split_channels(shape, rank, first)
        lengths: list[int | None] = []
        for n, (before, after) in zip(spatial, crops, strict=True):
            if n is None:
                lengths.append(None)
            elif n - before - after <= 0:
                raise Unsure
            else:
                lengths.append(n - before - after)
        return join_channels(shape[0], lengths, channels, first)

    return single(compute)


def _zero_pad(rank: int) -> ShapeRule:
    def compute(config: Config, shape: Shape) -> Shape:
        value = config.get("padding", 1 if rank == 1 else (1, 1) if rank == 2 else 1)
        pads = (ints_of(value, 2, minimum=0),) if rank == 1 else pairs_of(value, rank)
        first = is_channels_first(config)
        spatial, channels = split_channels(shape, rank, first)
        lengths = [
            None if n is None else n + a + b for n, (a, b) in zip(spatial, pads, strict=True)
        ]
        return join_channels(shape[0], lengths, channels, first)

    return single(compute)


def _up_sample(rank: int) -> ShapeRule:
    def compute(config: Config, shape: Shape) -> Shape:
        sizes = ints_of(config.get("size", 2), rank)
        first = rank > 1 and is_channels_first(config)
        spatial, channels = split_channels(shape, rank, first)
        lengths = [None if n is None else n * k for n, k in zip(spatial, sizes, strict=True)]
        return join_channels(shape[0], lengths, channels, first)

    return single(compute)


CLASSES = (
    weightless("Flatten", single(_flatten), 0),
    weightless("Reshape", single(_reshape), 0),
    weightless("Permute", single(_permute), 0),
    weightless("RepeatVector", single(_repeat_vector), 0),
    *(weightless(f"Cropping{r}D", _crop(r), 0) for r in (1, 2, 3)),
    *(weightless(f"ZeroPadding{r}D", _zero_pad(r), 0) for r in (1, 2, 3)),
    *(weightless(f"UpSampling{r}D", _up_sample(r), 0) for r in (1, 2, 3)),
)
