"""The house rules of docs/architecture.md, checked on the source, and the layout of
tests/ that mirrors it.

Imports are read from the source (every ``import`` anywhere in a module, those
inside functions included), so a circle hidden in a function body counts too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import networkx as nx

from support import REPO

PACKAGE = REPO / "src" / "weighttie"

#: Modules that read only the Report (or build it from facts): never Keras or a backend.
KERAS_FREE = {
    "weighttie.report",
    "weighttie.report_json",
    "weighttie.render",
    "weighttie.text",
    "weighttie.build",
    "weighttie.export",
    "weighttie.dtypes",
    "weighttie.layers",
    "weighttie.facts",
    "weighttie.findings",
    "weighttie.spec",
    "weighttie.tie_record",
    "weighttie.escape",
    "weighttie.files",
    "weighttie.limits",
    "weighttie.collector",
    "weighttie.picture",
    "weighttie.picture.layout",
    "weighttie.picture.drawing",
    "weighttie.picture.page",
    "weighttie.io",
    "weighttie.model_files",
    "weighttie.static",
}
#: The upward edges, each imported when called: ``Report._repr_html_`` draws the
#: picture in a notebook; ``Report.to_json`` / ``from_json`` … call the JSON codec.
HOOKS = (
    ("weighttie.report", "weighttie.picture"),
    ("weighttie.report", "weighttie.report_json"),
)
BACKENDS = {"keras", "tensorflow", "jax", "torch", "tf_keras"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _graph() -> tuple[nx.DiGraph, dict[str, set[str]]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = nx.DiGraph()
    raw: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph.add_node(name)
        raw[name] = _imports(path)
        for target in raw[name]:
            if target in modules and target != name and not name.startswith(target + "."):
                graph.add_edge(name, target)
    return graph, raw


def test_no_import_circle() -> None:
    graph, _ = _graph()
    for hook in HOOKS:
        graph.remove_edge(*hook)
    cycles = sorted(nx.simple_cycles(graph), key=len)
    assert cycles == [], f"import circles: {cycles[:3]}"


def test_report_side_modules_never_import_a_backend() -> None:
    graph, raw = _graph()
    for module in sorted(graph):
        if module in KERAS_FREE or any(module.startswith(m + ".") for m in KERAS_FREE):
            direct = {name.split(".")[0] for name in raw[module]} & BACKENDS
            assert not direct, f"{module} imports {direct}"
            reachable = nx.descendants(graph, module)
            keras_side = reachable - KERAS_FREE - {"weighttie", "weighttie.errors"}
            keras_side = {
                m for m in keras_side if not any(m.startswith(k + ".") for k in KERAS_FREE)
            }
            importing = {m for m in keras_side if {n.split(".")[0] for n in raw[m]} & BACKENDS}
            assert not importing, f"{module} reaches {importing}, which import a backend"


#: The package that holds every private Keras access (docs/architecture.md).
KERAS_PRIVATE = PACKAGE / "_keras"


def _outside_keras_package() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if KERAS_PRIVATE not in p.parents]


def test_private_keras_attributes_are_read_only_in_keras_module() -> None:
    """`_inbound_nodes`, `_tracker`, `_kernel` …: only weighttie._keras touches them."""
    private = (
        "_inbound_nodes",
        "_tracker",
        "_kernel",
        "_nodes",
        "_layers",
        "_trainable_variables",
        "_flatten_layers",
        "_load_state",
        "_initializer",
    )
    assert (KERAS_PRIVATE / "__init__.py").is_file()
    for path in _outside_keras_package():
        text = path.read_text(encoding="utf-8")
        for attr in private:
            assert not re.search(rf"\.{attr}\b", text), f"{path.name} reads {attr}"


def test_keras_private_modules_are_imported_only_in_keras_module() -> None:
    """``keras.src`` (Keras's private modules) is imported by weighttie._keras alone."""
    for path in _outside_keras_package():
        name = _module_name(path)
        private = {m for m in _imports(path) if m == "keras.src" or m.startswith("keras.src.")}
        assert not private, f"{name} imports {sorted(private)}"


def test_no_function_over_80_lines() -> None:
    """A function longer than 80 lines (docstring included) is split (docs/architecture.md)."""
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > 80:
                    long.append(f"{_module_name(path)}.{node.name}: {lines} lines")
    assert long == [], long


def test_modules_use_each_others_public_names_only() -> None:
    """A name a module imports from another weighttie module is one that module exports
    (in its ``__all__``): a private helper used next door is a seam nobody declared.
    ``weighttie._keras`` is the one private module, named so on purpose."""
    crossing = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
                continue
            if not node.module.startswith("weighttie"):
                continue
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and alias.name != "_keras":
                    crossing.append(f"{_module_name(path)}: {node.module}.{alias.name}")
    assert crossing == []


# -- the tests mirror the rooms (docs/architecture.md) ----------------------------------------

TESTS = REPO / "tests"
#: Tests no one module or package owns: the only test files at the top of tests/.
CROSS_CUTTING = {"test_architecture.py", "test_public_api.py", "test_examples.py", "test_cost.py"}
#: Folders of tests/ that mirror nothing: committed inputs and golden outputs (not packages).
DATA = {"fixtures", "golden"}
#: The one package of helpers that several folders of tests import (``from support import zoo``).
SUPPORT = "support"


def _test_folders() -> list[Path]:
    return sorted(
        p
        for p in TESTS.rglob("*")
        if p.is_dir()
        and p.relative_to(TESTS).parts[0] not in DATA
        and not any(part == "__pycache__" or part.startswith(".") for part in p.parts)
    )


def test_the_top_of_tests_holds_the_shared_fixtures_and_cross_cutting_tests_only() -> None:
    """A test file goes into the folder of what it tests; a helper into tests/support/.
    tests/ itself is no package: pytest puts it on ``sys.path``, the root of them all."""
    top = sorted(p.name for p in TESTS.glob("*.py"))
    assert top == sorted({"conftest.py", *CROSS_CUTTING})


def test_every_folder_of_tests_mirrors_src_and_is_a_package() -> None:
    """``tests/<a>/<b>/`` tests ``src/weighttie/<a>/<b>`` (a package, or the module
    ``<b>.py``); every folder is a package, so two may hold files of one name."""
    wrong = []
    for folder in _test_folders():
        relative = folder.relative_to(TESTS)
        mirror = PACKAGE.joinpath(*relative.parts)
        if relative.parts != (SUPPORT,) and not (
            mirror.is_dir() or mirror.with_suffix(".py").is_file()
        ):
            wrong.append(f"tests/{relative.as_posix()}/ mirrors nothing in src/weighttie/")
        if not (folder / "__init__.py").is_file():
            wrong.append(f"tests/{relative.as_posix()}/ has no __init__.py")
    assert wrong == []
    assert not list((TESTS / SUPPORT).glob("test_*.py")), "tests/support/ holds helpers only"
