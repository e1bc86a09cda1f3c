"""Opening model files: validate the path, then load through Keras with safe mode on.

Everything here turns Keras's many failure modes into one :class:`WeighttieError`
with a message that says what was expected, what was found, and what to do.
"""

from __future__ import annotations

import os
import warnings
from enum import StrEnum
from pathlib import Path
from typing import Any

from weighttie.errors import FileFormatError, MissingFileError, UnsafeModelError

__all__ = ["FileKind", "check_model_file", "load_keras_model"]

_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


class FileKind(StrEnum):
    """The two model file formats weighttie reads."""

    KERAS = "keras"  # a .keras zip archive (Keras 3)
    H5 = "h5"  # a legacy HDF5 file (Keras 2 / tf.keras, or Keras 3 legacy saving)


def check_model_file(path: str | os.PathLike[str]) -> FileKind:
    """Check that ``path`` is a file that looks like a Keras model, and say which kind.

    Raises:
        MissingFileError: nothing exists at ``path``.
        FileFormatError: a directory, an empty file, or a file of another kind.
    """
    p = Path(path)
    if not p.exists():
        raise MissingFileError(f"no such file: {str(p)!r}; expected a .keras or .h5 model file")
    if p.is_dir():
        raise FileFormatError(
            f"{str(p)!r} is a directory; expected a .keras or .h5 model file "
            "(Keras 3 cannot read SavedModel directories)"
        )
    try:
        with p.open("rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise FileFormatError(f"cannot read {str(p)!r}: {exc.strerror or exc}") from None
    if not head:
        raise FileFormatError(f"{str(p)!r} is empty; expected a .keras or .h5 model file")
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


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()
    line = text[0].strip() if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def load_keras_model(
    path: str | os.PathLike[str],
    *,
    unsafe: bool = False,
    compile: bool = False,
    custom_objects: dict[str, Any] | None = None,
    quiet: bool = True,
) -> Any:
    """Load a model file through Keras, with ``safe_mode`` on unless ``unsafe``.

    ``quiet`` silences Keras's Python warnings during the load (the command line
    wants one line per error); library callers get them.

    Raises:
        MissingFileError, FileFormatError: see :func:`check_model_file`; also when
            Keras fails to read the file.
        UnsafeModelError: the file holds Python code (a Lambda layer) and ``unsafe``
            is False.
    """
    check_model_file(path)
    import keras

    try:
        with warnings.catch_warnings():
            if quiet:
                warnings.simplefilter("ignore")
            return keras.saving.load_model(
                os.fspath(path),
                safe_mode=not unsafe,
                compile=compile,
                custom_objects=custom_objects,
            )
    except Exception as exc:
        message = str(exc)
        if not unsafe and "safe_mode=False" in message:
            raise UnsafeModelError(
                f"{os.fspath(path)!r} contains Python code (e.g. a Lambda layer) that Keras "
                "does not run in safe mode; pass --unsafe (Python: unsafe=True) only if you "
                "trust the file"
            ) from None
        raise FileFormatError(
            f"Keras could not load {os.fspath(path)!r}: {type(exc).__name__}: {_first_line(exc)}"
        ) from None
