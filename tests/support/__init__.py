"""Helpers shared by the tests (no tests here): ``from support import zoo``.

``tests/`` is on ``sys.path`` (pytest's default import mode puts the root of the
test packages there), so each folder of tests is a package named after the part of
``src/weighttie/`` it tests, and this one holds what several of them use: the zoo of
models, the corpus of bad files, checkpoint and keras_hub builders, the oracles.
"""

from __future__ import annotations

from pathlib import Path

#: The repository's root: ``REPO / "docs"``, ``REPO / "examples"``, ``REPO / "benchmarks"``.
REPO = Path(__file__).resolve().parents[2]
#: Committed inputs of the tests: ``fixtures/releases``, ``fixtures/huggingface``.
FIXTURES = REPO / "tests" / "fixtures"
#: Golden outputs compared in full (``pytest --update-golden`` rewrites them).
GOLDEN = REPO / "tests" / "golden"
