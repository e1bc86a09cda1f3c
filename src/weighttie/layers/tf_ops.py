"""Keras 2 op layers (``TFOpLambda``, ``SlicingOpLambda``): the common ``tf.*``
functions as tf_keras saves them, each rule checked against tf_keras 2.21.

These speak the op's vocabulary, not a layer's: ``config["function"]`` names the
op (``math.reduce_mean``, ``__operators__.getitem``), and its arguments are the
call's kwargs (tensors among them as ``[layer, node, tensor]`` references, a
constant first operand as a positional input: ``2.0 * x``). Elementwise ops with
broadcasting, ``reshape``, ``concat``, ``stack``, ``transpose``, ``expand_dims``,
``squeeze``, reductions, ``matmul``, slicing … An op without a rule, or an
argument of a form no rule expects, is unknown. MACs are unknown (a ``matmul``'s
operands are tensors, not variables the layer holds).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from weighttie.layers.layer_class import NONE, UNKNOWN, LayerClass
from weighttie.layers.shapes import (
    ShapeCall,
    ShapeRule,
    Shapes,
    axes_of,
    axis_of,
    bool_of,
    broadcast,
    count_tensors,
    int_of,
    ints_of,
    is_tensor,
    known_dim,
    merge_dims,
    reshape,
    signed_int_of,
    value_of,
    with_rank,
)
from weighttie.layers.unsure import Unsure
from weighttie.report import Shape

__all__ = ["CLASSES"]

#: Largest nested constant (an op argument) measured, in items.
MAX_CONSTANT_ITEMS = 100_000


def _constant_shape(value: Any) -> Shape:
    """The shape of a constant argument (a number or a nested list)."""
    if isinstance(value, bool | int | float):
        return ()
    if not isinstance(value, list) or not value:
        raise Unsure
    if len(value) > MAX_CONSTANT_ITEMS:
        raise Unsure
    inner = {_constant_shape(v) for v in value}
    if len(inner) != 1:
        raise Unsure
    return (len(value), *inner.pop())


def _argument_shape(call: ShapeCall, name: str) -> Shape:
    """The shape of an op's argument ``name``: a tensor from the call, or a constant."""
    if name not in call.kwargs:
        raise Unsure
    value = call.kwargs[name]
    if is_tensor(value):
        shape = call.kwarg_shapes().get(name)
        if shape is None:
            raise Unsure
        return shape
    if count_tensors(value):
        raise Unsure
    return _constant_shape(value)


def _constant_ints(value: Any) -> list[int]:
    if not isinstance(value, list | tuple):
        raise Unsure
    return [signed_int_of(v) for v in value]


def _op_unary(call: ShapeCall) -> Shapes:
    return (call.x,)


def _op_binary(call: ShapeCall) -> Shapes:
    """``x op y``; a constant ``x`` (``_CONSTANT_VALUE``) is a positional input too."""
    return (broadcast(call.x, _argument_shape(call, "y")),)


def _op_atan2(call: ShapeCall) -> Shapes:
    """``tf.math.atan2(y, x)``: the second operand is ``x``."""
    return (broadcast(call.x, _argument_shape(call, "x")),)


def _op_bias_add(call: ShapeCall) -> Shapes:
    shape = call.x
    bias = _argument_shape(call, "bias")
    if len(bias) != 1 or not shape:
        raise Unsure
    return (shape,)


def _op_clip(call: ShapeCall) -> Shapes:
    shape = call.x
    for name in ("clip_value_min", "clip_value_max"):
        shape = broadcast(shape, _argument_shape(call, name))
    if shape != call.x:
        raise Unsure
    return (shape,)


def _op_where(call: ShapeCall) -> Shapes:
    shape = broadcast(call.x, _argument_shape(call, "x"))
    return (broadcast(shape, _argument_shape(call, "y")),)


def _op_reshape(call: ShapeCall) -> Shapes:
    target = call.kwargs.get("shape")
    if not isinstance(target, list | tuple) or count_tensors(target):
        raise Unsure
    return (reshape(call.x, _constant_ints(target)),)


def _op_concat(call: ShapeCall) -> Shapes:
    shapes = call.all_known(call.positional)
    rank = len(shapes[0])
    if rank == 0 or any(len(s) != rank for s in shapes):
        raise Unsure
    axis = axis_of(call.kwargs.get("axis"), rank)
    output: list[int | None] = list(shapes[0])
    for shape in shapes[1:]:
        for i in range(rank):
            if i == axis:
                a, b = output[i], shape[i]
                output[i] = None if a is None or b is None else a + b
            else:
                output[i] = merge_dims(output[i], shape[i])
    return (tuple(output),)


def _op_stack(call: ShapeCall) -> Shapes:
    shapes = call.all_known(call.positional)
    merged: list[int | None] = list(shapes[0])
    for shape in shapes[1:]:
        if len(shape) != len(merged):
            raise Unsure
        merged = [merge_dims(a, b) for a, b in zip(merged, shape, strict=True)]
    axis = axis_of(call.kwargs.get("axis", 0), len(merged) + 1)
    merged.insert(axis, len(shapes))
    return (tuple(merged),)


def _op_transpose(call: ShapeCall) -> Shapes:
    shape = call.x
    perm = call.kwargs.get("perm")
    if perm is None:
        return (shape[::-1],)
    order = [axis_of(p, len(shape)) for p in _constant_ints(perm)]
    if sorted(order) != list(range(len(shape))):
        raise Unsure
    return (tuple(shape[p] for p in order),)


def _op_matrix_transpose(call: ShapeCall) -> Shapes:
    shape = call.x
    if len(shape) < 2:
        raise Unsure
    return ((*shape[:-2], shape[-1], shape[-2]),)


def _op_expand_dims(call: ShapeCall) -> Shapes:
    shape = call.x
    axis = axis_of(value_of(call.kwargs, "axis"), len(shape) + 1)
    return ((*shape[:axis], 1, *shape[axis:]),)


def _op_squeeze(call: ShapeCall) -> Shapes:
    shape = call.x
    value = call.kwargs.get("axis")
    if value is None or value == []:
        if None in shape:
            return (None,)  # TensorFlow cannot tell the rank either
        return (tuple(d for d in shape if d != 1),)
    axes = set(axes_of(value, len(shape)))
    if any(shape[a] not in (1, None) for a in axes):
        raise Unsure
    return (tuple(d for i, d in enumerate(shape) if i not in axes),)


def _op_reduce(call: ShapeCall) -> Shapes:
    shape = call.x
    value = call.kwargs.get("axis")
    keepdims = call.kwargs.get("keepdims")
    keep = False if keepdims is None else bool_of(keepdims)
    axes = set(range(len(shape))) if value is None else set(axes_of(value, len(shape)))
    if keep:
        return (tuple(1 if i in axes else d for i, d in enumerate(shape)),)
    return (tuple(d for i, d in enumerate(shape) if i not in axes),)


def _op_argmax(call: ShapeCall) -> Shapes:
    shape = call.x
    value = call.kwargs.get("axis")
    axis = axis_of(0 if value is None else value, len(shape))
    return (tuple(d for i, d in enumerate(shape) if i != axis),)


def _op_norm(call: ShapeCall) -> Shapes:
    value = call.kwargs.get("axis")
    if isinstance(value, list | tuple) and len(value) != 1:
        raise Unsure  # matrix norms
    return _op_reduce(call)


def _op_tile(call: ShapeCall) -> Shapes:
    shape = call.x
    multiples = _constant_ints(value_of(call.kwargs, "multiples"))
    if len(multiples) != len(shape) or any(m < 0 for m in multiples):
        raise Unsure
    return (tuple(None if d is None else d * m for d, m in zip(shape, multiples, strict=True)),)


def _op_shape(call: ShapeCall) -> Shapes:
    return ((len(call.x),),)


def _op_one_hot(call: ShapeCall) -> Shapes:
    shape = call.x
    depth = int_of(value_of(call.kwargs, "depth"))
    value = call.kwargs.get("axis")
    axis = len(shape) if value is None or value == -1 else axis_of(value, len(shape) + 1)
    return ((*shape[:axis], depth, *shape[axis:]),)


def _op_pad(call: ShapeCall) -> Shapes:
    shape = call.x
    paddings = value_of(call.kwargs, "paddings")
    if not isinstance(paddings, list) or len(paddings) != len(shape):
        raise Unsure
    pairs = [ints_of(p, 2, minimum=0) for p in paddings]
    return (
        tuple(None if d is None else d + a + b for d, (a, b) in zip(shape, pairs, strict=True)),
    )


def _op_matmul(call: ShapeCall) -> Shapes:
    a, b = call.x, _argument_shape(call, "b")
    if len(a) < 2 or len(b) < 2:
        raise Unsure
    kw = call.kwargs
    if bool_of(kw.get("transpose_a", False)) or bool_of(kw.get("adjoint_a", False)):
        a = (*a[:-2], a[-1], a[-2])
    if bool_of(kw.get("transpose_b", False)) or bool_of(kw.get("adjoint_b", False)):
        b = (*b[:-2], b[-1], b[-2])
    merge_dims(a[-1], b[-2])
    return ((*broadcast(a[:-2], b[:-2]), a[-2], b[-1]),)


def _op_resize(call: ShapeCall) -> Shapes:
    shape = with_rank(call.x, 3, 4)
    height, width = ints_of(value_of(call.kwargs, "size"), 2)
    return ((*shape[:-3], height, width, shape[-1]),)


def _op_split(call: ShapeCall) -> Shapes:
    shape = call.x
    axis = axis_of(call.kwargs.get("axis", 0), len(shape))
    value = value_of(call.kwargs, "num_or_size_splits")
    if isinstance(value, list):
        sizes: list[int | None] = [int_of(v) for v in value]
        if shape[axis] is not None and sum(v for v in sizes if v is not None) != shape[axis]:
            raise Unsure
    else:
        count = int_of(value, 1)
        size = shape[axis]
        if size is not None and size % count:
            raise Unsure
        sizes = [None if size is None else size // count] * count
    return tuple((*shape[:axis], s, *shape[axis + 1 :]) for s in sizes)


def _op_unstack(call: ShapeCall) -> Shapes:
    shape = call.x
    axis = axis_of(call.kwargs.get("axis", 0), len(shape))
    count = known_dim(shape[axis])
    part = shape[:axis] + shape[axis + 1 :]
    return (part,) * count


def _op_top_k(call: ShapeCall) -> Shapes:
    shape = call.x
    if not shape:
        raise Unsure
    k = int_of(call.kwargs.get("k", 1), 1)
    if shape[-1] is not None and shape[-1] < k:
        raise Unsure
    values = (*shape[:-1], k)
    return (values, values)


def _op_broadcast_to(call: ShapeCall) -> Shapes:
    target = _constant_ints(value_of(call.kwargs, "shape"))
    if any(d < 0 for d in target):
        raise Unsure
    shape = tuple(target)
    if broadcast(call.x, shape) != shape:
        raise Unsure
    return (shape,)


def _op_gather(call: ShapeCall) -> Shapes:
    shape = call.x
    if call.kwargs.get("batch_dims", 0) not in (0, None):
        raise Unsure
    indices = _argument_shape(call, "indices")
    value = call.kwargs.get("axis")
    axis = axis_of(0 if value is None else value, len(shape))
    return ((*shape[:axis], *indices, *shape[axis + 1 :]),)


def _slice_length(size: int | None, item: Mapping[str, Any]) -> int | None:
    bounds = [item.get("start"), item.get("stop"), item.get("step")]
    if any(b is not None and (isinstance(b, bool) or not isinstance(b, int)) for b in bounds):
        if any(is_tensor(b) for b in bounds):
            return None
        raise Unsure
    if bounds[2] == 0:
        raise Unsure
    if size is None:
        return None
    return len(range(*slice(*bounds).indices(size)))


def _op_getitem(call: ShapeCall) -> Shapes:
    """``x[...]`` as tf_keras saves it: ``slice_spec`` items are slices, ints, None, ``...``."""
    shape = call.x
    spec = value_of(call.kwargs, "slice_spec")
    items = spec if isinstance(spec, list) else [spec]
    ellipses = [i for i, item in enumerate(items) if _is_ellipsis(item)]
    if len(ellipses) > 1:
        raise Unsure
    consuming = sum(1 for item in items if item is not None and not _is_ellipsis(item))
    if consuming > len(shape):
        raise Unsure
    expanded: list[Any] = []
    for item in items:
        if _is_ellipsis(item):
            expanded.extend([_FULL_SLICE] * (len(shape) - consuming))
        else:
            expanded.append(item)
    output: list[int | None] = []
    dims = iter(shape)
    for item in expanded:
        if item is None:
            output.append(1)
            continue
        size = next(dims)
        if isinstance(item, Mapping) and "start" in item:
            output.append(_slice_length(size, item))
        elif isinstance(item, int) and not isinstance(item, bool):
            if size is not None and not -size <= item < size:
                raise Unsure
        elif not is_tensor(item):
            raise Unsure
    output.extend(dims)
    return (tuple(output),)


_FULL_SLICE: Mapping[str, Any] = {"start": None, "stop": None, "step": None}


def _is_ellipsis(item: Any) -> bool:
    return isinstance(item, Mapping) and item.get("class_name") == "__ellipsis__"


# The spellings tf_keras 2.21 writes (``config["function"]``), each checked against it.
_UNARY_OPS = (
    "cast", "identity", "stop_gradient", "ones_like", "zeros_like", "bitwise.invert",
    "nn.relu", "nn.relu6", "nn.elu", "nn.selu", "nn.gelu", "nn.silu", "nn.softsign",
    "nn.leaky_relu", "nn.softmax", "nn.log_softmax", "nn.dropout", "math.l2_normalize",
    "math.abs", "math.sigmoid", "math.tanh", "math.exp", "math.log", "math.log1p", "math.expm1",
    "math.sqrt", "math.rsqrt", "math.square", "math.negative", "math.reciprocal",
    "math.softplus", "math.erf", "math.erfc", "math.sign", "math.floor", "math.ceil",
    "math.round", "math.sin", "math.cos", "math.tan", "math.atan", "math.asin", "math.acos",
    "math.sinh", "math.cosh", "math.asinh", "math.acosh", "math.atanh", "math.log_sigmoid",
    "math.logical_not", "math.is_nan", "math.is_inf", "math.cumsum", "math.cumprod",
    "math.lgamma", "math.digamma", "math.real", "math.imag", "math.conj",
)  # fmt: skip
_BINARY_OPS = (
    "__operators__.add", "math.add", "math.subtract", "math.multiply", "math.truediv",
    "realdiv", "compat.v1.floor_div", "math.floormod", "math.maximum", "math.minimum",
    "math.pow", "math.squared_difference", "math.divide_no_nan", "math.multiply_no_nan",
    "math.greater", "math.greater_equal", "math.less", "math.less_equal", "math.equal",
    "math.not_equal", "math.logical_and", "math.logical_or", "math.xdivy", "math.xlogy",
)  # fmt: skip
_REDUCE_OPS = (
    "math.reduce_mean", "math.reduce_sum", "math.reduce_max", "math.reduce_min",
    "math.reduce_prod", "math.reduce_std", "math.reduce_variance", "math.reduce_any",
    "math.reduce_all", "math.reduce_logsumexp", "math.reduce_euclidean_norm",
)  # fmt: skip

_OPS: dict[str, ShapeRule] = {
    **dict.fromkeys(_UNARY_OPS, _op_unary),
    **dict.fromkeys(_BINARY_OPS, _op_binary),
    **dict.fromkeys(_REDUCE_OPS, _op_reduce),
    "nn.bias_add": _op_bias_add,
    "clip_by_value": _op_clip,
    "where": _op_where,
    "reshape": _op_reshape,
    "concat": _op_concat,
    "stack": _op_stack,
    "compat.v1.transpose": _op_transpose,
    "linalg.matrix_transpose": _op_matrix_transpose,
    "math.atan2": _op_atan2,
    "expand_dims": _op_expand_dims,
    "compat.v1.squeeze": _op_squeeze,
    "tile": _op_tile,
    "compat.v1.shape": _op_shape,
    "math.argmax": _op_argmax,
    "math.argmin": _op_argmax,
    "one_hot": _op_one_hot,
    "compat.v1.pad": _op_pad,
    "linalg.matmul": _op_matmul,
    "image.resize": _op_resize,
    "split": _op_split,
    "unstack": _op_unstack,
    "math.top_k": _op_top_k,
    "broadcast_to": _op_broadcast_to,
    "compat.v1.gather": _op_gather,
    "compat.v1.norm": _op_norm,
    "__operators__.getitem": _op_getitem,
}


def _tf_op(call: ShapeCall) -> Shapes:
    """A Keras 2 ``TFOpLambda`` / ``SlicingOpLambda``: the rule of its ``tf.*`` function."""
    function = call.config.get("function")
    rule = _OPS.get(function) if isinstance(function, str) else None
    if rule is None:
        raise Unsure
    return rule(call)


CLASSES = (
    LayerClass("TFOpLambda", _tf_op, UNKNOWN, NONE, NONE),
    LayerClass("SlicingOpLambda", _tf_op, UNKNOWN, NONE, NONE),
)
