"""Model folders read statically: keras_hub presets (plain and sharded), Keras's sharded
weights and unzipped saves, and every refusal a folder can earn.

Presets are made offline from constructor arguments with ``save_to_preset``; Keras's
``count_params()`` and the static report of the same model saved as ``.keras`` are
the oracles.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import statistics
import struct
import sys
from pathlib import Path
from typing import Any

import h5py
import keras
import pytest
from h5py import h5o

import weighttie
from support import REPO
from support.cli_run import run
from support.cpu_floor import FLOOR_TIMES, child_cpu, floor_cpu
from weighttie.errors import FileFormatError, LimitError
from weighttie.io.hdf5_guard import Heaps, referenced_collections
from weighttie.limits import Limits
from weighttie.static import read_report

keras_hub = pytest.importorskip("keras_hub")

from static.test_keras_hub_static import BLOCKER, NO_KERAS, _size  # noqa: E402
from support.hub_zoo import FAMILIES, backbone_and_task  # noqa: E402

TINY_SHARD_GB = 3e-6  # about 3 KB: every tiny preset is split into several shards


class Preset:
    """One task model saved as a preset folder (plain and sharded) and as .keras."""

    def __init__(self, name: str, directory: Path) -> None:
        backbone, task = backbone_and_task(name)
        self.plain = directory / f"{name}_preset"
        self.sharded = directory / f"{name}_sharded"
        self.backbone = directory / f"{name}_backbone_preset"
        self.keras = directory / f"{name}.keras"
        task.save_to_preset(str(self.plain))
        task.save_to_preset(str(self.sharded), max_shard_size=TINY_SHARD_GB)
        backbone.save_to_preset(str(self.backbone))
        task.save(self.keras)
        self.class_name = type(task).__name__
        self.backbone_class = type(backbone).__name__
        self.count_params = task.count_params()
        self.backbone_params = backbone.count_params()
        self.trainable = _size(task.trainable_weights)


@pytest.fixture(scope="module")
def presets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Preset]:
    directory = tmp_path_factory.mktemp("presets")
    return {name: Preset(name, directory) for name in FAMILIES}


def _variables(folder_or_file: Path) -> set[tuple[str, tuple[int, ...], str]]:
    return {(v.path, v.shape, v.dtype) for v in read_report(folder_or_file).variables}


# -- what keras_hub writes ---------------------------------------------------------------


def test_preset_files_are_what_keras_hub_writes(presets: dict[str, Preset]) -> None:
    bert = presets["bert"]
    assert sorted(os.listdir(bert.plain)) == [
        "config.json",
        "metadata.json",
        "model.weights.h5",
        "task.json",
        "task.weights.h5",  # the masked-LM head's own weights
    ]
    sharded = sorted(os.listdir(bert.sharded))
    shards = [n for n in sharded if n.startswith("model_")]
    assert "model.weights.json" in sharded and "model.weights.h5" not in sharded
    assert len(shards) >= 2 and shards[0] == "model_00000.weights.h5"
    index = json.loads((bert.sharded / "model.weights.json").read_text())
    assert set(index) == {"metadata", "weight_map"}
    # one layer's variables can be split over two shards
    assert any(isinstance(v, list) and len(v) > 1 for v in index["weight_map"].values())


# -- counts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["plain", "sharded"])
@pytest.mark.parametrize("name", FAMILIES)
def test_preset_counts_equal_count_params(presets: dict[str, Preset], name: str, kind: str) -> None:
    preset = presets[name]
    report = read_report(getattr(preset, kind))
    assert report.model.class_name == preset.class_name
    assert report.model.source == "static"
    assert report.params.unique == preset.count_params
    assert report.params.trainable_unique == preset.trainable
    assert report.params.per_use is None  # a preset states no calls
    # the same variables, at the same paths, as the task saved as .keras
    assert _variables(getattr(preset, kind)) == _variables(preset.keras)


@pytest.mark.parametrize("name", FAMILIES)
def test_backbone_preset_is_the_backbone(presets: dict[str, Preset], name: str) -> None:
    preset = presets[name]
    report = read_report(preset.backbone)
    assert report.model.class_name == preset.backbone_class
    assert report.params.unique == preset.backbone_params


def test_sharded_keras_weights_of_a_functional_model(tmp_path: Path) -> None:
    """Keras's own sharded weights (``save_weights(..., max_shard_size=...)``) beside the
    config of ``model.save(folder, zipped=False)``: a graph, so calls are known."""
    inputs = keras.Input((4,))
    shared = keras.layers.Dense(16, name="shared")
    outputs = keras.layers.Add()([shared(inputs), shared(keras.layers.Dense(4)(inputs))])
    model = keras.Model(inputs, keras.layers.Dense(3)(outputs))
    folder = tmp_path / "functional"
    model.save(folder, zipped=False)
    whole = read_report(folder)
    (folder / "model.weights.h5").unlink()
    model.save_weights(folder / "model.weights.json", max_shard_size=3e-7)
    assert len(list(folder.glob("model_*.weights.h5"))) >= 2
    sharded = read_report(folder)
    assert sharded.params.unique == whole.params.unique == model.count_params()
    assert sharded.params.per_use == whole.params.per_use == model.count_params() + 4 * 16 + 16
    assert [g.layers for g in sharded.groups] == [("shared",)]
    assert sharded.model.notes == ()


# -- the command line -------------------------------------------------------------------------


def test_report_check_snapshot_and_diff_take_a_folder(
    presets: dict[str, Preset], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gpt2 = presets["gpt2"]
    code, out, err = run(capsys, "report", str(gpt2.sharded), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["params"]["unique"] == gpt2.count_params
    spec = tmp_path / "spec.toml"
    assert run(capsys, "snapshot", str(gpt2.plain), "-o", str(spec))[0] == 0
    assert "# per_use: unknown in this static report" in spec.read_text()
    assert run(capsys, "check", str(gpt2.sharded), "--spec", str(spec))[0] == 0
    code, out, _ = run(capsys, "diff", str(gpt2.plain), str(gpt2.sharded))
    assert code == 1  # calls unknown: not everything could be compared (docs/cli.md)
    assert out.startswith("No differences in what both reports know.\n? not compared: ")


def _refused(capsys: pytest.CaptureFixture[str], folder: Path, *extra: str) -> str:
    code, out, err = run(capsys, "report", str(folder), *extra)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("weighttie: error: ") and "Traceback" not in err
    return err


@pytest.fixture
def copy(presets: dict[str, Preset], tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh copy of the BERT sharded preset, to damage."""

    def _copy(kind: str = "sharded") -> Path:
        target = tmp_path / f"bert_{kind}"
        shutil.copytree(getattr(presets["bert"], kind), target, symlinks=True)
        return target

    return _copy


def test_folder_without_config_is_refused(copy, capsys) -> None:  # type: ignore[no-untyped-def]
    folder = copy()
    (folder / "config.json").unlink()
    assert "is a directory without config.json" in _refused(capsys, folder)


def test_folder_without_weights_is_refused(copy, capsys) -> None:  # type: ignore[no-untyped-def]
    folder = copy()
    (folder / "model.weights.json").unlink()
    assert "holds neither model.weights.h5 nor model.weights.json" in _refused(capsys, folder)


@pytest.mark.parametrize(
    ("index", "message"),
    [
        ("{not json", "is not valid JSON"),
        ('{"metadata": {}}', "has no weight_map"),
        ('{"weight_map": {"/vars": "../model_00000.weights.h5"}}', "expected the file name"),
        ('{"weight_map": {"/vars": "/etc/passwd"}}', "expected the file name"),
        ('{"weight_map": {"/vars": "model_00099.weights.h5"}}', "1 shard missing"),
        ('{"weight_map": {"/vars": []}}', "maps '/vars' to no shard"),
    ],
)
def test_bad_index_is_refused(copy, capsys, index: str, message: str) -> None:  # type: ignore[no-untyped-def]
    folder = copy()
    (folder / "model.weights.json").write_text(index)
    assert message in _refused(capsys, folder)


def test_missing_shard_is_refused(copy, capsys) -> None:  # type: ignore[no-untyped-def]
    folder = copy()
    (folder / "model_00001.weights.h5").unlink()
    assert "missing from the folder: 'model_00001.weights.h5'" in _refused(capsys, folder)


def _index(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "model.weights.json").read_text())


def _rewrite(folder: Path, weight_map: dict[str, Any]) -> None:
    index = _index(folder)
    index["weight_map"] = weight_map
    (folder / "model.weights.json").write_text(json.dumps(index))


def test_index_mapping_keys_to_the_wrong_shard_is_refused(copy, capsys) -> None:  # type: ignore[no-untyped-def]
    """Every key mapped to the first shard: the other shards' variables would be lost."""
    folder = copy()
    weight_map = _index(folder)["weight_map"]
    _rewrite(folder, dict.fromkeys(weight_map, "model_00000.weights.h5"))
    err = _refused(capsys, folder)
    with h5py.File(folder / "model_00000.weights.h5") as h5:
        first = next(k for k in weight_map if not len(h5.get(k.lstrip("/"), ())))
    assert f"maps {first!r} to 'model_00000.weights.h5', which holds no variables there" in err


def test_index_naming_an_extra_shard_for_a_key_is_refused(copy, capsys) -> None:  # type: ignore[no-untyped-def]
    folder = copy()
    weight_map = _index(folder)["weight_map"]
    key, shard = next((k, v) for k, v in weight_map.items() if isinstance(v, str))
    other = next(n for n in sorted(os.listdir(folder)) if n.startswith("model_") and n != shard)
    _rewrite(folder, {**weight_map, key: [shard, other]})
    assert f"maps {key!r} to {other!r}, which holds no variables there" in _refused(capsys, folder)


def test_index_without_a_key_a_shard_holds_is_refused(copy, capsys) -> None:  # type: ignore[no-untyped-def]
    folder = copy()
    weight_map = _index(folder)["weight_map"]
    key = sorted(weight_map)[-1]
    shard = weight_map.pop(key)
    shard = shard if isinstance(shard, str) else shard[0]
    _rewrite(folder, weight_map)
    err = _refused(capsys, folder)
    assert f"does not list {key!r}, which shard {shard!r} holds" in err


def test_index_naming_one_of_two_shards_of_a_split_key_is_refused(copy, capsys) -> None:  # type: ignore[no-untyped-def]
    """A layer's variables split over two shards, the index naming only the first."""
    folder = copy()
    weight_map = _index(folder)["weight_map"]
    key, (first, second) = next(
        (k, v) for k, v in weight_map.items() if isinstance(v, list) and len(v) == 2
    )
    _rewrite(folder, {**weight_map, key: first})
    err = _refused(capsys, folder)
    assert f"maps {key!r} to {first!r}, but shard {second!r} holds variables there too" in err


def test_keras_refuses_the_wrong_shard_too(tmp_path: Path) -> None:
    """The oracle: Keras's own loader of sharded weights fails on the same damage."""
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(16)(inputs)))
    folder = tmp_path / "functional"
    model.save(folder, zipped=False)
    (folder / "model.weights.h5").unlink()
    model.save_weights(folder / "model.weights.json", max_shard_size=3e-7)
    weight_map = _index(folder)["weight_map"]
    assert len(set(map(str, weight_map.values()))) >= 2
    _rewrite(folder, dict.fromkeys(weight_map, "model_00000.weights.h5"))
    with pytest.raises(FileFormatError, match="which holds no variables there"):
        read_report(folder)
    with pytest.raises(ValueError, match="expected 2 variables, but received 0"):
        model.load_weights(folder / "model.weights.json")


def test_a_shard_the_index_does_not_name_is_not_read_and_noted(
    copy, presets: dict[str, Preset], capsys
) -> None:  # type: ignore[no-untyped-def]
    """A shard left from an earlier save: Keras does not read it, nor does the reader,
    and the report says so."""
    folder = copy()
    shutil.copy(folder / "model_00000.weights.h5", folder / "model_00042.weights.h5")
    report = read_report(folder)
    assert report.params.unique == presets["bert"].count_params
    assert report.model.notes[-1] == (
        "Not read: model_00042.weights.h5 in the folder: model.weights.json does not name it "
        "(left from an earlier save?); Keras does not load it either"
    )
    code, out, err = run(capsys, "report", str(folder))
    assert (code, err) == (0, "")
    assert "Note: Not read: model_00042.weights.h5" in out
    assert read_report(presets["bert"].sharded).model.notes == report.model.notes[:-1]


def test_shards_beside_model_weights_h5_are_not_read_and_noted(
    copy, presets: dict[str, Preset]
) -> None:  # type: ignore[no-untyped-def]
    """keras_hub loads model.weights.h5 when it is there; shards beside it are noted."""
    folder = copy("plain")
    for shard in sorted(presets["bert"].sharded.glob("model_*.weights.h5"))[:2]:
        shutil.copy(shard, folder / shard.name)
    report = read_report(folder)
    assert report.params.unique == presets["bert"].count_params
    assert report.model.notes[-1] == (
        "Not read: model_00000.weights.h5, model_00001.weights.h5 in the folder: the weights "
        "are model.weights.h5, which keras_hub loads rather than shards; Keras does not load "
        "them either"
    )


def test_a_missing_path_mentions_folders(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    err = _refused(capsys, tmp_path / "nowhere")
    assert err == (
        f"weighttie: error: no such file or folder: {str(tmp_path / 'nowhere')!r}; expected a "
        ".keras or .h5 model file, or a model folder (a keras_hub preset, sharded weights)\n"
    )


def test_a_layer_without_a_name_names_the_file(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    folder = tmp_path / "model"
    model.save(folder, zipped=False)
    config = json.loads((folder / "config.json").read_text())
    del config["config"]["name"]
    del config["config"]["layers"][1]["config"]["name"]
    del config["config"]["layers"][1]["name"]
    (folder / "config.json").write_text(json.dumps(config))
    err = _refused(capsys, folder)
    where = f"{str(folder)!r}: config.json"
    assert f"{where}: layer 1 of a model without a name has no valid name" in err


def test_shard_with_an_external_link_is_refused(copy, capsys) -> None:  # type: ignore[no-untyped-def]
    folder = copy()
    with h5py.File(folder / "model_00001.weights.h5", "a") as h5:
        h5["layers/outside"] = h5py.ExternalLink("/etc/hostname", "/x")
    assert "weighttie reads only self-contained weights files" in _refused(capsys, folder)


def test_fifo_in_a_folder_is_refused_without_blocking(copy, capsys) -> None:  # type: ignore[no-untyped-def]
    folder = copy("plain")
    (folder / "model.weights.h5").unlink()
    os.mkfifo(folder / "model.weights.h5")
    assert "expected a weights file" in _refused(capsys, folder)


def test_symlink_out_of_the_folder_is_followed_to_a_regular_file(
    copy, tmp_path: Path, presets: dict[str, Preset]
) -> None:  # type: ignore[no-untyped-def]
    """A Hugging Face cache links each file of a snapshot to a blob outside the folder."""
    folder = copy("plain")
    blob = tmp_path / "blobs" / "0123abcd"
    blob.parent.mkdir()
    (folder / "model.weights.h5").rename(blob)
    (folder / "model.weights.h5").symlink_to(blob)
    assert read_report(folder).params.unique == presets["bert"].count_params


def test_broken_symlink_is_refused(copy, capsys) -> None:  # type: ignore[no-untyped-def]
    folder = copy("backbone")  # no task.json: config.json is the model's config
    (folder / "config.json").unlink()
    (folder / "config.json").symlink_to(folder / "nowhere.json")
    assert "config.json is missing or a broken link" in _refused(capsys, folder)


def test_load_of_a_folder_builds_it_without_values(presets: dict[str, Preset], capsys) -> None:  # type: ignore[no-untyped-def]
    """--load of a preset folder was refused; now keras_hub builds it without weight values
    (tests/traced/test_traced.py compares it with from_preset)."""
    code, out, err = run(capsys, "report", str(presets["gpt2"].sharded), "--load", "-f", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["model"]["source"] == "traced"
    assert doc["params"]["unique"] == presets["gpt2"].count_params
    assert doc["params"]["duplicated"] > 0  # the token embedding runs twice


def test_h5_objects_limit_holds_for_the_folder_as_a_whole(presets: dict[str, Preset]) -> None:
    folder = presets["bert"].sharded
    shards = sorted(folder.glob("model_*.weights.h5"))
    largest = 0
    for shard in shards:
        names: list[str] = []
        with h5py.File(shard) as h5:
            h5.visit(names.append)
        largest = max(largest, len(names))
    with pytest.raises(LimitError, match="h5_objects"):
        read_report(folder, limits=Limits(h5_objects=largest + 1))
    assert read_report(folder).params.unique == presets["bert"].count_params


def test_task_json_without_backbone_is_refused(copy) -> None:  # type: ignore[no-untyped-def]
    folder = copy("plain")
    (folder / "task.json").write_text('{"class_name": "BertMaskedLM", "config": {}}')
    with pytest.raises(FileFormatError, match="names no backbone class"):
        read_report(folder)


def test_sizes_match_the_index_total(presets: dict[str, Preset]) -> None:
    """The index's total_size is the bytes of the backbone's variables."""
    folder = presets["gemma"].sharded
    index = json.loads((folder / "model.weights.json").read_text())
    report = read_report(folder)
    (root,) = [r.path for r in report.layers if r.class_name == "GemmaBackbone"]
    backbone = [v for v in report.variables if v.path.startswith(root + "/")]
    assert backbone
    assert index["metadata"]["total_size"] == sum(math.prod(v.shape) * 4 for v in backbone)


# -- heaps and holes ------------------------------------------------------------------------


def test_looping_heap_in_a_sparse_shard_is_refused(copy, capsys) -> None:  # type: ignore[no-untyped-def]
    """The global-heap check skips a sparse file's holes, never its data."""
    folder = copy()
    shard = folder / "model_00000.weights.h5"
    data = bytearray(shard.read_bytes())
    start = data.find(b"GCOL")
    place = start + 16
    while True:  # to the free-space object (index 0), which ends the collection
        (index,) = struct.unpack("<H", data[place : place + 2])
        (length,) = struct.unpack("<Q", data[place + 8 : place + 16])
        if index == 0:
            break
        place += 16 + (length + 7) // 8 * 8
    data[place + 8 : place + 16] = struct.pack("<Q", 0)
    shard.write_bytes(bytes(data))
    os.truncate(shard, len(data) + (256 << 20))  # a 256 MB hole after the data
    assert "HDF5 would decode forever" in _refused(capsys, folder)


# -- an LLM-sized file, declared but not written ----------------------------------------------

BENCHMARKS = REPO / "benchmarks"


def _synthetic_llm() -> Any:
    spec = importlib.util.spec_from_file_location("synthetic_llm", BENCHMARKS / "synthetic_llm.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["synthetic_llm"] = module
    spec.loader.exec_module(module)
    return module


def test_synthetic_decoder_has_the_layout_keras_hub_writes(tmp_path: Path) -> None:
    """The benchmark's synthetic preset, at tiny sizes, equals a real GPT-2 preset."""
    llm = _synthetic_llm()
    sizes = {
        "vocabulary_size": 50,
        "num_layers": 3,
        "num_heads": 2,
        "hidden_dim": 8,
        "intermediate_dim": 24,
        "max_sequence_length": 12,
    }
    llm.write_preset(tmp_path / "synthetic", llm.Decoder(**sizes), shard_bytes=2048)
    backbone = keras_hub.models.GPT2Backbone(**sizes)
    backbone.save_to_preset(str(tmp_path / "real"), max_shard_size=TINY_SHARD_GB)
    synthetic, real = read_report(tmp_path / "synthetic"), read_report(tmp_path / "real")
    assert synthetic.params.unique == llm.Decoder(**sizes).params() == backbone.count_params()
    assert _variables(tmp_path / "synthetic") == _variables(tmp_path / "real")
    # (weightless layers' names, softmax_3 …, depend on what else the process built)
    held = [r.path for r in synthetic.layers if r.variables]
    assert held == [r.path for r in real.layers if r.variables]
    assert len(list((tmp_path / "synthetic").glob("model_*.weights.h5"))) >= 2


@pytest.mark.budget
def test_llm_sized_preset_reports_in_under_a_second(tmp_path: Path) -> None:
    """A 32-block decoder declaring 6.9 GB of weights (a sparse file): whole process within
    five times the floor of importing numpy and h5py (under 1 s where that floor is 0.2 s).

    CPU time (user + system) of the child, not wall time: on a shared machine the
    wall time of the same run doubles with the load of other processes.
    """
    llm = _synthetic_llm()
    folder = tmp_path / "llm"
    declared = llm.write_preset(folder)
    assert declared > 6e9
    assert sum(p.stat().st_size for p in folder.iterdir()) > 6e9
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(f"BLOCKED_NAMES = {NO_KERAS!r}\n{BLOCKER}")
    src = Path(weighttie.__file__).parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(src)])}
    out = tmp_path / "report.json"
    code = "import sys; from weighttie.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = [sys.executable, "-c", code, "report", str(folder), "--format", "json", "-o", str(out)]
    cpu = [child_cpu(argv, env=env) for _ in range(3)]
    doc = json.loads(out.read_text())
    assert doc["params"]["unique"] == llm.Decoder().params() == declared // 4
    assert doc["findings"] == []
    floor = floor_cpu()
    assert statistics.median(cpu) < FLOOR_TIMES * floor, (cpu, floor)


def test_a_shard_index_alone_says_to_pass_its_folder(presets: dict[str, Preset], capsys) -> None:  # type: ignore[no-untyped-def]
    err = _refused(capsys, presets["bert"].sharded / "model.weights.json")
    assert "is the index of sharded weights, not a model; pass the folder" in err


def test_heap_check_reads_data_spans_only(tmp_path: Path) -> None:
    """A sparse file's holes are not read by the global-heap check (they hold zeros)."""
    from weighttie.io.file_window import Window as _Window

    path = tmp_path / "sparse.bin"
    with open(path, "wb") as f:
        f.write(b"head")
        f.seek(256 << 20)
        f.write(b"tail")
    with open(path, "rb") as f:
        window = _Window(f, 0, path.stat().st_size)
        spans = window.data_ranges()
        f.seek(0)
        assert f.read(4) == b"head"  # the reader's position survives the probing
    if spans == [(0, path.stat().st_size)]:
        pytest.skip("this file system does not report holes")
    assert spans[0][0] == 0 and spans[-1][1] == path.stat().st_size
    assert sum(end - start for start, end in spans) < 1 << 20


def test_assertions_take_a_folder(presets: dict[str, Preset]) -> None:
    from weighttie.testing import assert_params

    preset = presets["opt"]
    assert_params(str(preset.sharded), unique=preset.count_params)
    with pytest.raises(AssertionError, match=r"params.per_use == 1: unknown: this static report"):
        assert_params(str(preset.sharded), per_use=1)


def _loop(collection: bytearray) -> None:
    """Set the size of a collection's free-space object to 0 (HDF5 then decodes forever)."""
    place = 16
    while True:
        (index,) = struct.unpack("<H", collection[place : place + 2])
        (length,) = struct.unpack("<Q", collection[place + 8 : place + 16])
        if index == 0:
            break
        place += 16 + (length + 7) // 8 * 8
    collection[place + 8 : place + 16] = struct.pack("<Q", 0)


def test_heap_check_follows_the_name_attributes(tmp_path: Path) -> None:
    """Only the collections the layer names point to are checked, wherever they are: a
    looping collection hidden in a kernel's values, the name pointing there, is refused."""
    inputs = keras.Input((64,))
    model = keras.Model(inputs, keras.layers.Dense(64, name="wide")(inputs))
    folder = tmp_path / "model"
    model.save(folder, zipped=False)
    weights = folder / "model.weights.h5"
    with h5py.File(weights) as h5:
        kernel_at = h5["layers/dense/vars/0"].id.get_offset()
        name_group = h5o.get_info(h5["layers/dense/vars"].id).addr
    data = bytearray(weights.read_bytes())
    with open(weights, "rb") as f:
        (original,) = referenced_collections(f, len(data), [name_group])
    (size,) = struct.unpack("<Q", data[original + 8 : original + 16])
    hidden = bytearray(data[original : original + size])
    _loop(hidden)
    data[kernel_at : kernel_at + size] = hidden  # the kernel's values now hold a collection
    heap_id = struct.pack("<IQ", len("wide"), original)
    assert data.count(heap_id) == 1
    at = data.index(heap_id)
    data[at : at + 12] = struct.pack("<IQ", len("wide"), kernel_at)
    weights.write_bytes(bytes(data))
    with open(weights, "rb") as f:
        assert referenced_collections(f, len(data), [name_group]) == {kernel_at}
    with pytest.raises(FileFormatError, match="HDF5 would decode forever"):
        read_report(folder)


def test_a_string_dataset_makes_the_whole_file_checked(tmp_path: Path) -> None:
    """Values that may point into a heap (strings, references): every collection is checked."""
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    folder = tmp_path / "model"
    model.save(folder, zipped=False)
    with h5py.File(folder / "model.weights.h5", "a") as h5:
        h5["layers/dense/notes"] = ["a string, in a global heap"]
    checks: list[bool] = []
    original = Heaps.check

    def spy(self: Heaps, headers: list[int] | None) -> None:
        original(self, headers)
        checks.append(self.targeted)

    Heaps.check = spy  # type: ignore[method-assign]
    try:
        assert read_report(folder).params.unique == model.count_params()
    finally:
        Heaps.check = original  # type: ignore[method-assign]
    assert checks == [False]
