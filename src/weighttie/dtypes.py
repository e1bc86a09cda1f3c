"""Dtype widths: the bytes one element of a variable's dtype takes.

A dtype is a Keras dtype name (``float16``) or a NumPy type string that states its
width (``<f4``; ``|V2``: two opaque bytes, how a legacy ``.h5`` file stores
``bfloat16``). Any other dtype (a string, a dtype policy weighttie does not know)
has an unknown width: never guessed (docs/cost.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["DTYPE_BYTES", "dtype_width", "variable_bytes"]

#: Bytes per element of each dtype Keras stores variables in.
DTYPE_BYTES: Mapping[str, int] = {
    "bool": 1,
    "int4": 1,  # Keras stores int4 packed two to an int8; an int4 variable is int8-sized
    "int8": 1,
    "uint8": 1,
    "float8_e4m3fn": 1,
    "float8_e5m2": 1,
    "int16": 2,
    "uint16": 2,
    "float16": 2,
    "bfloat16": 2,
    "int32": 4,
    "uint32": 4,
    "float32": 4,
    "int64": 8,
    "uint64": 8,
    "float64": 8,
    "complex64": 8,
    "complex128": 16,
}

#: A NumPy type string with its width in bytes, as HDF5 files state dtypes Keras
#: names but NumPy does not (bfloat16 is ``|V2``: two opaque bytes).
_NUMPY_TYPE = re.compile(r"[<>|=]?[biufcV](\d{1,2})")


def dtype_width(dtype: str) -> int | None:
    """Bytes per element of ``dtype``; None when its width is not known.

    Example:
        >>> dtype_width("bfloat16"), dtype_width("<f8"), dtype_width("string")
        (2, 8, None)
    """
    width = DTYPE_BYTES.get(dtype)
    if width is None:
        match = _NUMPY_TYPE.fullmatch(dtype)
        width = None if match is None else int(match.group(1))
    return width


def variable_bytes(size: int, dtype: str) -> int | None:
    """``size`` elements of ``dtype`` in bytes; None when the dtype's width is not known.

    Example:
        >>> variable_bytes(10, "float16")
        20
        >>> variable_bytes(10, "|V2")
        20
        >>> variable_bytes(10, "string") is None
        True
    """
    width = dtype_width(dtype)
    return None if width is None else size * width
