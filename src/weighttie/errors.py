"""The exceptions weighttie raises.

Every error weighttie raises on purpose derives from :class:`WeighttieError`, and
also from the built-in exception a caller would naturally catch (``ValueError``,
``FileNotFoundError`` …). The command line turns any ``WeighttieError`` into one
line on stderr and exit code 2.
"""

from __future__ import annotations

__all__ = [
    "FileFormatError",
    "LayerNotFoundError",
    "LimitError",
    "MissingFileError",
    "ModelNotBuiltError",
    "OptimizerStateWarning",
    "OutputError",
    "ReportFormatError",
    "SpecError",
    "TieError",
    "TieShapeError",
    "TieValueError",
    "UnsafeModelError",
    "WeighttieError",
    "first_line",
]


class WeighttieError(Exception):
    """Root of every error weighttie raises on purpose."""


class LayerNotFoundError(WeighttieError, KeyError):
    """A layer name or path matches no layer, or matches several."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelNotBuiltError(WeighttieError, ValueError):
    """The model has no variables yet: it was never built or called."""


class ReportFormatError(WeighttieError, ValueError):
    """A report document does not follow the ``weighttie.report/1`` contract."""


class SpecError(WeighttieError, ValueError):
    """A spec file or document is not a valid ``weighttie.spec/1`` spec."""


class FileFormatError(WeighttieError, ValueError):
    """A file is not a readable Keras model (missing, corrupt or of another kind)."""


class MissingFileError(WeighttieError, FileNotFoundError):
    """The path names no file."""

    def __str__(self) -> str:  # OSError would format (errno, strerror)
        return str(self.args[0]) if self.args else ""


class UnsafeModelError(WeighttieError, ValueError):
    """A model file needs code execution (e.g. a Lambda layer) and ``--unsafe`` was not given."""


class TieError(WeighttieError, ValueError):
    """A tie cannot be made, bound or undone as asked."""


class TieShapeError(TieError):
    """The variables to tie differ in shape or dtype."""


class TieValueError(TieError):
    """The variables to tie hold different values and the caller did not say which to keep."""


class OptimizerStateWarning(UserWarning):
    """The optimizer state in a file could not be restored (training resumes from a fresh one)."""


class LimitError(FileFormatError):
    """An input holds more than a :class:`~weighttie.limits.Limits` bound allows.

    ``limit`` names the :class:`~weighttie.limits.Limits` field that was exceeded
    (``"layers"``, ``"calls"`` …), so a front end can say how to raise it.
    """

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


class OutputError(WeighttieError, OSError):
    """An output file cannot be written where it was asked for (nothing was changed)."""

    def __str__(self) -> str:  # OSError would format (errno, strerror)
        return str(self.args[0]) if self.args else ""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an error's message, and the next where the first ends in a colon
    (Keras's "… Example error message for object <GRUCell …>:" puts the reason there)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    line = lines[0] if lines else type(exc).__name__
    if line.endswith(":") and len(lines) > 1:
        line = f"{line} {lines[1]}"
    return line if len(line) <= limit else line[: limit - 1] + "…"
