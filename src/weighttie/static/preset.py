"""Model folders: keras_hub presets, sharded weights, and Keras's unzipped saves.

A folder is read as one model, without Keras:

* ``config.json``: the model's config (a keras_hub backbone's constructor
  arguments, or a functional graph written by ``model.save(dir, zipped=False)``);
  ``task.json`` (keras_hub), when present, is the model instead, holding the
  backbone's config;
* the weights: ``model.weights.h5``, or the index ``model.weights.json`` (Keras's
  ``save_weights(..., max_shard_size=...)``, keras_hub's ``save_to_preset`` of a
  large model) and the shards it names (``model_00000.weights.h5`` …), each a
  complete HDF5 file holding part of one tree; a task's own weights
  (``task.weights.h5``) are the task's tree, and the backbone's are grafted into it
  where the task holds its backbone (``layers/<backbone>``), as a ``.keras`` file
  of the task holds them;
* ``metadata.json``: the Keras version, nothing else.

The index must match the shards exactly: every key of its ``weight_map`` (a
``vars`` group, ``/layers/dense/vars``) must hold variables in each shard it names,
and every ``vars`` group holding variables in a shard must be listed, mapped to
that shard. Keras's own loader opens the shard a key names and fails on a layer
whose variables are not there (or loads a layer the index does not list from
whichever shard happens to be open); the reader refuses any mismatch rather than
count less than the model holds. A shard-named file (``model_00004.weights.h5``)
the index does not name, left over from an earlier save, is not read, as Keras
does not read it, and a note (``model.notes``) names it.

Every file is checked as a model file is: opened only if regular (a symlink is
followed: a Hugging Face cache links each file of a snapshot to a blob outside the
folder; what it names must be a regular file), read within the limits, the
weights files walked and refused unless self-contained. The index may name only
plain file names of the folder itself (no ``/``, no ``..``). The limits hold for
the folder as a whole: ``h5_objects`` counts the objects of all its weights files.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from weighttie.errors import FileFormatError, MissingFileError
from weighttie.facts import ModelFacts
from weighttie.files import open_regular, read_limited
from weighttie.io.config_json import check_json_size, parse_model_config
from weighttie.io.hdf5_guard import open_h5_deferred
from weighttie.limits import Limits
from weighttie.static.h5_tree import Collected, collect_h5, h5_errors, link_groups
from weighttie.static.keras3 import facts_of_config
from weighttie.static.keras_hub import snake_case
from weighttie.static.values import Values

__all__ = [
    "CONFIG",
    "INDEX",
    "METADATA",
    "TASK",
    "TASK_WEIGHTS",
    "WEIGHTS",
    "folder_facts",
    "is_model_folder",
]

CONFIG = "config.json"
TASK = "task.json"
METADATA = "metadata.json"
WEIGHTS = "model.weights.h5"
INDEX = "model.weights.json"
TASK_WEIGHTS = "task.weights.h5"

_EXPECTED = (
    "expected a keras_hub preset folder (config.json, model.weights.h5 or model.weights.json "
    "with its shards) or a model saved with model.save(folder, zipped=False)"
)


def is_model_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a folder (a symlink to one included)."""
    return os.path.isdir(path)


@contextmanager
def folder_facts(
    path: str | os.PathLike[str], findings: bool, limits: Limits
) -> Iterator[ModelFacts]:
    """The facts of a model folder (see the module's docstring), valid while its files
    stay open (values are read from them for findings, through ``facts.access``).

    Raises:
        FileFormatError: the folder is not a saved model (no config.json, no
            weights), its index is damaged or names a missing shard, or a file in
            it is not a regular, self-contained file.
        LimitError: the folder holds more than ``limits`` allow.
    """
    folder = os.fspath(path)
    where = repr(folder)
    config_name = TASK if _exists(folder, TASK) else CONFIG
    if not _exists(folder, CONFIG):
        raise FileFormatError(f"{where} is a directory without {CONFIG}; {_EXPECTED}")
    config = _config(folder, config_name, limits)
    metadata = _metadata(folder, limits)
    parts, weight_map = _weight_files(folder, config if config_name == TASK else None, limits)
    handles: dict[str, Any] = {}
    found = Collected()
    with ExitStack() as stack:
        budget = limits.h5_objects
        collected: list[tuple[str, str, Collected]] = []
        for name, prefix in parts:
            file = stack.enter_context(open_regular(Path(folder) / name, what="weights file"))
            what = f"{where}: {name}"
            h5, heaps = stack.enter_context(open_h5_deferred(file, what))
            stack.enter_context(h5_errors(folder, name))
            part = collect_h5(h5, what, replace(limits, h5_objects=budget), handles, prefix, heaps)
            budget = max(1, budget - part.objects)
            collected.append((name, prefix, part))
        if weight_map is not None:
            _check_index(folder, weight_map, [c for c in collected if c[0] in _named(weight_map)])
        for _, _, part in collected:
            found.merge(part, where)
        group = link_groups(found)
        values = Values(None, handles, f"{where}: weights")
        facts = facts_of_config(
            folder, config, metadata, group, values, limits, findings, config_name
        )
        notes = _unread(folder, {name for name, _ in parts}, weight_map is not None)
        if notes:
            model = replace(facts.model, notes=(*facts.model.notes, *notes))
            facts = replace(facts, model=model)
        yield facts


def _exists(folder: str, name: str) -> bool:
    return os.path.lexists(os.path.join(folder, name))


def _read(folder: str, name: str, limits: Limits) -> bytes:
    path = os.path.join(folder, name)
    try:
        return read_limited(path, limit=limits.config_bytes, limit_name="config_bytes", what=name)
    except MissingFileError:
        raise FileFormatError(
            f"{folder!r}: {name} is missing or a broken link; {_EXPECTED}"
        ) from None


def _config(folder: str, name: str, limits: Limits) -> dict[str, Any]:
    where = f"{folder!r}: {name}"
    config = parse_model_config(_read(folder, name, limits), limits=limits, where=where)
    if not isinstance(config, dict):
        raise FileFormatError(f"{where} must hold a JSON object; found {type(config).__name__}")
    return config


def _metadata(folder: str, limits: Limits) -> dict[str, Any]:
    """metadata.json, or nothing when it is missing or unreadable (Keras ignores it too)."""
    if not _exists(folder, METADATA):
        return {}
    try:
        data = _read(folder, METADATA, limits)
        check_json_size(data, limits, f"{folder!r}: {METADATA}")
        meta = json.loads(data)
    except (FileFormatError, ValueError, RecursionError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _weight_files(
    folder: str, task: dict[str, Any] | None, limits: Limits
) -> tuple[list[tuple[str, str]], dict[str, tuple[str, ...]] | None]:
    """The weights files to read, each with the path its tree sits at in the model's tree,
    and the index's weight map when the weights are sharded."""
    prefix = ""
    parts: list[tuple[str, str]] = []
    if task is not None:
        backbone = (task.get("config") or {}).get("backbone")
        class_name = backbone.get("class_name") if isinstance(backbone, dict) else None
        if not isinstance(class_name, str):
            raise FileFormatError(
                f"{folder!r}: {TASK} names no backbone class; expected the config keras_hub "
                "writes for a task (config.backbone.class_name)"
            )
        prefix = f"layers/{snake_case(class_name)}/"
        if _exists(folder, TASK_WEIGHTS):
            parts.append((TASK_WEIGHTS, ""))
    if _exists(folder, WEIGHTS):
        return [*parts, (WEIGHTS, prefix)], None
    if not _exists(folder, INDEX):
        raise FileFormatError(f"{folder!r} holds neither {WEIGHTS} nor {INDEX}; {_EXPECTED}")
    weight_map = _weight_map(folder, limits)
    return [*parts, *((shard, prefix) for shard in _named(weight_map))], weight_map


def _named(weight_map: dict[str, tuple[str, ...]]) -> list[str]:
    """The shard files a weight map names, sorted."""
    return sorted({name for names in weight_map.values() for name in names})


def _weight_map(folder: str, limits: Limits) -> dict[str, tuple[str, ...]]:
    """``model.weights.json``'s weight map, each key with the shards it names; each shard
    must be in the folder."""
    where = f"{folder!r}: {INDEX}"
    data = _read(folder, INDEX, limits)
    check_json_size(data, limits, where)
    try:
        index = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise FileFormatError(f"{where} is not valid JSON: {exc}") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise FileFormatError(
            f"{where} has no weight_map; expected the index Keras writes for sharded weights "
            '({"metadata": ..., "weight_map": {"/layers/.../vars": "model_00000.weights.h5"}})'
        )
    mapped: dict[str, tuple[str, ...]] = {}
    for key, value in weight_map.items():
        names = value if isinstance(value, list) else [value]
        if not names:
            raise FileFormatError(
                f"{where} maps {key!r} to no shard; expected the file name of a shard, or a "
                "list of them"
            )
        for name in names:
            if not isinstance(name, str) or not _plain_shard_name(name):
                raise FileFormatError(
                    f"{where} maps {key!r} to {name!r}; expected the file name of a shard in "
                    "the folder itself (NAME.weights.h5, no path)"
                )
        mapped[key] = tuple(dict.fromkeys(names))
    missing = [name for name in _named(mapped) if not os.path.exists(os.path.join(folder, name))]
    if missing:
        raise FileFormatError(
            f"{where} names {len(missing)} shard{'s' if len(missing) != 1 else ''} missing from "
            f"the folder: {', '.join(map(repr, missing[:3]))}{' …' if len(missing) > 3 else ''}"
        )
    return mapped


_MISMATCH = (
    "expected each key in every shard it names and every variable group of a shard listed "
    "(a damaged or mixed-up index)"
)


def _check_index(
    folder: str, weight_map: dict[str, tuple[str, ...]], shards: list[tuple[str, str, Collected]]
) -> None:
    """The index and the shards must agree: each key (``/layers/dense/vars``) holds variables
    in every shard it names, and each ``vars`` group holding variables in a shard is a key
    naming that shard. ``shards``: (file name, the prefix its tree was read at, what it
    held).

    Keras lists a key with a shard only when it writes a variable of it there. It also
    leaves empty ``vars`` groups in a shard (a layer reached while that shard was open,
    its variables written to the next): an empty group does not make a key found, or an
    index naming only the first shard would pass, every other shard's variables lost."""
    where = f"{folder!r}: {INDEX}"
    held: dict[str, set[str]] = {}  # the vars groups holding variables, by shard
    for name, prefix, part in shards:
        keys = held.setdefault(name, set())
        for path, _, _ in part.datasets:
            group = path[len(prefix) :].rpartition("/")[0]
            if group == "vars" or group.endswith("/vars"):
                keys.add("/" + group)
    for key, names in weight_map.items():
        for name in names:
            if key not in held.get(name, ()):
                raise FileFormatError(
                    f"{where} maps {key!r} to {name!r}, which holds no variables there; {_MISMATCH}"
                )
    for name, keys in held.items():
        for key in sorted(keys):
            listed = weight_map.get(key)
            if listed is None:
                raise FileFormatError(
                    f"{where} does not list {key!r}, which shard {name!r} holds; {_MISMATCH}"
                )
            if name not in listed:
                raise FileFormatError(
                    f"{where} maps {key!r} to {', '.join(map(repr, listed))}, but shard "
                    f"{name!r} holds variables there too; {_MISMATCH}"
                )


#: The name Keras gives a shard of ``model.weights.json`` (``model_00000.weights.h5``).
_SHARD = re.compile(r"model_[0-9]{5,}\.weights\.h5")


def _unread(folder: str, read: set[str], sharded: bool) -> tuple[str, ...]:
    """A note naming the shard files in the folder that were not read (none: no note)."""
    try:
        names = sorted(n for n in os.listdir(folder) if _SHARD.fullmatch(n) and n not in read)
    except OSError:
        return ()
    if not names:
        return ()
    listed = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    them = "them" if len(names) > 1 else "it"
    why = (
        f"{INDEX} does not name {them} (left from an earlier save?)"
        if sharded
        else f"the weights are {WEIGHTS}, which keras_hub loads rather than shards"
    )
    return (f"Not read: {listed} in the folder: {why}; Keras does not load {them} either",)


def _plain_shard_name(name: str) -> bool:
    return (
        name.endswith(".weights.h5")
        and "/" not in name
        and "\\" not in name
        and name not in (".", "..")
        and not name.startswith(".")
        and "\0" not in name
    )
