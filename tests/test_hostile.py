"""Every bad input: exit 2 and one clear line; never a traceback, a hang or runaway memory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import zoo
from hostile import CASES, Case
from test_static import BLOCKER
from weighttie.cli import main

STATIC_SECONDS = 20.0
STATIC_RSS_MB = 300.0
LOAD_SECONDS = 60.0


@pytest.fixture(scope="session")
def valid_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("valid") / "siamese.keras"
    zoo.siamese_tower().save(path)
    return path


@pytest.fixture(scope="session")
def corpus(valid_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    files = {}
    for case in CASES:
        directory = tmp_path_factory.mktemp("case")
        files[case.name] = case.build(valid_archive, directory)
    return files


def _assert_outcome(case: Case, expected: tuple[int, str], code: int, out: str, err: str) -> None:
    want_code, piece = expected
    assert code == want_code, f"{case.name}: exit {code}, stderr {err!r}"
    assert "Traceback" not in err and "Traceback" not in out
    if want_code == 2:
        assert out == ""
        assert err.count("\n") == 1 and err.startswith("weighttie: error: "), err
        assert piece in err, f"{case.name}: {err!r}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_static_path(case: Case, corpus: dict[str, Path], tmp_path: Path) -> None:
    """Whole process, backends unimportable: exit code, message, time and memory."""
    argv = [sys.executable, "-c", BLOCKER, "report", str(corpus[case.name]), "-f", "json"]
    peak = tmp_path / "peak"
    env = {**os.environ, "WEIGHTTIE_PEAK_FILE": str(peak)}
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        out, err = proc.communicate(timeout=STATIC_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"{case.name}: no answer within {STATIC_SECONDS} s")
    elapsed = time.perf_counter() - start
    _assert_outcome(case, case.static, proc.returncode, out, err)
    assert elapsed < STATIC_SECONDS
    peak_mb = int(peak.read_text()) / 1024
    assert peak_mb < STATIC_RSS_MB, f"{case.name}: peak RSS {peak_mb:.0f} MB"


LOAD_PEAK = """
import sys
from weighttie.cli import main
code = main(sys.argv[1:])
with open("/proc/self/status") as status:
    print(next(line.split()[1] for line in status if line.startswith("VmHWM")), file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize("case", [c for c in CASES if "bomb" in c.name], ids=lambda c: c.name)
def test_bomb_memory_stays_bounded_with_load(case: Case, corpus: dict[str, Path]) -> None:
    """--load reads config.json through the same bounded reader before Keras sees the file."""
    argv = [sys.executable, "-c", LOAD_PEAK, "report", str(corpus[case.name]), "--load"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=LOAD_SECONDS)
    assert result.returncode == 2
    message, peak = result.stderr.strip().splitlines()
    assert message.startswith("weighttie: error: ")
    assert int(peak) / 1024 < STATIC_RSS_MB


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_load_path(case: Case, corpus: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    start = time.perf_counter()
    code = main(["report", str(corpus[case.name]), "--load", "-f", "json"])
    elapsed = time.perf_counter() - start
    out, err = capsys.readouterr()
    _assert_outcome(case, case.load, code, out, err)
    assert elapsed < LOAD_SECONDS


def test_member_names_with_dotdot_write_nothing_outside(corpus: dict[str, Path], capsys) -> None:
    path = corpus["member names with ../"]
    for argv in (["report", str(path)], ["report", str(path), "--load"]):
        assert main(argv) == 0
    capsys.readouterr()
    for candidate in (path.parent.parent / "escaped.txt", path.parent.parent / "escaped2.txt"):
        assert not candidate.exists()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_corpus_files_are_left_as_they_were(corpus: dict[str, Path], capsys) -> None:
    before = {n: (p.stat().st_size, p.stat().st_mtime_ns) for n, p in corpus.items() if p.is_file()}
    for _name, path in corpus.items():
        main(["report", str(path)])
    capsys.readouterr()
    after = {n: (p.stat().st_size, p.stat().st_mtime_ns) for n, p in corpus.items() if p.is_file()}
    assert after == before
