"""Saving a model with each tied variable stored once: ``save_model``.

Keras writes a variable once per layer holding it (each layer saves its own
variables, keras#18419), so a tied matrix is stored, and read, once per holder.
``save_model`` writes the normal ``.keras`` file with Keras (``model.save`` to a
temporary file beside the target), records which variable object each layer
wrote where (:func:`weighttie._keras.recording_saves`), and rewrites the weights
member: a variable written at several paths keeps its first dataset, and the
other paths become HDF5 hard links to it, once the saved copies are checked to
hold the same bytes. Plain Keras opens datasets by path, so it reads the linked
file as before; the file holds each tied matrix once. See docs/store-once.md.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from weighttie import _keras
from weighttie.errors import OutputError, first_line
from weighttie.io.keras_zip import WEIGHTS

__all__ = ["StoredOnce", "save_model"]

#: How many bytes of two datasets are compared at a time.
_COMPARE_BYTES = 1 << 24
#: A zip member larger than this needs the zip64 extension.
_ZIP64_AT = (1 << 31) - 1


@dataclass(frozen=True)
class StoredOnce:
    """What :func:`save_model` wrote.

    ``links``: for each variable stored once, its dataset and the paths that are
    hard links to it. ``copies``: the paths of variables held by several layers that
    stay separate copies (their saved values differed, or a holder wrote an array
    rather than the variable); empty for a model Keras saves normally.
    ``weights_bytes``: the size of model.weights.h5 as Keras wrote it, and after.
    """

    path: str
    links: tuple[tuple[str, tuple[str, ...]], ...]
    copies: tuple[tuple[str, ...], ...]
    weights_bytes: tuple[int, int]


def _target(path: str | os.PathLike[str], overwrite: bool) -> tuple[Path, os.stat_result | None]:
    """The file to write, and what is there now (checked before any work).

    Raises:
        OutputError: the name does not end in .keras, its directory is missing, it is a
            directory or another non-regular file, or it exists and ``overwrite`` is False.
    """
    text = os.fspath(path)
    target = Path(text)
    if not text.endswith(".keras"):
        raise OutputError(
            f"cannot save to {text!r}: expected a file name ending in .keras "
            "(the Keras 3 archive save_model writes)"
        )
    if not target.parent.is_dir():
        raise OutputError(
            f"cannot save to {text!r}: directory {str(target.parent)!r} does not exist"
        )
    try:
        existing: os.stat_result | None = target.stat()
    except FileNotFoundError:
        existing = None
    except OSError as exc:
        raise OutputError(f"cannot save to {text!r}: {exc.strerror or exc}") from None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        kind = "a directory" if stat.S_ISDIR(existing.st_mode) else "not a regular file"
        raise OutputError(f"cannot save to {text!r}: it is {kind}; expected a .keras file name")
    if existing is not None and not overwrite:
        raise OutputError(
            f"cannot save to {text!r}: the file exists; pass overwrite=True to replace it"
        )
    return target, existing


def _save_recorded(model: Any, file: Path, include_optimizer: bool) -> list[_keras.SavedEntry]:
    """``model.save(file)``, recording where each layer's values went.

    Raises:
        OutputError: Keras cannot save the model (nothing was written at the target).
    """
    from weighttie.ties import layer_subtree

    with _keras.recording_saves(layer_subtree(model)) as records:
        try:
            model.save(file, include_optimizer=include_optimizer)
        except Exception as exc:
            raise OutputError(
                f"Keras cannot save model {model.name!r} "
                f"({type(exc).__name__}: {first_line(exc)}); nothing was written"
            ) from None
    return records


def _shared_paths(records: Sequence[_keras.SavedEntry]) -> list[list[str]]:
    """The dataset paths of each variable object written at more than one path, in the
    order Keras wrote them (the first is the one kept)."""
    import keras

    by_variable: dict[int, list[str]] = {}
    for entry in records:
        if isinstance(entry.value, keras.Variable):
            paths = by_variable.setdefault(id(entry.value), [])
            if entry.path not in paths:
                paths.append(entry.path)
    return [paths for paths in by_variable.values() if len(paths) > 1]


def _same_bytes(a: Any, b: Any) -> bool:
    """Whether two datasets hold the same values bit for bit (and the same attributes)."""
    import h5py

    if not (isinstance(a, h5py.Dataset) and isinstance(b, h5py.Dataset)):
        return False
    if a.shape != b.shape or a.dtype != b.dtype or a.dtype.hasobject:
        return False
    if dict(a.attrs) != dict(b.attrs):
        return False
    if a.ndim == 0 or a.size == 0:
        return _bits(a[()]) == _bits(b[()])
    row = max(1, a.dtype.itemsize * a.size // a.shape[0])
    step = max(1, _COMPARE_BYTES // row)  # bounded memory, whatever the variable's size
    for start in range(0, a.shape[0], step):
        if _bits(a[start : start + step]) != _bits(b[start : start + step]):
            return False
    return True


def _bits(values: Any) -> bytes:
    return np.ascontiguousarray(values).tobytes()


def _plan_links(h5: Any, shared: Sequence[Sequence[str]]) -> tuple[dict[str, str], list[list[str]]]:
    """Which paths become links to which kept dataset, and which holders stay copies.

    A path is linked only if its dataset holds the same bytes as the kept one.
    """
    links: dict[str, str] = {}
    copies: list[list[str]] = []
    for paths in shared:
        first = h5.get(paths[0])
        apart = []
        for other in paths[1:]:
            if _same_bytes(first, h5.get(other)):
                links[other] = paths[0]
            else:
                apart.append(other)
        if apart:
            copies.append([paths[0], *apart])
    return links, copies


def _copy_tree(source: Any, target: Any, skip: dict[str, str]) -> None:
    """Copy ``source``'s groups (with their attributes) and datasets into ``target``,
    leaving out the datasets at ``skip``'s paths (they become links after)."""
    import h5py

    for key, value in source.attrs.items():
        target.attrs[key] = value
    for name in source:
        item = source[name]
        if isinstance(item, h5py.Group):
            _copy_tree(item, target.create_group(name), skip)
        elif item.name.lstrip("/") not in skip:
            source.copy(item, target, name=name)  # HDF5's object copy: layout, dtype, attrs


def _rewrite_weights(
    saved: Path, rewritten: Path, shared: Sequence[Sequence[str]]
) -> tuple[dict[str, str], list[list[str]]]:
    """Write ``saved``'s tree to ``rewritten``, each planned path a hard link (nothing is
    written when no path is to be linked)."""
    import h5py

    with h5py.File(saved, "r") as old:
        links, copies = _plan_links(old, shared)
        if not links:
            return links, copies
        with h5py.File(rewritten, "w") as new:
            _copy_tree(old, new, links)
            for path, kept in links.items():
                new[path] = new[kept]  # assigning a dataset makes a hard link
    return links, copies


def _write_archive(saved: Path, weights: Path, out: Path) -> None:
    """A copy of the archive ``saved`` with its weights member read from ``weights``;
    every member keeps its name, order, date and compression."""
    with zipfile.ZipFile(saved) as old, zipfile.ZipFile(out, "w") as new:
        for info in old.infolist():
            member = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            member.compress_type = info.compress_type
            member.external_attr = info.external_attr
            if info.filename == WEIGHTS:
                size = weights.stat().st_size
                with (
                    open(weights, "rb") as src,
                    new.open(member, "w", force_zip64=size > _ZIP64_AT) as dst,
                ):
                    shutil.copyfileobj(src, dst, 1 << 20)
            else:
                with (
                    old.open(info) as src,
                    new.open(member, "w", force_zip64=info.file_size > _ZIP64_AT) as dst,
                ):
                    shutil.copyfileobj(src, dst, 1 << 20)


def _extract(saved: Path, into: Path) -> int:
    """Copy the weights member of ``saved`` to ``into``; return its size."""
    with zipfile.ZipFile(saved) as archive, archive.open(WEIGHTS) as src, open(into, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return into.stat().st_size


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = True,
    include_optimizer: bool = True,
) -> StoredOnce:
    """Save ``model`` as Keras's ``model.save`` does, each tied variable stored once.

    The file is a normal ``.keras`` archive: ``keras.saving.load_model`` reads it
    (tied layers load as equal-valued copies, as from ``model.save``), and
    :func:`weighttie.load_model` binds its ties again with the optimizer state. In
    ``model.weights.h5`` a variable held by several layers is one dataset; the other
    holders' paths are HDF5 hard links to it. Which paths hold one variable is
    recorded from the live variable objects as Keras saves them, and a path is linked
    only where the saved bytes are equal.

    The target is replaced atomically: the archive is written beside it and moved
    over it, so a failure leaves an existing file as it was.

    Returns:
        What was linked, and the weights member's size before and after.

    Raises:
        OutputError: the target cannot be written (its directory is missing, it is a
            directory, it does not end in .keras, it exists and ``overwrite`` is
            False), or Keras cannot save the model. Nothing is changed.

    Example:
        >>> weighttie.tie_weights(encoder_emb, decoder_emb)         # doctest: +SKIP
        >>> weighttie.save_model(model, "tied.keras")               # doctest: +SKIP
    """
    import keras

    if not isinstance(model, keras.Model):
        raise OutputError(
            f"save_model saves a keras.Model; received {type(model).__name__} (nothing was written)"
        )
    target, existing = _target(path, overwrite)
    try:
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as exc:
        raise OutputError(f"cannot save to {str(target)!r}: {exc.strerror or exc}") from None
    try:
        return _save_in(model, target, existing, work, include_optimizer)
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(
            f"cannot save to {str(target)!r}: {exc.strerror or exc}; the old file is untouched"
        ) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _save_in(
    model: Any, target: Path, existing: os.stat_result | None, work: Path, include_optimizer: bool
) -> StoredOnce:
    saved, old_h5, new_h5, out = (
        work / "saved.keras",
        work / "saved.h5",
        work / "once.h5",
        work / "once.keras",
    )
    records = _save_recorded(model, saved, include_optimizer)
    if not records and model.weights:
        import keras

        warnings.warn(
            f"Keras {keras.__version__} does not say where it saves each variable (its H5 "
            "store keeps no entry path): the file is written as model.save writes it, a "
            "tied variable once per holder",
            stacklevel=3,
        )
    shared = _shared_paths(records)
    links: dict[str, str] = {}
    copies: list[list[str]] = []
    before = after = 0
    if shared:
        before = _extract(saved, old_h5)
        links, copies = _rewrite_weights(old_h5, new_h5, shared)
    if links:
        _write_archive(saved, new_h5, out)
        after = new_h5.stat().st_size
    else:  # nothing to link: the archive as Keras wrote it
        out = saved
        with zipfile.ZipFile(saved) as archive:
            member = archive.NameToInfo.get(WEIGHTS)
            before = after = member.file_size if member is not None else 0
    with open(out, "rb+") as f:  # on disk before it replaces the old file
        os.fsync(f.fileno())
    if existing is not None:
        os.chmod(out, stat.S_IMODE(existing.st_mode))
    else:
        os.chmod(out, 0o666 & ~_umask())
    os.replace(out, target)
    grouped: dict[str, list[str]] = {}
    for linked, kept in links.items():
        grouped.setdefault(kept, []).append(linked)
    return StoredOnce(
        path=str(target),
        links=tuple((kept, tuple(paths)) for kept, paths in grouped.items()),
        copies=tuple(tuple(paths) for paths in copies),
        weights_bytes=(before, after),
    )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
