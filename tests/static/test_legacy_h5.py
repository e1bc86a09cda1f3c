"""Legacy .h5: Keras 2 (tf_keras) files Keras 3 cannot load, and Keras 3's legacy format."""

from __future__ import annotations

from pathlib import Path

import keras
import pytest
import tf_keras as k2

import weighttie
from support import zoo
from weighttie.cli import main
from weighttie.report import Report
from weighttie.static import read_report


def keras2_shared_lstm(path: Path) -> int:
    """A tf.keras siamese LSTM (with Keras 2's `time_major`) plus a nested model called twice."""
    k2.utils.set_random_seed(0)
    lstm = k2.layers.LSTM(8, time_major=False, name="lstm")
    left = k2.Input((5, 6), name="left")
    right = k2.Input((5, 6), name="right")
    meta_in = k2.Input((4,), name="meta_in")
    tower = k2.Model(meta_in, k2.layers.Dense(3, name="td")(meta_in), name="tower")
    meta = k2.Input((4,), name="meta")
    merged = k2.layers.concatenate(
        [lstm(left), lstm(right), tower(meta), tower(meta)], name="merge"
    )
    model = k2.Model([left, right, meta], k2.layers.Dense(1, name="score")(merged))
    model.save(path)
    return int(model.count_params())


def test_keras2_file_that_keras3_cannot_load_is_reported(tmp_path: Path, capsys) -> None:
    path = tmp_path / "keras2.h5"
    count = keras2_shared_lstm(path)
    with pytest.raises(ValueError, match="time_major"):
        keras.saving.load_model(path)
    report = read_report(path)
    lstm_group, tower_group = report.groups
    assert (lstm_group.kind.value, lstm_group.layers, lstm_group.calls) == (
        "shared-layer",
        ("lstm",),
        2,
    )
    assert lstm_group.params == 4 * (8 * (6 + 8) + 8)
    assert lstm_group.variables == (
        "lstm/lstm_cell/bias",
        "lstm/lstm_cell/kernel",
        "lstm/lstm_cell/recurrent_kernel",
    )
    assert (tower_group.kind.value, tower_group.layers) == ("shared-model", ("tower",))
    assert tower_group.params == 4 * 3 + 3
    assert report.params.unique == count
    assert report.params.duplicated == lstm_group.params + tower_group.params
    assert report.model.keras_version.startswith("2.")
    assert report.layer("lstm").nodes[1].inbound[0].layer == "right"
    # Keras 2 numbers a nested model's calls from 1 (call 0 is its construction):
    # the report numbers them from 0, as Keras 3 does (regression test).
    refs = [(r.layer, r.node_index) for r in report.layer("merge").nodes[0].inbound]
    assert refs == [("lstm", 0), ("lstm", 1), ("tower", 0), ("tower", 1)]
    # the command line gives the same, and says the file was read statically
    assert main(["report", str(path), "-f", "json"]) == 0
    assert Report.from_json(capsys.readouterr().out).groups == report.groups
    # --load fails cleanly where Keras 3 cannot read the file
    assert main(["report", str(path), "--load"]) == 2
    assert "time_major" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["siamese_lstm", "nested_twice", "multi_io", "siamese_tower"])
def test_keras3_legacy_h5_equals_live(name: str, tmp_path: Path) -> None:
    model = zoo.ZOO[name]()
    model.save(tmp_path / "m.h5")
    static = read_report(tmp_path / "m.h5")
    live = weighttie.analyze(model)
    assert static.params == live.params
    assert static.groups == live.groups
    assert [v.path for v in static.variables] == [v.path for v in live.variables]


def test_h5_weights_only_file_is_a_clear_error(tmp_path: Path, capsys) -> None:
    model = zoo.siamese_lstm()
    model.save_weights(tmp_path / "w.weights.h5")
    path = (tmp_path / "w.weights.h5").rename(tmp_path / "w.h5")
    assert main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert "without a model_config attribute" in err and err.count("\n") == 1


def test_keras2_model_config_is_read_within_limits(tmp_path: Path) -> None:
    """The legacy model_config is parsed by the same bounded reader as config.json."""
    from weighttie.errors import LimitError
    from weighttie.limits import Limits

    path = tmp_path / "keras2.h5"
    keras2_shared_lstm(path)
    report = read_report(path)
    layers = sum(1 for r in report.layers if r.path)
    calls = sum(len(r.nodes or ()) for r in report.layers if r.path)
    assert read_report(path, limits=Limits(layers=layers, calls=calls)) == report
    for field, value in (("layers", layers), ("calls", calls)):
        with pytest.raises(LimitError, match=f"the {field} limit") as caught:
            read_report(path, limits=Limits(**{field: value - 1}))
        assert caught.value.limit == field
    with pytest.raises(LimitError, match=r"model_config holds .* the config_bytes limit"):
        read_report(path, limits=Limits(config_bytes=100))


def test_keras2_shapes_are_computed(tmp_path: Path) -> None:
    """Keras 2 configs state no shapes: every call's shapes come from the rules, the
    nested model's calls included (its inner graph for the call's inputs)."""
    path = tmp_path / "keras2.h5"
    keras2_shared_lstm(path)
    report = read_report(path)
    assert [n.output_shapes for n in report.layer("lstm").nodes or ()] == [((None, 8),)] * 2
    assert [n.output_shapes for n in report.layer("tower").nodes or ()] == [((None, 3),)] * 2
    assert report.layer("merge").nodes[0].input_shapes == ((None, 8),) * 2 + ((None, 3),) * 2
    assert report.layer("score").nodes[0].output_shapes == ((None, 1),)


def test_keras2_nested_model_with_slashed_names_called_twice(tmp_path: Path) -> None:
    """tf_keras names such as ``block/conv`` inside a nested model called twice: each
    weight goes to the layer whose whole name starts it, the nested model is one
    shared-model group, and paths write the ``/`` of a name as ``%2F``."""
    k2.utils.set_random_seed(0)
    x = k2.Input((6, 6, 2), name="tower_in")
    y = k2.layers.Conv2D(3, 3, name="block/conv")(x)
    y = k2.layers.BatchNormalization(name="block/bn")(y)
    y = k2.layers.Dense(2, name="block")(k2.layers.Flatten(name="flat")(y))
    tower = k2.Model(x, y, name="tower")
    a = k2.Input((6, 6, 2), name="a")
    b = k2.Input((6, 6, 2), name="b")
    model = k2.Model([a, b], k2.layers.Add(name="add")([tower(a), tower(b)]))
    path = tmp_path / "slashes.h5"
    model.save(path)
    report = read_report(path)
    assert report.params.unique == model.count_params()
    (group,) = report.groups
    assert (group.kind.value, group.layers, group.calls) == ("shared-model", ("tower",), 2)
    conv = report.layer("tower/block%2Fconv")
    assert (conv.name, conv.params.held) == ("block/conv", 3 * 3 * 2 * 3 + 3)
    assert report.layer("tower/block%2Fbn").params.held == 4 * 3
    assert report.layer("tower/block").params.held == 4 * 4 * 3 * 2 + 2
    assert conv.nodes[0].output_shapes == ((None, 4, 4, 3),)
    assert report.layer("add").nodes[0].output_shapes == ((None, 2),)


def test_keras2_config_errors_name_model_config(tmp_path: Path) -> None:
    """A damaged Keras 2 graph is reported against model_config, not config.json."""
    import json

    import h5py

    from weighttie.errors import FileFormatError

    path = tmp_path / "keras2.h5"
    keras2_shared_lstm(path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        score = next(e for e in config["config"]["layers"] if e["name"] == "score")
        score["inbound_nodes"] = [[["nowhere", 0, 0, {}]]]
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(FileFormatError, match=r"^model_config: call 0 of layer 'score'"):
        read_report(path)


def test_keras2_sublayers_nest_as_their_weight_names_do(tmp_path: Path) -> None:
    """A tf_keras Bidirectional GRU's weights are named ``bi/forward_gru/gru_cell/kernel``:
    the forward and backward GRUs are rows, each holding its cell, whose classes come from
    the Bidirectional's config (as a Keras 3 file shows them)."""
    x = k2.Input((5, 3), name="x")
    model = k2.Model(x, k2.layers.Bidirectional(k2.layers.GRU(4), name="bi")(x))
    path = tmp_path / "bi.h5"
    model.save(path)
    static = read_report(path)
    rows = {r.path: r for r in static.layers if r.path.startswith("bi/")}
    forward = next(p for p in rows if p.count("/") == 1 and p.startswith("bi/forward_"))
    backward = next(p for p in rows if p.count("/") == 1 and p.startswith("bi/backward_"))
    for layer in (forward, backward):
        assert rows[layer].class_name == "GRU"
        assert rows[layer].variables == ()
        (cell,) = [p for p in rows if p.startswith(layer + "/")]
        assert rows[cell].class_name == "GRUCell"
        names = sorted(v.rsplit("/", 1)[-1] for v in rows[cell].variables)
        assert names == ["bias", "kernel", "recurrent_kernel"]
    assert static.params.unique == model.count_params()


class _K2Twice(k2.layers.Layer):
    """A Keras 2 custom layer that runs its Dense twice per call."""

    def __init__(self, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.inner = k2.layers.Dense(4, name="inner")

    def call(self, x):  # type: ignore[no-untyped-def]
        return self.inner(self.inner(x))


def test_a_keras2_custom_layers_sublayer_calls_are_unknown(tmp_path: Path) -> None:
    """Regression: a custom layer's sublayer was counted as running once (per use 20,
    "No weights are shared") where it runs twice; now unknown, with a note."""
    x = k2.Input((4,), name="x")
    model = k2.Model(x, _K2Twice(name="twice")(x))
    model.save(tmp_path / "m.h5")
    static = read_report(tmp_path / "m.h5")
    assert static.params.unique == model.count_params()
    assert static.params.per_use is None and static.params.duplicated is None
    assert static.layer("twice/inner").uses is None
    assert static.layer("x").uses == 1
    assert any("'twice' (_K2Twice)" in note for note in static.model.notes)
    # Keras's own layers with sublayers (an LSTM's cell) stay known
    y = k2.Input((3, 2), name="y")
    plain = k2.Model(y, k2.layers.Bidirectional(k2.layers.LSTM(2), name="bi")(y))
    plain.save(tmp_path / "plain.h5")
    known = read_report(tmp_path / "plain.h5")
    assert known.model.notes == () and known.params.per_use == plain.count_params()
