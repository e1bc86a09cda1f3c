"""Whether two stored tensors hold the same bytes: a bounded sample first, then streamed.

The only values a checkpoint report reads are those of the two copies of a declared
tie that are both stored (``stored-twice`` or ``broken-tie``). Three 64 kB windows
(start, middle, end) are compared first: trained tensors that differ almost always
differ there. Only when they agree is the rest compared, 1 MiB at a time, stopping at
the first difference, so memory stays bounded whatever the size, under a time
budget (a base plus a share per megabyte), so that a file on a stalled device ends
with an error rather than a hang.

Each file is reopened through :func:`~weighttie.static.huggingface.checkpoint_files.open_in_folder`
(the same checks as for its header) and must still have the size its header was
checked against.

This module imports neither Keras nor a backend.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import ExitStack

from weighttie.errors import FileFormatError
from weighttie.static.huggingface.checkpoint_files import open_in_folder
from weighttie.static.huggingface.safetensors_header import StoredTensor

__all__ = ["same_values"]

SAMPLE = 64 * 1024
CHUNK = 1 << 20
#: Time allowed: a base plus a share per megabyte compared (a healthy disk reads
#: hundreds of megabytes a second).
SECONDS = 10.0
SECONDS_PER_MB = 0.02


def same_values(folder: str, a: StoredTensor, b: StoredTensor, sizes: dict[str, int]) -> bool:
    """Whether ``a`` and ``b`` (same dtype and shape) hold the same bytes.

    ``sizes``: each file's size when its header was read.

    Raises:
        FileFormatError: a file changed since its header was read, cannot be read, or
            reading is too slow.
    """
    if (a.dtype, a.shape, a.nbytes) != (b.dtype, b.shape, b.nbytes):
        return False
    with ExitStack() as stack:
        fds = {}
        for name in dict.fromkeys((a.file, b.file)):
            f = stack.enter_context(open_in_folder(folder, name, "safetensors file"))
            if os.fstat(f.fileno()).st_size != sizes[name]:
                raise FileFormatError(
                    f"{folder!r}: {name} changed while it was read (its size is not the one its "
                    "header was checked against)"
                )
            fds[name] = f.fileno()
        reader = _Reader(folder, fds)
        n = a.nbytes
        for start, stop in _windows(n):
            if reader.read(a, start, stop) != reader.read(b, start, stop):
                return False
        for start, stop in _chunks(n):
            if reader.read(a, start, stop) != reader.read(b, start, stop):
                return False
    return True


def _windows(n: int) -> list[tuple[int, int]]:
    """The sample: three windows (start, middle, end), or the whole tensor when small."""
    if n <= 3 * SAMPLE:
        return [(0, n)]
    middle = (n - SAMPLE) // 2
    return [(0, SAMPLE), (middle, middle + SAMPLE), (n - SAMPLE, n)]


def _chunks(n: int) -> Iterator[tuple[int, int]]:
    """The rest, 1 MiB at a time (the sampled windows are read again: simpler, and cheap)."""
    if n <= 3 * SAMPLE:
        return
    for start in range(0, n, CHUNK):
        yield start, min(n, start + CHUNK)


class _Reader:
    """Reads byte ranges of tensors with ``pread``, within the time budget."""

    def __init__(self, folder: str, fds: dict[str, int]) -> None:
        self.folder, self.fds = folder, fds
        self.started = time.monotonic()
        self.read_bytes = 0

    def read(self, t: StoredTensor, start: int, stop: int) -> bytes:
        fd = self.fds[t.file]
        want = stop - start
        try:
            data = os.pread(fd, want, t.begin + start)
            while 0 < len(data) < want:
                more = os.pread(fd, want - len(data), t.begin + start + len(data))
                if not more:
                    break
                data += more
        except OSError as exc:
            raise FileFormatError(
                f"cannot read {self.folder!r}: {t.file}: {exc.strerror or exc}"
            ) from None
        if len(data) != want:
            raise FileFormatError(
                f"{self.folder!r}: {t.file} ended inside tensor {t.name!r}; the file was "
                "truncated while it was read"
            )
        self.read_bytes += want
        budget = SECONDS + SECONDS_PER_MB * self.read_bytes / 1e6
        if time.monotonic() - self.started > budget:
            raise FileFormatError(
                f"{self.folder!r}: reading {self.read_bytes / 1e6:.0f} MB of tensor values took "
                f"longer than {budget:.0f} s; the files are on a stalled or very slow device"
            )
        return data
