"""Variables' values streamed from a weights file in chunks, under a time budget."""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import zip_longest
from typing import Any

from weighttie.errors import FileFormatError
from weighttie.facts import ValueAccess
from weighttie.io.hdf5_headers import StoredValues
from weighttie.static.rows import Reader

__all__ = [
    "VALUES_SECONDS",
    "VALUES_SECONDS_PER_MB",
    "VALUES_SECONDS_PER_READ",
    "Values",
    "value_access",
]

#: Time allowed to read values for findings: a base, plus shares per megabyte read
#: and per variable read (healthy files: about 1 ms a variable, 1 ms a megabyte).
VALUES_SECONDS = 10.0
VALUES_SECONDS_PER_MB = 0.01
VALUES_SECONDS_PER_READ = 0.005


def _dataset_chunks(
    h5: Any, key: str, handles: dict[str, Any], budget: int = 1 << 20
) -> Iterator[bytes]:
    """A dataset's values as bytes, about ``budget`` bytes a read (never all at once).

    Small datasets are read through the low-level API: on a model with hundreds
    of candidate variables h5py's high-level lookup is most of the cost.
    """
    held = handles.get(key)  # a folder's files: every dataset is held open, h5 is None
    if isinstance(held, StoredValues):  # bytes at a known place: no HDF5 call
        yield from held.chunks(budget)
        return
    import h5py
    import numpy as np
    from h5py import h5d, h5s

    dataset = held or h5d.open(h5.id, key.encode())
    shape, dtype = dataset.shape, dataset.dtype
    total = int(np.prod(shape)) * dtype.itemsize
    if total <= budget or not shape:
        values = np.empty(shape, dtype=dtype)
        dataset.read(h5s.ALL, h5s.ALL, values)
        yield values.tobytes()
        return
    # Slice along the first axis longer than 1 ((1, 1, 728, 728) kernels are common),
    # a small first read (samples stop there), then about ``budget`` bytes a read.
    handle = h5py.Dataset(held) if held is not None else h5[key]
    axis = next(i for i, d in enumerate(shape) if d > 1)
    lead = (0,) * axis
    row_bytes = max(1, total // shape[axis])
    start, step = 0, max(1, (64 * 1024) // row_bytes)
    while start < shape[axis]:
        yield np.ascontiguousarray(handle[(*lead, slice(start, start + step))]).tobytes()
        start += step
        step = max(1, budget // row_bytes)


class Values:
    """Variables' values streamed from a weights file, within a time budget.

    Healthy files take about 1 ms a variable and 1 ms a megabyte; the budget is a
    base plus shares per megabyte read and per variable read, so a damaged file
    (one slow read after another) ends with a clear error instead of a hang. The
    clock starts at the first read: what ran before (walking a 20,000-layer model)
    is not the values' time.
    """

    def __init__(self, h5: Any, handles: dict[str, Any], where: str) -> None:
        self.h5, self.handles, self.where = h5, handles, where
        self.started: float | None = None
        self.read = 0
        self.opened = 0

    def chunks(self, key: str) -> Iterator[bytes]:
        if self.started is None:
            self.started = time.monotonic()
        self.opened += 1
        for chunk in _dataset_chunks(self.h5, key, self.handles):
            self.read += len(chunk)
            budget = (
                VALUES_SECONDS
                + VALUES_SECONDS_PER_MB * self.read / 1e6
                + VALUES_SECONDS_PER_READ * self.opened
            )
            if time.monotonic() - self.started > budget:
                raise FileFormatError(
                    f"{self.where} is damaged: reading {self.read / 1e6:.0f} MB of values "
                    f"took longer than {budget:.0f} s"
                )
            yield chunk

    def equal(self, a: str, b: str) -> bool:
        """Whether two datasets of one shape and dtype hold the same bytes (stops at the first
        difference)."""
        return all(x == y for x, y in zip_longest(self.chunks(a), self.chunks(b)))


def value_access(reader: Reader, values: Values | None) -> ValueAccess:
    """Layer configs from the file, and values streamed from it (None: values are not read)."""
    from weighttie.findings import config_fingerprint

    def fingerprint(path: str) -> str | None:
        entry = reader.entries.get(path)
        if entry is None or not isinstance(entry.get("config"), dict):
            return None
        return config_fingerprint(entry["config"])

    if values is None:
        return ValueAccess(fingerprint=fingerprint, chunks=None)
    read = values.chunks
    return ValueAccess(fingerprint=fingerprint, chunks=lambda key: read(str(key)))
