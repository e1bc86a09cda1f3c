"""The public surface is small and pinned: changing it is a deliberate act."""

from __future__ import annotations

import subprocess
import sys

import weighttie

EXPECTED = {
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
}


def test_all_is_pinned() -> None:
    assert set(weighttie.__all__) == EXPECTED


def test_every_exported_name_is_the_documented_object_of_its_module() -> None:
    """Each public name resolves (lazy ones too) to an object of a weighttie module that
    exports it under that name, and says what it is: a renamed or dropped function, a
    lazy entry pointing at the wrong module or an undocumented export fails here."""
    import importlib
    import inspect

    for name in weighttie.__all__:
        value = getattr(weighttie, name)
        if not (inspect.isclass(value) or inspect.isfunction(value)):
            continue  # constants and enum members have no module of their own
        home = importlib.import_module(value.__module__)
        assert value.__module__.startswith("weighttie."), name
        assert name in getattr(home, "__all__", ()), f"{value.__module__} does not export {name}"
        assert getattr(home, name) is value, name
        assert (inspect.getdoc(value) or "").strip(), f"{name} has no docstring"


def test_errors_subclass_the_matching_builtins() -> None:
    assert issubclass(weighttie.MissingFileError, FileNotFoundError)
    assert issubclass(weighttie.FileFormatError, ValueError)
    assert issubclass(weighttie.LayerNotFoundError, KeyError)
    for name in ("FileFormatError", "LayerNotFoundError", "ModelNotBuiltError", "UnsafeModelError"):
        assert issubclass(getattr(weighttie, name), weighttie.WeighttieError)


def test_importing_weighttie_does_not_import_keras() -> None:
    code = "import sys, weighttie; print('keras' in sys.modules, 'tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
