"""Model files: only regular files are opened, and which format a file is.

Loading through Keras is :mod:`weighttie.keras_loading`'s job.
"""

from __future__ import annotations

import io
import os
import stat
from enum import StrEnum
from pathlib import Path

from weighttie.errors import FileFormatError, MissingFileError
from weighttie.files import open_regular, regular_file

__all__ = ["FileKind", "check_model_file", "open_model_file"]

_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_EXPECTED = "a .keras or .h5 model file"
_OR_FOLDER = f"{_EXPECTED}, or a model folder (a keras_hub preset, sharded weights)"


class FileKind(StrEnum):
    """The two model file formats weighttie reads."""

    KERAS = "keras"  # a .keras zip archive (Keras 3)
    H5 = "h5"  # a legacy HDF5 file (Keras 2 / tf.keras, or Keras 3 legacy saving)


def open_model_file(path: str | os.PathLike[str], *, folders: bool = False) -> io.BufferedReader:
    """Open a model file for reading, refusing anything but a regular file.

    The file is opened non-blocking and checked again once open (``fstat``), so a
    FIFO, a device or a socket never blocks the reader, not even one swapped in
    after :func:`check_model_file` looked at the path.

    ``folders``: the caller reads model folders too (the static reader), so a missing
    path is said to be neither.

    Raises:
        MissingFileError, FileFormatError: see :func:`check_model_file`.
    """
    return open_regular(_checked_path(path, folders), what=_EXPECTED.removeprefix("a "))


def _checked_path(path: str | os.PathLike[str], folders: bool = False) -> Path:
    """``path`` if it names a regular file (symlinks followed), without opening it."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        if folders:
            raise MissingFileError(
                f"no such file or folder: {str(p)!r}; expected {_OR_FOLDER}"
            ) from None
        raise MissingFileError(f"no such file: {str(p)!r}; expected {_EXPECTED}") from None
    except OSError as exc:
        raise FileFormatError(f"cannot read {str(p)!r}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise FileFormatError(
            f"{str(p)!r} is a directory; expected {_EXPECTED} "
            "(Keras 3 cannot read SavedModel directories)"
        )
    return regular_file(p, what=_EXPECTED.removeprefix("a "))


def check_model_file(path: str | os.PathLike[str], *, folders: bool = False) -> FileKind:
    """Check that ``path`` is a file that looks like a Keras model, and say which kind.

    Only a regular file is opened: a FIFO, a device or a socket is refused first.
    ``folders``: as for :func:`open_model_file`.

    Raises:
        MissingFileError: nothing exists at ``path``.
        FileFormatError: a directory, a special file, an empty file, or a file of
            another kind.
    """
    p = Path(path)
    with open_model_file(p, folders=folders) as f:
        try:
            head = f.read(8)
        except OSError as exc:
            raise FileFormatError(f"cannot read {str(p)!r}: {exc.strerror or exc}") from None
    if not head:
        raise FileFormatError(f"{str(p)!r} is empty; expected {_EXPECTED}")
    suffix = p.suffix.lower()
    if head.startswith(_ZIP_MAGIC):
        if suffix != ".keras":
            raise FileFormatError(
                f"{str(p)!r} is a zip archive but does not end in .keras; "
                "rename it to .keras if it is a Keras model"
            )
        return FileKind.KERAS
    if head.startswith(_HDF5_MAGIC):
        if suffix not in (".h5", ".hdf5"):
            raise FileFormatError(
                f"{str(p)!r} is an HDF5 file but does not end in .h5; "
                "rename it to .h5 if it is a Keras model"
            )
        return FileKind.H5
    raise FileFormatError(
        f"{str(p)!r} is not a Keras model file: expected a .keras zip archive or an "
        f"HDF5 .h5 file, found a file starting with {head[:8]!r}"
    )
