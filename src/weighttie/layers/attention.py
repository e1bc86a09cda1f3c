"""Attention: ``Attention``, ``AdditiveAttention``, ``MultiHeadAttention`` and
``GroupQueryAttention`` (``return_attention_scores`` from the call's kwargs).

``MultiHeadAttention``'s attention scores are ``(batch, heads, query_length,
key_length)``: Keras 3.15's symbolic call says ``query_length`` twice, the tensor it
returns does not. Its projections (``query``, ``key``, ``value``,
``attention_output``) are sublayers, run once per call and costed in it: the four
projections plus ``heads × Tq × Tv × (key_dim + value_dim)`` for the two attention
products, over one sequence axis only (with more, ``attention_axes``, config not a
fact, decides which attend). ``Attention``'s MACs are its two products,
``Tq × Tv × (dim + value dim)``; with ``score_mode="concat"`` (a tanh of sums, no
product: it holds ``concat_score_weight``) they are unknown.
"""

from __future__ import annotations

from weighttie.layers.layer_class import NONE, RUNS_EACH_ONCE, UNKNOWN, LayerClass
from weighttie.layers.macs import MacCall, bare_name, known_shape
from weighttie.layers.shapes import ShapeCall, Shapes, int_of, value_of
from weighttie.layers.unsure import Unsure
from weighttie.report import Shape

__all__ = ["CLASSES"]


# -- shapes -------------------------------------------------------------------------------------


def _dot_attention_shape(call: ShapeCall) -> Shapes:
    """``Attention`` / ``AdditiveAttention`` called on ``[query, value(, key)]``."""
    inputs = call.positional
    if len(inputs) not in (2, 3):
        raise Unsure
    query, value = call.all_known(inputs[:2])
    key = inputs[2] if len(inputs) == 3 else value
    if len(query) < 2 or not value:
        raise Unsure
    output = (*query[:-1], value[-1])
    if not call.flag("return_attention_scores"):
        return (output,)
    if key is None or len(key) < 2:
        return (output, None)
    return (output, (*query[:-1], key[-2]))


_MHA_POSITIONAL = ("query", "value", "key")


def _attention_inputs(call: ShapeCall) -> tuple[Shape, Shape, Shape | None]:
    named: dict[str, Shape | None] = dict(zip(_MHA_POSITIONAL, call.positional, strict=False))
    for name, shape in call.kwarg_shapes().items():
        if name in _MHA_POSITIONAL:
            if name in named:
                raise Unsure
            named[name] = shape
    query, value = named.get("query"), named.get("value")
    if query is None or value is None or len(query) < 3 or len(value) < 3:
        raise Unsure
    return query, value, named.get("key")


def _scores(
    call: ShapeCall, query: Shape, key: Shape | None, heads_key: str, rank_3_only: bool
) -> Shape | None:
    """Attention scores ``(batch, heads, query_length, key_length)``, for rank-3 inputs."""
    if key is None or len(query) != 3 or len(key) != 3:
        return None
    axes = call.config.get("attention_axes")
    if rank_3_only and axes not in (None, 1, -2, [1], [-2], (1,), (-2,)):
        return None
    return (query[0], int_of(value_of(call.config, heads_key), 1), query[1], key[1])


def _multi_head_attention_shape(call: ShapeCall) -> Shapes:
    query, value, key = _attention_inputs(call)
    key = value if key is None else key
    if key[1:-1] != value[1:-1]:
        raise Unsure
    int_of(value_of(call.config, "num_heads"), 1)
    projected = call.config.get("output_shape")
    if isinstance(projected, int) and not isinstance(projected, bool) and projected:
        output: Shape = (*query[:-1], int_of(projected, 1))
    elif isinstance(projected, list | tuple) and projected:
        output = (*query[:-1], *(int_of(d, 1) for d in projected))
    elif not projected:
        output = query
    else:
        raise Unsure
    if not call.flag("return_attention_scores"):
        return (output,)
    return (output, _scores(call, query, key, "num_heads", rank_3_only=True))


def _grouped_query_attention_shape(call: ShapeCall) -> Shapes:
    query, value, key = _attention_inputs(call)
    key = value if key is None else key
    if query[-1] != value[-1] or key[1:-1] != value[1:-1]:
        raise Unsure
    if not call.flag("return_attention_scores"):
        return (query,)
    return (query, _scores(call, query, key, "num_query_heads", rank_3_only=False))


# -- MACs ---------------------------------------------------------------------------------------


def _multi_head_attention_macs(call: MacCall) -> int:
    """Four projections plus the two attention products, ``heads × Tq × Tv × dim`` each."""
    query, value = known_shape(call.inputs, 0), known_shape(call.inputs, 1)
    if len(query) != 2 or len(value) != 2:
        raise Unsure
    kernels = {}
    for name in ("query", "key", "value", "attention_output"):
        sub = call.weights.sublayers.get(name)
        if sub is None:
            raise Unsure
        ranked = [v for v in sub.own if len(v.shape) == 3]
        if len(ranked) != 1 or len(sub.own) > 2:
            raise Unsure
        kernels[name] = ranked[0]
    q, k, v, o = (kernels[n] for n in ("query", "key", "value", "attention_output"))
    if query[-1] != q.shape[0] or value[-1] != v.shape[0]:
        raise Unsure
    t_q, t_v = query[0], value[0]
    heads, key_dim, value_dim = q.shape[1], q.shape[2], v.shape[2]
    projections = t_q * q.size + t_v * k.size + t_v * v.size + t_q * o.size
    return projections + heads * t_q * t_v * (key_dim + value_dim)


def _attention_macs(call: MacCall) -> int:
    """Dot-product attention: scores ``Tq × Tv × dim``, the weighted sum ``Tq × Tv × dim_v``."""
    if any(bare_name(v.name) != "scale" for v in call.weights.own):
        raise Unsure
    query, value = known_shape(call.inputs, 0), known_shape(call.inputs, 1)
    key = known_shape(call.inputs, 2) if len(call.inputs) > 2 else value
    if len(query) != 2 or len(value) != 2 or len(key) != 2 or key[0] != value[0]:
        raise Unsure
    if query[-1] != key[-1]:
        raise Unsure
    return query[0] * value[0] * (query[-1] + value[-1])


# -- the classes --------------------------------------------------------------------------------

CLASSES = (
    # Attention holds `scale` (use_scale) or `concat_score_weight`: not tabled, numbered
    LayerClass("Attention", _dot_attention_shape, _attention_macs, UNKNOWN, NONE),
    LayerClass("AdditiveAttention", _dot_attention_shape, UNKNOWN, UNKNOWN, NONE),
    LayerClass(
        "MultiHeadAttention",
        shapes=_multi_head_attention_shape,
        macs=_multi_head_attention_macs,
        variables=NONE,  # its projections hold them
        sublayers=RUNS_EACH_ONCE,
    ),
    LayerClass(
        "GroupQueryAttention",  # as Keras 3.15 saves it; the Python class's name is the alias
        shapes=_grouped_query_attention_shape,
        macs=UNKNOWN,
        variables=NONE,
        sublayers=RUNS_EACH_ONCE,
        aliases=("GroupedQueryAttention",),
    ),
)
