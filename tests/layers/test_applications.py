"""keras.applications' own layers (weighttie.layers.applications), and whole
keras.applications models: MACs live, static and from TensorFlow's profiler agree,
and equal the published figures docs/cost.md compares them with."""

from __future__ import annotations

import keras
import pytest
from keras import layers

import weighttie
from layers.family import FamilyOracle
from layers.mac_oracle import profiled_macs
from weighttie.layers import applications, output_shapes
from weighttie.static import read_report


class TestApplications(FamilyOracle):
    family = applications
    #: tf_keras writes them without a module: test_application_layers_match_tf_keras.
    checked_elsewhere = frozenset({"LayerScale: shapes", "CustomScaleLayer: shapes"})


def test_application_layers_match_tf_keras() -> None:
    """ConvNeXt's LayerScale and InceptionResNetV2's CustomScaleLayer, as tf_keras saves
    them (class names without a module); a same-named layer with other arguments is no
    application layer and stays unknown."""
    tf_keras = pytest.importorskip("tf_keras")
    from tf_keras.src.applications.convnext import LayerScale
    from tf_keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    x = tf_keras.Input((5, 5, 8))
    y = tf_keras.Input((5, 5, 8))
    for layer, inputs in ((LayerScale(1e-6, 8), [x]), (CustomScaleLayer(0.17), [x, y])):
        out = layer(*inputs) if len(inputs) == 1 else layer(inputs)
        config = tf_keras.Model(inputs, out).get_config()
        (entry,) = [e for e in config["layers"] if e["name"] == layer.name]
        shapes = [tuple(t.shape.as_list()) for t in inputs]
        assert output_shapes(entry["class_name"], entry["config"], shapes) == (
            tuple(out.shape.as_list()),
        )
        other = {**entry["config"], "axis": -1}
        assert output_shapes(entry["class_name"], other, shapes) is None
    shape = (None, 5, 5, 8)
    assert output_shapes("LayerScale", {"init_values": 1e-6, "projection_dim": 4}, [shape]) is None


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
