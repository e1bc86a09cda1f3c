"""One safetensors file's header, read as untrusted input, with the standard library.

The format (safetensors' ``tensor.rs``): 8 bytes, the header's length ``n`` as a
little-endian unsigned 64-bit integer; ``n`` bytes of UTF-8 JSON, an object mapping
each tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets
into the data that follows the header) and, optionally, ``"__metadata__"``: an
object of strings (``{"format": "pt"}``; ``safetensors.torch.save_model`` records
there each name of a shared tensor it did not store, mapped to the name it stored).

Everything the header claims is checked before it is used, as safetensors' own
loader checks it, never more loosely:

* the header's length against the ``config_bytes`` limit and the file's size; the
  tensors it declares against the ``tensors`` limit, counted in the raw bytes
  before the JSON is parsed, and its JSON values as for any JSON document;
* valid UTF-8 and JSON, an object without duplicate names (a second entry of one
  name could hide the first from one reader and not from another);
* each tensor: a known dtype, a shape of non-negative integers, offsets whose
  difference is exactly shape × dtype width;
* the tensors tile the data exactly, in offset order: no gap, no overlap, nothing
  after the last tensor (safetensors refuses all three; two names for one tensor are
  never two entries, but a metadata alias);
* ``__metadata__`` maps strings to strings.

Only the header is read: ``8 + n`` bytes. This module imports neither Keras nor a
backend.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from weighttie.errors import FileFormatError, LimitError
from weighttie.io.config_json import check_json_size
from weighttie.limits import Limits

__all__ = ["DTYPES", "SafetensorsHeader", "StoredTensor", "read_header"]

#: safetensors' dtypes: bits per element and the dtype's name in a report (Keras's
#: names, and ml_dtypes' for the formats Keras has no name for).
DTYPES: Mapping[str, tuple[int, str]] = {
    "BOOL": (8, "bool"),
    "F4": (4, "float4_e2m1fn"),
    "F6_E2M3": (6, "float6_e2m3fn"),
    "F6_E3M2": (6, "float6_e3m2fn"),
    "U8": (8, "uint8"),
    "I8": (8, "int8"),
    "F8_E5M2": (8, "float8_e5m2"),
    "F8_E4M3": (8, "float8_e4m3fn"),
    "F8_E8M0": (8, "float8_e8m0fnu"),
    "F8_E4M3FNUZ": (8, "float8_e4m3fnuz"),
    "F8_E5M2FNUZ": (8, "float8_e5m2fnuz"),
    "I16": (16, "int16"),
    "U16": (16, "uint16"),
    "F16": (16, "float16"),
    "BF16": (16, "bfloat16"),
    "I32": (32, "int32"),
    "U32": (32, "uint32"),
    "F32": (32, "float32"),
    "C64": (64, "complex64"),
    "F64": (64, "float64"),
    "I64": (64, "int64"),
    "U64": (64, "uint64"),
}

METADATA = "__metadata__"
_LENGTH = 8
_TENSOR_KEYS = ("dtype", "shape", "data_offsets")


@dataclass(frozen=True, slots=True)
class StoredTensor:
    """One tensor a header declares: its bytes are ``[begin, end)`` of ``file``."""

    name: str
    file: str
    dtype: str  # safetensors' name (F32, BF16 …)
    shape: tuple[int, ...]
    begin: int  # absolute offsets in the file
    end: int

    @property
    def size(self) -> int:
        """Number of elements."""
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


@dataclass(frozen=True)
class SafetensorsHeader:
    """What one file's header declares, checked against the file."""

    file: str
    file_size: int
    tensors: tuple[StoredTensor, ...]  # in offset order
    metadata: Mapping[str, str]


def read_header(
    f: BinaryIO, file: str, where: str, limits: Limits, tensors_left: int
) -> SafetensorsHeader:
    """Read and check the header of the open safetensors file ``f`` (named ``file``).

    ``where`` names the file in messages; ``tensors_left``: how many tensors the
    ``tensors`` limit still allows (the limit holds for a folder's shards together).

    Raises:
        FileFormatError: the file is not a valid safetensors file.
        LimitError: its header is larger, or declares more tensors, than ``limits`` allow.
    """
    size = os.fstat(f.fileno()).st_size
    if size < _LENGTH:
        raise FileFormatError(
            f"{where} holds {size} bytes, too few for a safetensors file (8 bytes of header "
            "length, then the header); the file is truncated or not a safetensors file"
        )
    (n,) = struct.unpack("<Q", _read_exactly(f, 0, _LENGTH, where))
    if n > limits.config_bytes:
        raise LimitError(
            f"{where} declares a header of {n:,} bytes, more than the {limits.config_bytes:,} "
            "weighttie reads (the config_bytes limit)",
            limit="config_bytes",
        )
    if n > size - _LENGTH:
        raise FileFormatError(
            f"{where} declares a header of {n:,} bytes, but only {size - _LENGTH:,} follow its "
            "length; the file is truncated or not a safetensors file"
        )
    raw = _read_exactly(f, _LENGTH, n, where)
    declared = raw.count(b'"data_offsets"')  # at least one per tensor: counted before parsing
    if declared > tensors_left:
        raise LimitError(
            f"{where} declares {declared:,} tensors, more than the {tensors_left:,} the tensors "
            "limit leaves",
            limit="tensors",
        )
    check_json_size(raw, limits, f"{where}'s header")
    try:
        text = raw.decode("utf-8")
        document = json.loads(text, object_pairs_hook=_unique_names)
    except UnicodeDecodeError as exc:
        raise FileFormatError(
            f"{where}'s header is not UTF-8 (byte {exc.start:,}); the file is damaged or not a "
            "safetensors file"
        ) from None
    except _DuplicateName as exc:
        raise FileFormatError(
            f"{where}'s header names {exc.args[0]!r} twice; expected each tensor once"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise FileFormatError(
            f"{where}'s header is not valid JSON ({_reason(exc)}); the file is damaged or not a "
            "safetensors file"
        ) from None
    if not isinstance(document, dict):
        raise FileFormatError(
            f"{where}'s header is a JSON {type(document).__name__}; expected an object mapping "
            "tensor names to their dtype, shape and data_offsets"
        )
    metadata = _metadata(document.pop(METADATA, {}), where)
    data_size = size - _LENGTH - n
    tensors = [
        _tensor(name, entry, file, _LENGTH + n, data_size, where)
        for name, entry in document.items()
    ]
    tensors.sort(key=lambda t: (t.begin, t.end))
    _check_tiling(tensors, _LENGTH + n, data_size, where)
    return SafetensorsHeader(file=file, file_size=size, tensors=tuple(tensors), metadata=metadata)


class _DuplicateName(ValueError):
    pass


def _unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _DuplicateName(name)
            seen.add(name)
    return result


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).split("\n", 1)[0]


def _read_exactly(f: BinaryIO, offset: int, count: int, where: str) -> bytes:
    try:
        data = os.pread(f.fileno(), count, offset)
        while len(data) < count:
            more = os.pread(f.fileno(), count - len(data), offset + len(data))
            if not more:
                break
            data += more
    except OSError as exc:
        raise FileFormatError(f"cannot read {where}: {exc.strerror or exc}") from None
    if len(data) < count:
        raise FileFormatError(f"{where} ended while its header was read; the file is truncated")
    return data


def _metadata(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise FileFormatError(
            f"{where}'s {METADATA} is not an object of strings; safetensors refuses such a header"
        )
    return value


def _natural(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tensor(
    name: str, entry: Any, file: str, data_start: int, data_size: int, where: str
) -> StoredTensor:
    what = f"{where}: tensor {name!r}"
    if not isinstance(entry, dict) or any(key not in entry for key in _TENSOR_KEYS):
        raise FileFormatError(
            f"{what} is not described by dtype, shape and data_offsets; found "
            f"{sorted(entry) if isinstance(entry, dict) else type(entry).__name__}"
        )
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise FileFormatError(
            f"{what} has dtype {dtype!r}; expected one of safetensors' dtypes ({', '.join(DTYPES)})"
        )
    if not isinstance(shape, list) or not all(_natural(d) for d in shape):
        raise FileFormatError(
            f"{what} has shape {shape!r}; expected a list of non-negative integers"
        )
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_natural(o) for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise FileFormatError(
            f"{what} has data_offsets {offsets!r}; expected [begin, end] with 0 <= begin <= end"
        )
    begin, end = offsets
    if end > data_size:
        raise FileFormatError(
            f"{what} ends at byte {end:,} of the data, but the file holds {data_size:,} bytes of "
            "data after its header; the file is truncated or its header damaged"
        )
    bits = DTYPES[dtype][0]
    # Multiplied up to the data's size at most: a shape cannot make a huge number here.
    most = data_size * 8 + 1
    count = 0 if 0 in shape else 1
    for d in shape:
        count = min(count * d, most)
    nbits = count * bits
    if nbits % 8 or nbits != (end - begin) * 8:
        need = f"{nbits // 8:,} bytes" if not nbits % 8 else f"{nbits:,} bits"
        if count >= most:
            need = "more bytes than the file holds"
        raise FileFormatError(
            f"{what}: shape {shape} of {dtype} needs {need}, but its data_offsets span "
            f"{end - begin:,}; the header is damaged"
        )
    return StoredTensor(
        name=name,
        file=file,
        dtype=dtype,
        shape=tuple(shape),
        begin=data_start + begin,
        end=data_start + end,
    )


def _check_tiling(tensors: list[StoredTensor], data_start: int, data_size: int, where: str) -> None:
    """Tensors, in offset order, must cover the data exactly, as safetensors requires."""
    at = 0
    previous: StoredTensor | None = None
    for t in tensors:
        begin = t.begin - data_start
        if begin < at:
            assert previous is not None
            raise FileFormatError(
                f"{where}: tensor {t.name!r} (bytes {begin:,} to {t.end - data_start:,} of the "
                f"data) overlaps tensor {previous.name!r} (to byte {at:,}); safetensors stores "
                "each tensor once and refuses overlaps (two names of one tensor are a metadata "
                "alias)"
            )
        if begin > at:
            raise FileFormatError(
                f"{where}: tensor {t.name!r} starts at byte {begin:,} of the data, but the "
                f"tensors before it end at byte {at:,}; safetensors refuses a gap between "
                "tensors (the header is damaged)"
            )
        at = t.end - data_start
        previous = t
    if at != data_size:
        raise FileFormatError(
            f"{where}: its tensors end at byte {at:,} of the data, but {data_size:,} bytes follow "
            "the header; safetensors refuses bytes no tensor covers (the file is damaged, or "
            "something was appended)"
        )
