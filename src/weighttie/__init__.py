"""weighttie: inspect and verify weight sharing in Keras 3 models.

Importing ``weighttie`` does not import Keras; the functions that need a live
model import it when called.

Example:
    >>> import weighttie
    >>> report = weighttie.analyze(model)          # doctest: +SKIP
    >>> print(weighttie.render(report))            # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from weighttie.backend_logs import quiet_backend_logs
from weighttie.errors import (
    FileFormatError,
    LayerNotFoundError,
    LimitError,
    MissingFileError,
    ModelNotBuiltError,
    OptimizerStateWarning,
    OutputError,
    ReportFormatError,
    SpecError,
    TieError,
    TieShapeError,
    TieValueError,
    UnsafeModelError,
    WeighttieError,
)
from weighttie.export import to_networkx, write_graph
from weighttie.limits import DEFAULT_LIMITS, Limits
from weighttie.render import Format, render
from weighttie.report import (
    CallNode,
    Finding,
    FindingKind,
    GroupKind,
    InboundRef,
    LayerInfo,
    LayerParams,
    ModelInfo,
    Params,
    Report,
    SharingGroup,
    Source,
    Tie,
    VariableInfo,
)

if TYPE_CHECKING:
    from weighttie.load import load_model, retie
    from weighttie.static import read_report
    from weighttie.store_once import save_model
    from weighttie.ties import tie_weights, untie
    from weighttie.walk import analyze, node_input, node_output

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_LIMITS",
    "CallNode",
    "FileFormatError",
    "Finding",
    "FindingKind",
    "Format",
    "GroupKind",
    "InboundRef",
    "LayerInfo",
    "LayerNotFoundError",
    "LayerParams",
    "LimitError",
    "Limits",
    "MissingFileError",
    "ModelInfo",
    "ModelNotBuiltError",
    "OptimizerStateWarning",
    "OutputError",
    "Params",
    "Report",
    "ReportFormatError",
    "SharingGroup",
    "Source",
    "SpecError",
    "Tie",
    "TieError",
    "TieShapeError",
    "TieValueError",
    "UnsafeModelError",
    "VariableInfo",
    "WeighttieError",
    "__version__",
    "analyze",
    "load_model",
    "node_input",
    "node_output",
    "quiet_backend_logs",
    "read_report",
    "render",
    "report_of",
    "retie",
    "save_model",
    "tie_weights",
    "to_networkx",
    "untie",
    "write_graph",
]

# Names whose modules import Keras: loaded on first use, so that the static
# reader and the command line can run without a deep-learning backend.
_LAZY = {
    "analyze": "weighttie.walk",
    "node_input": "weighttie.walk",
    "node_output": "weighttie.walk",
    "load_model": "weighttie.load",
    "read_report": "weighttie.static",
    "report_of": "weighttie.front_door",
    "retie": "weighttie.load",
    "save_model": "weighttie.store_once",
    "tie_weights": "weighttie.ties",
    "untie": "weighttie.ties",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'weighttie' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
