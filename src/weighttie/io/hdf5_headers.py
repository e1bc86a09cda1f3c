"""The tree of a plain HDF5 weights file, read from its object headers, without HDF5.

Opening every object through HDF5 costs about a tenth of a millisecond an object
(h5py's call, HDF5's own parse, and a Python read per piece of metadata); a weights
file of 20,000 layers holds 80,000 objects. The files Keras writes are plain: h5py's
default ("earliest") format, groups kept as symbol tables, datasets stored contiguous
or chunked, names in scalar string attributes. Those few structures are decoded here
from the bytes (HDF5 File Format Specification 3.0: superblock versions 0 to 3, object
headers versions 1 and 2, version 1 B-trees of group nodes, local and global heaps),
each read bounded by the file's length, each object and B-tree node visited once.

:func:`read_tree` never refuses a file. Anything it does not decode, or that is not
plain (another link class, a virtual or external dataset, a filter HDF5 does not
build in, shared or densely stored messages, a datatype it does not map the way h5py
does, a count past the limits), makes it return None, and the caller walks the file
through HDF5 instead (:func:`weighttie.static.h5_tree.walk_h5`), which refuses what
must be refused with its reason. So every file is checked as strictly as before; a
plain one costs a parse of its headers.

Objects are visited as ``H5Ovisit`` visits them (each once, by its first name, depth
first, links in increasing byte order of their names), so paths and the names hard
links are first seen by are those the HDF5 walk gives; a test compares the two on
every file the suite writes.

This module imports no Keras, no backend and not h5py.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from weighttie.io.file_window import Window
from weighttie.io.hdf5_guard import check_collection, header_messages, superblock_sizes

__all__ = ["BUILTIN_FILTERS", "StoredValues", "Tree", "TreeDataset", "read_tree"]

#: Filters HDF5 (and h5py, for LZF) have built in: deflate, shuffle, fletcher32, nbit,
#: scaleoffset, lzf. Any other filter id makes HDF5 load a plugin when values are read.
BUILTIN_FILTERS = frozenset({1, 2, 3, 5, 6, 32000})

# Header message types (HDF5 File Format Specification, IV.A.2).
_NIL, _DATASPACE, _DATATYPE, _FILL_OLD, _FILL = 0x00, 0x01, 0x03, 0x04, 0x05
_LAYOUT, _MTIME_OLD, _COMMENT, _FILTERS, _ATTRIBUTE = 0x08, 0x0E, 0x0D, 0x0B, 0x0C
_SYMBOL_TABLE, _MTIME, _REFCOUNT = 0x11, 0x12, 0x16
#: Messages that say nothing about where values live or how names resolve: skipped.
_INERT = frozenset({_NIL, _FILL_OLD, _FILL, _MTIME_OLD, _COMMENT, _MTIME, _REFCOUNT})
_CONTINUATION = 0x10
_SHARED = 0x02  # message flag: the message is stored elsewhere
_MESSAGE_HEAD = struct.Struct("<HHB3x")  # version 1: type, size, flags, reserved
_HEADER_READ = 1024  # h5py's headers are a few hundred bytes

_MAX_LEVEL = 32  # B-tree levels (a group of millions of links needs five)
_MAX_HEAP = 64 << 20  # a local heap's names, or one global heap collection
_MAX_ATTRIBUTE = 1 << 20


class _NotPlain(Exception):
    """The file holds something this reader does not decode: HDF5 walks it instead."""


@dataclass(frozen=True)
class StoredValues:
    """Where a dataset's values lie in the file, when they can be read as bytes directly:
    contiguous and unfiltered (``data`` None, ``offset`` within the file), or compact
    (the bytes, kept from its header). Little-endian, in C order, as NumPy holds them."""

    stream: Any = field(repr=False, compare=False)
    offset: int
    nbytes: int
    data: bytes | None = None

    def chunks(self, budget: int) -> Iterator[bytes]:
        """The values, a small first read (samples stop there), then ``budget`` bytes a read."""
        if self.data is not None:
            yield self.data
            return
        start, step = 0, min(budget, 64 * 1024)
        while start < self.nbytes:
            count = min(step, self.nbytes - start)
            self.stream.seek(self.offset + start)
            chunk = self.stream.read(count)
            if len(chunk) != count:
                raise OSError(f"values end early at byte {self.offset + start + len(chunk):,}")
            yield chunk
            start += count
            step = budget


@dataclass(frozen=True)
class TreeDataset:
    """One dataset: its path, shape, dtype as h5py names it (``float32``, ``|V2``), its
    ``dtype`` attribute when it is a scalar string (Keras's ``bfloat16``), and its values'
    place (None: read them through HDF5)."""

    path: str
    shape: tuple[int, ...]
    dtype: str
    dtype_attribute: str | None
    values: StoredValues | None


@dataclass
class Tree:
    """What a walk found: groups (paths, in the order visited), the ``name`` attribute of
    those that have a scalar one (a string, or None for a scalar of another type),
    datasets, other names of hard-linked datasets (path → the path first seen), and the
    objects and links counted."""

    groups: list[str] = field(default_factory=list)
    names: dict[str, str | None] = field(default_factory=dict)
    datasets: list[TreeDataset] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    objects: int = 0
    links: int = 0


def read_tree(
    stream: Any, length: int, what: str, max_objects: int, max_slashes: int
) -> Tree | None:
    """The tree of the HDF5 file in ``stream`` (``length`` bytes), or None where it is not
    plain or holds more than ``max_objects`` objects or links, or a path of more than
    ``max_slashes`` slashes: the caller then walks it through HDF5.

    Raises:
        FileFormatError: a global heap collection it reads names from is one HDF5 would
            decode forever (:func:`~weighttie.io.hdf5_guard.check_collection`): the file
            is refused as the HDF5 walk refuses it, though this reader would not hang.
    """
    if isinstance(stream, Window):  # one system call a read, past the window's cache
        stream = _Direct(stream)
    try:
        return _Walk(stream, length, what, max_objects, max_slashes).run()
    except (_NotPlain, RecursionError):
        return None


class _Direct:
    """A window read as a stream, each read one ``pread``: the walk reads each piece once."""

    def __init__(self, window: Window) -> None:
        self.window, self.position = window, 0

    def seek(self, position: int) -> None:
        self.position = position

    def read(self, count: int) -> bytes:
        data = self.window.pread(self.position, count)
        self.position += len(data)
        return data


class _Walk:
    def __init__(
        self, stream: Any, length: int, what: str, max_objects: int, max_slashes: int
    ) -> None:
        self.stream, self.length, self.what = stream, length, what
        self.direct = isinstance(stream, _Direct)
        self.max_objects, self.max_slashes = max_objects, max_slashes
        self.tree = Tree()
        self.seen: dict[int, tuple[str, bool]] = {}  # header address → (first path, dataset)
        self.nodes: set[int] = set()
        self.collections: dict[int, dict[int, bytes]] = {}

    def run(self) -> Tree:
        sizes = superblock_sizes(self.stream, self.length)
        if sizes is None:
            raise _NotPlain
        self.offsets, self.lengths = sizes
        root = self._root_address()
        self.seen[root] = ("", False)
        messages = self._messages(root)
        self._group(root, "", messages)
        return self.tree

    # -- reading ------------------------------------------------------------------

    def _read(self, start: int, count: int) -> bytes:
        if start < 0 or count < 0 or start + count > self.length:
            raise _NotPlain
        self.stream.seek(start)
        data: bytes = self.stream.read(count)
        if len(data) != count:
            raise _NotPlain
        return data

    def _int(self, data: bytes, at: int, width: int) -> int:
        if at + width > len(data):
            raise _NotPlain
        return int.from_bytes(data[at : at + width], "little")

    def _root_address(self) -> int:
        head = self._read(0, 128 if self.length >= 128 else self.length)
        o = self.offsets
        version = head[8]
        fields = 24 + 4 * version if version in (0, 1) else 12
        if self._int(head, fields + 2 * o, o) > self.length:
            raise _NotPlain  # an end of file past the bytes: HDF5 refuses it as truncated
        if version in (0, 1):  # base, free space, end of file, driver; then the root entry
            return self._int(head, fields + 4 * o + o, o)
        return self._int(head, fields + 3 * o, o)  # base, extension, end of file, root

    def _messages(self, address: int) -> list[tuple[int, bytes]]:
        """(type, data) of the header's messages that matter; a version 1 header whose
        messages fit in one read is parsed here, any other by
        :func:`~weighttie.io.hdf5_guard.header_messages`."""
        block = self.stream.window.pread(address, _HEADER_READ) if self.direct else b""
        size = int.from_bytes(block[8:12], "little") if len(block) >= 16 else -1
        if block[:1] != b"\x01" or not 0 <= 16 + size <= len(block):
            return self._all_messages(address)
        messages, place, end = [], 16, 16 + size
        while place + 8 <= end:
            kind, length, flags = _MESSAGE_HEAD.unpack_from(block, place)
            if kind == _CONTINUATION:
                return self._all_messages(address)
            if flags & _SHARED:
                raise _NotPlain
            if place + 8 + length > end:
                raise _NotPlain
            if kind not in _INERT:
                messages.append((kind, block[place + 8 : place + 8 + length]))
            place += 8 + length
        return messages

    def _all_messages(self, address: int) -> list[tuple[int, bytes]]:
        found = header_messages(self.stream, address, self.length, self.offsets, self.lengths)
        if found is None:
            raise _NotPlain
        messages = []
        for kind, flags, data in found:
            if flags & _SHARED:
                raise _NotPlain
            if kind not in _INERT:
                messages.append((kind, data))
        return messages

    # -- groups ---------------------------------------------------------------------

    def _group(self, address: int, path: str, messages: list[tuple[int, bytes]]) -> None:
        table = None
        for kind, data in messages:
            if kind == _SYMBOL_TABLE:
                table = data
            elif kind == _ATTRIBUTE:
                attribute, value, scalar = self._attribute(data)
                if attribute == "name" and scalar:
                    self.tree.names[path] = value
            else:
                raise _NotPlain  # link messages (a newer group format), or anything else
        if table is None:
            raise _NotPlain
        if path:
            self.tree.groups.append(path)
        o = self.offsets
        btree, heap = self._int(table, 0, o), self._int(table, o, o)
        names = self._local_heap(heap)
        entries = sorted(self._btree_entries(btree, names))
        for raw, child in entries:
            self.tree.links += 1
            if self.tree.links > self.max_objects:
                raise _NotPlain
            link = raw.decode("utf-8", "replace")
            self._child(child, f"{path}/{link}" if path else link, path)

    def _child(self, address: int, path: str, parent: str) -> None:
        first = self.seen.get(address)
        if first is not None:  # a hard link to an object already visited
            first_path, is_dataset = first
            if is_dataset and (parent == "vars" or parent.endswith("/vars")):
                self.tree.aliases[path] = first_path
            return
        if path.count("/") > self.max_slashes:
            raise _NotPlain
        self.tree.objects += 1
        if self.tree.objects > self.max_objects:
            raise _NotPlain
        messages = self._messages(address)
        kinds = {kind for kind, _ in messages}
        if _LAYOUT in kinds:
            self.seen[address] = (path, True)
            self.tree.datasets.append(self._dataset(path, messages))
        else:
            self.seen[address] = (path, False)
            self._group(address, path, messages)

    def _local_heap(self, address: int) -> bytes:
        head = self._read(address, 8 + 2 * self.lengths + self.offsets)
        if head[:4] != b"HEAP" or head[4] != 0:
            raise _NotPlain
        size = self._int(head, 8, self.lengths)
        data = self._int(head, 8 + 2 * self.lengths, self.offsets)
        if size > _MAX_HEAP:
            raise _NotPlain
        return self._read(data, size)

    def _btree_entries(
        self, address: int, names: bytes, level: int | None = None
    ) -> Iterator[tuple[bytes, int]]:
        """(link name, object header address) of every entry of a group's B-tree."""
        if address in self.nodes or len(self.nodes) > self.max_objects:
            raise _NotPlain
        self.nodes.add(address)
        o, ln = self.offsets, self.lengths
        head = self._read(address, 8 + 2 * o)
        if head[:4] != b"TREE" or head[4] != 0:
            raise _NotPlain
        if (level is not None and head[5] != level) or head[5] > _MAX_LEVEL:
            raise _NotPlain  # a child one level down, or a damaged node
        level, used = head[5], self._int(head, 6, 2)
        body = self._read(address + 8 + 2 * o, used * (ln + o) + ln)
        children = [self._int(body, ln + i * (ln + o), o) for i in range(used)]
        for child in children:
            if level > 0:
                yield from self._btree_entries(child, names, level - 1)
            else:
                yield from self._symbol_node(child, names)

    def _symbol_node(self, address: int, names: bytes) -> Iterator[tuple[bytes, int]]:
        if address in self.nodes:
            raise _NotPlain
        self.nodes.add(address)
        o = self.offsets
        head = self._read(address, 8)
        if head[:4] != b"SNOD" or head[4] != 1:
            raise _NotPlain
        count, entry = self._int(head, 6, 2), 2 * o + 24
        body = self._read(address + 8, count * entry)
        for i in range(count):
            at = i * entry
            name_at, header = self._int(body, at, o), self._int(body, at + o, o)
            if self._int(body, at + 2 * o, 4) == 2:  # a soft link
                raise _NotPlain
            end = names.find(b"\0", name_at)
            if name_at >= len(names) or end < 0:
                raise _NotPlain
            raw = names[name_at:end]
            if not raw or b"/" in raw:
                raise _NotPlain
            yield raw, header

    # -- datasets -------------------------------------------------------------------

    def _dataset(self, path: str, messages: list[tuple[int, bytes]]) -> TreeDataset:
        shape: tuple[int, ...] | None = None
        dtype = layout = None
        filters: list[int] = []
        tag: str | None = None
        for kind, data in messages:
            if kind == _DATASPACE:
                shape = self._dataspace(data)
            elif kind == _DATATYPE:
                dtype = _numpy_name(data)
            elif kind == _LAYOUT:
                layout = data
            elif kind == _FILTERS:
                filters = self._filters(data)
            elif kind == _ATTRIBUTE:
                attribute, value, _ = self._attribute(data)
                if attribute == "dtype" and isinstance(value, str):
                    tag = value
            else:
                raise _NotPlain  # external storage, or anything else
        if shape is None or dtype is None or layout is None:
            raise _NotPlain
        if any(code not in BUILTIN_FILTERS for code in filters):
            raise _NotPlain
        values = self._values(layout, shape, dtype[1], bool(filters))
        return TreeDataset(path, shape, dtype[0], tag, values)

    def _dataspace(self, data: bytes) -> tuple[int, ...]:
        if len(data) < 8 or data[0] not in (1, 2):
            raise _NotPlain
        version, rank, flags = data[0], data[1], data[2]
        if version == 2 and data[3] == 2:  # a null dataspace
            raise _NotPlain
        start = 8 if version == 1 else 4
        if flags & 0x02 and version == 1:  # permutation indices: never written
            raise _NotPlain
        return tuple(self._int(data, start + i * self.lengths, self.lengths) for i in range(rank))

    def _filters(self, data: bytes) -> list[int]:
        if len(data) < 2 or data[0] not in (1, 2):
            raise _NotPlain
        version, count = data[0], data[1]
        place, codes = (8 if version == 1 else 2), []
        for _ in range(count):
            code = self._int(data, place, 2)
            named = version == 1 or code >= 256
            name_size = self._int(data, place + 2, 2) if named else 0
            values = self._int(data, place + (6 if named else 4), 2)
            place += (8 if named else 6) + ((name_size + 7) // 8 * 8 if version == 1 else name_size)
            place += 4 * values + (4 if version == 1 and values % 2 else 0)
            codes.append(code)
        return codes

    def _values(self, layout: bytes, shape: tuple[int, ...], width: int, filtered: bool) -> Any:
        if len(layout) < 2 or layout[0] != 3:
            raise _NotPlain  # versions 1, 2 (old) and 4 (chunk indexes of the newest format)
        nbytes = width
        for d in shape:
            nbytes *= d
        kind = layout[1]
        if kind == 0:  # compact: the values are in the header
            size = self._int(layout, 2, 2)
            if size != nbytes or 4 + size > len(layout):
                raise _NotPlain
            return StoredValues(self.stream, 0, nbytes, bytes(layout[4 : 4 + size]))
        if kind == 1 and not filtered:  # contiguous
            o = self.offsets
            offset, size = self._int(layout, 2, o), self._int(layout, 2 + o, self.lengths)
            if offset == (1 << 8 * o) - 1:  # storage never allocated: HDF5 gives the fill value
                return None
            if size != nbytes or offset + size > self.length:
                raise _NotPlain
            return StoredValues(self.stream, offset, nbytes)
        if kind == 2:  # chunked: read through HDF5
            return None
        raise _NotPlain  # virtual, or unknown

    # -- attributes -------------------------------------------------------------------

    def _attribute(self, data: bytes) -> tuple[str, str | None, bool]:
        """An attribute's name, its value when it is a string, and whether it is a scalar."""
        if len(data) < 8 or data[0] not in (1, 2, 3) or len(data) > _MAX_ATTRIBUTE:
            raise _NotPlain
        version = data[0]
        if version >= 2 and data[1] & 0x03:  # shared datatype or dataspace
            raise _NotPlain
        name_size, type_size, space_size = (self._int(data, at, 2) for at in (2, 4, 6))

        def padded(n: int) -> int:
            return (n + 7) // 8 * 8 if version == 1 else n

        place = 8 + (1 if version == 3 else 0)
        name = data[place : place + name_size].rstrip(b"\0").decode("utf-8", "surrogateescape")
        place += padded(name_size)
        datatype = data[place : place + type_size]
        place += padded(type_size)
        space = data[place : place + space_size]
        place += padded(space_size)
        if len(space) < 4 or len(datatype) < 8:
            raise _NotPlain
        if space[1] != 0 or (space[0] == 2 and space[3] != 0):
            return name, None, False
        kind = datatype[0] & 0x0F
        if kind == 3:  # fixed-length string: NumPy drops the trailing NULs
            size = self._int(datatype, 4, 4)
            return name, _text(data[place : place + size].rstrip(b"\0")), True
        if kind == 9 and datatype[1] & 0x0F == 1:  # variable-length string
            return name, self._global_string(data[place:]), True
        return name, None, True

    def _global_string(self, value: bytes) -> str:
        o = self.offsets
        size = self._int(value, 0, 4)
        collection, index = self._int(value, 4, o), self._int(value, 4 + o, 4)
        if collection == 0:
            return ""
        objects = self.collections.get(collection)
        if objects is None:
            objects = self.collections[collection] = self._collection(collection)
        found = objects.get(index)
        if found is None or len(found) < size:
            raise _NotPlain
        return _text(found[:size])

    def _collection(self, address: int) -> dict[int, bytes]:
        """The objects of a global heap collection, by index (each read once a file)."""
        ln = self.lengths
        head = self._read(address, 8 + ln)
        if head[:4] != b"GCOL" or head[4] != 1:
            raise _NotPlain
        total = self._int(head, 8, ln)
        if total > _MAX_HEAP or total < 8 + ln:
            raise _NotPlain
        check_collection(self.stream, address, self.length, ln, self.what)
        body = self._read(address, total)
        objects: dict[int, bytes] = {}
        place = header = 8 + ln
        while place + header <= total:
            number = self._int(body, place, 2)
            length = self._int(body, place + 8, ln)
            if number == 0:
                break  # free space: the rest of the collection
            step = header + (length + 7) // 8 * 8
            if place + step > total:
                raise _NotPlain
            objects[number] = body[place + header : place + header + length]
            place += step
        return objects


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _numpy_name(datatype: bytes) -> tuple[str, int]:
    """h5py's NumPy name of a datatype message, and the element width; ``_NotPlain`` for
    any type h5py would map differently or that this does not decode."""
    if len(datatype) < 8:
        raise _NotPlain
    kind, version = datatype[0] & 0x0F, datatype[0] >> 4
    bits = datatype[1] | datatype[2] << 8 | datatype[3] << 16
    size = int.from_bytes(datatype[4:8], "little")
    if version not in (1, 2, 3):
        raise _NotPlain
    props = datatype[8:]
    if kind == 0 and size in (1, 2, 4, 8) and len(props) >= 4:  # integer, little-endian
        offset, precision = (int.from_bytes(props[i : i + 2], "little") for i in (0, 2))
        if bits & 0x07 or offset != 0 or precision != 8 * size:  # big-endian, or padded
            raise _NotPlain
        return f"{'int' if bits & 0x08 else 'uint'}{8 * size}", size
    if kind == 1 and len(props) >= 12:  # IEEE floating point, little-endian
        layout = (bits & 0x41, props[0:2], props[2:4], props[4], props[5], props[6], props[7])
        bias = int.from_bytes(props[8:12], "little")
        if _IEEE.get(size) == (*layout[3:], bias) and layout[0] == 0:
            offset, precision = (int.from_bytes(p, "little") for p in layout[1:3])
            if offset == 0 and precision == 8 * size and (bits >> 8) & 0xFF == 8 * size - 1:
                return f"float{8 * size}", size
        raise _NotPlain
    if kind == 5 and size > 0:  # opaque: h5py gives void, unless its tag names a NumPy type
        tag = props.split(b"\0", 1)[0]
        if tag.startswith(b"NUMPY:"):
            raise _NotPlain
        return f"|V{size}", size
    raise _NotPlain


#: IEEE layouts h5py maps to NumPy's floats: (exponent location, exponent size,
#: mantissa location, mantissa size, exponent bias) by byte width.
_IEEE = {2: (10, 5, 0, 10, 15), 4: (23, 8, 0, 23, 127), 8: (52, 11, 0, 52, 1023)}
