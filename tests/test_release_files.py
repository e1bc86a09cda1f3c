"""Files written by every Keras release, read by today's static reader.

``tests/fixtures/releases/`` holds, per release that wrote them, the same shared
models (``make_files.py`` there builds them: a siamese LSTM, a nested tower called
on three inputs, a Conv2D called on two input sizes, a mixed_float16 Dense shared
by two inputs, a stack of shared Embedding, Bidirectional GRU and Sequential
tower, and, from Keras 3, a subclassed siamese model), as ``.keras`` (Keras 3.0 -
3.15) and legacy ``.h5`` (Keras 3's ``model.save("x.h5")``, tf.keras 2.12 - 2.15,
tf_keras 2.16 and 2.21), packed in ``<writer>.tar.xz``, and beside them
``<writer>.json``: what that release's Keras said at save time. Every number here
comes from that JSON or from another file; none is typed by hand. No old Keras is
needed to run these tests.
"""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from weighttie import Report
from weighttie.cli import main
from weighttie.static import read_report

RELEASES = Path(__file__).parent / "fixtures" / "releases"


def _version(writer: str) -> tuple[int, ...]:
    return tuple(int(part) for part in writer.rpartition("-")[2].split("."))


WRITERS = sorted((p.stem for p in RELEASES.glob("*.json")), key=lambda w: (w[:5], _version(w)))
TRUTH: dict[str, dict[str, Any]] = {
    writer: json.loads((RELEASES / f"{writer}.json").read_text(encoding="utf-8"))
    for writer in WRITERS
}
KERAS3 = sorted((w for w in WRITERS if w.startswith("keras-")), key=_version)
FILES = [
    (writer, stem, file)
    for writer in WRITERS
    for stem, model in sorted(TRUTH[writer]["models"].items())
    for file in model["files"]
]


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every writer's files, unpacked into ``<tmp>/<writer>/``."""
    root = tmp_path_factory.mktemp("releases")
    for writer in WRITERS:
        folder = root / writer
        folder.mkdir()
        with tarfile.open(RELEASES / f"{writer}.tar.xz") as tar:
            for member in tar.getmembers():
                source = tar.extractfile(member)
                assert member.isfile() and "/" not in member.name and source is not None
                (folder / member.name).write_bytes(source.read())
    return root


def _subtree_held(report: Report, path: str) -> int:
    """Σ held over a row and the rows below it: what Keras's ``layer.count_params()`` counts."""
    return sum(
        row.params.held
        for row in report.layers
        if row.path == path or row.path.startswith(path + "/")
    )


def test_every_release_of_the_range_is_here() -> None:
    """The fixtures cover Keras 3.0 to the newest release the suite ran on, and Keras 2."""
    minors = {_version(w)[:2] for w in KERAS3}
    assert {(3, minor) for minor in range(0, 16)} <= minors
    assert {"tf-2.12", "tf-2.13", "tf-2.14", "tf-2.15", "tf_keras-2.16"} <= set(WRITERS)
    for writer in WRITERS:
        assert TRUTH[writer]["writer"]["keras"].startswith(writer.rpartition("-")[2])


@pytest.mark.parametrize(("writer", "stem", "file"), FILES)
def test_counts_equal_the_writing_releases(
    writer: str, stem: str, file: str, unpacked: Path
) -> None:
    truth = TRUTH[writer]["models"][stem]
    report = read_report(unpacked / writer / file)
    assert report.model.keras_version == TRUTH[writer]["writer"]["keras"]
    params = report.params
    assert (params.unique, params.trainable_unique, params.non_trainable_unique) == (
        truth["count_params"],
        truth["trainable"],
        truth["non_trainable"],
    )
    if truth["per_use"] is None:  # a subclassed model: calls are its code's, not in the file
        assert (params.per_use, params.duplicated) == (None, None)
        assert report.model.notes and not truth["layers"]
        return
    assert params.per_use == truth["per_use"]
    assert params.duplicated == truth["per_use"] - truth["count_params"]
    for path, layer in truth["layers"].items():
        row = report.layer(path)
        assert row.class_name == layer["class_name"], path
        assert _subtree_held(report, path) == layer["count_params"], path
        assert row.nodes is not None and len(row.nodes) == layer["calls"], path
        shapes = [[list(s) if s is not None else None for s in n.output_shapes] for n in row.nodes]
        assert shapes == layer["output_shapes"], path


@pytest.mark.parametrize(("writer", "stem", "file"), FILES)
def test_sharing_is_the_layers_keras_called_more_than_once(
    writer: str, stem: str, file: str, unpacked: Path
) -> None:
    """One group per layer (or nested model) of the model called more than once and
    holding variables; its duplicated count is its parameters × the calls after the first."""
    truth = TRUTH[writer]["models"][stem]["layers"]
    shared = {
        path: layer
        for path, layer in truth.items()
        if "/" not in path and layer["calls"] > 1 and layer["count_params"]
    }
    report = read_report(unpacked / writer / file)
    groups = {group.layers: group for group in report.groups}
    assert sorted(groups) == sorted((path,) for path in shared)
    for path, layer in shared.items():
        group = groups[(path,)]
        assert (group.params, group.calls) == (layer["count_params"], layer["calls"])
        assert group.duplicated == layer["count_params"] * (layer["calls"] - 1)


def _variables(report: Report, graph: bool) -> list[tuple[Any, ...]]:
    """Each variable's facts; without a graph in the file (a subclassed model), without its
    path and holders: Keras 3.0 - 3.5 name no layer, and a subclassed model's config names
    none either, so its layers are named by the weights file's groups."""
    if not graph:
        return sorted((v.shape, v.dtype, v.trainable, v.uses) for v in report.variables)
    return sorted(
        (v.path, v.shape, v.dtype, v.trainable, v.layers, v.uses) for v in report.variables
    )


@pytest.mark.parametrize("writer", KERAS3[:-1])
def test_older_keras3_files_read_as_the_newest(writer: str, unpacked: Path) -> None:
    """Every Keras 3 file of a model, .keras or .h5, gives the variables (paths, shapes,
    dtypes, trainable, holders, uses) that the newest release's .keras gives; Keras
    3.0 - 3.5 write no layer names in model.weights.h5, and 3.0 - 3.2 no layer names
    in a legacy .h5's weight names."""
    newest = KERAS3[-1]
    for stem, model in TRUTH[writer]["models"].items():
        graph = model["per_use"] is not None
        expected = _variables(read_report(unpacked / newest / f"{stem}.keras"), graph)
        for file in model["files"]:
            assert _variables(read_report(unpacked / writer / file), graph) == expected, file


def test_files_a_release_could_not_write_are_said() -> None:
    """Keras 3.0 - 3.2 fail to save a nested model as .h5: the fixtures record it rather
    than leave a file out silently."""
    for writer in WRITERS:
        for stem, model in TRUTH[writer]["models"].items():
            written = set(model["files"]) | set(model.get("not_written", {}))
            expected = {f"{stem}.h5"} | ({f"{stem}.keras"} if writer in KERAS3 else set())
            assert model["files"], (writer, stem)
            assert written == expected, (writer, stem)


def test_the_command_line_reports_an_old_file(
    unpacked: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`weighttie report` of a Keras 3.0 .keras file: the writer's numbers, exit 0."""
    writer = KERAS3[0]
    truth = TRUTH[writer]["models"]["siamese_lstm"]
    assert main(["report", str(unpacked / writer / "siamese_lstm.keras"), "--format", "json"]) == 0
    params = json.loads(capsys.readouterr().out)["params"]
    assert (params["unique"], params["per_use"]) == (truth["count_params"], truth["per_use"])


def test_a_damaged_old_file_is_one_line_and_exit_2(
    unpacked: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Keras 3.0 file (no layer names in its weights file) whose weights are cut short
    is refused as any damaged file is: one line on stderr, exit 2, no report."""
    source = unpacked / KERAS3[0] / "shared_stack.keras"
    damaged = tmp_path / "damaged.keras"
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(damaged, "w") as new:
        for item in old.infolist():
            data = old.read(item)
            new.writestr(item, data[: len(data) // 2] if item.filename.endswith(".h5") else data)
    assert main(["report", str(damaged)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "damaged" in captured.err
