"""Attention (weighttie.layers.attention): shapes and MACs against Keras."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import keras
import pytest
from keras import layers

from layers.family import FamilyOracle
from layers.mac_oracle import counted_macs, profiled_macs
from layers.shape_oracle import Case, Shape, unique
from weighttie.layers import attention, output_shapes


def _cases() -> Iterator[Case]:
    query_value_key: list[tuple[Shape, ...]] = [
        ((None, 4, 6), (None, 5, 6)),
        ((None, 4, 6), (None, 5, 3), (None, 5, 6)),
        ((None, None, 6), (None, None, 6)),
        ((2, 4, 6), (2, 4, 6), (2, 4, 6)),
    ]
    for layer, inputs, scores in itertools.product(
        ["Attention", "AdditiveAttention"], query_value_key, (False, True)
    ):
        call = {"return_attention_scores": True} if scores else {}
        inputs = tuple((*s[:-1], 6) for s in inputs) if layer == "AdditiveAttention" else inputs
        yield Case(layer, {}, inputs, style="list", call=call)
    mha_inputs: list[tuple[Shape, ...]] = [
        ((None, 4, 6), (None, 4, 5)),
        ((None, 4, 6), (None, 4, 5), (None, 4, 3)),
        ((None, None, 6), (None, None, 6)),
        ((None, 4, 6), (None, 7, 5)),
        ((None, 2, 3, 6), (None, 2, 3, 6)),
    ]
    output_shapes_ = itertools.cycle([None, 8, (2, 3)])
    for inputs, named in itertools.product(mha_inputs, (0, 1, 2)):
        if named > len(inputs) - 1:
            continue
        output_shape = next(output_shapes_)
        names = ("value", "key")[len(inputs) - 1 - named : len(inputs) - 1]
        kwargs = {"num_heads": 2, "key_dim": 3, "output_shape": output_shape}
        yield Case("MultiHeadAttention", kwargs, inputs, style="args", by_name=names)
        if len(inputs[0]) == 3:  # symbolic scores say (batch, heads, query, query)
            call = {"return_attention_scores": True}
            yield Case("MultiHeadAttention", kwargs, inputs, "args", call, names, oracle="eager")
    for inputs, scores in itertools.product(mha_inputs[:4], (False, True)):
        kwargs = {"head_dim": 3, "num_query_heads": 4, "num_key_value_heads": 2}
        call = {"return_attention_scores": True} if scores else {}
        inputs = tuple((*s[:-1], 6) for s in inputs)
        yield Case("GroupQueryAttention", kwargs, inputs, style="args", call=call)


def _keras2_only_cases() -> Iterator[Case]:
    """Attention scores of unequal query and key lengths, the key by name."""
    for inputs in [((None, 4, 6), (None, 7, 5)), ((None, 4, 6), (None, 7, 5), (None, 7, 3))]:
        names = ("value", "key")[: len(inputs) - 1]
        call = {"return_attention_scores": True}
        kwargs = {"num_heads": 2, "key_dim": 3}
        yield Case("MultiHeadAttention", kwargs, inputs, "args", call, by_name=names)


KERAS2_ONLY = list(_keras2_only_cases())

MAC_CASES = {
    "attention": (lambda: layers.Attention(), ((6, 4), (5, 4))),
    "attention-scaled-key": (
        lambda: layers.Attention(use_scale=True),
        ((6, 4), (5, 3), (5, 4)),
    ),
}


class TestAttention(FamilyOracle):
    family = attention
    cases = unique(_cases())
    keras2_only = KERAS2_ONLY
    mac_cases = MAC_CASES
    #: Its attention products are Einsum ops: test_multi_head_attention_macs_… below.
    checked_elsewhere = frozenset({"MultiHeadAttention: MACs"})


@pytest.mark.parametrize(
    ("heads", "key_dim", "value_dim", "q", "v", "key"),
    [
        (2, 3, None, (5, 6), (5, 6), False),
        (4, 8, None, (7, 16), (9, 12), False),
        (3, 4, 6, (5, 10), (8, 10), True),
        (1, 5, 2, (3, 4), (6, 7), True),
    ],
)
def test_multi_head_attention_macs_equal_tensorflows_count(
    heads: int,
    key_dim: int,
    value_dim: int | None,
    q: tuple[int, int],
    v: tuple[int, int],
    key: bool,
) -> None:
    """The profiler does not count ``Einsum`` ops: the oracle reads each one's equation
    and input shapes from the graph (layers.mac_oracle)."""
    keras.utils.set_random_seed(0)
    mha = layers.MultiHeadAttention(heads, key_dim, value_dim=value_dim, output_shape=None)
    query, value = keras.Input(q), keras.Input(v)
    inputs = [query, value]
    if key:
        inputs.append(keras.Input((v[0], q[1] + 1)))
        out = mha(query, value, key=inputs[2])
    else:
        out = mha(query, value)
    model = keras.Model(inputs, out)
    assert counted_macs(model) == profiled_macs(model)


def test_one_output_unknown_among_known() -> None:
    """Scores over several attention axes: the output is known, the scores are not."""
    config = {"num_heads": 2, "key_dim": 3, "attention_axes": [1, 2]}
    shapes = [(None, 2, 3, 6), (None, 2, 3, 6)]
    got = output_shapes("MultiHeadAttention", config, shapes, {"return_attention_scores": True})
    assert got == ((None, 2, 3, 6), None)
