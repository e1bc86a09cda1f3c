"""Hugging Face checkpoint folders for the tests, written offline with numpy.

``fixtures/huggingface/layouts.json`` holds what transformers 5.24 itself saves for a
tiny model of each family (its ``config.json``, and the names, dtypes and shapes of
``model.safetensors``; ``make_layouts.py`` there regenerates it). :func:`checkpoint`
writes such a folder with random values, changed as a test asks: tensors dropped,
added (a copy of another, or different values), config keys set or removed,
metadata added, the weights split into shards with transformers' index.

:func:`write_safetensors` writes the format byte for byte as the safetensors package
does (``tests/static/huggingface/test_hf_checkpoints.py`` checks it against
``safetensors.numpy.save`` and reads every checkpoint back with
``safetensors.safe_open``); hostile files are built from it by editing the header or
the bytes.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from support import FIXTURES

LAYOUTS: dict[str, Any] = json.loads((FIXTURES / "huggingface" / "layouts.json").read_text())

#: safetensors' dtypes in its order (increasing alignment), with numpy's dtype for values.
DTYPES: dict[str, str] = {
    "BOOL": "bool",
    "U8": "uint8",
    "I8": "int8",
    "F8_E5M2": "uint8",
    "F8_E4M3": "uint8",
    "I16": "int16",
    "U16": "uint16",
    "F16": "float16",
    "BF16": "uint16",  # numpy has no bfloat16: its bits
    "I32": "int32",
    "U32": "uint32",
    "F32": "float32",
    "F64": "float64",
    "I64": "int64",
    "U64": "uint64",
}
_ORDER = [
    "BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
    "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64",
    "F64", "I64", "U64",
]  # fmt: skip


@dataclass(frozen=True)
class Tensor:
    """One tensor to write: safetensors dtype, shape and raw bytes."""

    dtype: str
    shape: tuple[int, ...]
    data: bytes

    @classmethod
    def of(cls, dtype: str, values: np.ndarray) -> Tensor:
        return cls(dtype, tuple(values.shape), np.ascontiguousarray(values).tobytes())


def header_bytes(header: Mapping[str, Any]) -> bytes:
    """A header as safetensors writes it: compact JSON, padded with spaces to 8 bytes."""
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    return text + b" " * (-len(text) % 8)


def write_safetensors(
    path: Path, tensors: Mapping[str, Tensor], metadata: Mapping[str, str] | None = None
) -> Path:
    """Write ``tensors`` as safetensors does: by dtype, widest first, then by name."""
    order = sorted(tensors, key=lambda n: (-_ORDER.index(tensors[n].dtype), n))
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    at = 0
    for name in order:
        t = tensors[name]
        header[name] = {
            "dtype": t.dtype,
            "shape": list(t.shape),
            "data_offsets": [at, at + len(t.data)],
        }
        at += len(t.data)
    raw = header_bytes(header)
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for name in order:
            f.write(tensors[name].data)
    return path


def random_tensor(dtype: str, shape: Sequence[int], seed: int) -> Tensor:
    rng = np.random.default_rng(seed)
    np_dtype = np.dtype(DTYPES[dtype])
    if np_dtype.kind == "f":
        values = rng.standard_normal(shape).astype(np_dtype)
    elif np_dtype.kind == "b":
        values = rng.integers(0, 2, shape).astype(bool)
    else:
        info = np.iinfo(np_dtype)
        values = rng.integers(info.min, info.max, shape, dtype=np_dtype, endpoint=True)
    return Tensor.of(dtype, values)


def layout_tensors(family: str, seed: int = 0) -> dict[str, Tensor]:
    """A layout's tensors with random values (each tensor its own seed)."""
    return {
        name: random_tensor(dtype, shape, seed * 1000 + i)
        for i, (name, dtype, shape) in enumerate(LAYOUTS[family]["header"]["tensors"])
    }


def layout_config(family: str) -> dict[str, Any]:
    return dict(LAYOUTS[family]["config"])


def layout_metadata(family: str) -> dict[str, str]:
    return dict(LAYOUTS[family]["header"]["metadata"])


def shard(tensors: Mapping[str, Tensor], count: int) -> list[dict[str, Tensor]]:
    """Split tensors into ``count`` shards in name order, as transformers fills them."""
    names = sorted(tensors)
    size = -(-len(names) // count)
    return [{n: tensors[n] for n in names[i : i + size]} for i in range(0, len(names), size)]


def save_checkpoint(
    folder: Path,
    config: Mapping[str, Any],
    tensors: Mapping[str, Tensor],
    metadata: Mapping[str, str] | None = None,
    shards: int = 1,
) -> Path:
    """Write a checkpoint folder: ``config.json`` and ``model.safetensors``, or ``shards``
    files ``model-0000i-of-0000n.safetensors`` with transformers' index."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    if shards == 1:
        write_safetensors(folder / "model.safetensors", tensors, metadata)
        return folder
    parts = shard(tensors, shards)
    weight_map = {}
    for i, part in enumerate(parts, 1):
        name = f"model-{i:05d}-of-{len(parts):05d}.safetensors"
        write_safetensors(folder / name, part, metadata)
        weight_map.update({n: name for n in part})
    index = {
        "metadata": {
            "total_parameters": sum(int(np.prod(t.shape)) for t in tensors.values()),
            "total_size": sum(len(t.data) for t in tensors.values()),
        },
        "weight_map": dict(sorted(weight_map.items())),
    }
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return folder


def checkpoint(
    folder: Path,
    family: str,
    *,
    drop: Sequence[str] = (),
    add: Mapping[str, Tensor] | None = None,
    config: Mapping[str, Any] | None = None,
    remove_keys: Sequence[str] = (),
    metadata: Mapping[str, str] | None = None,
    shards: int = 1,
) -> Path:
    """A layout written to ``folder``, changed as asked: tensors dropped and added, config
    keys set (``config``) or removed, metadata entries added to the layout's."""
    tensors = layout_tensors(family)
    for name in drop:
        del tensors[name]
    tensors.update(add or {})
    cfg = layout_config(family)
    cfg.update(config or {})
    for key in remove_keys:
        cfg.pop(key, None)
    meta = layout_metadata(family)
    meta.update(metadata or {})
    return save_checkpoint(folder, cfg, tensors, meta, shards)


def copy_of(tensor: Tensor) -> Tensor:
    return Tensor(tensor.dtype, tensor.shape, bytes(tensor.data))


def changed(tensor: Tensor, at: int = 0) -> Tensor:
    """The same tensor with one byte changed (at byte ``at``)."""
    data = bytearray(tensor.data)
    data[at] ^= 0x01
    return Tensor(tensor.dtype, tensor.shape, bytes(data))
