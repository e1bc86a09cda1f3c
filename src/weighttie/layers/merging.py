"""Merging: ``Add``, ``Subtract``, ``Multiply``, ``Average``, ``Maximum``,
``Minimum``, ``Concatenate`` (element-wise or joins: 0 MACs, docs/cost.md) and
``Dot`` (a product whose axes are config, not a fact both front ends have: MACs
unknown)."""

from __future__ import annotations

from weighttie.layers.layer_class import UNKNOWN, weightless
from weighttie.layers.shapes import ShapeCall, ShapeRule, Shapes, axis_of, merge_dims, value_of
from weighttie.layers.unsure import Unsure
from weighttie.report import Shape

__all__ = ["CLASSES"]


def _merge_pair(first: Shape, second: Shape) -> Shape:
    """``Merge._compute_elemwise_op_output_shape``: right-aligned, None wins."""
    if len(first) < len(second):
        first, second = second, first
    if not second:
        return first
    dims = list(first[: len(first) - len(second)])
    for i, j in zip(first[len(first) - len(second) :], second, strict=True):
        if i is None or j is None:
            dims.append(None)
        elif i == 1:
            dims.append(j)
        elif j == 1 or i == j:
            dims.append(i)
        else:
            raise Unsure
    return tuple(dims)


def _merge(minimum: int, maximum: int | None = None) -> ShapeRule:
    def rule(call: ShapeCall) -> Shapes:
        shapes = call.all_known(call.positional)
        if len(shapes) < minimum or (maximum is not None and len(shapes) > maximum):
            raise Unsure
        if any(not s for s in shapes):
            raise Unsure
        output = shapes[0][1:]
        for shape in shapes[1:]:
            output = _merge_pair(output, shape[1:])
        batches = {s[0] for s in shapes} - {None}
        if len(batches) > 1:
            raise Unsure
        return ((batches.pop() if batches else None, *output),)

    return rule


def _concatenate(call: ShapeCall) -> Shapes:
    shapes = call.all_known(call.positional)
    rank = len(shapes[0])
    if rank == 0 or any(len(s) != rank for s in shapes):
        raise Unsure
    axis = axis_of(call.config.get("axis", -1), rank)
    for shape in shapes[1:]:  # Keras checks the other dimensions, then keeps the first's
        for i in range(rank):
            if i != axis:
                merge_dims(shapes[0][i], shape[i])
    sizes = [s[axis] for s in shapes]
    total = None if None in sizes else sum(d for d in sizes if d is not None)
    output = list(shapes[0])
    output[axis] = total
    return (tuple(output),)


def _dot(call: ShapeCall) -> Shapes:
    shapes = call.all_known(call.positional)
    if len(shapes) != 2:
        raise Unsure
    first, second = shapes
    if len(first) < 2 or len(second) < 2:
        raise Unsure
    value = value_of(call.config, "axes")
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise Unsure
        axes = (axis_of(value[0], len(first)), axis_of(value[1], len(second)))
    else:
        axes = (axis_of(value, len(first)), axis_of(value, len(second)))
    if 0 in axes:
        raise Unsure
    merge_dims(first[axes[0]], second[axes[1]])
    left = [d for i, d in enumerate(first) if i != axes[0]]
    right = [d for i, d in enumerate(second) if i != axes[1]][1:]
    output = left + right
    if len(output) == 1:
        output.append(1)
    return (tuple(output),)


CLASSES = (
    weightless("Add", _merge(1), 0),
    weightless("Subtract", _merge(2, 2), 0),
    weightless("Multiply", _merge(1), 0),
    weightless("Average", _merge(1), 0),
    weightless("Maximum", _merge(1), 0),
    weightless("Minimum", _merge(1), 0),
    weightless("Concatenate", _concatenate, 0),
    weightless("Dot", _dot, UNKNOWN),
)
