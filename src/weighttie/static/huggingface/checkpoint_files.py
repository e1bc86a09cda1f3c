"""Which files of a Hugging Face checkpoint folder are read, and how each is opened.

A folder is a checkpoint when it holds ``model.safetensors`` or the index
``model.safetensors.index.json`` (and none of Keras's own folder files, which
:mod:`weighttie.static.preset` reads). transformers loads ``model.safetensors``
when it is there, else the shards the index names; so does weighttie:

* ``config.json``: the model's config (read within ``config_bytes``);
* ``model.safetensors``; or the index (``{"metadata": {"total_size": …},
  "weight_map": {tensor name: shard file name}}``) and every shard it names. Each
  shard name must be a plain file name of the folder ending in ``.safetensors``:
  no ``/`` or ``\\``, no ``..``, no leading dot, not absolute. The index must match
  the shards exactly: every tensor it lists is in the shard it names, every tensor
  of a shard is listed with that shard, and no tensor is in two shards;
* nothing else: tokenizer files, ``pytorch_model.bin`` (a pickle) and the rest are
  not opened. Shard-named files the index does not name, and an index or shards
  beside ``model.safetensors``, are named in a note (not read, as transformers does
  not read them).

Every file is opened only if it is a regular file (non-blocking, checked again once
open: a FIFO never blocks the reader). A symlink may lead only inside the folder,
or, in a Hugging Face cache (``…/models--org--name/snapshots/<revision>/``), to the
cache's blob store of the same repository (``…/models--org--name/blobs/``), where
the cache keeps every file of a snapshot; a link anywhere else is refused.

This module imports neither Keras nor a backend.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from weighttie.errors import FileFormatError, LimitError
from weighttie.files import open_regular
from weighttie.io.config_json import check_json_size
from weighttie.limits import Limits
from weighttie.static.huggingface.safetensors_header import SafetensorsHeader, read_header

__all__ = [
    "CONFIG",
    "INDEX",
    "SINGLE",
    "CheckpointFiles",
    "is_checkpoint_folder",
    "open_in_folder",
    "read_checkpoint_files",
]

CONFIG = "config.json"
SINGLE = "model.safetensors"
INDEX = "model.safetensors.index.json"
#: Keras's own folder files (keras_hub presets, unzipped saves): a folder holding one
#: of them is Keras's, read by :mod:`weighttie.static.preset`.
_KERAS_FILES = ("model.weights.h5", "model.weights.json", "task.json")
#: transformers' pickled weights: never opened (unpickling can run code), but a folder
#: holding only them is a checkpoint weighttie explains it cannot read.
_PICKLES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
#: The shard names transformers writes (``model-00001-of-00004.safetensors``).
_SHARD = re.compile(r"model-[0-9]{5,}-of-[0-9]{5,}\.safetensors")

EXPECTED = (
    "expected a Hugging Face checkpoint folder (config.json with model.safetensors, or with "
    "model.safetensors.index.json and its shards)"
)


def is_checkpoint_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder holding transformers' weights (safetensors, or only
    pickles, which are refused with a clear message) and no Keras weights."""
    folder = os.fspath(path)
    if not os.path.isdir(folder):
        return False

    def has(*names: str) -> bool:
        return any(os.path.lexists(os.path.join(folder, n)) for n in names)

    return has(SINGLE, INDEX, *_PICKLES) and not has(*_KERAS_FILES)


@dataclass(frozen=True)
class CheckpointFiles:
    """What a checkpoint folder holds: its config, the headers of its weights files (in
    file name order), the index's weight map (None: one file), and notes on files not read."""

    config: dict[str, Any]
    headers: tuple[SafetensorsHeader, ...]
    weight_map: dict[str, str] | None
    index_metadata: dict[str, Any]
    notes: tuple[str, ...]


def read_checkpoint_files(folder: str, limits: Limits) -> CheckpointFiles:
    """Read a checkpoint folder's config and the headers of its weights files.

    Raises:
        FileFormatError: the folder is not a checkpoint, a file is missing, not regular,
            leads out of the folder, or is damaged; the index does not match its shards.
        LimitError: a file holds more than ``limits`` allow.
    """
    where = repr(folder)
    if not os.path.lexists(os.path.join(folder, CONFIG)):
        raise FileFormatError(f"{where} holds safetensors weights but no {CONFIG}; {EXPECTED}")
    if not any(os.path.lexists(os.path.join(folder, n)) for n in (SINGLE, INDEX)):
        raise FileFormatError(
            f"{where} holds pytorch_model.bin weights, a pickle weighttie never opens (unpickling "
            f"can run code); {EXPECTED} (save_pretrained writes safetensors by default)"
        )
    config = _json_object(folder, CONFIG, limits)
    weight_map: dict[str, str] | None = None
    index_metadata: dict[str, Any] = {}
    if os.path.lexists(os.path.join(folder, SINGLE)):
        names = [SINGLE]
    else:
        weight_map, index_metadata = _weight_map(folder, limits)
        names = sorted(set(weight_map.values()))
    headers = []
    left = limits.tensors
    for name in names:
        with open_in_folder(folder, name, "safetensors file") as f:
            header = read_header(f, name, f"{where}: {name}", limits, left)
        left -= len(header.tensors)
        headers.append(header)
    if weight_map is not None:
        _check_index(folder, weight_map, headers)
    return CheckpointFiles(
        config=config,
        headers=tuple(headers),
        weight_map=weight_map,
        index_metadata=index_metadata,
        notes=_unread(folder, {*names, INDEX} if weight_map is not None else {SINGLE}),
    )


@contextmanager
def open_in_folder(folder: str, name: str, what: str) -> Iterator[BinaryIO]:
    """Open ``name`` in ``folder`` for reading: a regular file, inside the folder (a link
    may lead to the Hugging Face cache's blobs of the same repository only).

    Raises:
        FileFormatError: missing, not a regular file, or a link leading elsewhere.
    """
    path = os.path.join(folder, name)
    if not os.path.lexists(path):
        raise FileFormatError(f"{folder!r}: {name} is missing; {EXPECTED}")
    real = os.path.realpath(path)
    if not _allowed_target(os.path.realpath(folder), real):
        raise FileFormatError(
            f"{folder!r}: {name} is a link to {real!r}, outside the folder; weighttie follows "
            "links only inside a checkpoint folder or into its Hugging Face cache's blobs"
        )
    try:
        f = open_regular(real, what=what)
    except FileFormatError:
        if not os.path.exists(real):
            raise FileFormatError(f"{folder!r}: {name} is a broken link ({real!r})") from None
        raise
    with f:
        yield f


def _inside(base: str, path: str) -> bool:
    return os.path.commonpath([base, path]) == base


def _allowed_target(folder: str, real: str) -> bool:
    """Inside the folder; or a snapshot folder of a Hugging Face cache linking into the
    blob store of the same repository (``<repo>/snapshots/<rev>`` → ``<repo>/blobs``)."""
    if _inside(folder, real):
        return True
    snapshot = Path(folder)
    if snapshot.parent.name != "snapshots":
        return False
    blobs = str(snapshot.parent.parent / "blobs")
    return _inside(blobs, real) and real != blobs


def _read(folder: str, name: str, limits: Limits) -> bytes:
    """A JSON file of the folder, whole, within the ``config_bytes`` limit."""
    limit = limits.config_bytes
    with open_in_folder(folder, name, "JSON file") as f:
        if os.fstat(f.fileno()).st_size > limit:
            raise LimitError(
                f"{folder!r}: {name} holds {os.fstat(f.fileno()).st_size:,} bytes, more than the "
                f"{limit:,} weighttie reads (the config_bytes limit)",
                limit="config_bytes",
            )
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise FileFormatError(
                f"cannot read {folder!r}: {name}: {exc.strerror or exc}"
            ) from None
    if len(data) > limit:  # it grew while it was read
        raise LimitError(
            f"{folder!r}: {name} holds more than the {limit:,} bytes weighttie reads (the "
            "config_bytes limit)",
            limit="config_bytes",
        )
    return data


def _json_object(folder: str, name: str, limits: Limits) -> dict[str, Any]:
    where = f"{folder!r}: {name}"
    data = _read(folder, name, limits)
    check_json_size(data, limits, where)
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise FileFormatError(f"{where} is not valid JSON: {reason}") from None
    if not isinstance(document, dict):
        raise FileFormatError(f"{where} holds a JSON {type(document).__name__}; expected an object")
    return document


def _weight_map(folder: str, limits: Limits) -> tuple[dict[str, str], dict[str, Any]]:
    """The index's weight map (tensor name → shard) and its metadata; each shard a plain
    file name of the folder."""
    where = f"{folder!r}: {INDEX}"
    index = _json_object(folder, INDEX, limits)
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise FileFormatError(
            f"{where} has no weight_map; expected the index transformers writes for sharded "
            'weights ({"metadata": {...}, "weight_map": {"model.embed_tokens.weight": '
            '"model-00001-of-00002.safetensors", ...}})'
        )
    if len(weight_map) > limits.tensors:
        raise LimitError(
            f"{where} lists {len(weight_map):,} tensors, more than the {limits.tensors:,} of "
            "the tensors limit",
            limit="tensors",
        )
    for tensor, shard in weight_map.items():
        if not isinstance(shard, str) or not _plain_shard_name(shard):
            raise FileFormatError(
                f"{where} maps {tensor!r} to {shard!r}; expected the file name of a shard in the "
                "folder itself (NAME.safetensors, no path)"
            )
    shards = sorted(set(weight_map.values()))
    missing = [s for s in shards if not os.path.lexists(os.path.join(folder, s))]
    if missing:
        shown = ", ".join(map(repr, missing[:3])) + (" …" if len(missing) > 3 else "")
        raise FileFormatError(
            f"{where} names {len(missing)} shard{'s' if len(missing) != 1 else ''} missing "
            f"from the folder: {shown}"
        )
    metadata = index.get("metadata")
    return weight_map, metadata if isinstance(metadata, dict) else {}


def _plain_shard_name(name: str) -> bool:
    return (
        name.endswith(".safetensors")
        and "/" not in name
        and "\\" not in name
        and not name.startswith(".")
        and "\0" not in name
        and not os.path.isabs(name)
    )


_MISMATCH = (
    "expected every tensor of every shard listed with that shard (a damaged or mixed-up index)"
)


def _check_index(folder: str, weight_map: dict[str, str], headers: list[SafetensorsHeader]) -> None:
    """The index and the shards must agree exactly (see the module's docstring)."""
    where = f"{folder!r}: {INDEX}"
    found: dict[str, str] = {}
    for header in headers:
        for t in header.tensors:
            other = found.setdefault(t.name, header.file)
            if other != header.file:
                raise FileFormatError(
                    f"{folder!r}: tensor {t.name!r} is stored in two shards, {other!r} and "
                    f"{header.file!r}; expected each tensor once"
                )
    for header in headers:
        for t in header.tensors:
            listed = weight_map.get(t.name)
            if listed is None:
                raise FileFormatError(
                    f"{where} does not list {t.name!r}, which shard {header.file!r} holds; "
                    f"{_MISMATCH}"
                )
            if listed != header.file:
                raise FileFormatError(
                    f"{where} maps {t.name!r} to {listed!r}, but shard {header.file!r} holds it; "
                    f"{_MISMATCH}"
                )
    for tensor, shard in weight_map.items():
        if tensor not in found:
            raise FileFormatError(
                f"{where} maps {tensor!r} to {shard!r}, which does not hold it; {_MISMATCH}"
            )


def _unread(folder: str, read: set[str]) -> tuple[str, ...]:
    """A note naming the weights files of the folder that were not read (none: no note)."""
    try:
        present = set(os.listdir(folder))
    except OSError:
        return ()
    names = sorted(n for n in present if (_SHARD.fullmatch(n) or n == INDEX) and n not in read)
    if not names:
        return ()
    listed = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    them = "them" if len(names) > 1 else "it"
    why = (
        f"the weights are {SINGLE}, which transformers loads first"
        if SINGLE in read
        else f"{INDEX} does not name {them} (left from an earlier save?)"
    )
    return (f"Not read: {listed} in the folder: {why}; transformers does not load {them} either",)
