"""Shapes on the static path: every call's input and output shapes, Keras as the oracle.

The static reader takes a shape from the file where the file states it and
computes the rest with :mod:`weighttie.layers`' shape rules; these tests require the
result to equal what Keras itself says, call by call, with nothing unknown:
for Keras 3 ``.keras`` files the live walker of the same model, for Keras 2
(tf_keras) ``.h5`` files the tf_keras model's own layer shapes.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import keras
import pytest

import weighttie
from support import zoo
from weighttie.report import Report, Shape
from weighttie.static import read_report

NO_GRAPH = {"subclassed"}  # no functional graph in the file
#: Zoo models with calls whose shapes no rule can know: raw keras.ops in the graph
#: (``ops.add``) are Keras 3 op entries, not layers.
OPS_IN_GRAPH = {"weightless_reuse"}


def call_shapes(report: Report) -> dict[tuple[str, int], tuple[Any, Any]]:
    """(layer path, call index) → (input shapes, output shapes), for every call."""
    return {
        (row.path, node.index): (node.input_shapes, node.output_shapes)
        for row in report.layers
        for node in row.nodes or ()
    }


def unknown_and_wrong(static: Report, live: Report) -> tuple[list[str], list[str]]:
    """The calls whose static shapes are unknown, and those that differ from Keras's."""
    expected = call_shapes(live)
    got = call_shapes(static)
    assert got.keys() == expected.keys()
    unknown, wrong = [], []
    for key, (inputs, outputs) in got.items():
        if None in inputs or None in outputs:
            unknown.append(f"{key}: {inputs} -> {outputs}")
        elif (inputs, outputs) != expected[key]:
            wrong.append(f"{key}: {inputs} -> {outputs}, Keras: {expected[key]}")
    return unknown, wrong


@pytest.mark.parametrize("name", sorted(set(zoo.ZOO) - zoo.UNSAVEABLE - NO_GRAPH - OPS_IN_GRAPH))
def test_every_call_shape_of_the_zoo_is_known_and_right(name: str, save) -> None:
    model = zoo.ZOO[name]()
    unknown, wrong = unknown_and_wrong(read_report(save(model)), weighttie.analyze(model))
    assert unknown == []
    assert wrong == []


def test_model_outputs_get_shapes(save) -> None:
    """Nothing consumes a model's outputs, so the file states no shape for them."""
    static = read_report(save(zoo.siamese_lstm()))
    assert static.layer("score").nodes[0].output_shapes == ((None, 1),)
    doc = json.loads(static.to_json())
    score = next(r for r in doc["layers"] if r["path"] == "score")
    assert score["nodes"][0]["output_shapes"] == [[None, 1]]


def test_one_conv_at_two_sizes_has_both_output_shapes(save) -> None:
    """One Conv2D called on a 32×32 and a 64×64 input, both calls the model's outputs."""
    conv = keras.layers.Conv2D(16, 3, padding="same", name="conv")
    small = keras.Input((32, 32, 3), name="small")
    large = keras.Input((64, 64, 3), name="large")
    model = keras.Model([small, large], [conv(small), conv(large)])
    static = read_report(save(model))
    assert [n.output_shapes for n in static.layer("conv").nodes or ()] == [
        ((None, 32, 32, 16),),
        ((None, 64, 64, 16),),
    ]


def test_a_tuple_output_lists_every_tensor(save) -> None:
    """An LSTM with return_state as a model output: three tensors, none consumed."""
    x = keras.Input((7, 3), name="x")
    outputs = keras.layers.LSTM(4, return_state=True, name="lstm")(x)
    model = keras.Model(x, outputs)
    static = read_report(save(model))
    assert static.layer("lstm").nodes[0].output_shapes == ((None, 4),) * 3
    assert unknown_and_wrong(static, weighttie.analyze(model)) == ([], [])


def test_a_call_no_rule_knows_stays_unknown(save) -> None:
    """A raw keras.ops call is a Keras 3 op entry (``keras.src.ops.numpy.Add``), not the Add
    layer: no rule is applied to it, and its output (a model output) stays unknown."""
    a = keras.Input((4,), name="a")
    b = keras.Input((4,), name="b")
    model = keras.Model([a, b], keras.ops.add(keras.layers.Dense(4, name="d")(a), b))
    static = read_report(save(model))
    op = next(r for r in static.layers if r.class_name == "Add")
    assert op.nodes is not None and op.nodes[0].output_shapes == (None,)
    assert op.nodes[0].input_shapes == ((None, 4), (None, 4))


def test_nested_model_called_on_other_shapes_gets_its_outputs_recomputed(save) -> None:
    """A fully convolutional tower built for any size called on 24×24: the call's output
    follows its input, not the shapes the tower's own graph states."""
    x = keras.Input((None, None, 3), name="x")
    tower = keras.Model(x, keras.layers.Conv2D(5, 3, name="conv")(x), name="tower")
    big = keras.Input((24, 24, 3), name="big")
    model = keras.Model(big, tower(big))
    static = read_report(save(model))
    assert static.layer("tower").nodes[0].output_shapes == ((None, 22, 22, 5),)
    assert unknown_and_wrong(static, weighttie.analyze(model)) == ([], [])


# -- keras.applications, as .keras (Keras 3) and as .h5 (Keras 2, tf_keras) -----------


def _applications(module: Any) -> dict[str, Callable[[], Any]]:
    def make(name: str, **kwargs: Any) -> Callable[[], Any]:
        return lambda: getattr(module.applications, name)(weights=None, **kwargs)

    return {
        "MobileNetV2": make("MobileNetV2", input_shape=(96, 96, 3)),
        "ResNet50": make("ResNet50", input_shape=(64, 64, 3)),
        "DenseNet121": make("DenseNet121", input_shape=(64, 64, 3)),
        "MobileNetV3Small": make("MobileNetV3Small", input_shape=(96, 96, 3)),
        "EfficientNetB0": make("EfficientNetB0", input_shape=(64, 64, 3)),
        # one of each other family (their siblings are the same layers at other sizes)
        "MobileNet": make("MobileNet", input_shape=(64, 64, 3)),
        "ResNet50V2": make("ResNet50V2", input_shape=(64, 64, 3)),
        "InceptionV3": make("InceptionV3", input_shape=(75, 75, 3)),
        "InceptionResNetV2": make("InceptionResNetV2", input_shape=(75, 75, 3)),
        "Xception": make("Xception", input_shape=(71, 71, 3)),
        "VGG16": make("VGG16", input_shape=(32, 32, 3)),
        "NASNetMobile": make("NASNetMobile", input_shape=(32, 32, 3)),
        "ConvNeXtTiny": make("ConvNeXtTiny", input_shape=(32, 32, 3)),
        "EfficientNetV2B0": make("EfficientNetV2B0", input_shape=(32, 32, 3)),
    }


CORPUS = sorted(_applications(keras))
FAST = {"MobileNetV2"}


def _marks(name: str) -> Any:
    return pytest.param(name, marks=() if name in FAST else pytest.mark.slow)


@pytest.mark.parametrize("name", [_marks(n) for n in CORPUS])
def test_keras_applications_shapes_equal_keras(name: str, save) -> None:
    model = _applications(keras)[name]()
    static, live = read_report(save(model)), weighttie.analyze(model)
    unknown, wrong = unknown_and_wrong(static, live)
    assert unknown == []
    assert wrong == []
    assert static.params == live.params  # trainable or not too (EfficientNet's Normalization)


def _tf_keras_shapes(model: Any) -> dict[str, list[Shape]]:
    """Each layer's output shapes as tf_keras reports them (one call each)."""
    import tensorflow as tf

    def shape(t: Any) -> Shape:
        return tuple(t.shape.as_list())

    return {
        layer.name: [shape(t) for t in tf.nest.flatten(layer.output)]
        for layer in model.layers
        if layer.__class__.__name__ != "InputLayer"
    }


def path_name(name: str) -> str:
    return name.replace("%", "%25").replace("/", "%2F") if "/" in name else name


@pytest.mark.parametrize("name", [_marks(n) for n in CORPUS])
def test_keras2_applications_shapes_equal_tf_keras(name: str, tmp_path: Path) -> None:
    tf_keras = pytest.importorskip("tf_keras")
    model = _applications(tf_keras)[name]()
    path = tmp_path / f"{name}.h5"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "You are saving your model as an HDF5 file")
        model.save(path)
    static = read_report(path)
    expected = _tf_keras_shapes(model)
    outputs: dict[str, Shape | None] = {}
    unknown, wrong = [], []
    for layer in model.layers:
        row = static.layer(path_name(layer.name))
        assert row.name == layer.name
        if layer.name not in expected:
            continue
        (node,) = row.nodes or ()
        if None in node.output_shapes:
            unknown.append(f"{layer.name}: {node.output_shapes}")
        elif list(node.output_shapes) != expected[layer.name]:
            wrong.append(f"{layer.name}: {node.output_shapes}, tf_keras: {expected[layer.name]}")
        for ref, shape in zip(node.inbound, node.input_shapes, strict=True):
            producer = static.layer(ref.layer).nodes or ()
            assert shape == producer[ref.node_index].output_shapes[ref.tensor_index], layer.name
        outputs[layer.name] = node.output_shapes[0]
    assert unknown == []
    assert wrong == []
    with h5py.File(path) as f:
        config = json.loads(f.attrs["model_config"])
    assert len(outputs) == len(config["config"]["layers"]) - 1
    assert static.params.unique == model.count_params()
    trainable = sum(int(math.prod(v.shape)) for v in model.trainable_weights)
    assert static.params.trainable_unique == trainable


# -- Keras 2 files: op layers, names holding "/" ------------------------------------------


@pytest.fixture(scope="module")
def keras2_ops(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[str, list[Shape]], dict[str, str]]:
    """A tf_keras model whose op layers (TFOpLambda) take tensors in their call kwargs
    (``a + b``: ``y``), a constant first operand (``2.0 * x``), a slice and a bias_add, and a
    MultiHeadAttention called with three tensors (query positional, value and key kwargs)."""
    tf_keras = pytest.importorskip("tf_keras")
    import tensorflow as tf

    k = tf_keras
    inp = k.Input((8,), name="inp")
    a = k.layers.Dense(4, name="d1")(inp)
    b = k.layers.Dense(4, name="d2")(inp)
    added = a + b
    doubled = 2.0 * added
    sliced = doubled[:, 1:3]
    biased = tf.nn.bias_add(added, tf.ones(4))
    q = k.Input((5, 8), name="q")
    v = k.Input((6, 8), name="v")
    attended = k.layers.MultiHeadAttention(2, 4, name="mha")(q, v, v)
    model = k.Model([inp, q, v], [doubled, sliced, biased, attended])
    path = tmp_path_factory.mktemp("keras2") / "ops.h5"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "You are saving your model as an HDF5 file")
        model.save(path)
    # tf_keras numbers op layers' names per session (tf.__operators__.add_1 …)
    names = {
        role: tensor._keras_history.layer.name
        for role, tensor in {"add": added, "multiply": doubled}.items()
    }
    return path, _tf_keras_shapes(model), names


def test_keras2_op_layers_keep_tensors_from_their_kwargs(keras2_ops) -> None:
    path, expected, names = keras2_ops
    static = read_report(path)
    add = static.layer(names["add"])
    assert [r.layer for r in add.nodes[0].inbound] == ["d1", "d2"]
    assert add.nodes[0].input_shapes == ((None, 4), (None, 4))
    multiply = static.layer(names["multiply"])  # 2.0 * x: the constant is no input
    assert [r.layer for r in multiply.nodes[0].inbound] == [names["add"]]
    mha = static.layer("mha")
    assert [r.layer for r in mha.nodes[0].inbound] == ["q", "v", "v"]
    for name, shapes in expected.items():
        assert list(static.layer(name).nodes[0].output_shapes) == shapes, name


def test_keras2_layer_names_with_slashes_are_read(tmp_path: Path) -> None:
    """tf_keras DenseNet names layers ``conv1/conv``: the name is kept, and in paths the
    ``/`` is written ``%2F`` so that a path still parts at layers."""
    tf_keras = pytest.importorskip("tf_keras")
    k = tf_keras
    x = k.Input((8, 8, 3), name="x")
    y = k.layers.Conv2D(4, 3, name="conv1/conv")(x)
    y = k.layers.BatchNormalization(name="conv1/bn")(y)
    model = k.Model(x, k.layers.Dense(2, name="out")(y))
    path = tmp_path / "slashes.h5"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "You are saving your model as an HDF5 file")
        model.save(path)
    static = read_report(path)
    conv = static.layer("conv1%2Fconv")
    assert conv.name == "conv1/conv"
    assert conv.nodes[0].output_shapes == ((None, 6, 6, 4),)
    bn = static.layer("conv1%2Fbn")
    assert [r.layer for r in bn.nodes[0].inbound] == ["conv1%2Fconv"]
    assert {v.rsplit("/", 1)[-1] for v in bn.variables} == {
        "gamma",
        "beta",
        "moving_mean",
        "moving_variance",
    }
    assert {v.rsplit("/", 1)[-1] for v in conv.variables} == {"kernel", "bias"}
    assert static.params.unique == model.count_params()
    assert static.layer("out").nodes[0].output_shapes == ((None, 6, 6, 2),)


# -- layers that return several tensors, as model outputs and inside the graph ---------------


def _several_outputs(k: Any, name: str) -> Any:
    """One model per layer that returns several tensors: ``*-out`` makes them the model's
    outputs (no consumer states their shapes), ``*-in`` feeds them to other layers."""
    layers = k.layers
    kind, _, where = name.rpartition("-")
    x = k.Input((7, 3), name="x")
    q, v = k.Input((5, 8), name="q"), k.Input((6, 8), name="v")
    inputs: Any = x
    if kind in ("LSTM", "GRU", "SimpleRNN", "LSTM-sequences"):
        cls = kind.split("-")[0]
        rnn = getattr(layers, cls)(4, return_state=True, return_sequences="-" in kind, name="rnn")
        outputs = rnn(x)
    elif kind == "stacked-cells":
        cells = [layers.LSTMCell(4), layers.GRUCell(5)]
        outputs = layers.RNN(cells, return_state=True, name="rnn")(x)
    elif kind in ("bidirectional-LSTM", "bidirectional-GRU-sequences"):
        inner = getattr(layers, kind.split("-")[1])(4, return_state=True)
        inner.return_sequences = kind.endswith("sequences")
        outputs = layers.Bidirectional(inner, name="bi")(x)
    elif kind == "ConvLSTM2D":
        inputs = k.Input((3, 5, 5, 2), name="frames")
        outputs = layers.ConvLSTM2D(3, 2, return_state=True, name="clstm")(inputs)
    elif kind in ("MultiHeadAttention", "Attention", "AdditiveAttention"):
        inputs = [q, v]
        if kind == "MultiHeadAttention":
            layer = layers.MultiHeadAttention(2, 4, name="att")
            outputs = layer(q, v, return_attention_scores=True)
        else:
            outputs = getattr(layers, kind)(name="att")([q, v], return_attention_scores=True)
    elif kind == "nested-model":
        i = k.Input((7, 3), name="i")
        inner = k.Model(i, layers.LSTM(4, return_state=True, name="lstm")(i), name="inner")
        outputs = inner(x)
    else:
        raise AssertionError(kind)
    outputs = _flat(outputs)
    if where == "in":
        flat = [layers.Flatten(name=f"flat{i}")(t) for i, t in enumerate(outputs)]
        outputs = [layers.Concatenate(name="merge")(flat)]
    return k.Model(inputs, outputs)


def _flat(value: Any) -> list[Any]:
    """Tensors of nested lists and tuples, depth first (stacked cells nest their states)."""
    if isinstance(value, list | tuple):
        return [t for item in value for t in _flat(item)]
    return [value]


SEVERAL = [
    f"{kind}-{where}"
    for kind in (
        "LSTM",
        "GRU",
        "SimpleRNN",
        "LSTM-sequences",
        "stacked-cells",
        "bidirectional-LSTM",
        "bidirectional-GRU-sequences",
        "ConvLSTM2D",
        "MultiHeadAttention",
        "Attention",
        "AdditiveAttention",
        "nested-model",
    )
    for where in ("out", "in")
]


@pytest.mark.parametrize("name", SEVERAL)
def test_several_outputs_equal_keras(name: str, save) -> None:
    """Every tensor of every call, with its shape, as live ``analyze`` lists them, except
    MultiHeadAttention's scores as a model output: Keras 3.15's symbolic call says
    ``(batch, heads, query, query)``, the rule gives the real ``(…, query, key)``."""
    model = _several_outputs(keras, name)
    static = read_report(save(model))
    expected = call_shapes(weighttie.analyze(model))
    if name == "MultiHeadAttention-out":
        zeros = [keras.ops.zeros((2, 5, 8)), keras.ops.zeros((2, 6, 8))]
        real = [tuple(t.shape) for t in model(zeros)]
        inputs, (output, scores) = expected[("att", 0)]
        assert scores[:3] == (None, *real[1][1:3]) and real[1][3] == 6
        expected[("att", 0)] = (inputs, (output, (None, *real[1][1:])))
    assert call_shapes(static) == expected


@pytest.mark.parametrize("name", SEVERAL)
def test_several_outputs_of_keras2_files_equal_tf_keras(name: str, tmp_path: Path) -> None:
    tf_keras = pytest.importorskip("tf_keras")
    model = _several_outputs(tf_keras, name)
    path = tmp_path / "several.h5"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "You are saving your model as an HDF5 file")
        model.save(path)
    static = read_report(path)
    for layer, shapes in _tf_keras_shapes(model).items():
        (node,) = static.layer(layer).nodes or ()
        assert list(node.output_shapes) == shapes, layer
