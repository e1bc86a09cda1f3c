"""A ``.keras`` archive, read without Keras: members by name, never extracted.

The archive is untrusted input. It is opened once, as a regular file (a FIFO or
a device is refused before it can block). JSON members are size-bounded before
they are parsed (:mod:`weighttie.io.config_json`); the weights member (stored
uncompressed by Keras) is opened in place through a read-only window onto the
archive file, so its size costs nothing until values are read.

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
from typing import Any

from weighttie.errors import FileFormatError, LimitError
from weighttie.io.config_json import check_json_size, parse_model_config
from weighttie.io.hdf5_guard import Heaps, h5_file, open_h5, open_h5_deferred
from weighttie.limits import DEFAULT_LIMITS, Limits
from weighttie.model_files import open_model_file

__all__ = ["CONFIG", "METADATA", "WEIGHTS", "KerasArchive"]


CONFIG = "config.json"
METADATA = "metadata.json"
WEIGHTS = "model.weights.h5"


class KerasArchive:
    """An open ``.keras`` file.

    Example:
        >>> with KerasArchive("model.keras") as archive:     # doctest: +SKIP
        ...     config = archive.config()
    """

    def __init__(self, path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS) -> None:
        self.path = os.fspath(path)
        self.limits = limits
        self._file = open_model_file(self.path)
        try:
            self._zip = zipfile.ZipFile(self._file)
        except zipfile.BadZipFile as exc:
            self._file.close()
            raise FileFormatError(
                f"{self.path!r} is not a readable .keras archive (zip: {exc}); "
                "the file is truncated or damaged"
            ) from None
        except OSError as exc:
            self._file.close()
            raise FileFormatError(f"cannot read {self.path!r}: {exc.strerror or exc}") from None
        self._members = {info.filename: info for info in self._zip.infolist()}

    def __enter__(self) -> KerasArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()
        self._file.close()

    def has(self, name: str) -> bool:
        return name in self._members

    def _read(self, name: str) -> bytes:
        """A member's bytes, refused before it is inflated past ``limits.config_bytes``."""
        info = self._members.get(name)
        if info is None:
            raise FileFormatError(
                f"{self.path!r} has no {name}; expected a .keras archive written by "
                "Keras 3 (config.json, metadata.json, model.weights.h5)"
            )
        limit = self.limits.config_bytes
        if info.file_size > limit:
            raise LimitError(
                f"{self.path!r}: {name} declares {info.file_size:,} bytes, more than the "
                f"{limit:,} of the config_bytes limit",
                limit="config_bytes",
            )
        try:
            with self._zip.open(info) as f:
                data = f.read(limit + 1)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
            raise FileFormatError(
                f"{self.path!r}: {name} is damaged ({exc}); the archive cannot be trusted"
            ) from None
        if len(data) > limit:
            raise LimitError(
                f"{self.path!r}: {name} inflates past {limit:,} bytes, the config_bytes limit",
                limit="config_bytes",
            )
        return data

    def config(self) -> dict[str, Any]:
        """Return config.json (the model's serialized config), read within ``limits``.

        Raises:
            FileFormatError: config.json is missing, damaged or not a JSON object.
            LimitError: it describes more layers, calls or nesting than ``limits`` allow.
        """
        config = parse_model_config(
            self._read(CONFIG), limits=self.limits, where=f"{self.path!r}: {CONFIG}"
        )
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
        where = f"{self.path!r}: {METADATA}"
        try:
            data = self._read(METADATA)
            check_json_size(data, self.limits, where)
            meta = json.loads(data)
        except (FileFormatError, ValueError, RecursionError):
            return {}
        return meta if isinstance(meta, dict) else {}

    @contextmanager
    def weights_deferred(self) -> Iterator[tuple[Any, Heaps]]:
        """model.weights.h5 as :func:`open_h5_deferred` opens it (stored members only)."""
        info = self._members.get(WEIGHTS)
        if info is None:
            raise FileFormatError(f"{self.path!r} has no {WEIGHTS}")
        what = f"{self.path!r}: {WEIGHTS}"
        if info.compress_type != zipfile.ZIP_STORED:
            with self.weights() as h5:  # checked whole, as it is opened
                heaps = Heaps(None, 0, what)
                heaps.done = True
                yield h5, heaps
            return
        offset = _data_offset(self._file, self.path, info)
        with open_h5_deferred(self._file, what, offset, info.file_size) as opened:
            yield opened

    @contextmanager
    def weights(self) -> Iterator[Any]:
        """Open model.weights.h5 read-only with h5py, in place (no copy, no extraction)."""
        info = self._members.get(WEIGHTS)
        if info is None:
            raise FileFormatError(f"{self.path!r} has no {WEIGHTS}")
        what = f"{self.path!r}: {WEIGHTS}"
        if info.compress_type == zipfile.ZIP_STORED:
            offset = _data_offset(self._file, self.path, info)
            with open_h5(self._file, what, offset, info.file_size) as h5:
                yield h5
            return
        # Not what Keras writes; read through zipfile (slower, still bounded).
        with self._zip.open(info) as stream, h5_file(stream, info.file_size, what) as h5:
            yield h5


def _data_offset(file: io.BufferedReader, path: str, info: zipfile.ZipInfo) -> int:
    """Where a stored member's bytes start: after its local header, name and extra field."""
    file.seek(info.header_offset)
    header = file.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise FileFormatError(f"{path!r}: the zip entry of {info.filename} is damaged")
    name_length = int.from_bytes(header[26:28], "little")
    extra_length = int.from_bytes(header[28:30], "little")
    offset = info.header_offset + 30 + name_length + extra_length
    if offset + info.file_size > os.fstat(file.fileno()).st_size:
        raise FileFormatError(f"{path!r} is truncated: {info.filename} runs past the end")
    return offset
