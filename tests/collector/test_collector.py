"""weighttie.collector: the cyclic garbage collector paused while a report is built, and put
back as the caller had it (also after an error)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

import weighttie
from support import zoo
from weighttie.collector import collector_paused
from weighttie.errors import FileFormatError


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


@pytest.mark.usefixtures("collector_on")
def test_paused_within_and_enabled_after() -> None:
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # nested: the inner block does not turn it back on
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


@pytest.mark.usefixtures("collector_on")
def test_a_program_that_turned_it_off_keeps_it_off() -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


@pytest.mark.usefixtures("collector_on")
def test_reports_leave_the_collector_as_they_found_it(tmp_path: Path) -> None:
    model = zoo.siamese_tower()
    weighttie.analyze(model).to_json()
    assert gc.isenabled()
    path = tmp_path / "m.keras"
    model.save(path)
    assert weighttie.read_report(path).params.unique == model.count_params()
    assert gc.isenabled()
    damaged = tmp_path / "damaged.keras"
    damaged.write_bytes(path.read_bytes()[:200])
    with pytest.raises(FileFormatError):
        weighttie.read_report(damaged)
    assert gc.isenabled()
