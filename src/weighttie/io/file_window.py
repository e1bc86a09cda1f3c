"""A read-only window onto part of an open file, as a seekable stream.

h5py reads a weights file through it in place: the whole file (a legacy ``.h5``) or
one stored member of a ``.keras`` zip, whose bytes are not copied anywhere.
"""

from __future__ import annotations

import errno
import io
import os
from typing import Any

__all__ = ["Window"]


class Window(io.RawIOBase):
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

    def pread(self, start: int, count: int) -> bytes:
        """``count`` bytes from ``start`` (fewer at the window's end), in one system call:
        no cache, no seek (the file's position is left where it was)."""
        count = max(0, min(count, self._length - start))
        return os.pread(self._file.fileno(), count, self._offset + start) if count else b""

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
