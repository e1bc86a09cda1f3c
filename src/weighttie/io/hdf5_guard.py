"""Opening HDF5 bytes with h5py, after refusing what HDF5 would parse forever.

A global heap collection (variable-length strings, references) that loops or
claims more than the file holds makes HDF5 spin inside C code, where no time budget
fires; the collections a file's attributes point to are checked first
(:class:`Heaps`), or the whole file where that cannot be narrowed.

This module imports no Keras and no backend.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from weighttie.errors import FileFormatError
from weighttie.io.file_window import Window

__all__ = [
    "Heaps",
    "LazyH5",
    "check_collection",
    "check_global_heaps",
    "h5_file",
    "header_messages",
    "open_h5",
    "open_h5_deferred",
    "referenced_collections",
    "superblock_sizes",
]


@contextmanager
def open_h5(
    file: io.BufferedReader, what: str, offset: int = 0, length: int | None = None
) -> Iterator[Any]:
    """Open HDF5 bytes of an open regular file read-only with h5py, in place.

    Raises:
        FileFormatError: the bytes are not a readable HDF5 file.
    """
    size = os.fstat(file.fileno()).st_size if length is None else length
    window = Window(file, offset, size)
    try:
        with h5_file(window, size, what) as handle:
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
    window = Window(file, offset, size)
    handle = LazyH5(window, what)
    try:
        yield handle, Heaps(window, size, what)
    finally:
        handle.close()
        window.close()


class LazyH5:
    """h5py's read-only view of a stream, opened on first use: a file whose tree is read
    from its object headers (:mod:`~weighttie.io.hdf5_headers`) may need no HDF5 call, and
    then h5py is not imported. Attributes and items are those of the ``h5py.File``.
    """

    def __init__(self, stream: Any, what: str) -> None:
        self._stream, self._what = stream, what
        self._file: Any = None

    def opened(self) -> Any:
        """The ``h5py.File`` (opened now if it was not)."""
        if self._file is None:
            self._file = _h5_file_object(self._stream, self._what)
        return self._file

    def __getattr__(self, name: str) -> Any:
        return getattr(self.opened(), name)

    def __getitem__(self, key: str) -> Any:
        return self.opened()[key]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


@contextmanager
def h5_file(stream: Any, size: int, what: str) -> Iterator[Any]:
    """h5py's read-only view of a seekable stream of ``size`` bytes, checked first."""
    check_global_heaps(stream, size, what)
    with _h5_file_object(stream, what) as handle:
        yield handle


def _h5_file_object(stream: Any, what: str) -> Any:
    import h5py

    try:
        return h5py.File(stream, "r")
    except (OSError, ValueError) as exc:
        raise FileFormatError(
            f"{what} is damaged or truncated (not a readable HDF5 file: {exc})"
        ) from None


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
    spans = stream.data_ranges() if isinstance(stream, Window) else [(0, length)]
    for position, end in spans:
        while position < end:
            stream.seek(position)
            want = min(len(buffer), end + overlap - position, length - position)
            view = memoryview(buffer)[:want]
            got = stream.readinto(view)
            view.release()
            found = buffer.find(_COLLECTION, 0, got or 0)
            while 0 <= found < _SCAN_CHUNK:
                check_collection(stream, position + found, length, length_size, what)
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


def check_collection(stream: Any, start: int, length: int, length_size: int, what: str) -> None:
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
    (``check(None)``, or where a header holds what :func:`referenced_collections`
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
            addresses = referenced_collections(self.stream, self.size, headers)
        if addresses is None:
            check_global_heaps(self.stream, self.size, self.what)
        else:
            length_size = _length_size(self.stream)
            for address in sorted(addresses):
                self.stream.seek(address)
                if self.stream.read(len(_COLLECTION)) == _COLLECTION:  # else HDF5 refuses it
                    check_collection(self.stream, address, self.size, length_size, self.what)
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


def superblock_sizes(stream: Any, length: int) -> tuple[int, int] | None:
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


def referenced_collections(stream: Any, length: int, headers: list[int]) -> set[int] | None:
    """The global heap collections the attributes of these objects point to, read from
    their object headers (version 1 or 2, continuation chunks followed); None where a
    header holds anything else this does not read (shared or densely stored attributes,
    a datatype that may hold references): then every collection must be checked."""
    sizes = superblock_sizes(stream, length)
    if sizes is None:
        return None
    found: set[int] = set()
    for address in headers:
        messages = header_messages(stream, address, length, *sizes)
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


def header_messages(
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
