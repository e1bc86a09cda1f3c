"""Pooling: max and average 1D/2D/3D, global pooling (``keepdims``), adaptive pooling.

MACs: 0 by the published convention (docs/cost.md), except adaptive pooling's,
which no table states (unknown).
"""

from __future__ import annotations

from weighttie.layers.layer_class import UNKNOWN, weightless
from weighttie.layers.shapes import (
    CONV_PADDING,
    Config,
    ShapeRule,
    bool_of,
    ints_of,
    is_channels_first,
    join_channels,
    padding_of,
    single,
    split_channels,
    value_of,
)
from weighttie.layers.unsure import Unsure
from weighttie.report import Shape

__all__ = ["CLASSES"]


def _pool_length(size: int | None, pool: int, stride: int, padding: str) -> int | None:
    if size is None:
        return None
    if stride <= 0:
        raise Unsure
    if padding == "valid":
        length = (size - pool) // stride + 1
        if length <= 0:
            raise Unsure
        return length
    return (size - 1) // stride + 1


def _pool(rank: int) -> ShapeRule:
    def compute(config: Config, shape: Shape) -> Shape:
        first = is_channels_first(config)
        spatial, channels = split_channels(shape, rank, first)
        pool = ints_of(value_of(config, "pool_size"), rank)
        stride_value = config.get("strides")
        strides = pool if stride_value is None else ints_of(stride_value, rank, minimum=0)
        padding = padding_of(config, CONV_PADDING)
        lengths = [
            _pool_length(n, p, s, padding) for n, p, s in zip(spatial, pool, strides, strict=True)
        ]
        return join_channels(shape[0], lengths, channels, first)

    return single(compute)


def _global_pool(rank: int) -> ShapeRule:
    def compute(config: Config, shape: Shape) -> Shape:
        first = is_channels_first(config)
        _spatial, channels = split_channels(shape, rank, first)
        if bool_of(config.get("keepdims", False)):
            return join_channels(shape[0], (1,) * rank, channels, first)
        return (shape[0], channels)

    return single(compute)


def _adaptive_pool(rank: int) -> ShapeRule:
    def compute(config: Config, shape: Shape) -> Shape:
        first = is_channels_first(config)
        _spatial, channels = split_channels(shape, rank, first)
        size = ints_of(value_of(config, "output_size"), rank)
        return join_channels(shape[0], size, channels, first)

    return single(compute)


_SHORT = {"Max": "Max", "Average": "Avg"}  # Keras's other names: MaxPool2D, AvgPool2D

CLASSES = (
    *(
        weightless(f"{kind}Pooling{r}D", _pool(r), 0, aliases=(f"{_SHORT[kind]}Pool{r}D",))
        for kind in ("Max", "Average")
        for r in (1, 2, 3)
    ),
    *(
        weightless(
            f"Global{kind}Pooling{r}D",
            _global_pool(r),
            0,
            aliases=(f"Global{_SHORT[kind]}Pool{r}D",),
        )
        for kind in ("Max", "Average")
        for r in (1, 2, 3)
    ),
    *(
        weightless(f"Adaptive{kind}Pooling{r}D", _adaptive_pool(r), UNKNOWN)
        for kind in ("Max", "Average")
        for r in (1, 2, 3)
    ),
)
