"""A status line on a terminal while slow work runs; nothing anywhere else.

When stderr is a terminal and a step takes longer than about a second (loading a
model through Keras, reading a large file, drawing the picture of a big model),
the command line shows what it is doing and for how long, on one line it clears
when the step ends. When stderr is not a terminal (CI logs, pipes, files),
nothing extra is written: the output stays what the docs show.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["DELAY", "status", "status_terminal"]

#: Seconds a step runs before its status line appears (``WEIGHTTIE_PROGRESS_DELAY``).
DELAY = 1.0
_TICK = 0.25
_CLEAR = "\r\x1b[K"
#: The terminal status lines go to while :func:`status_terminal` holds it.
_terminal: TextIO | None = None


def _delay() -> float:
    try:
        return max(0.0, float(os.environ.get("WEIGHTTIE_PROGRESS_DELAY", DELAY)))
    except ValueError:
        return DELAY


@contextmanager
def status(message: str, stream: TextIO | None = None) -> Iterator[None]:
    """Show ``message`` and the seconds spent on ``stream`` (stderr) while the block
    runs, if it is a terminal and the block outlasts the delay; clear it after.

    Example:
        >>> with status("loading m.keras through Keras"):  # doctest: +SKIP
        ...     model = load_model("m.keras")
    """
    out = stream if stream is not None else _terminal if _terminal is not None else sys.stderr
    if not _is_terminal(out):
        yield
        return
    done = threading.Event()
    shown = threading.Event()
    started = time.monotonic()
    text = message.replace("\n", " ").replace("\r", " ")

    def show() -> None:
        if done.wait(_delay()):
            return
        while not done.is_set():
            elapsed = time.monotonic() - started
            out.write(f"{_CLEAR}weighttie: {text} … {elapsed:.0f} s")
            out.flush()
            shown.set()
            done.wait(_TICK)

    thread = threading.Thread(target=show, name="weighttie-status", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        if shown.is_set():
            out.write(_CLEAR)
            out.flush()


@contextmanager
def status_terminal() -> Iterator[None]:
    """Keep a handle on the terminal stderr is now (if it is one) for status lines, so
    they reach it while stderr itself is held (:mod:`weighttie.backend_logs`)."""
    global _terminal
    if _terminal is not None or not _is_terminal(sys.stderr):
        yield
        return
    try:
        fd = os.dup(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        yield
        return
    _terminal = os.fdopen(fd, "w", encoding="utf-8", errors="replace")
    try:
        yield
    finally:
        terminal, _terminal = _terminal, None
        terminal.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a file
        return False
