"""Keeping a backend's C++ start-up log lines off the user's terminal.

On some CPUs TensorFlow prints absl/oneDNN/CUDA-stub lines on stderr when it
starts and when it runs its first operation, whatever ``TF_CPP_MIN_LOG_LEVEL``
says (``TF_ENABLE_ONEDNN_OPTS=0`` silences one of them but changes numerics, so
weighttie never sets it). They are written by C++ code straight to file
descriptor 2, past ``sys.stderr``.

:func:`quiet_backend_logs` holds file descriptor 2 while a block runs, then passes
on everything the block wrote except lines in the backends' log formats. What
weighttie or the user's code wrote to stderr in the block still arrives, in order,
when the block ends. ``WEIGHTTIE_DEBUG=1`` passes everything on.

This module imports neither Keras nor a backend.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

__all__ = ["is_backend_log_line", "quiet_backend_logs"]

_BACKEND_LINE = re.compile(
    rb"""
    ^(?:
        WARNING:\ All\ log\ messages\ before\ absl::InitializeLog\(\)\ is\ called
            \ are\ written\ to\ STDERR
      | [IWEF]\d{4}\ \d\d:\d\d:\d+\.\d+\s+\d+\ [^\s\]]+:\d+\]\ .*      # absl / glog
      | \d{4}-\d\d-\d\d\ \d\d:\d\d:\d\d\.\d+:\ [IWEF]\ [^\s\]]+:\d+\]\ .*  # TensorFlow's own
      | To\ enable\ the\ following\ instructions:.*rebuild\ TensorFlow\ with\ the
            \ appropriate\ compiler\ flags\.          # cpu_feature_guard's second line
    )\r?$
    """,
    re.VERBOSE,
)


def is_backend_log_line(line: bytes) -> bool:
    """Whether one line of stderr output is a backend's C++ log line.

    Example:
        >>> is_backend_log_line(b"I0000 00:00:1795609712.231587    3670 port.cc:153] oneDNN")
        True
        >>> is_backend_log_line(b"weighttie: error: no such file")
        False
    """
    return _BACKEND_LINE.match(line.rstrip(b"\n")) is not None


def _flush_python_stderr() -> None:
    with contextlib.suppress(Exception):
        sys.stderr.flush()


@contextlib.contextmanager
def quiet_backend_logs() -> Iterator[None]:
    """Hold file descriptor 2 during the block; pass on all but backend log lines.

    Use it around the code that imports and first runs a backend. Nested uses are
    harmless. If file descriptor 2 cannot be duplicated (it is closed), the block
    runs unchanged.

    Example:
        >>> with quiet_backend_logs():     # doctest: +SKIP
        ...     import keras
        ...     model = keras.saving.load_model("model.keras")
    """
    if os.environ.get("WEIGHTTIE_DEBUG"):
        yield
        return
    _flush_python_stderr()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with tempfile.TemporaryFile() as held:
            os.dup2(held.fileno(), 2)
            try:
                yield
            finally:
                _flush_python_stderr()
                os.dup2(saved, 2)
                held.seek(0)
                kept = [line for line in held if not is_backend_log_line(line)]
                if kept:
                    _write_stderr(b"".join(kept))
    finally:
        os.close(saved)


def _write_stderr(data: bytes) -> None:
    """Pass held output on through ``sys.stderr`` (which a caller may have replaced)."""
    sys.stderr.write(data.decode("utf-8", "replace"))
    _flush_python_stderr()
