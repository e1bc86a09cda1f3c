"""Python's cyclic garbage collector, paused while a big structure is built.

Building a report allocates hundreds of thousands of objects and frees almost none
(a parsed config, rows, nodes, shapes), and holds no reference cycle worth
collecting. With that many objects alive, each of the collector's full passes
walks them all again, so its cost grows with the square of the model: on a
20,000-layer model it was four tenths of the static reader's time. Pausing it for
the build keeps the cost linear; it is put back as it was when the block ends, so
a program calling weighttie keeps its own setting.

This module imports neither Keras nor a backend.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Within: the cyclic garbage collector does not run (reference counting still frees
    what it can); after: enabled again if it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
