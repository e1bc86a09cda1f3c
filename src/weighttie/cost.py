"""Cost rules: bytes of a variable and multiply-accumulates (MACs) of one call.

Pure functions over what both front ends state: a layer's class name, the
variables it holds (its own and its sublayers', with names and shapes) and one
call's input and output shapes. Nothing here reads a config, so a rule only
counts what those facts determine; anything else is ``None`` (unknown), never
guessed. docs/cost.md states the conventions:

* one MAC is one multiply and one add of a matrix product or a convolution;
  MACs are counted per example (the batch dimension is left out) and per call;
* layers that only rearrange, normalise, pool, merge or apply a function
  element-wise (:data:`ZERO_MAC_CLASSES`) count 0, as published MAC figures do;
  so do lookups (``Embedding``);
* bias additions, activations and the element-wise gate arithmetic of recurrent
  cells are not counted; a convolution counts every kernel tap at every output
  position, padding included;
* a class without a rule (a custom layer, ``Lambda``, ``Dot``, Keras 2 op layers)
  is unknown.

:func:`cost_line` is the one-line summary the table, Markdown and HTML show.
This module imports no Keras.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from weighttie.report import Shape
from weighttie.shape_rules import ALIASES

__all__ = [
    "DTYPE_BYTES",
    "ZERO_MAC_CLASSES",
    "HeldWeights",
    "Weight",
    "call_macs",
    "variable_bytes",
]

#: Bytes per element of each dtype Keras stores variables in. Any other dtype
#: (a string, a dtype policy weighttie does not know) has unknown width.
DTYPE_BYTES: Mapping[str, int] = {
    "bool": 1,
    "int4": 1,  # Keras stores int4 packed two to an int8; an int4 variable is int8-sized
    "int8": 1,
    "uint8": 1,
    "float8_e4m3fn": 1,
    "float8_e5m2": 1,
    "int16": 2,
    "uint16": 2,
    "float16": 2,
    "bfloat16": 2,
    "int32": 4,
    "uint32": 4,
    "float32": 4,
    "int64": 8,
    "uint64": 8,
    "float64": 8,
    "complex64": 8,
    "complex128": 16,
}

#: Built-in classes whose calls count 0 MACs by the published convention (only
#: convolutions and matrix products count): pooling, normalisation, activations,
#: merging, reshaping, dropout and noise, lookups, element-wise preprocessing.
ZERO_MAC_CLASSES: frozenset[str] = frozenset(
    {
        "InputLayer",
        # activations
        "Activation",
        "ReLU",
        "LeakyReLU",
        "PReLU",
        "ELU",
        "Softmax",
        # dropout and noise
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "GaussianDropout",
        "GaussianNoise",
        "AlphaDropout",
        "ActivityRegularization",
        "Masking",
        "Identity",
        # normalisation
        "BatchNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "UnitNormalization",
        "RMSNormalization",
        "Normalization",
        "Rescaling",
        # pooling
        *(
            f"{kind}Pooling{n}D"
            for kind in ("Max", "Average", "GlobalMax", "GlobalAverage")
            for n in (1, 2, 3)
        ),
        # reshaping
        "Flatten",
        "Reshape",
        "Permute",
        "RepeatVector",
        *(f"{kind}{n}D" for kind in ("Cropping", "ZeroPadding", "UpSampling") for n in (1, 2, 3)),
        # merging
        "Add",
        "Subtract",
        "Multiply",
        "Average",
        "Maximum",
        "Minimum",
        "Concatenate",
        # lookups
        "Embedding",
        "CategoryEncoding",
        "Hashing",
        "IntegerLookup",
        "StringLookup",
    }
)


@dataclass(frozen=True)
class Weight:
    """A variable as the rules see it: its own name (``kernel``) and shape.

    A file that does not name its variables gives their position (``0``, ``1`` …)
    in Keras's saving order instead; the rules accept either.
    """

    name: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class HeldWeights:
    """The variables a layer holds itself (``own``) and through its sublayers, by name."""

    class_name: str
    own: tuple[Weight, ...] = ()
    sublayers: Mapping[str, HeldWeights] = field(default_factory=dict)

    def holders(self) -> Iterator[HeldWeights]:
        """This layer and every sublayer below it that holds a variable, in order."""
        if self.own:
            yield self
        for sub in self.sublayers.values():
            yield from sub.holders()


#: A NumPy type string with its width in bytes, as HDF5 files state dtypes Keras
#: names but NumPy does not (bfloat16 is ``|V2``: two opaque bytes).
_NUMPY_TYPE = re.compile(r"[<>|=]?[biufcV](\d{1,2})")


def variable_bytes(size: int, dtype: str) -> int | None:
    """``size`` elements of ``dtype`` in bytes; None when the dtype's width is not known.

    ``dtype`` is a Keras dtype name (``float16``) or a NumPy type string that states
    its width (``<f4``, ``|V2``).

    Example:
        >>> variable_bytes(10, "float16")
        20
        >>> variable_bytes(10, "|V2")
        20
        >>> variable_bytes(10, "string") is None
        True
    """
    width = DTYPE_BYTES.get(dtype)
    if width is None:
        match = _NUMPY_TYPE.fullmatch(dtype)
        width = None if match is None else int(match.group(1))
    return None if width is None else size * width


def call_macs(
    class_name: str,
    weights: HeldWeights,
    input_shapes: Sequence[Shape | None] | None,
    output_shapes: Sequence[Shape | None] | None,
) -> int | None:
    """Multiply-accumulates of one call, per example; None when the facts cannot tell.

    ``weights`` holds the layer's own variables and its sublayers' (an LSTM's cell,
    a MultiHeadAttention's projections): their cost belongs to this call.

    Example:
        >>> call_macs("Dense", HeldWeights("Dense", (Weight("kernel", (8, 4)),)),
        ...           [(None, 8)], [(None, 4)])
        32
    """
    class_name = ALIASES.get(class_name, class_name)
    if class_name in ZERO_MAC_CLASSES:
        return 0
    rule = _RULES.get(class_name)
    if rule is None or input_shapes is None or output_shapes is None:
        return None
    ins = [_per_example(s) for s in input_shapes]
    outs = [_per_example(s) for s in output_shapes]
    try:
        return rule(weights, ins, outs)
    except _Unknown:
        return None


# -- helpers -------------------------------------------------------------------------

#: Per-example shapes of a call's inputs or outputs (None: not known).
Shapes = list[tuple[int, ...] | None]


class _Unknown(Exception):
    """The facts do not determine the cost."""


def _per_example(shape: Shape | None) -> tuple[int, ...] | None:
    """The shape without its batch dimension, or None when any other dimension is unknown."""
    if shape is None or not shape:
        return None
    rest = shape[1:]
    if any(d is None for d in rest):
        return None
    return tuple(d for d in rest if d is not None)


def _known(shapes: Shapes, index: int) -> tuple[int, ...]:
    if index >= len(shapes):
        raise _Unknown
    shape = shapes[index]
    if shape is None:
        raise _Unknown
    return shape


def _bare(name: str) -> str:
    """``kernel`` from ``dense/kernel:0`` (a Keras 2 file's full name) or ``kernel``."""
    return name.rsplit("/", 1)[-1].split(":", 1)[0]


def _roles(
    weights: Sequence[Weight], order: Sequence[str], aliases: Mapping[str, str] | None = None
) -> dict[str, Weight]:
    """Each weight's role, by name or, where the file gives positions, by saving order.

    ``order`` lists the roles in Keras's saving order; the last may be missing
    (``use_bias=False``). Any other variable (LoRA, quantization scales) makes the
    cost unknown.
    """
    aliases = aliases or {}
    names = [aliases.get(_bare(w.name), _bare(w.name)) for w in weights]
    if all(n in order for n in names) and len(set(names)) == len(names):
        roles = dict(zip(names, weights, strict=True))
    elif all(n.isdigit() for n in names) and len(weights) <= len(order):
        by_position = sorted(zip(names, weights, strict=True), key=lambda item: int(item[0]))
        roles = {role: w for role, (_, w) in zip(order, by_position, strict=False)}
    else:
        raise _Unknown
    if order[0] not in roles:
        raise _Unknown
    return roles


def _channels(shape: tuple[int, ...], channels: int) -> int:
    """Positions of a channels-first or channels-last shape with ``channels`` channels.

    ``prod(shape) / channels`` is the same whichever axis holds the channels, so
    the data format (not among the facts) need not be known.
    """
    if channels not in (shape[0], shape[-1]):
        raise _Unknown
    return math.prod(shape) // channels


# -- rules ---------------------------------------------------------------------------


def _dense(w: HeldWeights, ins: Shapes, outs: Shapes) -> int:
    kernel = _roles(w.own, ("kernel", "bias"))["kernel"]
    x = _known(ins, 0)
    if len(kernel.shape) != 2 or x[-1] != kernel.shape[0]:
        raise _Unknown
    return math.prod(x[:-1]) * kernel.size


def _conv(w: HeldWeights, ins: Shapes, outs: Shapes) -> int:
    """Conv1D/2D/3D (``groups`` included: the kernel holds ``in / groups`` inputs)."""
    kernel = _roles(w.own, ("kernel", "bias"))["kernel"]
    y = _known(outs, 0)
    if len(y) != len(kernel.shape) - 1:
        raise _Unknown
    return _channels(y, kernel.shape[-1]) * kernel.size


def _depthwise(w: HeldWeights, ins: Shapes, outs: Shapes) -> int:
    kernel = _roles(w.own, ("kernel", "bias"), {"depthwise_kernel": "kernel"})["kernel"]
    y = _known(outs, 0)
    if len(y) != len(kernel.shape) - 1:
        raise _Unknown
    return _channels(y, kernel.shape[-2] * kernel.shape[-1]) * kernel.size


def _separable(w: HeldWeights, ins: Shapes, outs: Shapes) -> int:
    """A depthwise convolution, then a 1×1 one at the same output positions."""
    roles = _roles(w.own, ("depthwise_kernel", "pointwise_kernel", "bias"))
    depthwise, pointwise = roles["depthwise_kernel"], roles.get("pointwise_kernel")
    y = _known(outs, 0)
    if pointwise is None or len(y) != len(pointwise.shape) - 1:
        raise _Unknown
    if pointwise.shape[-2] != depthwise.shape[-2] * depthwise.shape[-1]:
        raise _Unknown
    return _channels(y, pointwise.shape[-1]) * (depthwise.size + pointwise.size)


def _transpose(w: HeldWeights, ins: Shapes, outs: Shapes) -> int:
    """Conv*Transpose: every input position scatters the whole kernel (``(k…, out, in)``)."""
    kernel = _roles(w.own, ("kernel", "bias"))["kernel"]
    x = _known(ins, 0)
    if len(x) != len(kernel.shape) - 1:
        raise _Unknown
    return _channels(x, kernel.shape[-1]) * kernel.size


def _cell_steps(w: HeldWeights, rank: int) -> int:
    """MACs of one time step: every cell's input and recurrent kernels, once each."""
    total = 0
    for holder in w.holders():
        roles = _roles(holder.own, ("kernel", "recurrent_kernel", "bias"))
        recurrent = roles.get("recurrent_kernel")
        kernel = roles["kernel"]
        if recurrent is None or len(kernel.shape) != rank or len(recurrent.shape) != rank:
            raise _Unknown
        total += kernel.size + recurrent.size
    if not total:
        raise _Unknown
    return total


def _rnn(w: HeldWeights, ins: Shapes, outs: Shapes) -> int:
    """SimpleRNN, GRU, LSTM, RNN over their cells, Bidirectional over both directions."""
    x = _known(ins, 0)
    if len(x) != 2:
        raise _Unknown
    return x[0] * _cell_steps(w, 2)


def _conv_rnn(w: HeldWeights, ins: Shapes, outs: Shapes) -> int:
    """ConvLSTM1D/2D/3D: per step, the input and the recurrent convolution at every output
    position (the recurrent one keeps the output's size: ``same`` padding, stride 1)."""
    x, y = _known(ins, 0), _known(outs, 0)
    holders = list(w.holders())
    if len(holders) != 1:
        raise _Unknown
    kernel = _roles(holders[0].own, ("kernel", "recurrent_kernel", "bias"))["kernel"]
    spatial = len(kernel.shape) - 2
    if len(x) != spatial + 2:
        raise _Unknown
    steps = x[0]
    filters = kernel.shape[-1] // 4
    if len(y) == spatial + 2:  # return_sequences
        if y[0] != steps:
            raise _Unknown
        y = y[1:]
    elif len(y) != spatial + 1:
        raise _Unknown
    return steps * _channels(y, filters) * _cell_steps(w, spatial + 2)


def _multi_head_attention(w: HeldWeights, ins: Shapes, outs: Shapes) -> int:
    """Four projections plus the two attention products, ``heads × Tq × Tv × dim`` each.

    Only sequences of one axis: with more, ``attention_axes`` (not among the facts)
    decides which axes attend.
    """
    query, value = _known(ins, 0), _known(ins, 1)
    if len(query) != 2 or len(value) != 2:
        raise _Unknown
    kernels = {}
    for name in ("query", "key", "value", "attention_output"):
        sub = w.sublayers.get(name)
        if sub is None:
            raise _Unknown
        ranked = [v for v in sub.own if len(v.shape) == 3]
        if len(ranked) != 1 or len(sub.own) > 2:
            raise _Unknown
        kernels[name] = ranked[0]
    q, k, v, o = (kernels[n] for n in ("query", "key", "value", "attention_output"))
    if query[-1] != q.shape[0] or value[-1] != v.shape[0]:
        raise _Unknown
    t_q, t_v = query[0], value[0]
    heads, key_dim, value_dim = q.shape[1], q.shape[2], v.shape[2]
    projections = t_q * q.size + t_v * k.size + t_v * v.size + t_q * o.size
    return projections + heads * t_q * t_v * (key_dim + value_dim)


def _attention(w: HeldWeights, ins: Shapes, outs: Shapes) -> int:
    """Dot-product attention (``Attention``): scores ``Tq × Tv × dim``, then the weighted
    sum ``Tq × Tv × dim_v``. ``score_mode="concat"`` (a tanh of sums, no product) is unknown."""
    if any(_bare(v.name) != "scale" for v in w.own):
        raise _Unknown
    query, value = _known(ins, 0), _known(ins, 1)
    key = _known(ins, 2) if len(ins) > 2 else value
    if len(query) != 2 or len(value) != 2 or len(key) != 2 or key[0] != value[0]:
        raise _Unknown
    if query[-1] != key[-1]:
        raise _Unknown
    return query[0] * value[0] * (query[-1] + value[-1])


def _time_distributed(w: HeldWeights, ins: Shapes, outs: Shapes) -> int:
    """The wrapped layer's MACs on one time step, times the steps."""
    x, y = _known(ins, 0), _known(outs, 0)
    if len(w.sublayers) != 1 or w.own or not x or not y or x[0] != y[0]:
        raise _Unknown
    inner = next(iter(w.sublayers.values()))
    macs = call_macs(inner.class_name, inner, [(None, *x[1:])], [(None, *y[1:])])
    if macs is None:
        raise _Unknown
    return x[0] * macs


_RULES = {
    "Dense": _dense,
    **{f"Conv{n}D": _conv for n in (1, 2, 3)},
    **{f"Conv{n}DTranspose": _transpose for n in (1, 2, 3)},
    **{f"DepthwiseConv{n}D": _depthwise for n in (1, 2)},
    **{f"SeparableConv{n}D": _separable for n in (1, 2)},
    **{name: _rnn for name in ("SimpleRNN", "GRU", "LSTM", "RNN", "Bidirectional")},
    **{f"ConvLSTM{n}D": _conv_rnn for n in (1, 2, 3)},
    "MultiHeadAttention": _multi_head_attention,
    "Attention": _attention,
    "TimeDistributed": _time_distributed,
}
