"""Hostile Hugging Face checkpoint folders: exit 2 and one clear line, never a traceback or a hang.

Each case starts from a valid checkpoint (``hf_checkpoints``) and damages one thing:
the safetensors header (its length, its JSON, a tensor's dtype, shape or offsets,
overlaps, gaps, trailing bytes, metadata), the shard index (paths out of the folder,
shards missing or disagreeing), special files where files are expected, links out of
the folder, limits. Every case runs the command line in a fresh process where no
backend can be imported, under a hang guard, with a writer ready for any FIFO that a
careless reader would open. How fast and in how much memory each is refused are
``budget`` tests.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.hf_checkpoints import checkpoint, header_bytes, layout_tensors, save_checkpoint
from support.hostile import SECRET
from support.static_process import Run, run_static

BUDGET_SECONDS = 5.0
BUDGET_RSS_MB = 300.0


# -- building blocks -------------------------------------------------------------------


def _split(path: Path) -> tuple[dict[str, Any], bytes]:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def _write(path: Path, header: bytes, body: bytes, length: int | None = None) -> None:
    path.write_bytes(struct.pack("<Q", len(header) if length is None else length) + header + body)


def _llama(d: Path, shards: int = 1) -> Path:
    return checkpoint(d / "ckpt", "llama", shards=shards)


def edit_header(edit: Callable[[dict[str, Any]], Any]) -> Callable[[Path], Path]:
    """A case whose header (as a dict) is changed; the bytes after it are kept."""

    def build(d: Path) -> Path:
        folder = _llama(d)
        path = folder / "model.safetensors"
        header, body = _split(path)
        changed = edit(header)
        raw = changed if isinstance(changed, bytes) else header_bytes(header)
        _write(path, raw, body)
        return folder

    return build


def edit_file(edit: Callable[[bytes], bytes]) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        folder = _llama(d)
        path = folder / "model.safetensors"
        path.write_bytes(edit(path.read_bytes()))
        return folder

    return build


def edit_json(name: str, edit: Callable[[Any], object], shards: int = 1) -> Callable[[Path], Path]:
    """A case whose JSON file ``name`` is changed in place by ``edit``."""

    def build(d: Path) -> Path:
        folder = _llama(d, shards)
        path = folder / name
        document = json.loads(path.read_text())
        edit(document)
        path.write_text(json.dumps(document))
        return folder

    return build


def json_text(name: str, text: str, shards: int = 1) -> Callable[[Path], Path]:
    """A case whose JSON file ``name`` is replaced by ``text``."""

    def build(d: Path) -> Path:
        folder = _llama(d, shards)
        (folder / name).write_text(text)
        return folder

    return build


INDEX = "model.safetensors.index.json"


def edit_index(edit: Callable[[Any], object]) -> Callable[[Path], Path]:
    return edit_json(INDEX, edit, shards=3)


def edit_config(edit: Callable[[Any], object]) -> Callable[[Path], Path]:
    return edit_json("config.json", edit)


def _named_twice(h: dict[str, Any]) -> bytes:
    text = json.dumps(h, separators=(",", ":"))
    return (text[:-1] + ',"lm_head.weight":' + json.dumps(h["lm_head.weight"]) + "}").encode()


def _set(header: dict[str, Any], name: str, key: str, value: Any) -> None:
    header[name][key] = value


def _by_offset(header: dict[str, Any]) -> list[str]:
    return sorted(
        (n for n in header if n != "__metadata__"), key=lambda n: header[n]["data_offsets"]
    )


def _overlap(h: dict[str, Any]) -> None:
    first, second = _by_offset(h)[:2]
    begin, end = h[first]["data_offsets"]
    length = end - begin
    h[second]["data_offsets"] = [begin, begin + length]
    h[second]["shape"] = h[first]["shape"]
    h[second]["dtype"] = h[first]["dtype"]


def _gap(h: dict[str, Any]) -> None:
    last = _by_offset(h)[-1]
    begin, end = h[last]["data_offsets"]
    h[last]["data_offsets"] = [begin + 4, end]
    h[last]["shape"] = [(end - begin - 4) // 4]


def _swap_into_two_shards(d: Path) -> Path:
    """One tensor written into two shards (the index names one of them)."""
    folder = _llama(d, 3)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    tensors = layout_tensors("llama")
    from support.hf_checkpoints import write_safetensors

    names = [n for n, s in index["weight_map"].items() if s == shards[0]]
    extra = next(n for n, s in index["weight_map"].items() if s == shards[1])
    write_safetensors(folder / shards[0], {n: tensors[n] for n in [*names, extra]})
    return folder


def _fifo(name: str, shards: int = 1) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        folder = _llama(d, shards)
        target = folder / name if name else folder / sorted(folder.glob("model-*"))[0].name
        target.unlink()
        os.mkfifo(target)
        return folder

    return build


def _directory(d: Path) -> Path:
    folder = _llama(d)
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors").mkdir()
    return folder


def _link_out(d: Path) -> Path:
    """model.safetensors links to a host file outside the folder."""
    folder = _llama(d)
    secret = d / "secret.safetensors"
    secret.write_bytes(struct.pack("<Q", 2) + b"{}" + SECRET)
    (folder / "model.safetensors").unlink()
    os.symlink(secret, folder / "model.safetensors")
    return folder


def _link_to_device(d: Path) -> Path:
    folder = _llama(d)
    (folder / "config.json").unlink()
    os.symlink("/dev/zero", folder / "config.json")
    return folder


def _fake_cache_link(d: Path) -> Path:
    """A folder named like a cache snapshot whose link leads out of the repository's blobs."""
    folder = checkpoint(d / "models--x--y" / "snapshots" / "rev", "llama")
    (d / "elsewhere").mkdir()
    os.replace(folder / "model.safetensors", d / "elsewhere" / "blob")
    os.symlink("../../../elsewhere/blob", folder / "model.safetensors")
    return folder


def _dangling(d: Path) -> Path:
    folder = _llama(d)
    (folder / "model.safetensors").unlink()
    os.symlink("gone.safetensors", folder / "model.safetensors")
    return folder


def _no_config(d: Path) -> Path:
    folder = _llama(d)
    (folder / "config.json").unlink()
    return folder


def _pickles_only(d: Path) -> Path:
    """transformers' older format: pytorch_model.bin, a pickle (here, one that would run
    code), and no safetensors."""
    folder = _llama(d)
    (folder / "model.safetensors").unlink()
    marker = d / "pickle-ran"
    (folder / "pytorch_model.bin").write_bytes(
        b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    )
    return folder


def _deep_name(d: Path) -> Path:
    tensors = layout_tensors("llama")
    name = ".".join(["m"] * 200) + ".weight"
    tensors[name] = tensors.pop("model.norm.weight")
    return save_checkpoint(d / "ckpt", json.loads(json.dumps({"model_type": "llama"})), tensors)


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], Path]
    piece: str
    args: tuple[str, ...] = ()


CASES = [
    # the header's length
    Case(
        "empty weights file", edit_file(lambda b: b""), "holds 0 bytes, too few for a safetensors"
    ),
    Case("seven bytes", edit_file(lambda b: b[:7]), "holds 7 bytes, too few"),
    Case(
        "header length past the end",
        edit_file(lambda b: struct.pack("<Q", 10**6) + b[8:]),
        "declares a header of 1,000,000 bytes, but only",
    ),
    Case(
        "header length over the limit",
        edit_file(lambda b: struct.pack("<Q", 2**63) + b[8:]),
        "more than the 67,108,864 weighttie reads (the config_bytes limit) (raise the limit "
        "with --max-config-bytes N)",
    ),
    Case(
        "truncated data",
        edit_file(lambda b: b[:-10]),
        "bytes of data after its header; the file is truncated",
    ),
    # the header's JSON
    Case("header not UTF-8", edit_header(lambda h: b'{"a\xff":1}'), "header is not UTF-8"),
    Case("header not JSON", edit_header(lambda h: b"{not json"), "header is not valid JSON"),
    Case("header a JSON array", edit_header(lambda h: b"[]      "), "header is a JSON list"),
    Case(
        "header nested too deeply",
        edit_header(lambda h: b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        "header is not valid JSON (nested too deeply)",
    ),
    Case(
        "header of five million objects",
        edit_header(lambda h: b'{"a":[' + b"{}," * 5_000_000 + b"{}]}"),
        "JSON objects and arrays, more than the 4,194,304 weighttie parses",
    ),
    Case(
        "a tensor named twice",
        edit_header(_named_twice),
        "names 'lm_head.weight' twice; expected each tensor once",
    ),
    # a tensor's entry
    Case(
        "no data_offsets",
        edit_header(lambda h: h["lm_head.weight"].pop("data_offsets")),
        "tensor 'lm_head.weight' is not described by dtype, shape and data_offsets",
    ),
    Case(
        "unknown dtype",
        edit_header(lambda h: _set(h, "lm_head.weight", "dtype", "F128")),
        "tensor 'lm_head.weight' has dtype 'F128'; expected one of safetensors' dtypes",
    ),
    Case(
        "negative dimension",
        edit_header(lambda h: _set(h, "lm_head.weight", "shape", [-1, 8])),
        "has shape [-1, 8]; expected a list of non-negative integers",
    ),
    Case(
        "boolean dimension",
        edit_header(lambda h: _set(h, "lm_head.weight", "shape", [True, 8])),
        "has shape [True, 8]",
    ),
    Case(
        "offsets reversed",
        edit_header(lambda h: _set(h, "lm_head.weight", "data_offsets", [64, 0])),
        "has data_offsets [64, 0]; expected [begin, end]",
    ),
    Case(
        "offsets past the data",
        edit_header(lambda h: _set(h, "lm_head.weight", "data_offsets", [0, 10**9])),
        "ends at byte 1,000,000,000 of the data, but the file holds",
    ),
    Case(
        "shape and offsets disagree",
        edit_header(lambda h: _set(h, "lm_head.weight", "shape", [32, 9])),
        "shape [32, 9] of F32 needs 1,152 bytes, but its data_offsets span 1,024",
    ),
    Case(
        "a shape of 2**124 elements",
        edit_header(lambda h: _set(h, "lm_head.weight", "shape", [2**62, 2**62])),
        "needs more bytes than the file holds",
    ),
    Case("two tensors overlap", edit_header(_overlap), "overlaps tensor"),
    Case("a gap between tensors", edit_header(_gap), "safetensors refuses a gap between tensors"),
    Case(
        "bytes after the last tensor",
        edit_file(lambda b: b + b"\0" * 16),
        "safetensors refuses bytes no tensor covers",
    ),
    Case(
        "metadata not strings",
        edit_header(lambda h: h.update({"__metadata__": {"format": 1}})),
        "__metadata__ is not an object of strings",
    ),
    Case(
        "more tensors than the limit",
        _llama,
        "declares 12 tensors, more than the 3 the tensors limit leaves (raise the limit with "
        "--max-tensors N)",
        ("--max-tensors", "3"),
    ),
    Case(
        "a name 200 levels deep",
        _deep_name,
        "nests 200 levels deep ('m/m/m/m/m/m/m/m/m/m/m/m/m/m/m/m/m/m/m",
    ),
    Case(
        "more layers than the limit",
        _llama,
        "the tensor names describe more than 5 layers, the layers limit (raise the limit with "
        "--max-layers N)",
        ("--max-layers", "5"),
    ),
    # the index
    Case(
        "shard path with ..",
        edit_index(lambda i: i["weight_map"].update({"lm_head.weight": "../x.safetensors"})),
        "maps 'lm_head.weight' to '../x.safetensors'; expected the file name of a shard in the "
        "folder itself",
    ),
    Case(
        "absolute shard path",
        edit_index(lambda i: i["weight_map"].update({"lm_head.weight": "/etc/x.safetensors"})),
        "to '/etc/x.safetensors'; expected the file name of a shard",
    ),
    Case(
        "shard in a subfolder",
        edit_index(lambda i: i["weight_map"].update({"lm_head.weight": "sub/x.safetensors"})),
        "to 'sub/x.safetensors'; expected the file name of a shard",
    ),
    Case(
        "shard not a safetensors name",
        edit_index(lambda i: i["weight_map"].update({"lm_head.weight": "config.json"})),
        "to 'config.json'; expected the file name of a shard",
    ),
    Case(
        "shard missing",
        edit_index(lambda i: i["weight_map"].update({"lm_head.weight": "gone.safetensors"})),
        "names 1 shard missing from the folder: 'gone.safetensors'",
    ),
    Case(
        "index leaves a tensor out",
        edit_index(lambda i: i["weight_map"].pop("lm_head.weight")),
        "does not list 'lm_head.weight', which shard",
    ),
    Case(
        "index names the wrong shard",
        edit_index(
            lambda i: i["weight_map"].update(
                {"lm_head.weight": i["weight_map"]["model.norm.weight"]}
                if i["weight_map"]["model.norm.weight"] != i["weight_map"]["lm_head.weight"]
                else {}
            )
        ),
        "maps 'lm_head.weight' to",
    ),
    Case(
        "index lists a tensor no shard holds",
        edit_index(
            lambda i: i["weight_map"].update({"ghost.weight": i["weight_map"]["lm_head.weight"]})
        ),
        "maps 'ghost.weight' to 'model-00001-of-00003.safetensors', which does not hold it",
    ),
    Case("one tensor in two shards", _swap_into_two_shards, "is stored in two shards"),
    Case(
        "index without weight_map", edit_index(lambda i: i.pop("weight_map")), "has no weight_map"
    ),
    Case("index not JSON", json_text(INDEX, "{", shards=3), f"{INDEX} is not valid JSON"),
    Case(
        "index over the limit",
        edit_index(lambda i: i["metadata"].update(padding="x" * 2000)),
        f"{INDEX} holds",
        ("--max-config-bytes", "1500"),
    ),
    # special files and links
    Case("weights file a FIFO", _fifo("model.safetensors"), "is a FIFO (named pipe)"),
    Case("a shard a FIFO", _fifo("", shards=2), "is a FIFO (named pipe)"),
    Case("config.json a FIFO", _fifo("config.json"), "is a FIFO (named pipe)"),
    Case("weights file a directory", _directory, "is a directory; expected a safetensors file"),
    Case("a link out of the folder", _link_out, "secret.safetensors', outside the folder"),
    Case("a link to a device", _link_to_device, "config.json is a link to '/dev/zero', outside"),
    Case("a cache-like link out of the blobs", _fake_cache_link, "elsewhere/blob', outside the"),
    Case("a dangling link", _dangling, "model.safetensors is a broken link"),
    # the config
    Case("no config.json", _no_config, "holds safetensors weights but no config.json"),
    Case(
        "pickled weights only",
        _pickles_only,
        "holds pytorch_model.bin weights, a pickle weighttie never opens",
    ),
    Case("config not JSON", json_text("config.json", "{"), "config.json is not valid JSON"),
    Case("config a list", json_text("config.json", "[]"), "config.json holds a JSON list"),
    Case(
        "tie_word_embeddings not a boolean",
        edit_config(lambda c: c.update(tie_word_embeddings="yes")),
        "tie_word_embeddings is 'yes'; expected true or false",
    ),
    Case(
        "architectures a string",
        edit_config(lambda c: c.update(architectures="LlamaForCausalLM")),
        "architectures is 'LlamaForCausalLM'; expected a list of class names",
    ),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {case.name: case.build(tmp_path_factory.mktemp("hf")) for case in CASES}


def _assert_refused(case: Case, run: Run) -> None:
    assert run.code == 2, f"{case.name}: exit {run.code}: {run.err}"
    assert run.out == "" and "Traceback" not in run.err
    lines = run.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("weighttie: error: "), run.err
    assert case.piece in lines[0], f"{case.name}: {lines[0]!r}"
    assert SECRET[:20].decode() not in run.err


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_refused_with_one_line(case: Case, corpus: dict[str, Path], tmp_path: Path) -> None:
    _assert_refused(
        case, run_static(corpus[case.name], tmp_path / "peak", *case.args, watch=corpus[case.name])
    )


@pytest.mark.budget
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_refused_fast_in_bounded_memory(
    case: Case, corpus: dict[str, Path], tmp_path: Path
) -> None:
    run = run_static(corpus[case.name], tmp_path / "peak", *case.args, watch=corpus[case.name])
    _assert_refused(case, run)
    assert run.seconds < BUDGET_SECONDS, f"{case.name}: {run.seconds:.1f} s"
    assert run.peak_mb < BUDGET_RSS_MB, f"{case.name}: peak RSS {run.peak_mb:.0f} MB"


def test_links_inside_the_folder_are_followed(tmp_path: Path) -> None:
    folder = _llama(tmp_path)
    (folder / "weights").mkdir()
    os.replace(folder / "model.safetensors", folder / "weights" / "real.safetensors")
    os.symlink("weights/real.safetensors", folder / "model.safetensors")
    run = run_static(folder, tmp_path / "peak", watch=folder)
    assert (run.code, run.err) == (0, "")


def test_a_pickle_is_never_opened(corpus: dict[str, Path], tmp_path: Path) -> None:
    folder = corpus["pickled weights only"]
    run_static(folder, tmp_path / "peak", watch=folder)
    assert not (folder.parent / "pickle-ran").exists()


def test_the_corpus_is_left_as_it_was(corpus: dict[str, Path], tmp_path: Path) -> None:
    """Reading never writes: every file keeps its bytes (FIFOs and links excepted)."""
    case = next(c for c in CASES if c.name == "two tensors overlap")
    folder = corpus[case.name]
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    run_static(folder, tmp_path / "peak", watch=folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before
