"""Reading ``.keras`` archives without Keras: config, metadata, weights.

The archive is untrusted input. Members are read by name only, never extracted
to disk; JSON members are size-bounded before they are parsed; the weights member
(stored uncompressed by Keras) is opened in place through a read-only window onto
the archive file, so its size costs nothing until values are read.

This module imports no Keras and no backend.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from weighttie.errors import FileFormatError
from weighttie.graph import join_path

__all__ = [
    "MAX_DEPTH",
    "MAX_JSON_BYTES",
    "RECORD_KEY",
    "RECORD_VERSION",
    "FileTie",
    "KerasArchive",
    "file_ties",
    "iter_layer_configs",
]

#: The key weighttie adds to a tied layer's ``build_config`` (see docs/ties.md).
RECORD_KEY = "weighttie"
RECORD_VERSION = 1

#: Deepest nesting of models or sublayers weighttie follows in a file.
MAX_DEPTH = 100

#: Largest config.json / metadata.json weighttie parses. A layer's config takes
#: about 1 kB, so this admits some 60,000 layers; it bounds memory on a zip bomb.
MAX_JSON_BYTES = 64 * 1024 * 1024

CONFIG = "config.json"
METADATA = "metadata.json"
WEIGHTS = "model.weights.h5"


class _Window(io.RawIOBase):
    """A read-only, seekable view of ``length`` bytes of a file starting at ``offset``.

    HDF5 reads its metadata in many small pieces; each piece would be a Python call
    and a system call. Small reads are served from a bounded cache of aligned
    blocks (at most ``_BLOCK * _BLOCKS`` bytes); large reads (variable values) go
    straight to the file.
    """

    _BLOCK = 64 * 1024
    _BLOCKS = 256  # 16 MiB at most

    def __init__(self, path: str, offset: int, length: int) -> None:
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed in close()
        self._offset = offset
        self._length = length
        self._pos = 0
        self._cache: dict[int, bytes] = {}

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            new = pos
        elif whence == io.SEEK_CUR:
            new = self._pos + pos
        elif whence == io.SEEK_END:
            new = self._length + pos
        else:  # pragma: no cover - io contract
            raise ValueError(f"invalid whence {whence}")
        if new < 0:
            raise OSError("negative seek position")
        self._pos = new
        return new

    def _block(self, index: int) -> bytes:
        block = self._cache.get(index)
        if block is None:
            if len(self._cache) >= self._BLOCKS:
                self._cache.pop(next(iter(self._cache)))
            start = index * self._BLOCK
            self._file.seek(self._offset + start)
            block = self._file.read(min(self._BLOCK, self._length - start))
            self._cache[index] = block
        return block

    def readinto(self, buffer: Any) -> int:
        remaining = self._length - self._pos
        if remaining <= 0:
            return 0
        view = memoryview(buffer).cast("B")
        want = min(len(view), remaining)
        if want >= self._BLOCK:
            self._file.seek(self._offset + self._pos)
            got = self._file.readinto(view[:want]) or 0
            self._pos += got
            return got
        done = 0
        while done < want:
            index, start = divmod(self._pos + done, self._BLOCK)
            block = self._block(index)
            piece = block[start : start + want - done]
            if not piece:
                break
            view[done : done + len(piece)] = piece
            done += len(piece)
        self._pos += done
        return done

    def close(self) -> None:
        self._file.close()
        super().close()


class KerasArchive:
    """An open ``.keras`` file.

    Example:
        >>> with KerasArchive("model.keras") as archive:     # doctest: +SKIP
        ...     config = archive.config()
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except zipfile.BadZipFile as exc:
            raise FileFormatError(
                f"{self.path!r} is not a readable .keras archive (zip: {exc}); "
                "the file is truncated or damaged"
            ) from None
        except OSError as exc:
            raise FileFormatError(f"cannot read {self.path!r}: {exc.strerror or exc}") from None
        self._members = {info.filename: info for info in self._zip.infolist()}

    def __enter__(self) -> KerasArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    def has(self, name: str) -> bool:
        return name in self._members

    def _json(self, name: str) -> Any:
        info = self._members.get(name)
        if info is None:
            raise FileFormatError(
                f"{self.path!r} has no {name}; expected a .keras archive written by "
                "Keras 3 (config.json, metadata.json, model.weights.h5)"
            )
        if info.file_size > MAX_JSON_BYTES:
            raise FileFormatError(
                f"{self.path!r}: {name} declares {info.file_size:,} bytes, more than the "
                f"{MAX_JSON_BYTES:,} weighttie reads"
            )
        try:
            with self._zip.open(info) as f:
                data = f.read(MAX_JSON_BYTES + 1)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
            raise FileFormatError(
                f"{self.path!r}: {name} is damaged ({exc}); the archive cannot be trusted"
            ) from None
        if len(data) > MAX_JSON_BYTES:
            raise FileFormatError(
                f"{self.path!r}: {name} inflates past {MAX_JSON_BYTES:,} bytes; refusing it"
            )
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise FileFormatError(f"{self.path!r}: {name} is not valid JSON: {exc}") from None

    def config(self) -> dict[str, Any]:
        """Return config.json (the model's serialized config)."""
        config = self._json(CONFIG)
        if not isinstance(config, dict):
            raise FileFormatError(
                f"{self.path!r}: config.json must hold a JSON object; found {type(config).__name__}"
            )
        return config

    def metadata(self) -> dict[str, Any]:
        """Return metadata.json, or an empty dict when it is missing or unreadable.

        Keras itself ignores metadata.json on load; so does weighttie beyond showing
        the Keras version that wrote the file.
        """
        if not self.has(METADATA):
            return {}
        try:
            meta = self._json(METADATA)
        except FileFormatError:
            return {}
        return meta if isinstance(meta, dict) else {}

    @contextmanager
    def weights(self) -> Iterator[Any]:
        """Open model.weights.h5 read-only with h5py, in place (no copy, no extraction)."""
        import h5py

        info = self._members.get(WEIGHTS)
        if info is None:
            raise FileFormatError(f"{self.path!r} has no {WEIGHTS}")
        stream: IO[bytes] | _Window
        if info.compress_type == zipfile.ZIP_STORED:
            stream = _Window(self.path, _data_offset(self.path, info), info.file_size)
        else:  # not what Keras writes; read through zipfile (slower, still bounded)
            stream = self._zip.open(info)
        try:
            try:
                handle = h5py.File(stream, "r")
            except (OSError, ValueError) as exc:
                raise FileFormatError(
                    f"{self.path!r}: {WEIGHTS} is damaged or truncated (not a readable HDF5 "
                    f"file: {exc})"
                ) from None
            with handle:
                yield handle
        finally:
            stream.close()


def _data_offset(path: str, info: zipfile.ZipInfo) -> int:
    """Where a stored member's bytes start: after its local header, name and extra field."""
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise FileFormatError(f"{path!r}: the zip entry of {info.filename} is damaged")
    name_length = int.from_bytes(header[26:28], "little")
    extra_length = int.from_bytes(header[28:30], "little")
    offset = info.header_offset + 30 + name_length + extra_length
    if offset + info.file_size > Path(path).stat().st_size:
        raise FileFormatError(f"{path!r} is truncated: {info.filename} runs past the end")
    return offset


_MODEL_CLASSES = {"Functional", "Sequential", "Model"}


def iter_layer_configs(
    config: dict[str, Any], parent: str = "", depth: int = 0
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(path, layer entry)`` for every layer in a model config, pre-order.

    Paths are built as the live walker builds them: a nested model's layers sit
    below the model's path (``tower/conv``). Entries without a name are skipped,
    and so are models nested deeper than :data:`MAX_DEPTH` (the static reader
    refuses those; here the bound only keeps the recursion finite).
    """
    if depth > MAX_DEPTH:
        return
    inner = config.get("config")
    layers = inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(layers, list):
        return
    for entry in layers:
        if not isinstance(entry, dict):
            continue
        layer_config = entry.get("config")
        name = entry.get("name")
        if isinstance(layer_config, dict) and isinstance(layer_config.get("name"), str):
            name = layer_config["name"]
        if not isinstance(name, str):
            continue
        path = join_path(parent, name)
        yield path, entry
        yield from iter_layer_configs(entry, path, depth + 1)


@dataclass(frozen=True)
class FileTie:
    """A tie a saved file declares: layer paths inside the file's model."""

    source: str
    target: str
    variables: tuple[str, ...] | None


def file_ties(config: dict[str, Any]) -> list[FileTie]:
    """Read the ties declared in a model config (config.json of a .keras file).

    Raises:
        FileFormatError: a tie names a source that is not in the file.
    """
    by_token: dict[str, str] = {}
    declared: list[tuple[str, dict[str, Any]]] = []
    for path, entry in iter_layer_configs(config):
        build = entry.get("build_config")
        record = build.get(RECORD_KEY) if isinstance(build, dict) else None
        if not isinstance(record, dict):
            continue
        token = record.get("id")
        if isinstance(token, str):
            by_token.setdefault(token, path)
        for tie in record.get("ties") or ():
            if isinstance(tie, dict):
                declared.append((path, tie))
    result = []
    for target, tie in declared:
        source = by_token.get(str(tie.get("source")))
        if source is None:
            raise FileFormatError(
                f"layer {target!r} declares a tie to a layer that is not in the file "
                f"(id {tie.get('source')!r})"
            )
        names = tie.get("variables")
        variables = tuple(str(n) for n in names) if isinstance(names, list) and names else None
        result.append(FileTie(source=source, target=target, variables=variables))
    return result
