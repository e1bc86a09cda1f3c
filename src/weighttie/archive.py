"""Reading ``.keras`` archives without Keras: config, metadata, weights.

The archive is untrusted input. It is opened once, as a regular file (a FIFO or
a device is refused before it can block). Members are read by name only, never
extracted to disk; JSON members are size-bounded before they are parsed, and a
model config is parsed layer by layer, counting layers, calls and nesting against
:class:`~weighttie.limits.Limits`, so a small file describing a huge model is
refused after reading no more than the limits allow. The weights member (stored
uncompressed by Keras) is opened in place through a read-only window onto the
archive file, so its size costs nothing until values are read.

This module imports no Keras and no backend.
"""

from __future__ import annotations

import errno
import gc
import io
import json
import os
import re
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from weighttie.errors import FileFormatError, LimitError
from weighttie.facts import join_path
from weighttie.limits import DEFAULT_LIMITS, Limits
from weighttie.model_files import open_model_file

__all__ = [
    "KerasArchive",
    "iter_layer_configs",
    "parse_model_config",
]

CONFIG = "config.json"
METADATA = "metadata.json"
WEIGHTS = "model.weights.h5"


class _Window(io.RawIOBase):
    """A read-only, seekable view of ``length`` bytes of an open file from ``offset``.

    HDF5 reads its metadata in many small pieces; each piece would be a Python call
    and a system call. Small reads are served from a bounded cache of aligned
    blocks (at most ``_BLOCK * _BLOCKS`` bytes); large reads (variable values) go
    straight to the file. The file may be shared with a ``zipfile``, which seeks
    before each of its own reads.
    """

    _BLOCK = 64 * 1024
    _BLOCKS = 256  # 16 MiB at most

    def __init__(self, file: io.BufferedReader, offset: int, length: int) -> None:
        self._file = file
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

    def data_ranges(self) -> list[tuple[int, int]]:
        """The ``(start, end)`` spans of the window that hold data: a sparse file's holes
        (``SEEK_HOLE``), which read as zeros, are left out. One span, the whole window,
        where the file system does not say."""
        fd = self._file.fileno()
        saved = os.lseek(fd, 0, os.SEEK_CUR)  # the buffered reader relies on it
        end = self._offset + self._length
        spans, position = [], self._offset
        try:
            while position < end:
                start = os.lseek(fd, position, os.SEEK_DATA)
                if start >= end:
                    break
                stop = min(os.lseek(fd, start, os.SEEK_HOLE), end)
                spans.append((start - self._offset, stop - self._offset))
                position = stop
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no data after position
                spans = [(0, self._length)]
        except AttributeError:  # no SEEK_DATA on this platform
            spans = [(0, self._length)]
        finally:
            os.lseek(fd, saved, os.SEEK_SET)
        return spans

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


@contextmanager
def open_h5(
    file: io.BufferedReader, what: str, offset: int = 0, length: int | None = None
) -> Iterator[Any]:
    """Open HDF5 bytes of an open regular file read-only with h5py, in place.

    Raises:
        FileFormatError: the bytes are not a readable HDF5 file.
    """
    size = os.fstat(file.fileno()).st_size if length is None else length
    window = _Window(file, offset, size)
    try:
        with _h5_file(window, size, what) as handle:
            yield handle
    finally:
        window.close()


@contextmanager
def open_h5_deferred(
    file: io.BufferedReader, what: str, offset: int = 0, length: int | None = None
) -> Iterator[tuple[Any, Heaps]]:
    """Like :func:`open_h5`, but the global-heap check is left to the caller.

    The caller must call ``heaps.check(...)`` before it reads any variable-length
    value (a string attribute): with the headers of the objects whose attributes it
    reads, only the collections those attributes point to are checked, so the cost
    does not grow with the weight bytes.
    """
    size = os.fstat(file.fileno()).st_size if length is None else length
    window = _Window(file, offset, size)
    try:
        with _h5_open(window, size, what) as handle:
            yield handle, Heaps(window, size, what)
    finally:
        window.close()


@contextmanager
def _h5_file(stream: Any, size: int, what: str) -> Iterator[Any]:
    """h5py's read-only view of a seekable stream of ``size`` bytes, checked first."""
    check_global_heaps(stream, size, what)
    with _h5_open(stream, size, what) as handle:
        yield handle


@contextmanager
def _h5_open(stream: Any, size: int, what: str) -> Iterator[Any]:
    import h5py

    try:
        handle = h5py.File(stream, "r")
    except (OSError, ValueError) as exc:
        raise FileFormatError(
            f"{what} is damaged or truncated (not a readable HDF5 file: {exc})"
        ) from None
    with handle:
        yield handle


# -- global heaps HDF5 would parse forever ---------------------------------------------

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: A global heap collection as HDF5 writes it: signature, version 1, three reserved zeros.
_COLLECTION = b"GCOL\x01\x00\x00\x00"
_COLLECTION_MIN = 4096  # HDF5 never makes a smaller one
_SCAN_CHUNK = 8 * 1024 * 1024


def check_global_heaps(stream: Any, length: int, what: str) -> None:
    """Refuse an HDF5 file with a global heap collection HDF5 would parse forever.

    Variable-length strings (a layer's ``name``, a legacy ``model_config``) live in
    global heap collections. HDF5 1.14 decodes a collection object by object, each
    object's size leading to the next; a damaged size of 0 leaves it decoding the
    same object forever, in C, where no time budget can fire (found by fuzzing).
    Every collection in the file is walked here first, as HDF5 would walk it. The
    file is read once, in chunks of 8 MiB; memory does not grow with it. A sparse
    file's holes read as zeros and hold no collection: they are skipped (``SEEK_HOLE``),
    so a file whose declared weights were never written costs only its written bytes.

    Raises:
        FileFormatError: a collection's objects do not tile it.
    """
    length_size = _length_size(stream)
    overlap = len(_COLLECTION) - 1  # a signature across two chunks is found in the first
    buffer = bytearray(_SCAN_CHUNK + overlap)  # one buffer, refilled: no copy per chunk
    spans = stream.data_ranges() if isinstance(stream, _Window) else [(0, length)]
    for position, end in spans:
        while position < end:
            stream.seek(position)
            want = min(len(buffer), end + overlap - position, length - position)
            view = memoryview(buffer)[:want]
            got = stream.readinto(view)
            view.release()
            found = buffer.find(_COLLECTION, 0, got or 0)
            while 0 <= found < _SCAN_CHUNK:
                _check_collection(stream, position + found, length, length_size, what)
                found = buffer.find(_COLLECTION, found + 1, got or 0)
            position += _SCAN_CHUNK


def _length_size(stream: Any) -> int:
    """The size of lengths the superblock declares (8 in files h5py writes)."""
    stream.seek(0)
    head = stream.read(16)
    if not head.startswith(_HDF5_SIGNATURE) or len(head) < 16:
        return 8
    version = head[8]
    size = head[14] if version in (0, 1) else head[10]
    return size if size in (2, 4, 8) else 8


def _check_collection(stream: Any, start: int, length: int, length_size: int, what: str) -> None:
    """Walk one collection's objects as HDF5's decoder does (H5HG__cache_heap_deserialize)."""
    stream.seek(start + 8)
    size = int.from_bytes(stream.read(length_size), "little")
    end = start + size
    if size < _COLLECTION_MIN or end > length:
        return  # not a collection HDF5 could load: it fails on it, it does not hang
    header = 8 + length_size  # index, reference count, reserved, size
    place = start + 8 + length_size
    while place < end:
        if place + header > end:
            return  # the rest is free space too small for an object header
        stream.seek(place)
        object_header = stream.read(header)
        index = int.from_bytes(object_header[:2], "little")
        object_size = int.from_bytes(object_header[8:], "little")
        need = header + (object_size + 7) // 8 * 8 if index > 0 else object_size
        if need == 0 or need > end - place:
            raise FileFormatError(
                f"{what} is damaged: the global heap collection at byte {start:,} has an "
                f"object at byte {place:,} claiming {object_size:,} bytes, which "
                + ("HDF5 would decode forever" if need == 0 else "runs past the collection")
            )
        place += need


class Heaps:
    """The global-heap check of one open HDF5 file, made once, when asked.

    ``check(headers)`` checks the collections that the attributes of the objects
    whose headers start at ``headers`` point to, or every collection of the file
    (``check(None)``, or where a header holds what :func:`_referenced_collections`
    does not read: the whole-file check is always the fallback, never a skip).
    """

    def __init__(self, stream: Any, size: int, what: str) -> None:
        self.stream, self.size, self.what = stream, size, what
        self.done = False
        self.targeted = False  # whether the last check read only the referenced collections

    def check(self, headers: list[int] | None) -> None:
        if self.done:
            return
        addresses = None
        if headers is not None:
            addresses = _referenced_collections(self.stream, self.size, headers)
        if addresses is None:
            check_global_heaps(self.stream, self.size, self.what)
        else:
            length_size = _length_size(self.stream)
            for address in sorted(addresses):
                self.stream.seek(address)
                if self.stream.read(len(_COLLECTION)) == _COLLECTION:  # else HDF5 refuses it
                    _check_collection(self.stream, address, self.size, length_size, self.what)
            self.targeted = True
        self.done = True


# -- which collections an object's attributes point to ---------------------------------

_MAX_CHUNKS = 64  # continuation chunks of one object header
_MAX_CHUNK = 1 << 20
#: Datatype classes that hold no global-heap reference: integer, float, time, string,
#: bitfield, opaque, enum. Variable-length (9) holds one; any other is not read here.
_FLAT = frozenset({0, 1, 2, 3, 4, 5, 8})
_VLEN = 9


def _read_at(stream: Any, start: int, count: int, length: int) -> bytes | None:
    if start < 0 or count < 0 or start + count > length:
        return None
    stream.seek(start)
    data: bytes = stream.read(count)
    return data if len(data) == count else None


def _sizes(stream: Any, length: int) -> tuple[int, int] | None:
    """(size of offsets, size of lengths) from a superblock at byte 0 with base address 0."""
    head = _read_at(stream, 0, 48, length)
    if head is None or not head.startswith(_HDF5_SIGNATURE):
        return None
    version = head[8]
    if version in (0, 1):
        offsets, lengths, base = head[13], head[14], 24 + 4 * version
    elif version in (2, 3):
        offsets, lengths, base = head[9], head[10], 12
    else:
        return None
    if offsets not in (2, 4, 8) or lengths not in (2, 4, 8):
        return None
    if int.from_bytes(head[base : base + offsets], "little") != 0:
        return None
    return offsets, lengths


def _referenced_collections(stream: Any, length: int, headers: list[int]) -> set[int] | None:
    """The global heap collections the attributes of these objects point to, read from
    their object headers (version 1 or 2, continuation chunks followed); None where a
    header holds anything else this does not read (shared or densely stored attributes,
    a datatype that may hold references): then every collection must be checked."""
    sizes = _sizes(stream, length)
    if sizes is None:
        return None
    found: set[int] = set()
    for address in headers:
        messages = _header_messages(stream, address, length, *sizes)
        if messages is None:
            return None
        for kind, flags, data in messages:
            if kind == 0x0015 or (kind == 0x000C and flags & 0x02):
                return None  # attributes stored densely, or shared: not read here
            if kind == 0x000C:
                addresses = _attribute_collections(data, sizes[0])
                if addresses is None:
                    return None
                found |= addresses
    return found


def _header_messages(
    stream: Any, address: int, length: int, offsets: int, lengths: int
) -> list[tuple[int, int, bytes]] | None:
    """(type, flags, data) of every message of the object header at ``address``."""
    head = _read_at(stream, address, 32, length)
    if head is None:
        return None
    chunks: list[tuple[int, int, bool]] = []  # (start, size, version 2)
    if head[:4] == b"OHDR":
        if head[4] != 2:
            return None
        flags, place = head[5], 6
        place += 16 if flags & 0x20 else 0
        place += 4 if flags & 0x10 else 0
        width = 1 << (flags & 0x03)
        size = int.from_bytes(head[place : place + width], "little")
        chunks.append((address + place + width, size, True))
        order = 2 if flags & 0x04 else 0
    elif head[0] == 1:
        chunks.append((address + 16, int.from_bytes(head[8:12], "little"), False))
        order = 0
    else:
        return None
    messages: list[tuple[int, int, bytes]] = []
    for start, size, v2 in chunks:
        if len(chunks) > _MAX_CHUNKS or size > _MAX_CHUNK:
            return None
        chunk = _read_at(stream, start, size, length)
        if chunk is None:
            return None
        place, step = 0, (4 + order if v2 else 8)
        while place + step <= len(chunk):
            if v2:
                kind, flags = chunk[place], chunk[place + 3]
                size_ = int.from_bytes(chunk[place + 1 : place + 3], "little")
            else:
                kind = int.from_bytes(chunk[place : place + 2], "little")
                size_ = int.from_bytes(chunk[place + 2 : place + 4], "little")
                flags = chunk[place + 4]
            data = chunk[place + step : place + step + size_]
            if len(data) != size_:
                return None
            if kind == 0x0010:  # continuation: offset and length of the next chunk
                where = int.from_bytes(data[:offsets], "little")
                count = int.from_bytes(data[offsets : offsets + lengths], "little")
                if v2:  # "OCHK", messages, checksum
                    chunks.append((where + 4, count - 8, True))
                else:
                    chunks.append((where, count, False))
            else:
                messages.append((kind, flags, data))
            place += step + size_
    return messages


def _attribute_collections(data: bytes, offsets: int) -> set[int] | None:
    """The collections an attribute message's value points to (none for flat types)."""
    if len(data) < 8 or data[0] not in (1, 2, 3):
        return None
    version = data[0]
    name_size = int.from_bytes(data[2:4], "little")
    type_size = int.from_bytes(data[4:6], "little")
    space_size = int.from_bytes(data[6:8], "little")

    def padded(n: int) -> int:
        return (n + 7) // 8 * 8 if version == 1 else n

    place = 8 + (1 if version == 3 else 0) + padded(name_size)
    datatype = data[place : place + type_size]
    place += padded(type_size) + padded(space_size)
    if len(datatype) < 1 or place > len(data):
        return None
    kind = datatype[0] & 0x0F
    if kind in _FLAT:
        return set()
    if kind != _VLEN:
        return None
    value, element = data[place:], 4 + offsets + 4  # sequence length, collection, index
    return {
        address
        for i in range(0, len(value) - element + 1, element)
        if (address := int.from_bytes(value[i + 4 : i + 4 + offsets], "little"))
    }


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
            _check_json_size(data, self.limits, where)
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
        with self._zip.open(info) as stream, _h5_file(stream, info.file_size, what) as h5:
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


# -- a model config, parsed within limits -------------------------------------------

_DECODER = json.JSONDecoder()
_SPACE = r"[ \t\n\r]*"
_WHITESPACE = re.compile(_SPACE)
_KEY = re.compile(f'{_SPACE}"([^"\\\\]*)"{_SPACE}:{_SPACE}')  # a key without escapes
_NEXT = re.compile(f"{_SPACE}([,}}\\]]){_SPACE}")  # what follows a member or an element
_EMPTY_OBJECT = re.compile(f"{_SPACE}}}")
_EMPTY_ARRAY = re.compile(f"{_SPACE}\\]")
# What a key's value is, by the role of the object holding it: a layer entry's
# "config" may list layers (a nested model); its "inbound_nodes" list its calls.
_ENTRY, _CONFIG, _LAYERS, _NODES = "entry", "config", "layers", "nodes"
_CHILD_ROLES = {
    _ENTRY: {"config": _CONFIG, "inbound_nodes": _NODES},
    _CONFIG: {"layers": _LAYERS},
}


def parse_model_config(data: bytes, *, limits: Limits, where: str) -> Any:
    """Parse a model config (``config.json``, a legacy ``model_config``) as ``json.loads`` would.

    Layers (entries of any model's ``layers``), calls (entries of a layer's
    ``inbound_nodes``) and the nesting of models are counted while the document is
    read, one layer at a time, and reading stops as soon as one exceeds ``limits``:
    the time and memory spent on a config are proportional to what is accepted.
    A document with fewer objects and arrays than either limit cannot exceed them
    and is parsed in one call.

    Raises:
        FileFormatError: the bytes are not valid JSON.
        LimitError: the config exceeds ``limits.layers``, ``limits.calls`` or
            ``limits.depth``.
    """
    containers = _check_json_size(data, limits, where)
    try:
        if containers <= min(limits.layers, limits.calls):
            return json.loads(data)
        text = data.decode(json.detect_encoding(data), "surrogatepass")
        del data  # the caller passed its only reference: half the memory of a big config
        with _collector_paused():
            return _CountingParser(text, limits, where).document()
    except LimitError:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise FileFormatError(f"{where} is not valid JSON: {exc}") from None


#: Parsed JSON takes far more memory than its text: 64 MiB of ``{},`` become 1.7 GB
#: of dicts, of ``0.5,`` 0.8 GB of floats. Real configs hold one object or array per
#: 20 to 55 bytes and one comma per 18 to 24; a document may hold one per 16 and one
#: per 8 bytes of the config_bytes limit, which keeps its objects within a few
#: hundred MB at the default limit.
_BYTES_PER_CONTAINER = 16
_BYTES_PER_COMMA = 8


def _check_json_size(data: bytes, limits: Limits, where: str) -> int:
    """Refuse a JSON document with more values than its byte limit allows; return how
    many objects and arrays it holds at most (braces in strings count too)."""
    containers = data.count(b"{") + data.count(b"[")
    commas = data.count(b",")
    most_containers = limits.config_bytes // _BYTES_PER_CONTAINER
    most_commas = limits.config_bytes // _BYTES_PER_COMMA
    if containers > most_containers or commas > most_commas:
        found, most, what = (
            (containers, most_containers, "objects and arrays")
            if containers > most_containers
            else (commas, most_commas, "values")
        )
        raise LimitError(
            f"{where} holds {found:,} JSON {what}, more than the {most:,} weighttie parses "
            "within the config_bytes limit",
            limit="config_bytes",
        )
    return containers


def _skip(text: str, pos: int) -> int:
    """Past the whitespace at ``pos``."""
    match = _WHITESPACE.match(text, pos)
    return match.end() if match else pos


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a document is built.

    A parse creates objects and frees none; with hundreds of thousands alive, the
    collector would walk them all again and again (it tripled the parse time).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _CountingParser:
    """A JSON reader that descends into a model config's layer lists and call lists by hand.

    Everything else (a layer's arguments, a call's tensors) is read whole by
    ``json``'s own scanner; only the lists that grow with the model are walked here,
    element by element, so the count is checked before the next element is built.
    """

    def __init__(self, text: str, limits: Limits, where: str) -> None:
        self.text = text
        self.limits = limits
        self.where = where
        self.layers = 0
        self.calls = 0
        self.keys: dict[str, str] = {}  # one string per distinct key, as json.loads keeps
        self.next_layers = 0  # where '"layers"' occurs next in the text (-1: nowhere)

    def document(self) -> Any:
        pos = _skip(self.text, 0)
        value, pos = self._value(pos, _ENTRY, 0)
        pos = _skip(self.text, pos)
        if pos != len(self.text):
            raise json.JSONDecodeError("Extra data", self.text, pos)
        return value

    def _value(self, pos: int, role: str | None, depth: int) -> tuple[Any, int]:
        opening = self.text[pos : pos + 1]
        if opening == "{" and role == _CONFIG and not self._layers_ahead(pos):
            return _DECODER.raw_decode(self.text, pos)  # no model in it: read it whole
        if opening == "{" and role in (_ENTRY, _CONFIG):
            return self._object(pos, role, depth)
        if opening == "[" and role in (_LAYERS, _NODES):
            return self._array(pos, role, depth)
        return _DECODER.raw_decode(self.text, pos)

    def _layers_ahead(self, pos: int) -> bool:
        """Whether the text still holds ``"layers"`` at or after ``pos``.

        A layer's config that cannot hold a model's layer list is read by ``json`` in
        one call. (A key spelled with escapes, ``"lay\\u0065rs"``, is not seen here;
        such a model's layers are still counted, by the reader, after parsing, within
        the JSON bounds of :func:`_check_json_size`.)
        """
        if 0 <= self.next_layers < pos:
            self.next_layers = self.text.find('"layers"', pos)
        return self.next_layers >= 0

    def _key(self, pos: int) -> tuple[str, int]:
        text = self.text
        match = _KEY.match(text, pos)
        if match is not None:
            key = match.group(1)
            return self.keys.setdefault(key, key), match.end()
        pos = _skip(text, pos)
        if not text.startswith('"', pos):
            raise json.JSONDecodeError(
                "Expecting property name enclosed in double quotes", text, pos
            )
        key, pos = _DECODER.raw_decode(text, pos)  # a key with escapes
        pos = _skip(text, pos)
        if not text.startswith(":", pos):
            raise json.JSONDecodeError("Expecting ':' delimiter", text, pos)
        return key, _skip(text, pos + 1)

    def _next(self, pos: int, closing: str) -> tuple[bool, int]:
        """Past the ``,`` after a member or element (False) or the closing bracket (True)."""
        match = _NEXT.match(self.text, pos)
        if match is None or match.group(1) not in (",", closing):
            raise json.JSONDecodeError("Expecting ',' delimiter", self.text, pos)
        return match.group(1) == closing, match.end()

    def _object(self, pos: int, role: str, depth: int) -> tuple[dict[str, Any], int]:
        children = _CHILD_ROLES[role]
        result: dict[str, Any] = {}
        empty = _EMPTY_OBJECT.match(self.text, pos + 1)
        if empty is not None:
            return result, empty.end()
        pos += 1
        while True:
            key, pos = self._key(pos)
            result[key], pos = self._value(pos, children.get(key), depth)
            done, pos = self._next(pos, "}")
            if done:
                return result, pos

    def _array(self, pos: int, role: str, depth: int) -> tuple[list[Any], int]:
        if role == _LAYERS and depth > self.limits.depth:  # a model nested ``depth`` deep
            raise LimitError(
                f"{self.where} nests models more than {self.limits.depth} levels deep, "
                "the depth limit",
                limit="depth",
            )
        result: list[Any] = []
        empty = _EMPTY_ARRAY.match(self.text, pos + 1)
        if empty is not None:
            return result, empty.end()
        pos = _skip(self.text, pos + 1)
        while True:
            if self.text[pos : pos + 1] in ("{", "["):
                self._count(role)
            if role == _LAYERS:
                item, pos = self._value(pos, _ENTRY, depth + 1)
            else:
                item, pos = _DECODER.raw_decode(self.text, pos)
            result.append(item)
            done, pos = self._next(pos, "]")
            if done:
                return result, pos

    def _count(self, role: str) -> None:
        if role == _LAYERS:
            self.layers += 1
            if self.layers > self.limits.layers:
                raise LimitError(
                    f"{self.where} describes more than {self.limits.layers:,} layers, "
                    "the layers limit",
                    limit="layers",
                )
        else:
            self.calls += 1
            if self.calls > self.limits.calls:
                raise LimitError(
                    f"{self.where} records more than {self.limits.calls:,} calls of layers, "
                    "the calls limit",
                    limit="calls",
                )


_MODEL_CLASSES = {"Functional", "Sequential", "Model"}


def iter_layer_configs(
    config: dict[str, Any], parent: str = "", depth: int = 0, *, max_depth: int | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(path, layer entry)`` for every layer in a model config, pre-order.

    Paths are built as the live walker builds them: a nested model's layers sit
    below the model's path (``tower/conv``), and so do the layers a layer's own
    config holds (an RNN's cell ``rnn/cell``, a wrapper's layer ``td/proj``, the
    layer a custom layer keeps). Entries without a name are skipped, and so is
    anything nested deeper than ``max_depth`` (default: the default
    ``Limits.depth``; the static reader refuses those, here the bound only keeps
    the recursion finite).
    """
    limit = DEFAULT_LIMITS.depth if max_depth is None else max_depth
    if depth > limit:
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
        yield from iter_layer_configs(entry, path, depth + 1, max_depth=limit)
        if isinstance(layer_config, dict) and not isinstance(layer_config.get("layers"), list):
            yield from _held_layer_configs(layer_config, path, depth + 1, limit)


def _held_layer_configs(
    value: Any, parent: str, depth: int, limit: int
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The serialized layers inside a layer's config, as ``(path, entry)``, pre-order.

    A serialized layer is an object whose ``config`` has a ``name`` and a
    ``trainable`` (a layer's base config); dtype policies and initializers have not.
    """
    if depth > limit:
        return
    if isinstance(value, list):
        for item in value:
            yield from _held_layer_configs(item, parent, depth + 1, limit)
        return
    if not isinstance(value, dict):
        return
    inner = value.get("config")
    if (
        isinstance(value.get("class_name"), str)
        and isinstance(inner, dict)
        and isinstance(inner.get("name"), str)
        and "trainable" in inner
    ):
        path = join_path(parent, inner["name"])
        yield path, value
        yield from iter_layer_configs(value, path, depth + 1, max_depth=limit)
        if not isinstance(inner.get("layers"), list):
            yield from _held_layer_configs(inner, path, depth + 1, limit)
        return
    for item in value.values():
        yield from _held_layer_configs(item, parent, depth + 1, limit)
