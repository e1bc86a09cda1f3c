"""Shared fixtures: the zoo, saved model files, golden files."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest

from support import GOLDEN
from support.hostile import Valid

# tf_keras (Keras 2, which writes the legacy test files) needs TensorFlow; the JAX
# and torch venvs (make test-jax, make test-torch) have none.
collect_ignore = [] if importlib.util.find_spec("tf_keras") else ["static/test_legacy_h5.py"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/golden/* from the current output instead of comparing",
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """Compare text with tests/golden/NAME in full (or rewrite it with --update-golden)."""
    update = request.config.getoption("--update-golden")

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        assert path.exists(), f"no golden file {path}; run pytest --update-golden"
        assert text == path.read_text(encoding="utf-8")

    return check


@pytest.fixture(scope="session")
def valid(tmp_path_factory: pytest.TempPathFactory) -> Valid:
    """A valid model saved both ways (.keras and .h5): what the hostile corpora start from.

    Tests only read these files; each bad file is built in a directory of its own.
    """
    from support import zoo

    directory = tmp_path_factory.mktemp("valid")
    model = zoo.siamese_tower()
    model.save(directory / "siamese.keras")
    model.save(directory / "siamese.h5")
    return Valid(keras=directory / "siamese.keras", h5=directory / "siamese.h5")


@pytest.fixture
def save(tmp_path: Path) -> Callable[..., Path]:
    """Save a model as .keras (or .h5) under tmp_path and return the path."""

    def _save(model: object, name: str = "model.keras") -> Path:
        path = tmp_path / name
        model.save(path)  # type: ignore[attr-defined]
        return path

    return _save


@pytest.fixture(scope="session")
def tower_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Saved models for the CI integrations' tests. ``siamese``: one tower called
    twice; ``twins``: the tower built twice (the regression they must catch)."""
    from support import zoo

    directory = tmp_path_factory.mktemp("models")
    paths = {"siamese": directory / "siamese.keras", "twins": directory / "twins.keras"}
    zoo.siamese_tower().save(paths["siamese"])
    zoo.twin_towers().save(paths["twins"])
    return paths
