"""MACs checked against TensorFlow's own count of the graph it runs (issue 11 item 4).

The oracle traces each model into a TensorFlow graph (batch 1) and asks TF's
profiler for the float operations of its matrix products and convolutions
(``MatMul``, ``BatchMatMul*``, ``Conv2D``, ``Conv3D``, ``DepthwiseConv2dNative``:
2 flops per multiply-accumulate). Where the profiler cannot serve, the oracle says
why and counts something else TensorFlow states:

* ``Einsum`` ops (MultiHeadAttention's two attention products) have no registered
  flop count: the product of the sizes of the equation's indices, read from the op's
  own ``equation`` attribute and input shapes in the graph;
* a grouped ``Conv2D`` is counted as if ungrouped (the profiler reads the input
  channels from the input tensor): ``groups`` × the profile of one group's conv;
* ``Conv2DBackpropInput`` (a transposed convolution) has a flop count that is not
  2 × MACs: the profile of the forward convolution it is the transpose of, which
  maps its output back to its input with the same kernel;
* recurrent layers are built with ``unroll=True`` so every step is an op of its own
  (a while loop's body would be profiled once); the MACs do not depend on it.

Bias additions, activations, softmax and element-wise products are left out on both
sides (docs/cost.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras
import pytest
from keras import layers

import weighttie
from weighttie.static import read_report

tf = pytest.importorskip("tensorflow")
if keras.backend.backend() != "tensorflow":
    pytest.skip("the oracle is TensorFlow's profiler", allow_module_level=True)

PRODUCTS = {
    "MatMul",
    "BatchMatMul",
    "BatchMatMulV2",
    "BatchMatMulV3",
    "Conv2D",
    "Conv3D",
    "DepthwiseConv2dNative",
}


def _graph(model: keras.Model) -> Any:
    specs = [tf.TensorSpec((1, *tuple(i.shape[1:])), i.dtype) for i in model.inputs]

    def forward(*xs: Any) -> Any:
        return model(list(xs) if len(xs) > 1 else xs[0], training=False)

    return tf.function(forward).get_concrete_function(*specs).graph


def _einsum_macs(op: Any) -> int:
    """The product of the sizes of an Einsum's indices, from the graph's own op."""
    equation = op.get_attr("equation").decode()
    sizes: dict[str, int] = {}
    for spec, tensor in zip(equation.split("->")[0].split(","), op.inputs, strict=True):
        for letter, dim in zip(spec, tensor.shape, strict=True):
            sizes[letter] = int(dim)
    return math.prod(sizes.values())


def _reaching_outputs(graph: Any) -> list[Any]:
    """The ops the graph's outputs depend on. Tracing leaves dead ops behind (Keras's RNN
    calls its cell once outside the loop to learn its state structure), which TensorFlow
    prunes before running; the profiler would count them."""
    seen: dict[str, Any] = {}
    stack = [t.op for t in graph.outputs]
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen[op.name] = op
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return list(seen.values())


def profiled_macs(model: keras.Model) -> int:
    """MACs per example of ``model``'s forward pass, as TensorFlow counts its graph."""
    graph = _graph(model)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    root = tf.compat.v1.profiler.profile(graph=graph, options=options)
    flops: dict[str, int] = {}
    stack = list(root.children)
    while stack:
        node = stack.pop()
        flops[node.name] = node.float_ops
        stack.extend(node.children)
    total = 0
    for op in _reaching_outputs(graph):
        if op.type == "Einsum":
            total += _einsum_macs(op)
        elif op.type in PRODUCTS:
            assert flops.get(op.name, 0) % 2 == 0
            total += flops.get(op.name, 0) // 2
        elif op.type in ("Conv2DBackpropInput", "Conv3DBackpropInputV2"):
            raise AssertionError("transposed convolutions are profiled through their forward conv")
    return total


def one_layer(layer: keras.Layer, *shapes: tuple[int, ...]) -> keras.Model:
    inputs = [keras.Input(s) for s in shapes]
    return keras.Model(inputs, layer(*inputs) if len(inputs) > 1 else layer(inputs[0]))


def _macs(model: keras.Model) -> int | None:
    report = weighttie.analyze(model)
    assert report.cost.uncounted == 0
    return report.cost.macs


# -- layers the profiler counts as they are ---------------------------------------------

CASES: dict[str, tuple[Callable[[], keras.Layer], tuple[tuple[int, ...], ...]]] = {
    "dense": (lambda: layers.Dense(7), ((5,),)),
    "dense-3d": (lambda: layers.Dense(4, use_bias=False), ((6, 5),)),
    "dense-4d": (lambda: layers.Dense(3), ((2, 3, 5),)),
    "conv1d": (lambda: layers.Conv1D(5, 3), ((11, 4),)),
    "conv1d-causal-dilated": (
        lambda: layers.Conv1D(4, 3, padding="causal", dilation_rate=2),
        ((16, 3),),
    ),
    "conv1d-strided": (lambda: layers.Conv1D(6, 4, strides=3), ((20, 2),)),
    "conv2d": (lambda: layers.Conv2D(8, 3), ((12, 12, 3),)),
    "conv2d-same-strided": (
        lambda: layers.Conv2D(6, (3, 5), strides=2, padding="same"),
        ((13, 9, 4),),
    ),
    "conv2d-1x1-no-bias": (lambda: layers.Conv2D(16, 1, use_bias=False), ((7, 7, 8),)),
    "conv3d": (lambda: layers.Conv3D(4, 3), ((7, 7, 7, 2),)),
    "conv3d-strided-same": (
        lambda: layers.Conv3D(3, 2, strides=2, padding="same"),
        ((6, 8, 4, 3),),
    ),
    "depthwise2d": (lambda: layers.DepthwiseConv2D(3), ((10, 10, 4),)),
    "depthwise2d-multiplier": (
        lambda: layers.DepthwiseConv2D(3, depth_multiplier=3, strides=2, padding="same"),
        ((11, 11, 5),),
    ),
    "depthwise1d": (lambda: layers.DepthwiseConv1D(5, depth_multiplier=2), ((17, 3),)),
    "separable2d": (lambda: layers.SeparableConv2D(7, 3), ((10, 10, 4),)),
    "separable2d-multiplier-strided": (
        lambda: layers.SeparableConv2D(5, (3, 3), strides=2, depth_multiplier=2, padding="same"),
        ((12, 9, 3),),
    ),
    "separable1d": (lambda: layers.SeparableConv1D(6, 3, depth_multiplier=2), ((14, 4),)),
    "simple-rnn": (lambda: layers.SimpleRNN(6, unroll=True), ((5, 4),)),
    "simple-rnn-sequences": (
        lambda: layers.SimpleRNN(3, unroll=True, return_sequences=True),
        ((7, 2),),
    ),
    "gru": (lambda: layers.GRU(5, unroll=True), ((4, 3),)),
    "gru-reset-before": (lambda: layers.GRU(4, unroll=True, reset_after=False), ((6, 5),)),
    "lstm": (lambda: layers.LSTM(5, unroll=True), ((4, 3),)),
    "lstm-states": (
        lambda: layers.LSTM(3, unroll=True, return_sequences=True, return_state=True),
        ((5, 7),),
    ),
    "rnn-stacked-cells": (
        lambda: layers.RNN([layers.LSTMCell(4), layers.GRUCell(3)], unroll=True),
        ((6, 5),),
    ),
    "bidirectional-lstm": (
        lambda: layers.Bidirectional(layers.LSTM(4, unroll=True, return_sequences=True)),
        ((5, 3),),
    ),
    "bidirectional-gru-sum": (
        lambda: layers.Bidirectional(layers.GRU(3, unroll=True), merge_mode="sum"),
        ((4, 6),),
    ),
    "conv-lstm1d": (lambda: layers.ConvLSTM1D(3, 3, unroll=True), ((4, 9, 2),)),
    "conv-lstm2d": (lambda: layers.ConvLSTM2D(4, 3, unroll=True), ((3, 8, 8, 2),)),
    "conv-lstm2d-sequences-same": (
        lambda: layers.ConvLSTM2D(2, 3, padding="same", unroll=True, return_sequences=True),
        ((3, 6, 5, 3),),
    ),
    "conv-lstm2d-strided": (
        lambda: layers.ConvLSTM2D(3, 3, strides=2, unroll=True),
        ((2, 9, 9, 2),),
    ),
    "time-distributed-conv": (
        lambda: layers.TimeDistributed(layers.Conv2D(5, 3, strides=2)),
        ((4, 11, 9, 3),),
    ),
    "time-distributed-dense": (lambda: layers.TimeDistributed(layers.Dense(6)), ((5, 3, 4),)),
    "attention": (lambda: layers.Attention(), ((6, 4), (5, 4))),
    "attention-scaled-key": (lambda: layers.Attention(use_scale=True), ((6, 4), (5, 3), (5, 4))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_macs_equal_tensorflows_count(case: str) -> None:
    keras.utils.set_random_seed(0)
    make, shapes = CASES[case]
    layer = make()
    inputs = [keras.Input(s) for s in shapes]
    model = keras.Model(inputs, layer(inputs if len(inputs) > 1 else inputs[0]))
    expected = profiled_macs(model)
    assert expected > 0
    assert _macs(model) == expected


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
    assert _macs(model) == profiled_macs(model)


# -- layers the profiler cannot count as they are -------------------------------------


@pytest.mark.parametrize(
    ("groups", "filters", "channels", "kernel"),
    [(2, 4, 6, 3), (3, 9, 6, (3, 1)), (4, 8, 8, 1)],
)
def test_grouped_conv_macs_are_groups_times_one_groups_conv(
    groups: int, filters: int, channels: int, kernel: int | tuple[int, int]
) -> None:
    grouped = one_layer(layers.Conv2D(filters, kernel, groups=groups), (9, 9, channels))
    one_group = one_layer(layers.Conv2D(filters // groups, kernel), (9, 9, channels // groups))
    assert _macs(grouped) == groups * profiled_macs(one_group)


@pytest.mark.parametrize(
    ("kernel", "dilation", "shape"), [(3, 2, (15, 15, 2)), ((2, 3), (3, 1), (12, 10, 3))]
)
def test_dilated_conv_macs_equal_an_undilated_conv_with_the_same_taps(
    kernel: int | tuple[int, int], dilation: int | tuple[int, int], shape: tuple[int, ...]
) -> None:
    """TensorFlow runs a dilated Conv2D as SpaceToBatchND + Conv2D on a padded tensor, so the
    profiler counts padding positions the layer never outputs. The same kernel taps at the
    same output positions, undilated, are what the layer computes."""
    model = one_layer(layers.Conv2D(4, kernel, dilation_rate=dilation), shape)
    out = model.outputs[0].shape[1:3]
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    undilated = one_layer(
        layers.Conv2D(4, kernel), (out[0] + k[0] - 1, out[1] + k[1] - 1, shape[-1])
    )
    assert undilated.outputs[0].shape == model.outputs[0].shape
    assert _macs(model) == profiled_macs(undilated)


@pytest.mark.parametrize(
    ("rank", "filters", "kernel", "strides", "padding", "shape"),
    [
        (2, 5, 3, 2, "valid", (4, 4, 3)),
        (2, 4, (3, 2), 1, "valid", (6, 5, 2)),
        (2, 6, 4, 2, "same", (5, 7, 3)),
        (1, 4, 3, 2, "valid", (9, 5)),
        (3, 2, 2, 2, "same", (3, 4, 3, 2)),
    ],
)
def test_transposed_conv_macs_equal_the_forward_conv_it_transposes(
    rank: int,
    filters: int,
    kernel: int | tuple[int, ...],
    strides: int,
    padding: str,
    shape: tuple[int, ...],
) -> None:
    transpose = getattr(layers, f"Conv{rank}DTranspose")(filters, kernel, strides, padding)
    model = one_layer(transpose, shape)
    forward = getattr(layers, f"Conv{rank}D")(shape[-1], kernel, strides, padding)
    back = one_layer(forward, tuple(model.outputs[0].shape[1:]))
    assert tuple(back.outputs[0].shape[1:]) == shape  # it maps the output back to the input
    assert _macs(model) == profiled_macs(back)


def test_layers_without_a_rule_are_unknown_and_the_profiler_would_count_them() -> None:
    """EinsumDense's equation and Dot's axes are not among the facts: unknown, not guessed."""
    x = keras.Input((5, 4))
    y = layers.EinsumDense("abc,cd->abd", output_shape=(None, 3), name="einsum")(x)
    z = layers.Dot(axes=2, name="dot")([y, y])
    model = keras.Model(x, z)
    report = weighttie.analyze(model)
    assert report.layer("einsum").macs is None and report.layer("dot").macs is None
    assert report.cost.macs is None and report.cost.uncounted == 2  # not "at least 0"
    assert profiled_macs(model) > 0


# -- whole models ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ResNet50", "MobileNetV2"])
def test_applications_at_224_live_static_and_tensorflow_agree(name: str, tmp_path) -> None:
    """docs/cost.md compares these numbers with the published figures. The static report
    of the .keras file and of a tf_keras .h5 of the same architecture agree too."""
    model = getattr(keras.applications, name)(weights=None, input_shape=(224, 224, 3))
    live = weighttie.analyze(model)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    static = read_report(path)
    assert live.cost.uncounted == 0
    assert static.cost == live.cost
    assert live.cost.macs == profiled_macs(model)
    assert live.cost.bytes.unique == 4 * model.count_params()
    k2 = pytest.importorskip("tf_keras")
    legacy = tmp_path / f"{name}.h5"
    getattr(k2.applications, name)(weights=None, input_shape=(224, 224, 3)).save(legacy)
    assert read_report(legacy).cost == live.cost  # the Keras 2 file, read without Keras


@pytest.mark.slow
def test_a_siamese_tower_counts_twice_in_tensorflows_graph_too() -> None:
    keras.utils.set_random_seed(0)
    tower = keras.applications.MobileNetV2(
        weights=None, include_top=False, pooling="avg", input_shape=(96, 96, 3), alpha=0.35
    )
    a, b = keras.Input((96, 96, 3)), keras.Input((96, 96, 3))
    merged = layers.Concatenate()([tower(a), tower(b)])
    model = keras.Model([a, b], layers.Dense(1)(merged))
    report = weighttie.analyze(model)
    assert report.cost.macs == profiled_macs(model)
    assert report.layer(tower.name).macs == 2 * weighttie.analyze(tower).cost.macs  # type: ignore[operator]
