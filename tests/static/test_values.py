"""weighttie.static.values: variables' values streamed from a weights file, under a time budget."""

from __future__ import annotations

import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from weighttie.errors import FileFormatError
from weighttie.static import values
from weighttie.static.values import Values


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as h5:
        h5["a"] = np.arange(12, dtype="float32").reshape(3, 4)
        h5["b"] = np.arange(12, dtype="float32").reshape(3, 4)
        h5["c"] = np.ones((3, 4), dtype="float32")
    return path


def test_values_stream_the_stored_bytes_and_compare_them(weights: Path) -> None:
    with h5py.File(weights, "r") as h5:
        read = Values(h5, {}, "w.h5")
        assert b"".join(read.chunks("a")) == h5["a"][()].tobytes()
        assert read.equal("a", "b")
        assert not read.equal("a", "c")


def test_the_clock_starts_at_the_first_read(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Regression: the budget counted from the file's opening, so a 20,000-layer model
    # whose walk took longer than the base budget was called damaged at its first read.
    monkeypatch.setattr(values, "VALUES_SECONDS", 0.5)
    with h5py.File(weights, "r") as h5:
        read = Values(h5, {}, "w.h5")
        time.sleep(1.0)  # the walk and the build before findings read anything
        assert read.equal("a", "b")


def test_reads_past_the_budget_end_in_a_damaged_file_error(
    weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(values, "VALUES_SECONDS", -1.0)  # every read is past it
    with h5py.File(weights, "r") as h5:
        read = Values(h5, {}, "model.weights.h5")
        with pytest.raises(FileFormatError, match=r"model.weights.h5 is damaged: reading .* took"):
            read.equal("a", "b")
