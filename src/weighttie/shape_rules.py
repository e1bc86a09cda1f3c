"""Output shapes of Keras's built-in layers, computed from config and input shapes.

The static reader needs the shape of every call's outputs, and the file does not
always state them: Keras 2 (tf_keras) configs store no shapes at all, and Keras 3
stores none for outputs that nothing consumes. :func:`output_shapes` recomputes
them the way Keras does, in pure Python (no Keras, no backend, no numpy).

Covered, for Keras 3 ``.keras`` configs and Keras 2 ``.h5`` ``model_config``
layer configs alike:

* core: ``Dense``, ``EinsumDense``, ``Embedding``, ``ReversibleEmbedding``,
  ``Activation``, ``Identity``, ``Masking``, ``InputLayer``;
* convolutions 1D/2D/3D, their transposes, ``SeparableConv1D/2D`` and
  ``DepthwiseConv1D/2D`` (padding valid/same/causal, strides, dilation,
  channels first/last, ``output_padding``);
* pooling: max/average 1D/2D/3D, global pooling (``keepdims``), adaptive pooling;
* reshaping: ``Flatten``, ``Reshape`` (with ``-1``), ``Permute``, ``RepeatVector``,
  cropping, zero padding, up-sampling;
* merging: ``Add``, ``Subtract``, ``Multiply``, ``Average``, ``Maximum``,
  ``Minimum``, ``Concatenate``, ``Dot``;
* normalization, activation and regularization layers (shape-preserving);
* recurrent: ``LSTM``, ``GRU``, ``SimpleRNN``, ``RNN`` over their cells (stacked
  too), ``ConvLSTM1D/2D/3D``, ``Bidirectional``, ``TimeDistributed`` (the wrappers
  recurse into their inner layer), ``return_sequences``/``return_state`` and Keras
  2's ``time_major``;
* attention: ``Attention``, ``AdditiveAttention``, ``MultiHeadAttention``,
  ``GroupQueryAttention`` (``return_attention_scores`` from the call's kwargs);
* preprocessing: ``Rescaling``, ``Normalization``, the image augmentation layers
  that keep shape, ``Resizing``, ``CenterCrop``, ``RandomCrop``,
  ``CategoryEncoding``, ``Hashing``, ``HashedCrossing``, ``Discretization``,
  ``StringLookup``, ``IntegerLookup``, ``TextVectorization`` (where the config
  decides the depth);
* Keras 2 op layers (``TFOpLambda``, ``SlicingOpLambda``): the common
  ``tf.*`` functions as tf_keras saves them (elementwise ops with broadcasting,
  ``reshape``, ``concat``, ``stack``, ``transpose``, ``expand_dims``, ``squeeze``,
  reductions, ``matmul``, ``__operators__.getitem`` …).

The principle is **never guess**: where a rule does not know the class, lacks an
input shape it needs, or meets a config it does not understand (or one Keras itself
would reject), the answer is ``None``, never a plausible shape and never an error.
Within a known result a single output may be ``None`` (a dimension Keras leaves
unknown is ``None`` inside a shape, as Keras writes it).

Where Keras 3.15's symbolic shape differs from the tensor a call really returns, the
rule gives the real one: ``MultiHeadAttention``'s attention scores are
``(batch, heads, query_length, key_length)`` (the symbolic call says ``query_length``
twice), ``EinsumDense`` with ``...`` on the left keeps the elided axes in order, and
``Hashing(output_mode="one_hot")`` encodes each element. Where the two disagree with
no clear answer (multi-hot or count encoding of inputs of rank 3 or more), the
answer is ``None``.

``class_name`` must name a Keras built-in layer: the caller decides that a layer
is not a custom class or a Keras 3 op (``keras.src.ops.numpy.Reshape``) that
happens to share a layer's name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ALIASES", "Shape", "has_rule", "output_shapes"]

#: A tensor shape; ``None`` is a dimension that is not known.
Shape = tuple[int | None, ...]
#: The shapes of one call's outputs (an entry is ``None`` when not known).
Shapes = tuple[Shape | None, ...]
Config = Mapping[str, Any]

#: How deep wrappers may nest (``Bidirectional`` of ``TimeDistributed`` …).
MAX_WRAPPER_DEPTH = 8
#: Largest nested constant (a ``tf.*`` op argument) measured, in items.
MAX_CONSTANT_ITEMS = 100_000


class _Unsure(Exception):
    """Raised inside a rule that cannot tell the shape; :func:`output_shapes` says None."""


#: What a config value of a form no rule expects may raise on its way: not understood.
_NOT_UNDERSTOOD = (
    TypeError, ValueError, KeyError, IndexError, ZeroDivisionError, OverflowError, RecursionError
)  # fmt: skip


def output_shapes(
    class_name: str,
    config: Mapping[str, Any],
    input_shapes: Sequence[Shape | None],
    call_kwargs: Mapping[str, Any] | None = None,
) -> Shapes | None:
    """The shapes of all outputs of one call of a built-in Keras layer.

    Args:
        class_name: The layer's class, as the file names it (``"Conv2D"``,
            ``"TFOpLambda"`` …).
        config: The layer's config as serialized (Keras 3 ``config.json`` or Keras 2
            ``model_config``), the ``"config"`` member of the layer entry.
        input_shapes: The shapes of every tensor the call receives, batch included:
            positional arguments first, then the tensors among ``call_kwargs`` in
            sorted key order (depth first), as ``tree.flatten((args, kwargs))``
            lists them. ``None`` for a shape that is not known. A Keras 2 op layer's
            constant first operand (``["_CONSTANT_VALUE", -1, 2.0, {…}]``, as in
            ``2.0 * x``) is a positional input with its value's shape (``()``).
        call_kwargs: The call's keyword arguments as the file stores them (Keras 3:
            a node's ``"kwargs"``; Keras 2: the dict that ends a node reference),
            tensors included as ``__keras_tensor__`` entries or ``[layer, node,
            tensor]`` references.

    Returns:
        One shape per output tensor, in Keras's flattened output order, or
        ``None`` when the class is not covered, a needed input shape is unknown, or
        the config is one this module does not understand.

    Example:
        >>> output_shapes("Conv2D", {"filters": 8, "kernel_size": [3, 3],
        ...               "strides": [2, 2], "padding": "same"}, [(None, 32, 32, 3)])
        ((None, 16, 16, 8),)
        >>> output_shapes("LSTM", {"units": 4, "return_state": True}, [(None, 7, 3)])
        ((None, 4), (None, 4), (None, 4))
        >>> output_shapes("MyLayer", {}, [(None, 3)]) is None
        True
    """
    rule = _RULES.get(class_name) if isinstance(class_name, str) else None
    if rule is None or not isinstance(config, Mapping):
        return None
    try:
        call = _Call.of(config, input_shapes, call_kwargs)
        return rule(call)
    except (_Unsure, *_NOT_UNDERSTOOD):
        return None


# -- the call a rule sees -------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    """One call: the layer's config, its tensors' shapes and its keyword arguments."""

    config: Config
    shapes: tuple[Shape | None, ...]
    kwargs: Mapping[str, Any]
    depth: int = 0

    @classmethod
    def of(
        cls,
        config: Config,
        input_shapes: Sequence[Shape | None],
        call_kwargs: Mapping[str, Any] | None,
    ) -> _Call:
        if isinstance(input_shapes, str | bytes) or not isinstance(input_shapes, Sequence):
            raise _Unsure
        kwargs = call_kwargs if isinstance(call_kwargs, Mapping) else {}
        return cls(config, tuple(_clean_shape(s) for s in input_shapes), kwargs)

    def inner(self, config: Config, shapes: tuple[Shape | None, ...]) -> _Call:
        """The call of a wrapped layer (a wrapper's call kwargs are not its inner layer's)."""
        if self.depth >= MAX_WRAPPER_DEPTH:
            raise _Unsure
        return _Call(config, shapes, {}, self.depth + 1)

    @property
    def positional(self) -> tuple[Shape | None, ...]:
        """The shapes of the tensors passed positionally (those before the kwargs' tensors)."""
        count = len(self.shapes) - _count_tensors(self.kwargs)
        if count < 0:
            raise _Unsure
        return self.shapes[:count]

    def kwarg_shapes(self) -> dict[str, Shape | None]:
        """The shape of each keyword argument that is one tensor, by name."""
        offset = len(self.positional)
        found: dict[str, Shape | None] = {}
        for key in sorted(self.kwargs, key=str):
            count = _count_tensors(self.kwargs[key])
            if count == 1 and _is_tensor(self.kwargs[key]):
                found[str(key)] = self.shapes[offset]
            offset += count
        return found

    @property
    def x(self) -> Shape:
        """The known shape of the main input: the first positional tensor, or the
        ``inputs`` (``sequences`` for recurrent layers) keyword argument."""
        positional = self.positional
        if positional:
            shape = positional[0]
        else:
            named = self.kwarg_shapes()
            shape = named.get("inputs", named.get("sequences"))
        if shape is None:
            raise _Unsure
        return shape

    @staticmethod
    def all_known(shapes: Sequence[Shape | None]) -> list[Shape]:
        """The shapes, every one known (at least one)."""
        known = [s for s in shapes if s is not None]
        if not known or len(known) != len(shapes):
            raise _Unsure
        return known

    def flag(self, key: str) -> bool:
        """A boolean call argument (absent: False)."""
        return _bool(self.kwargs.get(key, False))


def _clean_shape(value: Any) -> Shape | None:
    if not isinstance(value, list | tuple):
        return None
    dims: list[int | None] = []
    for d in value:
        if d is None:
            dims.append(None)
        elif isinstance(d, int) and not isinstance(d, bool) and d >= 0:
            dims.append(d)
        else:
            return None
    return tuple(dims)


def _is_tensor(value: Any) -> bool:
    """A tensor as a call's kwargs store it (Keras 3 entry or Keras 2 reference)."""
    if isinstance(value, Mapping):
        return value.get("class_name") == "__keras_tensor__"
    return (
        isinstance(value, list | tuple)
        and len(value) in (3, 4)
        and isinstance(value[0], str)
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value[1:3])
        and (len(value) == 3 or isinstance(value[3], Mapping))
    )


def _count_tensors(value: Any, depth: int = 0) -> int:
    """How many tensors a call argument holds (``tree.flatten`` counts them)."""
    if depth > 64:
        raise _Unsure
    if _is_tensor(value):
        return 1
    if isinstance(value, Mapping):
        return sum(_count_tensors(value[k], depth + 1) for k in value)
    if isinstance(value, list | tuple):
        return sum(_count_tensors(v, depth + 1) for v in value)
    return 0


# -- reading config values ------------------------------------------------------

_MISSING = object()


def _get(config: Config, key: str, default: Any = _MISSING) -> Any:
    """``config[key]``; a missing key is the Keras default, or not understood without one."""
    if key in config:
        return config[key]
    if default is _MISSING:
        raise _Unsure
    return default


def _int(value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _Unsure
    return value


def _signed_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Unsure
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Unsure
    return value


def _ints(value: Any, count: int, minimum: int = 1) -> tuple[int, ...]:
    """An int or a list of ``count`` ints (Keras's ``standardize_tuple``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (_int(value, minimum),) * count
    if not isinstance(value, list | tuple) or len(value) != count:
        raise _Unsure
    return tuple(_int(v, minimum) for v in value)


def _pairs(value: Any, count: int) -> tuple[tuple[int, int], ...]:
    """Cropping or padding amounts: an int, ``count`` ints, or ``count`` pairs."""
    if isinstance(value, int) and not isinstance(value, bool):
        return ((_int(value), _int(value)),) * count
    if not isinstance(value, list | tuple) or len(value) != count:
        raise _Unsure
    pairs = []
    for item in value:
        first, second = _ints(item, 2, minimum=0)
        pairs.append((first, second))
    return tuple(pairs)


def _channels_first(config: Config) -> bool:
    """The config's data format; absent or null is Keras's default, channels_last."""
    value = config.get("data_format")
    if value is None or value == "channels_last":
        return False
    if value == "channels_first":
        return True
    raise _Unsure


def _padding(config: Config, allowed: frozenset[str]) -> str:
    value = config.get("padding", "valid")
    if not isinstance(value, str) or value.lower() not in allowed:
        raise _Unsure  # explicit padding lists are not understood
    return value.lower()


def _choice(config: Config, key: str, allowed: Iterable[Any], default: Any) -> Any:
    value = config.get(key, default)
    if value not in allowed:
        raise _Unsure
    return value


def _axis(value: Any, rank: int) -> int:
    """An axis in ``[-rank, rank)`` as a non-negative index."""
    axis = _signed_int(value)
    if not -rank <= axis < rank:
        raise _Unsure
    return axis % rank


def _axes(value: Any, rank: int) -> tuple[int, ...]:
    if isinstance(value, list | tuple):
        return tuple(_axis(v, rank) for v in value)
    return (_axis(value, rank),)


def _rank(shape: Shape, *ranks: int) -> Shape:
    if len(shape) not in ranks:
        raise _Unsure
    return shape


def _known(dim: int | None) -> int:
    if dim is None:
        raise _Unsure
    return dim


# -- shape arithmetic -------------------------------------------------------------


def _conv_length(
    size: int | None, kernel: int, stride: int, dilation: int, padding: str
) -> int | None:
    """A convolution's output length (``compute_conv_output_shape``)."""
    if size is None:
        return None
    if padding == "valid":
        length = (size - dilation * (kernel - 1) - 1) // stride + 1
        if length <= 0:
            raise _Unsure  # Keras: "Computed output size would be zero or negative"
        return length
    return (size - 1) // stride + 1  # same, causal


def _pool_length(size: int | None, pool: int, stride: int, padding: str) -> int | None:
    if size is None:
        return None
    if stride <= 0:
        raise _Unsure
    if padding == "valid":
        length = (size - pool) // stride + 1
        if length <= 0:
            raise _Unsure
        return length
    return (size - 1) // stride + 1


def _deconv_length(
    size: int | None,
    kernel: int,
    stride: int,
    dilation: int,
    padding: str,
    output_padding: int | None,
) -> int | None:
    """A transposed convolution's output length (Keras's TF padding rule)."""
    if size is None:
        return None
    kernel = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(kernel, stride) - kernel if output_padding is None else output_padding
        return (size - 1) * stride + kernel + extra
    if output_padding is None:
        return size * stride
    return (size - 1) * stride + kernel % 2 + output_padding


def _split_channels(shape: Shape, rank: int, channels_first: bool) -> tuple[Shape, int | None]:
    """The spatial dimensions and the channel dimension of a ``rank``-D image batch."""
    _rank(shape, rank + 2)
    if channels_first:
        return shape[2:], shape[1]
    return shape[1:-1], shape[-1]


def _join_channels(
    batch: int | None, spatial: Sequence[int | None], channels: int | None, channels_first: bool
) -> Shape:
    if channels_first:
        return (batch, channels, *spatial)
    return (batch, *spatial, channels)


def _broadcast(first: Shape, second: Shape) -> Shape:
    """NumPy/TensorFlow broadcasting (``broadcast_shapes``)."""
    rank = max(len(first), len(second))
    a = (1,) * (rank - len(first)) + first
    b = (1,) * (rank - len(second)) + second
    dims: list[int | None] = []
    for i, j in zip(a, b, strict=True):
        if i == 1:
            dims.append(j)
        elif j == 1:
            dims.append(i)
        elif i is None:
            dims.append(j)
        elif j is None or i == j:
            dims.append(i)
        else:
            raise _Unsure
    return tuple(dims)


def _merge_dims(first: int | None, second: int | None) -> int | None:
    """Two views of one dimension: the known one, or not understood if they differ."""
    if first is None:
        return second
    if second is not None and second != first:
        raise _Unsure
    return first


def _reshape(source: Shape, target: Sequence[int | None]) -> Shape:
    """``compute_reshape_output_shape``: resolve one ``-1`` when every size is known."""
    if sum(1 for d in target if d == -1) > 1 or any(d is not None and d < -1 for d in target):
        raise _Unsure
    if None in source or None in target:
        return tuple(None if d == -1 else d for d in target)
    size = math.prod(d for d in source if d is not None)
    known = math.prod(d for d in target if d is not None and d != -1)
    if -1 not in target:
        if known != size:
            raise _Unsure
        return tuple(target)
    if known == 0 or size % known:
        raise _Unsure
    return tuple(size // known if d == -1 else d for d in target)


# -- rule kinds ---------------------------------------------------------------------

Rule = Callable[[_Call], Shapes]


def _single(compute: Callable[[Config, Shape], Shape]) -> Rule:
    """A rule for a layer with one input and one output."""

    def rule(call: _Call) -> Shapes:
        return (compute(call.config, call.x),)

    return rule


def _same_shape(call: _Call) -> Shapes:
    return (call.x,)


def _never(call: _Call) -> Shapes:
    """A class whose output shape the config cannot tell (``Lambda`` runs code)."""
    raise _Unsure


# -- core -----------------------------------------------------------------------------


def _dense(config: Config, shape: Shape) -> Shape:
    if len(shape) < 2:
        raise _Unsure
    return (*shape[:-1], _int(_get(config, "units"), 1))


def _embedding(config: Config, shape: Shape) -> Shape:
    return (*shape, _int(_get(config, "output_dim"), 1))


def _reversible_embedding(call: _Call) -> Shapes:
    shape = call.x
    if call.flag("reverse"):
        if not shape:
            raise _Unsure
        return ((*shape[:-1], _int(_get(call.config, "input_dim"), 1)),)
    return ((*shape, _int(_get(call.config, "output_dim"), 1)),)


def _input_layer(call: _Call) -> Shapes:
    if call.shapes:
        return (call.x,)
    for key in ("batch_shape", "batch_input_shape"):
        shape = _clean_shape(call.config.get(key))
        if shape is not None:
            return (shape,)
    raise _Unsure


_EINSUM_FORMS = (
    (re.compile(r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)"), False),
    (re.compile(r"0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)"), True),
    (re.compile(r"([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0"), False),
)


def _einsum_parts(equation: str) -> tuple[str, str, str, bool]:
    """Input, weight and output specs of an ``EinsumDense`` equation; ``...`` on the left?"""
    replaced = equation.replace("...", "0")
    for pattern, left_elided in _EINSUM_FORMS:
        match = pattern.match(replaced)
        if match:
            input_spec, weight_spec, output_spec = match.groups()
            return input_spec, weight_spec, output_spec, left_elided
    raise _Unsure


def _einsum_dense(config: Config, shape: Shape) -> Shape:
    """``EinsumDense``: Keras's ``_analyze_split_string``, output shape only."""
    equation = _get(config, "equation")
    if not isinstance(equation, str):
        raise _Unsure
    partial = _get(config, "output_shape")
    if isinstance(partial, int) and not isinstance(partial, bool):
        partial = [partial]
    if not isinstance(partial, list | tuple):
        raise _Unsure
    partial = [None if d is None else _int(d, 1) for d in partial]
    input_spec, weight_spec, output_spec, left_elided = _einsum_parts(equation)
    elided = len(shape) - len(input_spec)
    if elided < 0 or (elided and "..." not in equation):
        raise _Unsure
    output: list[int | None] = [shape[0], *partial]
    if elided > 0 and left_elided:
        # Keras 3.15 inserts these one by one at 1, reversing them in its symbolic
        # shape; the einsum keeps their order.
        output[1:1] = shape[1:elided]
    elif elided > 0:
        output.extend(shape[len(shape) - elided :])
    offset = elided if left_elided else 0
    in_index = {d: i + offset for i, d in enumerate(input_spec)}
    out_index = {d: i + offset for i, d in enumerate(output_spec)}
    if len(output) != len(output_spec) + elided:
        raise _Unsure
    for dim in input_spec:
        if dim in out_index:
            stated = output[out_index[dim]]
            if stated is not None and stated != shape[in_index[dim]]:
                raise _Unsure
    for dim in output_spec:
        if dim not in input_spec and dim not in weight_spec:
            raise _Unsure
    if any(d not in in_index and d not in out_index for d in weight_spec):
        raise _Unsure
    return tuple(output)


# -- convolution and pooling -------------------------------------------------------

_CONV_PADDING = frozenset({"valid", "same"})
_CONV1D_PADDING = frozenset({"valid", "same", "causal"})


def _conv(rank: int, kind: str) -> Rule:
    """Conv / SeparableConv / DepthwiseConv / ConvTranspose of ``rank`` spatial dims.

    ``causal`` padding is Conv1D's (and Keras 2's SeparableConv1D's); other kinds
    reject it (``"step"`` is a ConvLSTM's convolution of one step).
    """
    causal = rank == 1 and kind in ("conv", "separable")

    def compute(config: Config, shape: Shape) -> Shape:
        first = _channels_first(config)
        spatial, channels = _split_channels(shape, rank, first)
        kernel = _ints(_get(config, "kernel_size"), rank)
        strides = _ints(config.get("strides", 1), rank)
        dilation = _ints(config.get("dilation_rate", 1), rank)
        if max(strides) > 1 and max(dilation) > 1:
            raise _Unsure  # Keras: "`strides > 1` not supported with `dilation_rate > 1`"
        if kind == "transpose":
            padding = _padding(config, _CONV_PADDING)
            extra = config.get("output_padding")
            output_padding = (None,) * rank if extra is None else _ints(extra, rank, minimum=0)
            if any(p is not None and p >= s for p, s in zip(output_padding, strides, strict=True)):
                raise _Unsure  # Keras: "`output_padding` must be strictly less than `strides`"
            lengths = [
                _deconv_length(n, k, s, d, padding, p)
                for n, k, s, d, p in zip(
                    spatial, kernel, strides, dilation, output_padding, strict=True
                )
            ]
        else:
            padding = _padding(config, _CONV1D_PADDING if causal else _CONV_PADDING)
            lengths = [
                _conv_length(n, k, s, d, padding)
                for n, k, s, d in zip(spatial, kernel, strides, dilation, strict=True)
            ]
        if kind == "depthwise":
            filters = _int(config.get("depth_multiplier", 1), 1) * _known(channels)
        else:
            filters = _int(_get(config, "filters"), 1)
        return _join_channels(shape[0], lengths, filters, first)

    return _single(compute)


def _pool(rank: int) -> Rule:
    def compute(config: Config, shape: Shape) -> Shape:
        first = _channels_first(config)
        spatial, channels = _split_channels(shape, rank, first)
        pool = _ints(_get(config, "pool_size"), rank)
        stride_value = config.get("strides")
        strides = pool if stride_value is None else _ints(stride_value, rank, minimum=0)
        padding = _padding(config, _CONV_PADDING)
        lengths = [
            _pool_length(n, p, s, padding) for n, p, s in zip(spatial, pool, strides, strict=True)
        ]
        return _join_channels(shape[0], lengths, channels, first)

    return _single(compute)


def _global_pool(rank: int) -> Rule:
    def compute(config: Config, shape: Shape) -> Shape:
        first = _channels_first(config)
        _spatial, channels = _split_channels(shape, rank, first)
        if _bool(config.get("keepdims", False)):
            return _join_channels(shape[0], (1,) * rank, channels, first)
        return (shape[0], channels)

    return _single(compute)


def _adaptive_pool(rank: int) -> Rule:
    def compute(config: Config, shape: Shape) -> Shape:
        first = _channels_first(config)
        _spatial, channels = _split_channels(shape, rank, first)
        size = _ints(_get(config, "output_size"), rank)
        return _join_channels(shape[0], size, channels, first)

    return _single(compute)


# -- reshaping ------------------------------------------------------------------------


def _flatten(config: Config, shape: Shape) -> Shape:
    rest = shape[1:]
    if not shape:
        raise _Unsure
    if any(d is None for d in rest):
        return (shape[0], None)
    return (shape[0], math.prod(d for d in rest if d is not None))


def _reshape_layer(config: Config, shape: Shape) -> Shape:
    target = _get(config, "target_shape")
    if not isinstance(target, list | tuple) or not shape:
        raise _Unsure
    dims = [None if d is None else _signed_int(d) for d in target]
    return (shape[0], *_reshape(shape[1:], dims))


def _permute(config: Config, shape: Shape) -> Shape:
    dims = _get(config, "dims")
    if not isinstance(dims, list | tuple):
        raise _Unsure
    order = [_int(d, 1) for d in dims]
    if sorted(order) != list(range(1, len(order) + 1)) or len(shape) != len(order) + 1:
        raise _Unsure
    return (shape[0], *(shape[d] for d in order))


def _repeat_vector(config: Config, shape: Shape) -> Shape:
    _rank(shape, 2)
    return (shape[0], _int(_get(config, "n"), 1), shape[1])


def _crop(rank: int) -> Rule:
    defaults = {1: (1, 1), 2: ((0, 0), (0, 0)), 3: ((1, 1), (1, 1), (1, 1))}

    def compute(config: Config, shape: Shape) -> Shape:
        value = config.get("cropping", defaults[rank])
        crops = (_ints(value, 2, minimum=0),) if rank == 1 else _pairs(value, rank)
        first = rank > 1 and _channels_first(config)
        spatial, channels = _split_channels(shape, rank, first)
        lengths: list[int | None] = []
        for n, (before, after) in zip(spatial, crops, strict=True):
            if n is None:
                lengths.append(None)
            elif n - before - after <= 0:
                raise _Unsure
            else:
                lengths.append(n - before - after)
        return _join_channels(shape[0], lengths, channels, first)

    return _single(compute)


def _zero_pad(rank: int) -> Rule:
    def compute(config: Config, shape: Shape) -> Shape:
        value = config.get("padding", 1 if rank == 1 else (1, 1) if rank == 2 else 1)
        pads = (_ints(value, 2, minimum=0),) if rank == 1 else _pairs(value, rank)
        first = _channels_first(config)
        spatial, channels = _split_channels(shape, rank, first)
        lengths = [
            None if n is None else n + a + b for n, (a, b) in zip(spatial, pads, strict=True)
        ]
        return _join_channels(shape[0], lengths, channels, first)

    return _single(compute)


def _up_sample(rank: int) -> Rule:
    def compute(config: Config, shape: Shape) -> Shape:
        sizes = _ints(config.get("size", 2), rank)
        first = rank > 1 and _channels_first(config)
        spatial, channels = _split_channels(shape, rank, first)
        lengths = [None if n is None else n * k for n, k in zip(spatial, sizes, strict=True)]
        return _join_channels(shape[0], lengths, channels, first)

    return _single(compute)


# -- merging ----------------------------------------------------------------------------


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
            raise _Unsure
    return tuple(dims)


def _merge(minimum: int, maximum: int | None = None) -> Rule:
    def rule(call: _Call) -> Shapes:
        shapes = call.all_known(call.positional)
        if len(shapes) < minimum or (maximum is not None and len(shapes) > maximum):
            raise _Unsure
        if any(not s for s in shapes):
            raise _Unsure
        output = shapes[0][1:]
        for shape in shapes[1:]:
            output = _merge_pair(output, shape[1:])
        batches = {s[0] for s in shapes} - {None}
        if len(batches) > 1:
            raise _Unsure
        return ((batches.pop() if batches else None, *output),)

    return rule


def _concatenate(call: _Call) -> Shapes:
    shapes = call.all_known(call.positional)
    rank = len(shapes[0])
    if rank == 0 or any(len(s) != rank for s in shapes):
        raise _Unsure
    axis = _axis(call.config.get("axis", -1), rank)
    for shape in shapes[1:]:  # Keras checks the other dimensions, then keeps the first's
        for i in range(rank):
            if i != axis:
                _merge_dims(shapes[0][i], shape[i])
    sizes = [s[axis] for s in shapes]
    total = None if None in sizes else sum(d for d in sizes if d is not None)
    output = list(shapes[0])
    output[axis] = total
    return (tuple(output),)


def _dot(call: _Call) -> Shapes:
    shapes = call.all_known(call.positional)
    if len(shapes) != 2:
        raise _Unsure
    first, second = shapes
    if len(first) < 2 or len(second) < 2:
        raise _Unsure
    value = _get(call.config, "axes")
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise _Unsure
        axes = (_axis(value[0], len(first)), _axis(value[1], len(second)))
    else:
        axes = (_axis(value, len(first)), _axis(value, len(second)))
    if 0 in axes:
        raise _Unsure
    _merge_dims(first[axes[0]], second[axes[1]])
    left = [d for i, d in enumerate(first) if i != axes[0]]
    right = [d for i, d in enumerate(second) if i != axes[1]][1:]
    output = left + right
    if len(output) == 1:
        output.append(1)
    return (tuple(output),)


# -- normalization ----------------------------------------------------------------------


def _normalization(default_axis: int | None) -> Rule:
    """Shape-preserving, once the configured axis is valid for the input."""

    def compute(config: Config, shape: Shape) -> Shape:
        value = config.get("axis", default_axis)
        if value is not None:
            _axes(value, len(shape))
        return shape

    return _single(compute)


def _wrapped_layer(call: _Call, key: str = "layer") -> tuple[str, Config]:
    """The class and config of the layer a wrapper holds (``{"class_name", "config"}``)."""
    entry = _get(call.config, key)
    if not isinstance(entry, Mapping):
        raise _Unsure
    class_name, config = entry.get("class_name"), entry.get("config")
    module, registered = entry.get("module"), entry.get("registered_name")
    if not isinstance(class_name, str) or not isinstance(config, Mapping):
        raise _Unsure
    if module is not None and not (isinstance(module, str) and module.startswith("keras")):
        raise _Unsure  # a custom class that happens to share a built-in's name
    if registered is not None and registered != class_name:
        raise _Unsure
    return class_name, config


def _apply_inner(
    call: _Call, class_name: str, config: Config, shapes: tuple[Shape | None, ...]
) -> Shapes:
    rule = _RULES.get(class_name)
    if rule is None:
        raise _Unsure
    return rule(call.inner(config, shapes))


def _spectral_normalization(call: _Call) -> Shapes:
    class_name, config = _wrapped_layer(call)
    return _apply_inner(call, class_name, config, (call.x,))


# -- recurrent ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cell:
    """What a recurrent cell contributes to shapes: its output size and state sizes."""

    output: int
    states: tuple[int, ...]


def _cell(class_name: str, config: Config, depth: int = 0) -> _Cell:
    if depth > MAX_WRAPPER_DEPTH:
        raise _Unsure
    if class_name in ("LSTMCell", "GRUCell", "SimpleRNNCell"):
        units = _int(_get(config, "units"), 1)
        return _Cell(units, (units, units) if class_name == "LSTMCell" else (units,))
    if class_name == "StackedRNNCells":
        cells = _get(config, "cells")
        if not isinstance(cells, list) or not cells:
            raise _Unsure
        parts = [_cell(*_class_and_config(entry), depth + 1) for entry in cells]
        return _Cell(parts[-1].output, tuple(s for p in parts for s in p.states))
    raise _Unsure


def _class_and_config(entry: Any) -> tuple[str, Config]:
    if not isinstance(entry, Mapping):
        raise _Unsure
    class_name, config = entry.get("class_name"), entry.get("config")
    if not isinstance(class_name, str) or not isinstance(config, Mapping):
        raise _Unsure
    return class_name, config


def _sequence_outputs(config: Config, shape: Shape, cell: _Cell) -> Shapes:
    """An RNN's outputs: the output (last step or sequence), then each state."""
    _rank(shape, 3)
    time_major = _bool(config.get("time_major", False))  # Keras 2: (time, batch, features)
    if time_major:
        steps, batch = shape[0], shape[1]
    else:
        batch, steps = shape[0], shape[1]
    output: Shape = (batch, cell.output)
    if _bool(config.get("return_sequences", False)):
        output = (steps, batch, cell.output) if time_major else (batch, steps, cell.output)
    if not _bool(config.get("return_state", False)):
        return (output,)
    return (output, *((batch, size) for size in cell.states))


def _recurrent(cell_class: str) -> Rule:
    def rule(call: _Call) -> Shapes:
        return _sequence_outputs(call.config, call.x, _cell(cell_class, call.config))

    return rule


def _rnn(call: _Call) -> Shapes:
    cell = _cell(*_class_and_config(_get(call.config, "cell")))
    return _sequence_outputs(call.config, call.x, cell)


def _conv_lstm(rank: int) -> Rule:
    step_rule = _conv(rank, "step")

    def rule(call: _Call) -> Shapes:
        shape = _rank(call.x, rank + 3)
        config = call.config
        if _bool(config.get("time_major", False)):
            raise _Unsure
        step = step_rule(call.inner(config, ((shape[0], *shape[2:]),)))[0]
        if step is None:
            raise _Unsure
        output = step
        if _bool(config.get("return_sequences", False)):
            output = (shape[0], shape[1], *step[1:])
        if _bool(config.get("return_state", False)):
            return (output, step, step)
        return (output,)

    return rule


_MERGE_MODES = ("concat", "sum", "mul", "ave", None)
_SEQUENCE_LAYERS = frozenset(
    {"LSTM", "GRU", "SimpleRNN", "RNN", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"}
)


def _bidirectional(call: _Call) -> Shapes:
    mode = _choice(call.config, "merge_mode", _MERGE_MODES, "concat")
    class_name, config = _wrapped_layer(call)
    if class_name not in _SEQUENCE_LAYERS:
        raise _Unsure  # Keras wraps recurrent layers only
    forward = _apply_inner(call, class_name, config, (call.x,))
    if call.config.get("backward_layer") is not None:
        backward = _apply_inner(call, *_wrapped_layer(call, "backward_layer"), (call.x,))
        if backward != forward:
            raise _Unsure  # Keras computes shapes from the forward layer only
    output, states = forward[0], forward[1:]
    if output is None:
        raise _Unsure
    if mode == "concat":
        merged: Shapes = ((*output[:-1], None if output[-1] is None else 2 * output[-1]),)
    elif mode is None:
        merged = (output, output)
    else:
        merged = (output,)
    return merged + states + states


def _time_distributed(call: _Call) -> Shapes:
    shape = call.x
    if len(shape) < 3:
        raise _Unsure
    class_name, config = _wrapped_layer(call)
    inner = _apply_inner(call, class_name, config, ((shape[0], *shape[2:]),))
    if len(inner) != 1 or inner[0] is None or not inner[0]:
        raise _Unsure
    child = inner[0]
    return ((child[0], shape[1], *child[1:]),)


# -- attention ------------------------------------------------------------------------------


def _dot_attention(call: _Call) -> Shapes:
    """``Attention`` / ``AdditiveAttention`` called on ``[query, value(, key)]``."""
    inputs = call.positional
    if len(inputs) not in (2, 3):
        raise _Unsure
    query, value = call.all_known(inputs[:2])
    key = inputs[2] if len(inputs) == 3 else value
    if len(query) < 2 or not value:
        raise _Unsure
    output = (*query[:-1], value[-1])
    if not call.flag("return_attention_scores"):
        return (output,)
    if key is None or len(key) < 2:
        return (output, None)
    return (output, (*query[:-1], key[-2]))


_MHA_POSITIONAL = ("query", "value", "key")


def _attention_inputs(call: _Call) -> tuple[Shape, Shape, Shape | None]:
    named: dict[str, Shape | None] = dict(zip(_MHA_POSITIONAL, call.positional, strict=False))
    for name, shape in call.kwarg_shapes().items():
        if name in _MHA_POSITIONAL:
            if name in named:
                raise _Unsure
            named[name] = shape
    query, value = named.get("query"), named.get("value")
    if query is None or value is None or len(query) < 3 or len(value) < 3:
        raise _Unsure
    return query, value, named.get("key")


def _scores(
    call: _Call, query: Shape, key: Shape | None, heads_key: str, rank_3_only: bool
) -> Shape | None:
    """Attention scores ``(batch, heads, query_length, key_length)``, for rank-3 inputs."""
    if key is None or len(query) != 3 or len(key) != 3:
        return None
    axes = call.config.get("attention_axes")
    if rank_3_only and axes not in (None, 1, -2, [1], [-2], (1,), (-2,)):
        return None
    return (query[0], _int(_get(call.config, heads_key), 1), query[1], key[1])


def _multi_head_attention(call: _Call) -> Shapes:
    query, value, key = _attention_inputs(call)
    key = value if key is None else key
    if key[1:-1] != value[1:-1]:
        raise _Unsure
    _int(_get(call.config, "num_heads"), 1)
    projected = call.config.get("output_shape")
    if isinstance(projected, int) and not isinstance(projected, bool) and projected:
        output: Shape = (*query[:-1], _int(projected, 1))
    elif isinstance(projected, list | tuple) and projected:
        output = (*query[:-1], *(_int(d, 1) for d in projected))
    elif not projected:
        output = query
    else:
        raise _Unsure
    if not call.flag("return_attention_scores"):
        return (output,)
    return (output, _scores(call, query, key, "num_heads", rank_3_only=True))


def _grouped_query_attention(call: _Call) -> Shapes:
    query, value, key = _attention_inputs(call)
    key = value if key is None else key
    if query[-1] != value[-1] or key[1:-1] != value[1:-1]:
        raise _Unsure
    if not call.flag("return_attention_scores"):
        return (query,)
    return (query, _scores(call, query, key, "num_query_heads", rank_3_only=False))


# -- preprocessing ----------------------------------------------------------------------------


def _resize(config: Config, shape: Shape) -> Shape:
    """``Resizing`` / ``CenterCrop``: batched (rank 4) or single (rank 3) images."""
    _rank(shape, 3, 4)
    height, width = _int(_get(config, "height"), 1), _int(_get(config, "width"), 1)
    start = (len(shape) - 3) + (1 if _channels_first(config) else 0)
    dims = list(shape)
    dims[start], dims[start + 1] = height, width
    return tuple(dims)


def _random_crop(config: Config, shape: Shape) -> Shape:
    _rank(shape, 3, 4)
    height, width = _int(_get(config, "height"), 1), _int(_get(config, "width"), 1)
    axis = -2 if _channels_first(config) else -3
    dims = list(shape)
    dims[axis], dims[axis + 1] = height, width
    return tuple(dims)


_ENCODING_MODES = ("one_hot", "multi_hot", "count")


def _encode(shape: Shape, depth: int, mode: str) -> Shape:
    """Category encoding (``CategoryEncoding``, ``Hashing``, the lookups) of ``depth``.

    ``one_hot`` encodes each element (a trailing axis of 1 is replaced); the other
    modes encode each sample, the last axis of a rank-1 or rank-2 input. Beyond rank
    2 Keras's symbolic shape and the tensor it returns disagree: not understood.
    """
    if not shape:
        raise _Unsure
    if mode == "one_hot":
        if len(shape) > 1 and shape[-1] == 1:
            return (*shape[:-1], depth)
        return (*shape, depth)
    if len(shape) > 2:
        raise _Unsure
    return (*shape[:-1], depth)


def _category_encoding(config: Config, shape: Shape) -> Shape:
    mode = _choice(config, "output_mode", _ENCODING_MODES, "multi_hot")
    return _encode(shape, _int(_get(config, "num_tokens"), 1), mode)


def _hashing(config: Config, shape: Shape) -> Shape:
    mode = _choice(config, "output_mode", ("int", *_ENCODING_MODES), "int")
    if mode == "int":
        return shape
    return _encode(shape, _int(_get(config, "num_bins"), 1), mode)


def _discretization(config: Config, shape: Shape) -> Shape:
    mode = _choice(config, "output_mode", ("int", *_ENCODING_MODES), "int")
    if mode == "int":
        return shape
    boundaries = config.get("bin_boundaries")
    if isinstance(boundaries, list):
        depth = len(boundaries) + 1
    elif boundaries is None:
        depth = _int(_get(config, "num_bins"), 1)
    else:
        raise _Unsure
    if mode == "one_hot":
        if len(shape) > 1 and shape[-1] == 1:
            return (*shape[:-1], depth)
        return (*shape, depth)
    if len(shape) >= 2:
        return (shape[0], *shape[2:], depth)
    return (depth,)


def _lookup_depth(config: Config) -> int:
    if _bool(config.get("pad_to_max_tokens", False)):
        return _int(_get(config, "max_tokens"), 1)
    return _int(_get(config, "vocabulary_size"), 1)


_LOOKUP_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")


def _lookup(config: Config, shape: Shape) -> Shape:
    """``StringLookup`` / ``IntegerLookup``: the depth is the vocabulary's, when known."""
    mode = _choice(config, "output_mode", _LOOKUP_MODES, "int")
    if mode == "int":
        return shape
    return _encode(shape, _lookup_depth(config), mode)


def _text_vectorization(config: Config, shape: Shape) -> Shape:
    mode = _choice(config, "output_mode", _LOOKUP_MODES, "int")
    if not shape:
        raise _Unsure
    if mode == "int":
        length = config.get("output_sequence_length")
        return (shape[0], None if length is None else _int(length, 1))
    if config.get("split", "whitespace") is None:
        tokens = (*shape, 1) if len(shape) <= 1 else shape
    else:
        tokens = (*shape, None)
    return _lookup(config, tokens)


def _hashed_crossing(call: _Call) -> Shapes:
    shapes = call.all_known(call.positional)
    if len(shapes) != 2 or not shapes[0] or not shapes[1] or shapes[0][-1] != shapes[1][-1]:
        raise _Unsure
    first = shapes[0]
    mode = _choice(call.config, "output_mode", ("int", "one_hot"), "int")
    if mode == "int":
        return (first,)
    depth = _int(_get(call.config, "num_bins"), 1)
    if first[-1] != 1:
        return ((*first, depth),)
    return ((*first[:-1], depth),)


# -- Keras 2 op layers (TFOpLambda) -------------------------------------------------------------


def _constant_shape(value: Any) -> Shape:
    """The shape of a constant argument (a number or a nested list)."""
    if isinstance(value, bool | int | float):
        return ()
    if not isinstance(value, list) or not value:
        raise _Unsure
    if len(value) > MAX_CONSTANT_ITEMS:
        raise _Unsure
    inner = {_constant_shape(v) for v in value}
    if len(inner) != 1:
        raise _Unsure
    return (len(value), *inner.pop())


def _argument_shape(call: _Call, name: str) -> Shape:
    """The shape of an op's argument ``name``: a tensor from the call, or a constant."""
    if name not in call.kwargs:
        raise _Unsure
    value = call.kwargs[name]
    if _is_tensor(value):
        shape = call.kwarg_shapes().get(name)
        if shape is None:
            raise _Unsure
        return shape
    if _count_tensors(value):
        raise _Unsure
    return _constant_shape(value)


def _constant_ints(value: Any) -> list[int]:
    if not isinstance(value, list | tuple):
        raise _Unsure
    return [_signed_int(v) for v in value]


def _op_unary(call: _Call) -> Shapes:
    return (call.x,)


def _op_binary(call: _Call) -> Shapes:
    """``x op y``; a constant ``x`` (``_CONSTANT_VALUE``) is a positional input too."""
    return (_broadcast(call.x, _argument_shape(call, "y")),)


def _op_atan2(call: _Call) -> Shapes:
    """``tf.math.atan2(y, x)``: the second operand is ``x``."""
    return (_broadcast(call.x, _argument_shape(call, "x")),)


def _op_bias_add(call: _Call) -> Shapes:
    shape = call.x
    bias = _argument_shape(call, "bias")
    if len(bias) != 1 or not shape:
        raise _Unsure
    return (shape,)


def _op_clip(call: _Call) -> Shapes:
    shape = call.x
    for name in ("clip_value_min", "clip_value_max"):
        shape = _broadcast(shape, _argument_shape(call, name))
    if shape != call.x:
        raise _Unsure
    return (shape,)


def _op_where(call: _Call) -> Shapes:
    shape = _broadcast(call.x, _argument_shape(call, "x"))
    return (_broadcast(shape, _argument_shape(call, "y")),)


def _op_reshape(call: _Call) -> Shapes:
    target = call.kwargs.get("shape")
    if not isinstance(target, list | tuple) or _count_tensors(target):
        raise _Unsure
    return (_reshape(call.x, _constant_ints(target)),)


def _op_concat(call: _Call) -> Shapes:
    shapes = call.all_known(call.positional)
    rank = len(shapes[0])
    if rank == 0 or any(len(s) != rank for s in shapes):
        raise _Unsure
    axis = _axis(call.kwargs.get("axis"), rank)
    output: list[int | None] = list(shapes[0])
    for shape in shapes[1:]:
        for i in range(rank):
            if i == axis:
                a, b = output[i], shape[i]
                output[i] = None if a is None or b is None else a + b
            else:
                output[i] = _merge_dims(output[i], shape[i])
    return (tuple(output),)


def _op_stack(call: _Call) -> Shapes:
    shapes = call.all_known(call.positional)
    merged: list[int | None] = list(shapes[0])
    for shape in shapes[1:]:
        if len(shape) != len(merged):
            raise _Unsure
        merged = [_merge_dims(a, b) for a, b in zip(merged, shape, strict=True)]
    axis = _axis(call.kwargs.get("axis", 0), len(merged) + 1)
    merged.insert(axis, len(shapes))
    return (tuple(merged),)


def _op_transpose(call: _Call) -> Shapes:
    shape = call.x
    perm = call.kwargs.get("perm")
    if perm is None:
        return (shape[::-1],)
    order = [_axis(p, len(shape)) for p in _constant_ints(perm)]
    if sorted(order) != list(range(len(shape))):
        raise _Unsure
    return (tuple(shape[p] for p in order),)


def _op_matrix_transpose(call: _Call) -> Shapes:
    shape = call.x
    if len(shape) < 2:
        raise _Unsure
    return ((*shape[:-2], shape[-1], shape[-2]),)


def _op_expand_dims(call: _Call) -> Shapes:
    shape = call.x
    axis = _axis(_get(call.kwargs, "axis"), len(shape) + 1)
    return ((*shape[:axis], 1, *shape[axis:]),)


def _op_squeeze(call: _Call) -> Shapes:
    shape = call.x
    value = call.kwargs.get("axis")
    if value is None or value == []:
        if None in shape:
            return (None,)  # TensorFlow cannot tell the rank either
        return (tuple(d for d in shape if d != 1),)
    axes = set(_axes(value, len(shape)))
    if any(shape[a] not in (1, None) for a in axes):
        raise _Unsure
    return (tuple(d for i, d in enumerate(shape) if i not in axes),)


def _op_reduce(call: _Call) -> Shapes:
    shape = call.x
    value = call.kwargs.get("axis")
    keepdims = call.kwargs.get("keepdims")
    keep = False if keepdims is None else _bool(keepdims)
    axes = set(range(len(shape))) if value is None else set(_axes(value, len(shape)))
    if keep:
        return (tuple(1 if i in axes else d for i, d in enumerate(shape)),)
    return (tuple(d for i, d in enumerate(shape) if i not in axes),)


def _op_argmax(call: _Call) -> Shapes:
    shape = call.x
    value = call.kwargs.get("axis")
    axis = _axis(0 if value is None else value, len(shape))
    return (tuple(d for i, d in enumerate(shape) if i != axis),)


def _op_norm(call: _Call) -> Shapes:
    value = call.kwargs.get("axis")
    if isinstance(value, list | tuple) and len(value) != 1:
        raise _Unsure  # matrix norms
    return _op_reduce(call)


def _op_tile(call: _Call) -> Shapes:
    shape = call.x
    multiples = _constant_ints(_get(call.kwargs, "multiples"))
    if len(multiples) != len(shape) or any(m < 0 for m in multiples):
        raise _Unsure
    return (tuple(None if d is None else d * m for d, m in zip(shape, multiples, strict=True)),)


def _op_shape(call: _Call) -> Shapes:
    return ((len(call.x),),)


def _op_one_hot(call: _Call) -> Shapes:
    shape = call.x
    depth = _int(_get(call.kwargs, "depth"))
    value = call.kwargs.get("axis")
    axis = len(shape) if value is None or value == -1 else _axis(value, len(shape) + 1)
    return ((*shape[:axis], depth, *shape[axis:]),)


def _op_pad(call: _Call) -> Shapes:
    shape = call.x
    paddings = _get(call.kwargs, "paddings")
    if not isinstance(paddings, list) or len(paddings) != len(shape):
        raise _Unsure
    pairs = [_ints(p, 2, minimum=0) for p in paddings]
    return (
        tuple(None if d is None else d + a + b for d, (a, b) in zip(shape, pairs, strict=True)),
    )


def _op_matmul(call: _Call) -> Shapes:
    a, b = call.x, _argument_shape(call, "b")
    if len(a) < 2 or len(b) < 2:
        raise _Unsure
    kw = call.kwargs
    if _bool(kw.get("transpose_a", False)) or _bool(kw.get("adjoint_a", False)):
        a = (*a[:-2], a[-1], a[-2])
    if _bool(kw.get("transpose_b", False)) or _bool(kw.get("adjoint_b", False)):
        b = (*b[:-2], b[-1], b[-2])
    _merge_dims(a[-1], b[-2])
    return ((*_broadcast(a[:-2], b[:-2]), a[-2], b[-1]),)


def _op_resize(call: _Call) -> Shapes:
    shape = _rank(call.x, 3, 4)
    height, width = _ints(_get(call.kwargs, "size"), 2)
    return ((*shape[:-3], height, width, shape[-1]),)


def _op_split(call: _Call) -> Shapes:
    shape = call.x
    axis = _axis(call.kwargs.get("axis", 0), len(shape))
    value = _get(call.kwargs, "num_or_size_splits")
    if isinstance(value, list):
        sizes: list[int | None] = [_int(v) for v in value]
        if shape[axis] is not None and sum(v for v in sizes if v is not None) != shape[axis]:
            raise _Unsure
    else:
        count = _int(value, 1)
        size = shape[axis]
        if size is not None and size % count:
            raise _Unsure
        sizes = [None if size is None else size // count] * count
    return tuple((*shape[:axis], s, *shape[axis + 1 :]) for s in sizes)


def _op_unstack(call: _Call) -> Shapes:
    shape = call.x
    axis = _axis(call.kwargs.get("axis", 0), len(shape))
    count = _known(shape[axis])
    part = shape[:axis] + shape[axis + 1 :]
    return (part,) * count


def _op_top_k(call: _Call) -> Shapes:
    shape = call.x
    if not shape:
        raise _Unsure
    k = _int(call.kwargs.get("k", 1), 1)
    if shape[-1] is not None and shape[-1] < k:
        raise _Unsure
    values = (*shape[:-1], k)
    return (values, values)


def _op_broadcast_to(call: _Call) -> Shapes:
    target = _constant_ints(_get(call.kwargs, "shape"))
    if any(d < 0 for d in target):
        raise _Unsure
    shape = tuple(target)
    if _broadcast(call.x, shape) != shape:
        raise _Unsure
    return (shape,)


def _op_gather(call: _Call) -> Shapes:
    shape = call.x
    if call.kwargs.get("batch_dims", 0) not in (0, None):
        raise _Unsure
    indices = _argument_shape(call, "indices")
    value = call.kwargs.get("axis")
    axis = _axis(0 if value is None else value, len(shape))
    return ((*shape[:axis], *indices, *shape[axis + 1 :]),)


def _slice_length(size: int | None, item: Mapping[str, Any]) -> int | None:
    bounds = [item.get("start"), item.get("stop"), item.get("step")]
    if any(b is not None and (isinstance(b, bool) or not isinstance(b, int)) for b in bounds):
        if any(_is_tensor(b) for b in bounds):
            return None
        raise _Unsure
    if bounds[2] == 0:
        raise _Unsure
    if size is None:
        return None
    return len(range(*slice(*bounds).indices(size)))


def _op_getitem(call: _Call) -> Shapes:
    """``x[...]`` as tf_keras saves it: ``slice_spec`` items are slices, ints, None, ``...``."""
    shape = call.x
    spec = _get(call.kwargs, "slice_spec")
    items = spec if isinstance(spec, list) else [spec]
    ellipses = [i for i, item in enumerate(items) if _is_ellipsis(item)]
    if len(ellipses) > 1:
        raise _Unsure
    consuming = sum(1 for item in items if item is not None and not _is_ellipsis(item))
    if consuming > len(shape):
        raise _Unsure
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
                raise _Unsure
        elif not _is_tensor(item):
            raise _Unsure
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

_OPS: dict[str, Rule] = {
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


def _tf_op(call: _Call) -> Shapes:
    """A Keras 2 ``TFOpLambda`` / ``SlicingOpLambda``: the rule of its ``tf.*`` function."""
    function = call.config.get("function")
    rule = _OPS.get(function) if isinstance(function, str) else None
    if rule is None:
        raise _Unsure
    return rule(call)


# -- keras.applications' own layers ---------------------------------------------------------

#: Config keys every serialized layer may carry besides its own arguments.
_BASE_KEYS = frozenset({"name", "trainable", "dtype"})


def _application_layer(call: _Call, keys: frozenset[str]) -> None:
    """A layer keras.applications defines (tf_keras names it without a module): accepted
    only with exactly that layer's config keys, so a custom layer of the same name and
    other arguments stays unknown."""
    if set(call.config) - _BASE_KEYS != keys:
        raise _Unsure


def _layer_scale(call: _Call) -> Shapes:
    """ConvNeXt's ``LayerScale``: ``x * gamma``, gamma of shape ``(projection_dim,)``."""
    _application_layer(call, frozenset({"init_values", "projection_dim"}))
    shape = call.x
    if not shape or shape[-1] != _int(call.config["projection_dim"], 1):
        raise _Unsure
    return (shape,)


def _custom_scale(call: _Call) -> Shapes:
    """InceptionResNetV2's ``CustomScaleLayer``: ``inputs[0] + inputs[1] * scale``."""
    _application_layer(call, frozenset({"scale"}))
    if len(call.shapes) != 2 or call.shapes[0] is None or call.shapes[0] != call.shapes[1]:
        raise _Unsure
    return (call.shapes[0],)


# -- the table ------------------------------------------------------------------------------

_SAME_SHAPE = (
    "Activation", "Identity", "Masking", "ActivityRegularization", "Dropout",
    "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax",
    "ThresholdedReLU", "Rescaling", "Normalization", "RandomFlip", "RandomRotation",
    "RandomZoom", "RandomTranslation", "RandomContrast", "RandomBrightness", "RandomHue",
    "RandomSaturation", "RandomSharpness", "RandomShear", "RandomPosterization",
    "RandomInvert", "RandomColorDegeneration", "RandomColorJitter", "AutoContrast",
    "Equalization", "Solarization", "RandomErasing", "RandomGaussianBlur",
    "RandomPerspective", "RandomElasticTransform", "RandomGrayscale", "RandomColorJitter",
    "ContrastLimitedAdaptiveHistogramEqualization", "MixUp", "CutMix", "AugMix", "RandAugment",
)  # fmt: skip

_POOL_KINDS = ("Max", "Average")

_RULES: dict[str, Rule] = {
    **dict.fromkeys(_SAME_SHAPE, _same_shape),
    "Lambda": _never,
    "InputLayer": _input_layer,
    "Dense": _single(_dense),
    "EinsumDense": _single(_einsum_dense),
    "Embedding": _single(_embedding),
    "ReversibleEmbedding": _reversible_embedding,
    **{f"Conv{r}D": _conv(r, "conv") for r in (1, 2, 3)},
    **{f"Conv{r}DTranspose": _conv(r, "transpose") for r in (1, 2, 3)},
    **{f"SeparableConv{r}D": _conv(r, "separable") for r in (1, 2)},
    **{f"DepthwiseConv{r}D": _conv(r, "depthwise") for r in (1, 2)},
    **{f"{kind}Pooling{r}D": _pool(r) for kind in _POOL_KINDS for r in (1, 2, 3)},
    **{f"Global{kind}Pooling{r}D": _global_pool(r) for kind in _POOL_KINDS for r in (1, 2, 3)},
    **{f"Adaptive{kind}Pooling{r}D": _adaptive_pool(r) for kind in _POOL_KINDS for r in (1, 2, 3)},
    "Flatten": _single(_flatten),
    "Reshape": _single(_reshape_layer),
    "Permute": _single(_permute),
    "RepeatVector": _single(_repeat_vector),
    **{f"Cropping{r}D": _crop(r) for r in (1, 2, 3)},
    **{f"ZeroPadding{r}D": _zero_pad(r) for r in (1, 2, 3)},
    **{f"UpSampling{r}D": _up_sample(r) for r in (1, 2, 3)},
    "Add": _merge(1),
    "Subtract": _merge(2, 2),
    "Multiply": _merge(1),
    "Average": _merge(1),
    "Maximum": _merge(1),
    "Minimum": _merge(1),
    "Concatenate": _concatenate,
    "Dot": _dot,
    "BatchNormalization": _normalization(-1),
    "LayerNormalization": _normalization(-1),
    "GroupNormalization": _normalization(-1),
    "UnitNormalization": _normalization(-1),
    "RMSNormalization": _normalization(-1),
    "SpectralNormalization": _spectral_normalization,
    "LSTM": _recurrent("LSTMCell"),
    "GRU": _recurrent("GRUCell"),
    "SimpleRNN": _recurrent("SimpleRNNCell"),
    "RNN": _rnn,
    **{f"ConvLSTM{r}D": _conv_lstm(r) for r in (1, 2, 3)},
    "Bidirectional": _bidirectional,
    "TimeDistributed": _time_distributed,
    "Attention": _dot_attention,
    "AdditiveAttention": _dot_attention,
    "MultiHeadAttention": _multi_head_attention,
    "GroupQueryAttention": _grouped_query_attention,
    "Resizing": _single(_resize),
    "CenterCrop": _single(_resize),
    "RandomCrop": _single(_random_crop),
    "CategoryEncoding": _single(_category_encoding),
    "Hashing": _single(_hashing),
    "Discretization": _single(_discretization),
    "StringLookup": _single(_lookup),
    "IntegerLookup": _single(_lookup),
    "TextVectorization": _single(_text_vectorization),
    "HashedCrossing": _hashed_crossing,
    "TFOpLambda": _tf_op,
    "SlicingOpLambda": _tf_op,
    "LayerScale": _layer_scale,
    "CustomScaleLayer": _custom_scale,
    "Custom>CustomScaleLayer": _custom_scale,  # as tf_keras registers it
}


#: Keras's other names of its classes, each the class a file names (``keras.layers`` offers
#: ``Convolution2D`` for ``Conv2D``; Keras 3.15 serializes ``GroupedQueryAttention`` as
#: ``GroupQueryAttention``): Keras loads a config naming one as that class, so they answer alike.
ALIASES: dict[str, str] = {
    **{f"Convolution{r}D": f"Conv{r}D" for r in (1, 2, 3)},
    **{f"Convolution{r}DTranspose": f"Conv{r}DTranspose" for r in (1, 2, 3)},
    **{f"SeparableConvolution{r}D": f"SeparableConv{r}D" for r in (1, 2)},
    **{f"MaxPool{r}D": f"MaxPooling{r}D" for r in (1, 2, 3)},
    **{f"AvgPool{r}D": f"AveragePooling{r}D" for r in (1, 2, 3)},
    **{f"GlobalMaxPool{r}D": f"GlobalMaxPooling{r}D" for r in (1, 2, 3)},
    **{f"GlobalAvgPool{r}D": f"GlobalAveragePooling{r}D" for r in (1, 2, 3)},
    "GroupedQueryAttention": "GroupQueryAttention",
}
_RULES.update({alias: _RULES[name] for alias, name in ALIASES.items()})


def has_rule(class_name: str) -> bool:
    """Whether ``class_name`` is a class these rules know (Keras's own layers, and the
    few ``keras.applications`` defines), so a file's class name of it is Keras's."""
    return class_name in _RULES
