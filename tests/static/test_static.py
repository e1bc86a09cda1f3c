"""The static reader: the same Report from the file alone, without Keras."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import h5py
import keras
import pytest

import weighttie
from support import zoo
from support.static_process import BLOCKER
from weighttie.report import Report
from weighttie.static import UNKNOWN_CLASS, read_report

NO_GRAPH = {"subclassed"}  # no functional graph in the file: calls unknown statically


def assert_parity(static: Report, live: Report) -> None:
    """Identical groups, counts, layers and variables; shapes where the file states them."""
    assert static.params == live.params
    assert static.groups == live.groups
    assert [v.path for v in static.variables] == [v.path for v in live.variables]
    assert [(v.shape, v.dtype, v.trainable, v.layers, v.uses) for v in static.variables] == [
        (v.shape, v.dtype, v.trainable, v.layers, v.uses) for v in live.variables
    ]
    assert [r.path for r in static.layers] == [r.path for r in live.layers]
    for s, lv in zip(static.layers, live.layers, strict=True):
        assert (s.uses, s.params, s.variables) == (lv.uses, lv.params, lv.variables), s.path
        assert s.class_name in (lv.class_name, UNKNOWN_CLASS), s.path
        assert (s.nodes is None) == (lv.nodes is None), s.path
        for sn, ln in zip(s.nodes or (), lv.nodes or (), strict=True):
            assert sn.inbound == ln.inbound, s.path
            assert all(
                a is None or a == b for a, b in zip(sn.input_shapes, ln.input_shapes, strict=True)
            )
            assert all(
                a is None or a == b
                for a, b in zip(sn.output_shapes, ln.output_shapes, strict=False)
            )


@pytest.mark.parametrize("name", sorted(set(zoo.ZOO) - zoo.UNSAVEABLE - NO_GRAPH))
def test_static_equals_live_on_the_zoo(name: str, save) -> None:
    model = zoo.ZOO[name]()
    static = read_report(save(model))
    assert static.model.source == "static"
    assert_parity(static, weighttie.analyze(model))


@pytest.mark.parametrize("name", sorted(set(zoo.ZOO) - zoo.UNSAVEABLE - NO_GRAPH))
def test_cli_default_and_load_agree_on_groups_and_counts(name: str, save, capsys) -> None:
    from weighttie.cli import main

    path = save(zoo.ZOO[name]())
    assert main(["report", str(path), "-f", "json"]) == 0
    default = Report.from_json(capsys.readouterr().out)
    assert main(["report", str(path), "-f", "json", "--load"]) == 0
    loaded = Report.from_json(capsys.readouterr().out)
    assert default.params == loaded.params
    assert default.groups == loaded.groups


def test_cli_default_reads_a_subclassed_file_statically_whatever_is_installed(save, capsys) -> None:
    """Regression: the default once loaded such a file when its class was importable,
    so the same command gave different answers on different machines (and took
    seconds). Now: the static report, calls unknown and a note; --load counts them."""
    from weighttie.cli import main

    model = zoo.subclassed()
    path = save(model)
    assert main(["report", str(path), "-f", "json"]) == 0
    out, err = capsys.readouterr()
    default = Report.from_json(out)
    assert err == ""
    assert default.model.source == "static"
    assert default.params.unique == model.count_params()
    assert default.params.per_use is None
    assert any("--load" in note for note in default.model.notes)
    assert main(["report", str(path), "-f", "json", "--load"]) == 0
    loaded = Report.from_json(capsys.readouterr().out)
    assert loaded.model.source == "traced"
    assert loaded.params.unique == default.params.unique
    assert loaded.params.per_use == weighttie.analyze(model).params.per_use


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(zoo.APPLICATIONS))
def test_static_equals_live_on_keras_applications(name: str, save) -> None:
    model = zoo.APPLICATIONS[name]()
    assert_parity(read_report(save(model)), weighttie.analyze(model))


def test_static_reads_declared_ties(tmp_path: Path) -> None:
    from ties.test_ties import same_valid_model

    model = same_valid_model()
    model.save(tmp_path / "m.keras")
    static = read_report(tmp_path / "m.keras")
    assert_parity(static, weighttie.analyze(weighttie.load_model(tmp_path / "m.keras")))
    (tie,) = static.ties
    assert (tie.source, tie.target, tie.variables, tie.bound) == (
        "same",
        "valid",
        ("bias", "kernel"),
        True,
    )


def test_sequential_shapes_come_from_build_configs(save) -> None:
    static = read_report(save(zoo.sequential()))
    assert static.layer("lstm").nodes[0].input_shapes == ((None, 7, 3),)
    assert static.layer("out").nodes[0].input_shapes == ((None, 4),)
    assert static.layer("steps").nodes[0].output_shapes == ((None, 7, 3),)


def test_subclassed_file_is_read_from_its_weights_alone(save) -> None:
    model = zoo.subclassed()
    static = read_report(save(model))
    live = weighttie.analyze(model)
    assert [r.path for r in static.layers] == ["hidden", "norm", "out"]
    # Keras saves a model's layers list under each layer's snake-cased class name (a
    # layer it reaches first as an attribute, "hidden", is saved under that name)
    assert [r.class_name for r in static.layers] == [UNKNOWN_CLASS, "BatchNormalization", "Dense"]
    assert [r.class_name for r in live.layers] == ["Dense", "BatchNormalization", "Dense"]
    assert static.params.unique == model.count_params()
    assert static.params.trainable_unique == live.params.trainable_unique
    # the file states no calls: uses are unknown, never guessed
    assert static.params.per_use is None and {r.uses for r in static.layers} == {None}
    assert static.model.notes


# -- no backend -------------------------------------------------------------------------


def test_static_report_runs_with_backends_unimportable(save, tmp_path: Path) -> None:
    path = save(zoo.siamese_tower())
    result = subprocess.run(
        [sys.executable, "-c", BLOCKER, "report", str(path), "-f", "json"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["model"]["source"] == "static"
    assert [g["kind"] for g in doc["groups"]] == ["shared-model"]


# -- a declared tie whose saved copies differ --------------------------------------------


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {info.filename: z.read(info) for info in z.infolist()}


def change_saved_copy(path: Path, layer: str, index: int, change) -> None:
    """Rewrite variable ``index`` of ``layer`` in a .keras file's model.weights.h5 (values only)."""
    members = _members(path)
    buffer = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buffer, "r+") as h5:
        found: list[str] = []
        h5.visititems(
            lambda name, obj: (
                found.append(name)
                if name.endswith("vars") and obj.attrs.get("name") == layer
                else None
            )
        )
        (group,) = found
        dataset = h5[f"{group}/{index}"]
        dataset[...] = change(dataset[...])
    members["model.weights.h5"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


@pytest.fixture
def differing_copies(tmp_path: Path) -> tuple[Path, Path]:
    """A tied model saved (good.keras), and the same file with the target's kernel changed."""
    from ties.test_ties import same_valid_model

    good, bad = tmp_path / "good.keras", tmp_path / "bad.keras"
    same_valid_model().save(good)
    bad.write_bytes(good.read_bytes())
    change_saved_copy(bad, "valid", 0, lambda kernel: kernel + 1.0)
    return good, bad


def test_a_tie_whose_saved_copies_differ_is_not_bound(differing_copies) -> None:
    """Issue 9: only shapes were compared, so the static report vouched for a broken tie."""
    from ties.test_ties import same_valid_model

    _, bad = differing_copies
    untied = weighttie.analyze(same_valid_model(tie=False))
    for findings in (True, False):
        report = read_report(bad, findings=findings)
        (tie,) = report.ties
        assert (tie.source, tie.target, tie.variables, tie.bound) == (
            "same",
            "valid",
            ("bias", "kernel"),
            False,
        )
        assert report.params == untied.params  # separate variables, counted as such
        assert report.groups == ()
        assert [v.path for v in report.variables] == [v.path for v in untied.variables]
    report = read_report(bad)
    (finding,) = report.findings
    assert (finding.kind, finding.layers, finding.params) == ("broken-tie", ("same", "valid"), 112)
    assert "valid/kernel != same/kernel" in finding.message
    assert "valid/bias" not in finding.message  # the biases are equal copies
    assert read_report(bad, findings=False).findings == ()
    doc = json.loads(report.to_json())
    assert doc["ties"][0]["bound"] is False
    assert [f["kind"] for f in doc["findings"]] == ["broken-tie"]


def test_check_expecting_the_tie_fails_on_differing_copies(
    differing_copies, tmp_path: Path, capsys
) -> None:
    from weighttie.cli import main

    good, bad = differing_copies
    spec = tmp_path / "spec.toml"
    assert main(["snapshot", str(good), "-o", str(spec)]) == 0
    assert 'kind = "tied"' in spec.read_text()
    assert main(["check", str(good), "--spec", str(spec)]) == 0
    assert main(["check", str(bad), "--spec", str(spec)]) == 1
    assert main(["check", str(bad), "--spec", str(spec), "--load"]) == 2  # load_model refuses
    capsys.readouterr()


# -- limits ------------------------------------------------------------------------------


def _size_of(report: Report) -> tuple[int, int]:
    """Layers and calls as the limits count them (the model itself is not a layer)."""
    rows = [r for r in report.layers if r.path]
    return len(rows), sum(len(r.nodes or ()) for r in rows)


def _h5_objects(path: Path) -> int:
    with zipfile.ZipFile(path) as z, h5py.File(io.BytesIO(z.read("model.weights.h5"))) as h5:
        names: list[str] = []
        h5.visit(names.append)
    return len(names)


def nested_three_deep() -> keras.Model:
    """A model in a model in a model: its innermost layer's path has two slashes."""
    x = keras.Input((3,), name="x")
    inner = keras.Model(x, keras.layers.Dense(3, name="dense")(x), name="inner")
    y = keras.Input((3,), name="y")
    middle = keras.Model(y, inner(y), name="middle")
    z = keras.Input((3,), name="z")
    return keras.Model(z, middle(middle(z)), name="outer")


@pytest.mark.parametrize(
    "make",
    [zoo.siamese_tower, zoo.nested_twice, zoo.sequential, zoo.siamese_lstm, nested_three_deep],
)
def test_a_file_exactly_at_the_limits_is_read_and_one_past_is_refused(make, save) -> None:
    """Each limit admits a file that reaches it and refuses one that passes it, naming it."""
    from weighttie.errors import LimitError
    from weighttie.limits import Limits

    path = save(make())
    report = read_report(path)
    layers, calls = _size_of(report)
    config_bytes = len(_members(path)["config.json"])
    objects = _h5_objects(path)
    depth = max(1, *(r.path.count("/") for r in report.layers))  # a path's slashes: its depth
    exact = Limits(
        layers=layers, calls=calls, config_bytes=config_bytes, h5_objects=objects, depth=depth
    )
    assert read_report(path, limits=exact) == report
    for field, value in [
        ("layers", layers),
        ("calls", calls),
        ("config_bytes", config_bytes),
        ("h5_objects", objects),
        ("depth", depth),
    ]:
        if value == 1:
            continue  # a limit is a positive integer
        tight = Limits(**{**exact.__dict__, field: value - 1})
        with pytest.raises(LimitError) as caught:
            read_report(path, limits=tight)
        assert caught.value.limit == field, str(caught.value)
        assert f"the {field} limit" in str(caught.value)
        assert "--" not in str(caught.value)  # the command line adds its own flag


def test_limits_are_checked_before_keras_loads(save) -> None:
    from weighttie.errors import LimitError
    from weighttie.keras_loading import load_keras_model
    from weighttie.limits import Limits

    path = save(zoo.siamese_tower())
    layers, _ = _size_of(read_report(path))
    with pytest.raises(LimitError, match="the layers limit") as caught:
        load_keras_model(path, limits=Limits(layers=layers - 1))
    assert caught.value.limit == "layers"
    assert len(load_keras_model(path, limits=Limits(layers=layers)).layers) > 0


# -- a custom layer's sublayers: calls the file does not record --


@keras.saving.register_keras_serializable(package="weighttie_tests")
class CallsTwice(keras.layers.Layer):
    """A custom layer that runs its Dense twice per call."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.inner = keras.layers.Dense(4, name="inner")

    def call(self, x: Any) -> Any:
        return self.inner(self.inner(x))


def _custom_models() -> dict[str, keras.Model]:
    x = keras.Input((4,), name="x")
    twice = keras.Model(x, CallsTwice(name="twice")(x), name="twice_model")
    models = {"twice": twice}
    try:
        import keras_hub
    except ImportError:
        return models
    # BertMaskedLM's head, in small: it calls the embedding the graph also calls
    ids = keras.Input((8,), dtype="int32", name="ids")
    positions = keras.Input((2,), dtype="int32", name="positions")
    embedding = keras_hub.layers.ReversibleEmbedding(50, 8, name="embedding")
    head = keras_hub.layers.MaskedLMHead(
        vocabulary_size=50, token_embedding=embedding, activation="softmax", name="head"
    )
    hidden = keras.layers.Dense(8, name="dense")(embedding(ids))
    models["head"] = keras.Model(
        [ids, positions], head(hidden, mask_positions=positions), name="head_model"
    )
    return models


@pytest.mark.parametrize("name", ["twice", "head"])
def test_a_custom_layers_sublayer_calls_are_unknown_not_guessed(name: str, save, capsys) -> None:
    """Regression: the static report counted a custom layer's sublayer as running once
    (or a head's borrowed embedding as not running), so per-use counts were silently
    wrong ("No weights are shared"); now they are unknown, with a note, and --load
    counts them."""
    from weighttie.cli import main

    models = _custom_models()
    if name not in models:
        pytest.skip("keras_hub is not installed")
    model = models[name]
    live = weighttie.analyze(model)
    assert live.params.duplicated > 0  # it really runs a layer twice
    static = read_report(save(model))
    assert static.params.unique == live.params.unique == model.count_params()
    assert static.params.per_use is None and static.params.duplicated is None
    assert static.cost.bytes.per_use is None
    assert any("call()" in note and "--load" in note for note in static.model.notes)
    known = {row.path: row.uses for row in static.layers}
    assert known["x" if name == "twice" else "ids"] == 1  # the graph's own calls stay known
    assert main(["report", str(save(model)), "--load", "-f", "json"]) == 0
    loaded = Report.from_json(capsys.readouterr().out)
    assert (loaded.params.per_use, loaded.groups) == (live.params.per_use, live.groups)


def test_keras_wrappers_sublayers_stay_known(save) -> None:
    """Keras's own layers run their sublayers once per call: no unknown there."""
    x = keras.Input((5, 3), name="x")
    y = keras.layers.Bidirectional(keras.layers.LSTM(4), name="bi")(x)
    y = keras.layers.Reshape((1, 8))(y)
    y = keras.layers.MultiHeadAttention(2, 4, name="mha")(y, y)
    model = keras.Model(x, y)
    static = read_report(save(model))
    assert static.model.notes == ()
    assert static.params.per_use == weighttie.analyze(model).params.per_use


def test_a_subclassed_model_is_named_as_the_file_says(tmp_path: Path) -> None:
    """Its config holds constructor arguments without a name; the weights file's root
    group names it (was reported as 'model')."""
    model = zoo.subclassed()
    model.save(tmp_path / "sub.keras")
    static = read_report(tmp_path / "sub.keras")
    assert static.model.name == model.name == weighttie.analyze(model).model.name
    assert static.model.class_name == type(model).__name__
