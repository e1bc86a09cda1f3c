"""Files written by every Keras release, read by today's static reader.

``tests/fixtures/releases/`` holds, per release that wrote them, the same shared
models (``make_files.py`` there builds them: a siamese LSTM, a nested tower called
on three inputs, a Conv2D called on two input sizes, a mixed_float16 Dense shared
by two inputs, a stack of shared Embedding, Bidirectional GRU and Sequential
tower; layer objects at two places: a cell given to two RNN layers, a Dense in
TimeDistributed and called directly, a Bidirectional's backward GRU also called
directly, a Dense inside two nested models, a nested model at two places, beside
towers that must not be taken for one; and, from Keras 3, a subclassed siamese
model), as ``.keras`` (Keras 3.0 - 3.15) and legacy ``.h5`` (Keras 3's
``model.save("x.h5")``, tf.keras 2.12 - 2.15, tf_keras 2.16 and 2.21), packed
together in ``releases.tar.xz`` (as ``<writer>/<file>``), and beside it
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

from support import FIXTURES
from weighttie import Report
from weighttie.cli import main
from weighttie.static import read_report

RELEASES = FIXTURES / "releases"


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
        (root / writer).mkdir()
    with tarfile.open(RELEASES / "releases.tar.xz") as tar:
        for member in tar.getmembers():
            source = tar.extractfile(member)
            writer, _, name = member.name.partition("/")
            assert member.isfile() and source is not None, member.name
            assert writer in WRITERS and name and "/" not in name, member.name
            (root / writer / name).write_bytes(source.read())
    return root


def test_the_archive_holds_the_files_the_truth_lists() -> None:
    """releases.tar.xz holds each writer's files, those its JSON lists and no other."""
    with tarfile.open(RELEASES / "releases.tar.xz") as tar:
        packed = sorted(tar.getnames())
    assert packed == sorted(f"{writer}/{file}" for writer, _, file in FILES)


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


def _unclear(report: Report) -> set[str]:
    """Rows whose equal copies the file cannot tell from one variable (a Keras 3 legacy
    .h5 of a layer inside two nested models, a 3.0 - 3.2 one of a shared cell): the
    reader says their uses are unknown, with a note."""
    return {path for v in report.variables if v.uses is None for path in v.layers}


def _split(
    truth: list[list[Any]], unclear: set[str]
) -> tuple[list[Any], list[Any], tuple[int, int]]:
    """Keras's variables ([holders, uses, size, trainable]) of a model: those the file
    tells (holders, uses, size), each unclear one as one stored copy per holder (holder,
    size), and the trainable and non-trainable parameters those copies add to Keras's."""
    told, copies, extra = [], [], [0, 0]
    for holders, uses, size, trainable in truth:
        if set(holders) & unclear:
            copies += [(holder, size) for holder in holders]
            extra[0 if trainable else 1] += size * (len(holders) - 1)
        else:
            told.append((tuple(holders), uses, size))
    return sorted(told), sorted(copies), (extra[0], extra[1])


@pytest.mark.parametrize(("writer", "stem", "file"), FILES)
def test_counts_equal_the_writing_releases(
    writer: str, stem: str, file: str, unpacked: Path
) -> None:
    """The writer's counts; where the file cannot tell one variable from equal copies
    (and only there), unique counts the copies, the per-use counts are unknown, and a
    note says so."""
    truth = TRUTH[writer]["models"][stem]
    report = read_report(unpacked / writer / file)
    assert report.model.keras_version == TRUTH[writer]["writer"]["keras"]
    params = report.params
    if truth["per_use"] is None:  # a subclassed model: calls are its code's, not in the file
        assert (params.unique, params.trainable_unique, params.non_trainable_unique) == (
            truth["count_params"],
            truth["trainable"],
            truth["non_trainable"],
        )
        assert (params.per_use, params.duplicated) == (None, None)
        assert report.model.notes and not truth["layers"]
        return
    unclear = _unclear(report)
    _, _, (trainable, non_trainable) = _split(truth["variables"], unclear)
    assert (params.unique, params.trainable_unique, params.non_trainable_unique) == (
        truth["count_params"] + trainable + non_trainable,
        truth["trainable"] + trainable,
        truth["non_trainable"] + non_trainable,
    )
    if unclear:
        assert file.endswith(".h5") and not writer.startswith("tf")
        assert (params.per_use, params.duplicated) == (None, None)
        assert any("does not say whether" in note for note in report.model.notes)
    else:
        assert params.per_use == truth["per_use"]
        assert params.duplicated == truth["per_use"] - truth["count_params"]
    for path, layer in truth["layers"].items():
        row = report.layer(path)
        assert row.class_name == layer["class_name"], path
        assert _subtree_held(report, path) == layer["count_params"], path
        assert row.nodes is not None and len(row.nodes) == layer["calls"], path
        shapes = [[list(s) if s is not None else None for s in n.output_shapes] for n in row.nodes]
        assert shapes == layer["output_shapes"], path


@pytest.mark.parametrize(("writer", "stem", "file"), [f for f in FILES if f[1] != "subclassed"])
def test_each_variable_is_the_writing_releases(
    writer: str, stem: str, file: str, unpacked: Path
) -> None:
    """Each variable object Keras held at save time is one variable of the report, with
    the same holders (a layer object at two places holds it at both), uses and size;
    where the file cannot tell, its copies are the stored ones, one per holder."""
    truth = TRUTH[writer]["models"][stem]["variables"]
    report = read_report(unpacked / writer / file)
    unclear = _unclear(report)
    told, copies, _ = _split(truth, unclear)
    assert (
        sorted((v.layers, v.uses, v.size) for v in report.variables if v.uses is not None) == told
    )
    stored = sorted((path, v.size) for v in report.variables if v.uses is None for path in v.layers)
    assert stored == copies
    for finding in report.findings:  # no finding about what the file cannot tell
        assert not set(finding.layers) <= unclear, finding


@pytest.mark.parametrize(("writer", "stem", "file"), FILES)
def test_sharing_is_the_layers_keras_called_more_than_once(
    writer: str, stem: str, file: str, unpacked: Path
) -> None:
    """One group per layer (or nested model) of the model called more than once and
    holding variables, its duplicated count its parameters × the calls after the first;
    and one per layer object with variables that sits at several places, naming them."""
    model = TRUTH[writer]["models"][stem]
    truth = model["layers"]
    shared = {
        path: layer
        for path, layer in truth.items()
        if "/" not in path and layer["calls"] > 1 and layer["count_params"]
    }
    places = {tuple(paths) for paths in model.get("places") or ()}
    report = read_report(unpacked / writer / file)
    unclear = _unclear(report)
    places = {p for p in places if not any(_covers(path, unclear) for path in p)}
    groups = {group.layers: group for group in report.groups}
    assert sorted(groups) == sorted({(path,) for path in shared} | places)
    for path, layer in shared.items():
        group = groups[(path,)]
        assert (group.params, group.calls) == (layer["count_params"], layer["calls"])
        assert group.duplicated == layer["count_params"] * (layer["calls"] - 1)
    for paths in places:
        assert groups[paths].params == _subtree_held(report, paths[0])


def _covers(path: str, rows: set[str]) -> bool:
    """Whether ``path`` is one of ``rows`` or holds one."""
    return any(row == path or row.startswith(path + "/") for row in rows)


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
            report = read_report(unpacked / writer / file)
            if graph and _unclear(report):  # said unknown: test_each_variable_… checks it
                continue
            assert _variables(report, graph) == expected, file


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
