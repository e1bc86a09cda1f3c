"""Hugging Face checkpoint folders read statically: declared ties, aliases, the Hub's counts.

Every checkpoint is written offline from ``fixtures/huggingface/layouts.json`` (what
transformers 5.24 saves for a tiny model of each family) with numpy values; the
safetensors package reads each one back, to prove the files are what it writes.
Each finding fires on a checkpoint made to have it, for every family, and on none of
the correct ones.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import weighttie
from support import REPO
from support.cpu_floor import FLOOR_TIMES, child_cpu, floor_cpu
from support.hf_checkpoints import (
    LAYOUTS,
    Tensor,
    changed,
    checkpoint,
    copy_of,
    layout_config,
    layout_metadata,
    layout_tensors,
    random_tensor,
    save_checkpoint,
    write_safetensors,
)
from support.static_process import BLOCKER
from weighttie.cli import main
from weighttie.report import FindingKind, GroupKind, Report
from weighttie.static import read_report
from weighttie.static.huggingface.checkpoint import tensor_place

#: family layout → (embedding, tied head): the two tensors ``tie_word_embeddings`` ties.
PAIRS = {
    "gpt2": ("transformer.wte.weight", "lm_head.weight"),
    "llama": ("model.embed_tokens.weight", "lm_head.weight"),
    "llama-tied": ("model.embed_tokens.weight", "lm_head.weight"),
    "gemma": ("model.embed_tokens.weight", "lm_head.weight"),
    "gemma2": ("model.embed_tokens.weight", "lm_head.weight"),
    "mistral": ("model.embed_tokens.weight", "lm_head.weight"),
    "qwen2": ("model.embed_tokens.weight", "lm_head.weight"),
    "qwen2-tied": ("model.embed_tokens.weight", "lm_head.weight"),
    "qwen3": ("model.embed_tokens.weight", "lm_head.weight"),
    "phi3": ("model.embed_tokens.weight", "lm_head.weight"),
    "bert": ("bert.embeddings.word_embeddings.weight", "cls.predictions.decoder.weight"),
    "t5": ("shared.weight", "lm_head.weight"),
}
FAMILIES = sorted(PAIRS)
#: Every layout, the safetensors ``save_model`` one (an alias) included.
LAYOUT_NAMES = sorted(k for k in LAYOUTS if not k.startswith("_"))
KINDS = {
    FindingKind.MISSING_TIED_TENSOR,
    FindingKind.STORED_TWICE,
    FindingKind.BROKEN_TIE,
    FindingKind.ALIAS,
}


def declared_tied(family: str) -> bool:
    return bool(LAYOUTS[family]["config"]["tie_word_embeddings"])


def layer(name: str) -> str:
    return tensor_place(name)[0]


def hub_total(folder: Path) -> int:
    """The Hub's parameter count, by huggingface_hub's own classes, from the headers."""
    from huggingface_hub.utils import SafetensorsFileMetadata, SafetensorsRepoMetadata, TensorInfo
    from safetensors import safe_open

    files = {}
    weight_map = {}
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), framework="numpy") as f:
            header = json.loads(_raw_header(path))
            header.pop("__metadata__", None)
            tensors = {
                name: TensorInfo(dtype=i["dtype"], shape=i["shape"], data_offsets=i["data_offsets"])
                for name, i in header.items()
            }
            assert sorted(f.keys()) == sorted(tensors)
        files[path.name] = SafetensorsFileMetadata(metadata={}, tensors=tensors)
        weight_map.update(dict.fromkeys(tensors, path.name))
    repo = SafetensorsRepoMetadata(
        metadata=None, sharded=len(files) > 1, weight_map=weight_map, files_metadata=files
    )
    return sum(repo.parameter_count.values())


def _raw_header(path: Path) -> bytes:
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    return data[8 : 8 + n]


def kinds(report: Report) -> list[str]:
    return [f.kind.value for f in report.findings]


def tied_layers(report: Report) -> list[tuple[str, ...]]:
    return [g.layers for g in report.groups if g.kind is GroupKind.TIED]


# -- the files are safetensors' own format ---------------------------------------------


@pytest.mark.parametrize("family", LAYOUT_NAMES)
def test_the_test_writer_writes_what_safetensors_writes(family: str, tmp_path: Path) -> None:
    """Byte for byte, for numpy dtypes; and safetensors reads every tensor back."""
    st = pytest.importorskip("safetensors.numpy")
    tensors = layout_tensors(family)
    path = write_safetensors(tmp_path / "m.safetensors", tensors, layout_metadata(family))
    if all(t.dtype == "F32" for t in tensors.values()):
        arrays = {n: np.frombuffer(t.data, np.float32).reshape(t.shape) for n, t in tensors.items()}
        assert path.read_bytes() == st.save(arrays, metadata=layout_metadata(family))
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        assert f.metadata() == layout_metadata(family)
        assert sorted(f.keys()) == sorted(tensors)
        keys = f.keys()
        for name in keys:
            assert list(f.get_slice(name).get_shape()) == list(tensors[name].shape)


# -- correct checkpoints: no finding, ties as declared ----------------------------------


@pytest.mark.parametrize("shards", [1, 3])
@pytest.mark.parametrize("family", LAYOUT_NAMES)
def test_a_correct_checkpoint_has_no_findings(family: str, shards: int, tmp_path: Path) -> None:
    folder = checkpoint(tmp_path / family, family, shards=shards)
    report = read_report(folder)
    assert report.findings == ()
    assert report.model.source == "static"
    assert report.model.class_name == LAYOUTS[family]["config"]["architectures"][0]
    stored = {name for name, _, _ in LAYOUTS[family]["header"]["tensors"]}
    # Nothing stored twice: every tensor counts once, as the Hub counts them.
    assert report.params.unique == hub_total(folder)
    assert report.params.per_use is None and report.params.duplicated is None
    assert all(tie.bound for tie in report.ties)
    if family == "llama-save-model":  # tied through a metadata alias, lm_head kept
        assert tied_layers(report) == [("lm_head", "model/embed_tokens")]
        assert report.variable("lm_head/weight").layers == ("lm_head", "model/embed_tokens")
        return
    embedding, head = PAIRS[family]
    if declared_tied(family):
        assert head not in stored
        group = next(g for g in report.groups if layer(head) in g.layers)
        assert group.kind is GroupKind.TIED and layer(embedding) in group.layers
        # named after the stored tensor, not the head that reads it
        assert f"{layer(embedding)}/weight" in group.variables
        assert any(t.target == layer(head) and t.source == layer(embedding) for t in report.ties)
    else:
        assert head in stored
        assert report.ties == () and tied_layers(report) == []


@pytest.mark.parametrize("family", FAMILIES)
def test_shards_give_the_report_of_one_file(family: str, tmp_path: Path) -> None:
    one = read_report(checkpoint(tmp_path / "one", family))
    many = read_report(checkpoint(tmp_path / "many", family, shards=4))
    assert many.to_json().replace(str(tmp_path / "many"), "F") == one.to_json().replace(
        str(tmp_path / "one"), "F"
    )


# -- each finding, for every family ------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_missing_tied_tensor_declared_untied_head_absent(family: str, tmp_path: Path) -> None:
    embedding, head = PAIRS[family]
    folder = checkpoint(
        tmp_path / family,
        family,
        drop=[head] if not declared_tied(family) else [],
        config={"tie_word_embeddings": False},
    )
    report = read_report(folder)
    if family == "bert":  # untied, the decoder's bias is its own tensor too, not stored
        assert [f.params for f in report.findings] == [32 * 8, 32]
        assert "cls.predictions.decoder.bias is a tensor of its own" in report.findings[1].message
    finding = report.findings[0]
    assert {f.kind for f in report.findings} == {FindingKind.MISSING_TIED_TENSOR}
    assert finding.layers == (layer(head),)
    assert finding.params == int(np.prod(dict_shapes(family)[embedding]))
    assert f"{head} is a tensor of its own, but it is not stored" in finding.message
    assert not any(layer(head) in g for g in tied_layers(report))


@pytest.mark.parametrize("family", FAMILIES)
def test_stored_twice_declared_tied_both_stored_equal(family: str, tmp_path: Path) -> None:
    embedding, head = PAIRS[family]
    tensors = layout_tensors(family)
    folder = checkpoint(
        tmp_path / family,
        family,
        add={head: copy_of(tensors[embedding])},
        config={"tie_word_embeddings": True},
    )
    report = read_report(folder)
    (finding,) = report.findings
    size = int(np.prod(tensors[embedding].shape))
    nbytes = len(tensors[embedding].data)
    assert finding.kind is FindingKind.STORED_TWICE
    assert finding.layers == tuple(sorted({layer(embedding), layer(head)}))
    assert finding.params == size
    assert f"{nbytes:,} bytes ({size:,} parameters) stored twice" in finding.message
    # One tensor in the loaded model: a bound tie, counted once; the Hub counts it twice.
    assert report.params.unique == hub_total(folder) - size
    assert any({layer(embedding), layer(head)} <= set(g) for g in tied_layers(report))
    assert all(t.bound for t in report.ties)
    (note,) = [n for n in report.model.notes if n.startswith("The Hub's")]
    assert f"{size:,} fewer" in note and f"{head} is a second copy of {embedding}" in note


@pytest.mark.parametrize("family", FAMILIES)
def test_broken_tie_declared_tied_both_stored_different(family: str, tmp_path: Path) -> None:
    embedding, head = PAIRS[family]
    tensors = layout_tensors(family)
    folder = checkpoint(
        tmp_path / family,
        family,
        add={head: changed(tensors[embedding], at=5)},
        config={"tie_word_embeddings": True},
    )
    report = read_report(folder)
    (finding,) = report.findings
    assert finding.kind is FindingKind.BROKEN_TIE
    assert finding.layers == tuple(sorted({layer(embedding), layer(head)}))
    assert "both stored, with different values" in finding.message
    assert report.params.unique == hub_total(folder)  # two tensors, both counted
    assert not any({layer(embedding), layer(head)} <= set(g) for g in tied_layers(report))
    (tie,) = [t for t in report.ties if t.target == layer(head) and t.variables == ("weight",)]
    assert not tie.bound


@pytest.mark.parametrize("family", FAMILIES)
def test_alias_naming_a_tensor_not_stored(family: str, tmp_path: Path) -> None:
    folder = checkpoint(
        tmp_path / family, family, metadata={"extra.copy.weight": "not.stored.weight"}
    )
    report = read_report(folder)
    (finding,) = report.findings
    assert finding.kind is FindingKind.ALIAS
    assert finding.layers == ("extra/copy",)
    assert "extra.copy.weight an alias of not.stored.weight" in finding.message
    assert report.params.unique == hub_total(folder)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_default_holds_where_config_has_no_key(family: str, tmp_path: Path) -> None:
    """Without ``tie_word_embeddings``, the family's transformers default decides."""
    _, head = PAIRS[family]
    default = {"gpt2": True, "gemma": True, "gemma2": True, "bert": True, "t5": True}.get(
        family.removesuffix("-tied"), False
    )
    drop = [head] if head in {n for n, _, _ in LAYOUTS[family]["header"]["tensors"]} else []
    folder = checkpoint(tmp_path / family, family, drop=drop, remove_keys=["tie_word_embeddings"])
    report = read_report(folder)
    assert any("config.json having no tie_word_embeddings key" in n for n in report.model.notes)
    if default:  # the head is the embedding: bound
        assert report.findings == ()
        assert any(layer(head) in g for g in tied_layers(report))
    else:  # the head is its own tensor, and it is not there
        assert kinds(report) == ["missing-tied-tensor"]


# -- family details ---------------------------------------------------------------------


def test_t5_ties_its_encoder_and_decoder_embeddings_always(tmp_path: Path) -> None:
    """T5 v1.1 / Flan-T5: tie_word_embeddings false, its own head stored; the encoder and
    decoder still read ``shared``."""
    tensors = layout_tensors("t5")
    head = random_tensor("F32", tensors["shared.weight"].shape, seed=9)
    folder = checkpoint(
        tmp_path / "flan", "t5", add={"lm_head.weight": head}, config={"tie_word_embeddings": False}
    )
    report = read_report(folder)
    assert report.findings == ()
    assert tied_layers(report) == [("decoder/embed_tokens", "encoder/embed_tokens", "shared")]
    assert {(t.target, t.bound) for t in report.ties} == {
        ("decoder/embed_tokens", True),
        ("encoder/embed_tokens", True),
    }


def test_t5_with_a_stored_encoder_embedding_that_differs(tmp_path: Path) -> None:
    tensors = layout_tensors("t5")
    folder = checkpoint(
        tmp_path / "t5",
        "t5",
        add={"encoder.embed_tokens.weight": changed(tensors["shared.weight"])},
    )
    report = read_report(folder)
    (finding,) = report.findings
    assert finding.kind is FindingKind.BROKEN_TIE
    assert finding.layers == ("encoder/embed_tokens", "shared")


def test_bert_ties_the_decoder_bias_too(tmp_path: Path) -> None:
    tensors = layout_tensors("bert")
    bias = copy_of(tensors["cls.predictions.bias"])
    report = read_report(
        checkpoint(tmp_path / "bert", "bert", add={"cls.predictions.decoder.bias": bias})
    )
    (finding,) = report.findings
    assert finding.kind is FindingKind.STORED_TWICE
    assert finding.layers == ("cls/predictions", "cls/predictions/decoder")
    assert finding.params == 32


def test_a_base_model_checkpoint_names_the_embedding_without_the_prefix(tmp_path: Path) -> None:
    """openai-community/gpt2 stores ``wte.weight`` (GPT2Model's names) while its config
    names GPT2LMHeadModel: transformers adds the ``transformer.`` prefix on load."""
    tensors = {n.removeprefix("transformer."): t for n, t in layout_tensors("gpt2").items()}
    folder = save_checkpoint(tmp_path / "gpt2", layout_config("gpt2"), tensors, {"format": "pt"})
    report = read_report(folder)
    assert report.findings == ()
    assert tied_layers(report) == [("lm_head", "wte")]
    assert [(t.source, t.target, t.bound) for t in report.ties] == [("wte", "lm_head", True)]


def test_a_base_model_has_no_head_to_tie(tmp_path: Path) -> None:
    tensors = {n: t for n, t in layout_tensors("llama").items() if n != "lm_head.weight"}
    config = {**layout_config("llama"), "architectures": ["LlamaModel"]}
    report = read_report(save_checkpoint(tmp_path / "base", config, tensors))
    assert report.findings == () and report.ties == ()


def test_no_architecture_checks_only_what_is_stored(tmp_path: Path) -> None:
    config = {k: v for k, v in layout_config("gemma").items() if k != "architectures"}
    report = read_report(save_checkpoint(tmp_path / "g", config, layout_tensors("gemma")))
    assert report.findings == () and report.ties == ()
    assert any("names no architecture" in n for n in report.model.notes)
    assert report.model.class_name == "?"


def test_an_unknown_family_still_follows_aliases(tmp_path: Path) -> None:
    tensors = {"enc.emb.weight": random_tensor("F32", (4, 2), 1)}
    folder = save_checkpoint(
        tmp_path / "x",
        {"model_type": "mystery", "architectures": ["MysteryModel"]},
        tensors,
        {"dec.emb.weight": "enc.emb.weight", "lost.weight": "gone.weight", "format": "pt"},
    )
    report = read_report(folder)
    assert kinds(report) == ["alias"]
    assert tied_layers(report) == [("dec/emb", "enc/emb")]
    assert report.params.unique == 8
    assert any("'mystery', a family whose tied tensors" in n for n in report.model.notes)


# -- aliases ----------------------------------------------------------------------------


def test_save_model_aliases_across_shards(tmp_path: Path) -> None:
    """The alias sits in one shard's metadata; the tensor it names in another."""
    family = "llama-save-model"
    folder = checkpoint(tmp_path / "s", family, shards=4)
    report = read_report(folder)
    assert report.findings == ()
    assert tied_layers(report) == [("lm_head", "model/embed_tokens")]
    (note,) = [n for n in report.model.notes if n.startswith("The Hub's")]
    assert "params.unique is the same; 1 metadata alias names stored tensors" in note


def test_an_alias_of_an_alias_names_nothing_stored(tmp_path: Path) -> None:
    folder = checkpoint(
        tmp_path / "a",
        "llama-save-model",
        metadata={"model.extra.weight": "model.embed_tokens.weight"},
    )
    report = read_report(folder)
    assert kinds(report) == ["alias"]
    assert report.findings[0].layers == ("model/extra",)


def test_declared_untied_with_the_head_only_an_alias(tmp_path: Path) -> None:
    """keras-hub#3075's file seen from the other side: the head exists only as an alias,
    which transformers' loader does not follow."""
    folder = checkpoint(
        tmp_path / "a",
        "llama",
        drop=["lm_head.weight"],
        metadata={"lm_head.weight": "model.embed_tokens.weight"},
    )
    report = read_report(folder)
    (finding,) = report.findings
    assert finding.kind is FindingKind.MISSING_TIED_TENSOR
    assert "only a metadata alias of model.embed_tokens.weight" in finding.message
    assert tied_layers(report) == [("lm_head", "model/embed_tokens")]


def test_plain_metadata_is_not_an_alias(tmp_path: Path) -> None:
    folder = checkpoint(
        tmp_path / "m", "gemma", metadata={"format": "pt", "version": "1.0", "note": "a.b c"}
    )
    assert read_report(folder).findings == ()


# -- values: sampled, then streamed --------------------------------------------------


@pytest.mark.parametrize("at", [0, 400_000, 1_199_999])
def test_a_difference_anywhere_breaks_the_tie(at: int, tmp_path: Path) -> None:
    """A 1.2 MB embedding: its first, middle and last 64 kB are the sample; a byte changed
    elsewhere (at 400,000) is found by the streamed comparison."""
    embedding = random_tensor("F32", (3000, 100), seed=3)
    folder = checkpoint(
        tmp_path / "v",
        "gemma",
        add={"model.embed_tokens.weight": embedding, "lm_head.weight": changed(embedding, at)},
    )
    assert kinds(read_report(folder)) == ["broken-tie"]
    folder = checkpoint(
        tmp_path / "same",
        "gemma",
        add={"model.embed_tokens.weight": embedding, "lm_head.weight": copy_of(embedding)},
    )
    assert kinds(read_report(folder)) == ["stored-twice"]


def test_different_shapes_break_the_tie(tmp_path: Path) -> None:
    head = random_tensor("F32", (16, 8), seed=4)
    report = read_report(checkpoint(tmp_path / "s", "gemma", add={"lm_head.weight": head}))
    (finding,) = report.findings
    assert "different shapes or dtypes (BF16 [32, 8] and F32 [16, 8])" in finding.message


def test_no_findings_still_binds_the_ties(tmp_path: Path) -> None:
    tensors = layout_tensors("gemma")
    folder = checkpoint(
        tmp_path / "g",
        "gemma",
        add={"lm_head.weight": copy_of(tensors["model.embed_tokens.weight"])},
    )
    report = read_report(folder, findings=False)
    assert report.findings == ()
    assert tied_layers(report) == [("lm_head", "model/embed_tokens")]


# -- what is stored: dtypes, names, counts -----------------------------------------------


def test_dtypes_bytes_and_the_hubs_count_per_dtype(tmp_path: Path) -> None:
    tensors = {
        "a.f32": random_tensor("F32", (3, 4), 1),
        "a.bf16": random_tensor("BF16", (5,), 2),
        "a.f16": random_tensor("F16", (2, 2), 3),
        "b.position_ids": Tensor.of("I64", np.arange(7, dtype=np.int64)[None]),
        "b.mask": random_tensor("BOOL", (3,), 4),
        "c.q": random_tensor("F8_E4M3", (6,), 5),
        "c.packed": Tensor("F4", (2, 4), bytes(4)),
        "scale": Tensor.of("F32", np.float32(2.0).reshape(())),
    }
    folder = save_checkpoint(tmp_path / "d", {"model_type": "mystery"}, tensors)
    report = read_report(folder)
    dtypes = {v.path: (v.dtype, v.bytes, v.trainable) for v in report.variables}
    assert dtypes == {
        "a/f32": ("float32", 48, True),
        "a/bf16": ("bfloat16", 10, True),
        "a/f16": ("float16", 8, True),
        "b/position_ids": ("int64", 56, False),
        "b/mask": ("bool", 3, False),
        "c/q": ("float8_e4m3fn", 6, True),
        "c/packed": ("float4_e2m1fn", None, True),  # 4 bits: no whole width
        "scale": ("float32", 4, True),
    }
    assert report.params.unique == 12 + 5 + 4 + 7 + 3 + 6 + 8 + 1 == hub_total(folder)
    assert report.params.non_trainable_unique == 10
    (note,) = [n for n in report.model.notes if n.startswith("The Hub's")]
    assert note == (
        "The Hub's parameter count (safetensors headers, every stored tensor): BF16 5 (10 bytes), "
        "BOOL 3 (3 bytes), F16 4 (8 bytes), F32 13 (52 bytes), F4 8 (4 bytes), F8_E4M3 6 "
        "(6 bytes), I64 7 (56 bytes); 46 parameters in 139 bytes; params.unique is the same"
    )


def test_tensor_names_become_paths(tmp_path: Path) -> None:
    names = ["model.layers.10.w", "model.layers.2.w", "odd/name.x%y.bias", "a..b", ".lead"]
    tensors = {n: random_tensor("F32", (2,), i) for i, n in enumerate(names)}
    report = read_report(save_checkpoint(tmp_path / "n", {"model_type": "x"}, tensors))
    assert [v.path for v in report.variables] == sorted(
        [".lead", "a..b", "model/layers/10/w", "model/layers/2/w", "odd%2Fname/x%25y/bias"]
    )
    order = [row.path for row in sorted(report.layers, key=lambda r: r.order)]
    assert order == [
        "",
        "model",
        "model/layers",
        "model/layers/2",
        "model/layers/10",
        "odd%2Fname",
        "odd%2Fname/x%25y",
    ]
    assert report.layer("odd%2Fname").name == "odd/name"


def test_a_cache_snapshot_linking_to_blobs_is_read(tmp_path: Path) -> None:
    """A Hugging Face cache keeps each file of a snapshot as a link into the repository's
    blobs: models--org--name/snapshots/<rev>/config.json -> ../../blobs/<sha>."""
    source = checkpoint(tmp_path / "src", "gemma", shards=2)
    repo = tmp_path / "hub" / "models--org--gemma"
    snapshot = repo / "snapshots" / "abc123"
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for i, path in enumerate(sorted(source.iterdir())):
        blob = repo / "blobs" / f"{i:040x}"
        os.replace(path, blob)
        os.symlink(os.path.relpath(blob, snapshot), snapshot / path.name)
    report = read_report(snapshot)
    assert report.findings == () and tied_layers(report) == [("lm_head", "model/embed_tokens")]


def test_unread_files_are_named(tmp_path: Path) -> None:
    folder = checkpoint(tmp_path / "u", "llama", shards=2)
    (folder / "model-00007-of-00009.safetensors").write_bytes(b"left over")
    report = read_report(folder)
    assert any(
        n.startswith(
            "Not read: model-00007-of-00009.safetensors in the folder: "
            "model.safetensors.index.json does not name it"
        )
        for n in report.model.notes
    )


# -- the command line ---------------------------------------------------------------------


def dict_shapes(family: str) -> dict[str, list[int]]:
    return {name: shape for name, _, shape in LAYOUTS[family]["header"]["tensors"]}


def test_cli_report_check_snapshot_and_diff(tmp_path: Path, capsys) -> None:
    good = checkpoint(tmp_path / "good", "gemma")
    tensors = layout_tensors("gemma")
    twice = checkpoint(
        tmp_path / "twice",
        "gemma",
        add={"lm_head.weight": copy_of(tensors["model.embed_tokens.weight"])},
    )
    assert main(["report", str(good), "-f", "json"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and weighttie.Report.from_json(out) == read_report(good)
    spec = tmp_path / "spec.toml"
    assert main(["snapshot", str(good), "-o", str(spec)]) == 0
    assert main(["check", str(good), "--spec", str(spec)]) == 0
    capsys.readouterr()
    assert main(["check", str(twice), "--spec", str(spec)]) == 1
    out, _ = capsys.readouterr()
    assert "FAIL no stored-twice findings" in out
    assert main(["diff", str(good), str(twice)]) == 1
    out, _ = capsys.readouterr()
    # one tensor, tied: the same counts; the second copy on disk is the one difference
    changes = [line for line in out.splitlines() if line.startswith(("+", "-", "~"))]
    assert changes == ["+ stored-twice finding [lm_head, model/embed_tokens] (256 params)"]


@pytest.mark.parametrize(
    ("name", "piece"),
    [
        ("model.safetensors", "is a safetensors weights file, not a model; pass the folder"),
        ("model.safetensors.index.json", "is the index of sharded safetensors weights"),
    ],
)
def test_cli_a_weights_file_points_to_its_folder(
    name: str, piece: str, tmp_path: Path, capsys
) -> None:
    folder = checkpoint(tmp_path / "c", "llama", shards=2 if name.endswith(".json") else 1)
    assert main(["report", str(folder / name)]) == 2
    _, err = capsys.readouterr()
    assert piece in err and len(err.splitlines()) == 1


def test_cli_load_is_refused_for_a_checkpoint(tmp_path: Path, capsys) -> None:
    folder = checkpoint(tmp_path / "c", "llama")
    assert main(["report", str(folder), "--load"]) == 2
    _, err = capsys.readouterr()
    assert "is a model folder, which weighttie reads statically only" in err


def test_cli_max_tensors(tmp_path: Path, capsys) -> None:
    folder = checkpoint(tmp_path / "c", "llama")
    assert main(["report", str(folder), "--max-tensors", "5"]) == 2
    _, err = capsys.readouterr()
    assert "more than the 5 the tensors limit leaves (raise the limit with --max-tensors N)" in err
    assert main(["report", str(folder), "--max-tensors", "12"]) == 0


# -- a 7B-sized checkpoint --------------------------------------------------------------

BENCHMARKS = REPO / "benchmarks"


def _synthetic_checkpoint() -> Any:
    spec = importlib.util.spec_from_file_location(
        "synthetic_checkpoint", BENCHMARKS / "synthetic_checkpoint.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["synthetic_checkpoint"] = module
    spec.loader.exec_module(module)
    return module


def test_the_synthetic_7b_checkpoint_is_what_transformers_writes(tmp_path: Path) -> None:
    """Its names, order and config follow the tiny Llama transformers saved (layouts.json)."""
    synthetic = _synthetic_checkpoint()
    tiny = synthetic.Llama(vocab_size=32, hidden_size=8, intermediate_size=16, num_hidden_layers=1)
    names = sorted(tiny.tensors(head=True))
    assert names == sorted(n for n, _, _ in LAYOUTS["llama"]["header"]["tensors"])
    shapes = {n: list(s) for n, s in tiny.tensors(head=True).items()}
    expected = dict_shapes("llama")
    assert {n: s for n, s in shapes.items() if "k_proj" not in n and "v_proj" not in n} == {
        n: s for n, s in expected.items() if "k_proj" not in n and "v_proj" not in n
    }  # the layout has 1 key/value head of 2, Llama 2 7B as many as query heads
    folder = tmp_path / "tiny"
    total = synthetic.write_checkpoint(folder, "stored-twice", tiny)
    report = read_report(folder)
    assert kinds(report) == ["stored-twice"]
    assert report.params.unique == total // 2 - 32 * 8


@pytest.mark.budget
@pytest.mark.parametrize("variant", ["untied", "tied"])
def test_a_7b_checkpoint_reports_in_under_a_second(variant: str, tmp_path: Path) -> None:
    """Llama 2 7B's shapes, 13.5 GB declared in sparse shards: whole process within five
    times the floor of importing numpy and h5py (under 1 s where that floor is 0.2 s).

    CPU time (user + system) of the child, as for the LLM-sized keras_hub preset: on a
    shared machine the wall time of one run doubles with the load of other processes.
    """
    synthetic = _synthetic_checkpoint()
    folder = tmp_path / variant
    declared = synthetic.write_checkpoint(folder, variant)
    assert declared > 13e9
    out = tmp_path / "report.json"
    argv = [sys.executable, "-c", BLOCKER, "report", str(folder), "-f", "json", "-o", str(out)]
    cpu = [child_cpu(argv) for _ in range(3)]
    doc = json.loads(out.read_text())
    assert doc["params"]["unique"] == declared // 2
    assert doc["findings"] == []
    floor = floor_cpu()
    assert statistics.median(cpu) < FLOOR_TIMES * floor, (cpu, floor)
