"""The command line: `weighttie report` on real saved files, and every error path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import pytest

import weighttie
from support import zoo
from support.cli_run import run
from weighttie.cli import main

# Plain Keras cannot save a layer that keeps a reference to another layer.


def own_lines(err: str) -> list[str]:
    """weighttie's own lines on stderr. Through Keras, a backend may add lines of its
    own on some machines; tests never depend on what a backend prints."""
    return [line for line in err.splitlines() if line.startswith("weighttie")]


@pytest.mark.parametrize("name", sorted(set(zoo.ZOO) - zoo.UNSAVEABLE))
def test_report_load_states_groups_counts_and_calls(
    name: str, save, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through Keras (--load: built from the config without weight values, traced) the
    report is exactly the live one."""
    model = zoo.ZOO[name]()
    path = save(model)
    code, out, err = run(capsys, "report", str(path), "--format", "json", "--load")
    assert (code, own_lines(err)) == (0, [])
    from_file = weighttie.Report.from_json(out)
    live = weighttie.analyze(model)
    assert from_file.params == live.params
    assert from_file.groups == live.groups
    assert from_file.layers == live.layers
    assert from_file.variables == live.variables
    assert from_file.model.file == str(path)
    assert from_file.model.source == "traced"
    assert from_file.params.unique == model.count_params()


def test_table_is_the_default_and_ends_with_the_summary(save, capsys) -> None:
    path = save(zoo.siamese_lstm())
    code, out, err = run(capsys, "report", str(path))
    assert code == 0 and err == ""
    assert "G1 shared-layer" in out
    summary, cost = out.rstrip("\n").splitlines()[-2:]
    assert summary.startswith("Params: ")
    assert "1 sharing group" in summary
    assert cost.startswith("Cost: ")


def test_output_file_and_graph_file(save, tmp_path: Path, capsys) -> None:
    path = save(zoo.siamese_tower())
    out_file, graph_file = tmp_path / "r.md", tmp_path / "g.graphml"
    code, out, err = run(
        capsys,
        "report",
        str(path),
        "-f",
        "markdown",
        "-o",
        str(out_file),
        "--graph",
        str(graph_file),
    )
    assert (code, out, err) == (0, "", "")
    assert out_file.read_text().startswith("# Model 'siamese_tower'")
    assert "<graphml" in graph_file.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _one_line_error(code: int, out: str, err: str) -> str:
    """The error is one weighttie line, the last on stderr (a backend's own lines aside)."""
    assert code == 2
    assert out == ""
    (line,) = own_lines(err)
    assert line.startswith("weighttie: error: ") and err.endswith(line + "\n")
    assert "Traceback" not in err
    return line


def test_missing_file(capsys, tmp_path: Path) -> None:
    err = _one_line_error(*run(capsys, "report", str(tmp_path / "nope.keras")))
    assert "no such file" in err and "nope.keras" in err


def test_directory(capsys, tmp_path: Path) -> None:
    err = _one_line_error(*run(capsys, "report", str(tmp_path)))
    assert "is a directory" in err


def test_empty_file(capsys, tmp_path: Path) -> None:
    path = tmp_path / "empty.keras"
    path.write_bytes(b"")
    assert "is empty" in _one_line_error(*run(capsys, "report", str(path)))


def test_random_bytes(capsys, tmp_path: Path) -> None:
    path = tmp_path / "noise.keras"
    path.write_bytes(os.urandom(4096).replace(b"PK", b"pk"))
    err = _one_line_error(*run(capsys, "report", str(path)))
    assert "not a Keras model file" in err


def test_zip_that_is_not_a_model(capsys, tmp_path: Path) -> None:
    path = tmp_path / "notes.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("notes.txt", "hello")
    err = _one_line_error(*run(capsys, "report", str(path)))
    assert "has no config.json; expected a .keras archive written by Keras 3" in err


def test_truncated_archive(capsys, save, tmp_path: Path) -> None:
    path = save(zoo.siamese_lstm())
    cut = tmp_path / "cut.keras"
    cut.write_bytes(path.read_bytes()[:2000])
    assert "truncated or damaged" in _one_line_error(*run(capsys, "report", str(cut)))


def test_zip_with_the_wrong_extension(capsys, save, tmp_path: Path) -> None:
    path = save(zoo.siamese_lstm())
    renamed = path.rename(tmp_path / "model.zip")
    err = _one_line_error(*run(capsys, "report", str(renamed)))
    assert "rename it to .keras" in err


def test_unknown_class(capsys, tmp_path: Path, save) -> None:
    path = save(zoo.siamese_lstm())
    broken = tmp_path / "unknown.keras"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "config.json":
                data = data.replace(b'"class_name": "LSTM"', b'"class_name": "NoSuchLayer"')
            dst.writestr(item, data)
    code, out, err = run(capsys, "report", str(broken), "--load")  # the static report follows
    (line,) = [line for line in err.splitlines() if line.startswith("weighttie")]
    assert code == 0 and "source: static" in out
    assert line.startswith("weighttie: warning: --load could not build") and "NoSuchLayer" in line
    # the static reader reads the graph of a class it does not know
    code, out, err = run(capsys, "report", str(broken), "-f", "json")
    assert (code, err) == (0, "")
    (lstm,) = [r for r in json.loads(out)["layers"] if r["path"] == "lstm"]
    assert lstm["class"] == "NoSuchLayer" and len(lstm["nodes"]) == 2


def _lambda_model() -> keras.Model:
    """A Lambda whose code touches the file named by $WEIGHTTIE_TEST_MARKER when it runs."""
    x = keras.Input((3,), name="x")
    hook = keras.layers.Lambda(
        lambda t: (
            __import__("pathlib").Path(__import__("os").environ["WEIGHTTIE_TEST_MARKER"]).touch(),
            t,
        )[1],
        name="hook",
    )
    return keras.Model(x, keras.layers.Dense(1, name="out")(hook(x)))


def test_lambda_needs_unsafe_and_never_runs_without_it(
    capsys, save, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "lambda-ran"
    monkeypatch.setenv("WEIGHTTIE_TEST_MARKER", str(marker))
    path = save(_lambda_model())
    marker.unlink()  # building the model ran it once; the file must not run it again
    # the static reader reads the graph without running anything
    code, out, err = run(capsys, "report", str(path), "-f", "json")
    assert (code, err) == (0, "")
    assert json.loads(out)["model"]["source"] == "static"
    assert not marker.exists()
    # through Keras, safe mode refuses it
    err = _one_line_error(*run(capsys, "report", str(path), "--load"))
    assert "--unsafe" in err
    assert not marker.exists()
    code, out, err = run(capsys, "report", str(path), "--load", "--unsafe", "-f", "json")
    assert (code, own_lines(err)) == (0, [])
    assert json.loads(out)["model"]["source"] == "traced"
    assert marker.exists()  # with --unsafe the code did run: the flag means what it says


def test_output_into_a_missing_directory(capsys, save, tmp_path: Path) -> None:
    path = save(zoo.siamese_lstm())
    err = _one_line_error(*run(capsys, "report", str(path), "-o", str(tmp_path / "no" / "r.txt")))
    assert "does not exist" in err


def test_bad_graph_extension_writes_nothing(capsys, save, tmp_path: Path) -> None:
    path = save(zoo.siamese_lstm())
    err = _one_line_error(*run(capsys, "report", str(path), "--graph", str(tmp_path / "g.png")))
    assert ".graphml or .json" in err


@pytest.mark.parametrize(
    "argv",
    [[], ["report"], ["report", "x.keras", "--format", "yaml"], ["frobnicate"]],
)
def test_usage_errors_are_one_line_and_exit_2(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    _, err = capsys.readouterr()
    assert exc.value.code == 2
    assert err.count("\n") == 1 and err.startswith("weighttie")
    assert ": error: " in err and err.rstrip().endswith("(see --help)")


def test_help_has_examples(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["report", "--help"])
    assert exc.value.code == 0
    assert "weighttie report siamese.keras --format json" in capsys.readouterr().out


def test_console_script_runs_as_a_process(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("weighttie")
    result = subprocess.run(
        [str(exe), "report", str(tmp_path / "missing.keras")], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("weighttie: error: no such file")
    assert result.stderr.count("\n") == 1


def test_a_reader_that_stops_reading_ends_the_command_quietly(save) -> None:
    """Regression: ``weighttie report m.keras | true`` printed "internal error:
    BrokenPipeError"; now the command ends by SIGPIPE as ``cat`` does, saying nothing."""
    import signal

    path = save(zoo.siamese_tower())
    exe = Path(sys.executable).with_name("weighttie")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte is written
    try:
        result = subprocess.run(
            [str(exe), "report", str(path)], stdout=write_end, stderr=subprocess.PIPE, text=True
        )
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == -signal.SIGPIPE


@pytest.mark.parametrize("load", [False, True])
def test_no_findings_skips_them(save, capsys, load: bool) -> None:
    path = save(zoo.twin_towers())
    extra = ["--load"] if load else []
    code, out, _ = run(capsys, "report", str(path), "-f", "json", *extra)
    assert [f["kind"] for f in json.loads(out)["findings"]] == ["twin-branches"]
    code, out, _ = run(capsys, "report", str(path), "-f", "json", "--no-findings", *extra)
    assert code == 0 and json.loads(out)["findings"] == []


@pytest.mark.parametrize("load", [False, True])
def test_error_lines_escape_control_characters_from_the_file(
    save, tmp_path: Path, capsys, load: bool
) -> None:
    """A class name can carry escape sequences into Keras's error text: shown escaped."""
    path = save(zoo.siamese_tower())
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][-1]["class_name"] = "Evil\x1b]0;owned\x07\x1b[2J\nParams: 1 unique"
    config["config"]["layers"][-1]["config"]["name"] = "x\x1b[2J"
    members["config.json"] = json.dumps(config).encode()
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(bad, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    code, out, err = run(capsys, "report", str(bad), *(["--load"] if load else []))
    text = out + err
    assert "\x1b" not in text and "\x07" not in text
    assert not any(line.startswith("Params: 1 unique") for line in text.splitlines())
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("weighttie: error: ")


def test_html_and_svg_pictures_are_written_from_the_static_and_the_live_path(
    save, tmp_path: Path, capsys
) -> None:
    from weighttie.picture import to_html, to_svg
    from weighttie.static import read_report

    path = save(zoo.siamese_tower())
    for extra in ([], ["--load"]):
        html, svg = tmp_path / "p.html", tmp_path / "p.svg"
        code, out, _ = run(
            capsys, "report", str(path), "--html", str(html), "--svg", str(svg), *extra
        )
        assert code == 0 and out.startswith("Model ")
        report = weighttie.analyze(keras.saving.load_model(path)) if extra else read_report(path)
        if not extra:
            assert html.read_text() == to_html(report)
            assert svg.read_text() == to_svg(report)
        assert html.read_text().startswith("<!DOCTYPE html>")
        assert "<svg" in svg.read_text()
    assert weighttie.render(read_report(path), "svg") == to_svg(read_report(path))
    assert read_report(path)._repr_html_() == to_html(read_report(path), fragment=True)


def test_a_bad_picture_path_fails_before_anything_is_printed(save, tmp_path: Path, capsys) -> None:
    path = save(zoo.siamese_tower())
    code, out, err = run(capsys, "report", str(path), "--html", str(tmp_path / "no" / "p.html"))
    assert (code, out) == (2, "") and "does not exist" in err


def test_sort_name_lists_rows_by_path_and_model_order_is_the_default(save, capsys) -> None:
    path = save(zoo.siamese_tower())

    def first_column(text: str) -> list[str]:
        lines = text.split("\n\n")[1].splitlines()[2:]  # the layer table, without its header
        rows = [line for line in lines if line and not line.startswith((" ", "#i:"))]
        return [line.split()[0] for line in rows]

    _, by_model, _ = run(capsys, "report", str(path))
    _, by_name, _ = run(capsys, "report", str(path), "--sort", "name")
    assert first_column(by_name) == sorted(first_column(by_model))
    report = weighttie.read_report(path)
    assert first_column(by_model) == [r.path for r in sorted(report.layers, key=lambda r: r.order)]
    assert first_column(by_model) != first_column(by_name)


def _nested(depth: int) -> keras.Model:
    """A model nesting ``depth`` functional models, one inside the next."""
    x = keras.Input((2,))
    model = keras.Model(x, keras.layers.Dense(2)(x))
    for _ in range(depth - 1):
        x = keras.Input((2,))
        model = keras.Model(x, model(x))
    return model


def test_load_checks_the_file_once_within_the_users_limits(tmp_path: Path, capsys) -> None:
    """--load passes the user's limits to the one check before Keras (they were dropped:
    load_model parsed the config again with the default limits)."""
    path = tmp_path / "deep.keras"
    _nested(4).save(path)
    with pytest.raises(weighttie.LimitError, match="more than 2 levels deep"):
        weighttie.load_model(path, limits=weighttie.Limits(depth=2))
    code, out, err = run(capsys, "report", str(path), "--load", "--max-depth", "2")
    assert code == 2 and out == ""
    assert "more than 2 levels deep, the depth limit" in err and "--max-depth" in err
    assert weighttie.load_model(path, limits=weighttie.Limits(depth=5)).count_params() == 6


def test_load_error_keeps_the_reason_keras_gives_on_the_next_line(tmp_path: Path, capsys) -> None:
    """Keras ends its first line at a colon ("… for object <GRUCell …>:"); the reason
    ("expected 3 variables, but received 0") was cut off."""
    path = tmp_path / "cell.keras"
    zoo.shared_rnn_cell("GRUCell").save(path)
    code, out, err = run(capsys, "report", str(path), "--load")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "Layer 'cell' expected 3 variables, but received 0 variables" in err
    assert "the static report (without --load) reads the file without Keras" in err


_MY_LAYERS = """
import keras


@keras.saving.register_keras_serializable(package="mine")
class Doubler(keras.layers.Layer):
    def call(self, x):
        return x * 2.0
"""

_SAVE = """
import sys, keras, mylayers
x = keras.Input((3,))
keras.Model(x, mylayers.Doubler()(keras.layers.Dense(2)(x))).save(sys.argv[1])
"""


def test_import_names_the_module_of_custom_classes_for_load(tmp_path: Path) -> None:
    """--load of a file with a custom class: the static report, with one warning line that
    names --import, which builds it (it was exit 2 before --load was traced)."""
    (tmp_path / "mylayers.py").write_text(_MY_LAYERS)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    model = tmp_path / "custom.keras"
    subprocess.run([sys.executable, "-c", _SAVE, str(model)], cwd=tmp_path, env=env, check=True)
    command = [sys.executable, "-m", "weighttie", "report", str(model), "--load"]
    without = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert without.returncode == 0 and "source: static" in without.stdout
    (line,) = [line for line in without.stderr.splitlines() if line.startswith("weighttie")]
    assert line.startswith("weighttie: warning: --load could not build")
    assert "--import your.module" in line and "Traceback" not in without.stderr
    with_it = subprocess.run(
        [*command, "--import", "mylayers"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert with_it.returncode == 0, with_it.stderr
    assert "doubler" in with_it.stdout and "source: traced" in with_it.stdout


def test_import_needs_load_and_an_importable_module(save, capsys) -> None:
    path = save(zoo.siamese_tower(), "tower.keras")
    code, out, err = run(capsys, "report", str(path), "--import", "json")
    assert code == 2 and "it needs --load" in err
    code, out, err = run(capsys, "report", str(path), "--load", "--import", "no_such_module_x")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "--import no_such_module_x: the module could not be imported" in err
