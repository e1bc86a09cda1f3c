"""Every bad input: exit 2 and one clear line; never a traceback, a hang or runaway memory.

The ordinary tests check outcomes and messages, under a generous hang guard. How
fast and in how much memory each file is refused depends on the machine: those
bounds are ``budget`` tests (``pytest -m budget``; CI runs them separately).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support.hostile import CASES, SECRET, Case, Valid, fifo_guard
from support.static_process import HANG_GUARD, PEAK_KIB, run_static
from weighttie.cli import main

#: Not a speed test: a reader that blocks (a FIFO, a stuck HDF5 call) is caught here.
#: Budgets (``-m budget``): the static path on every case; the two cost cases.
STATIC_SECONDS = 20.0
STATIC_RSS_MB = 300.0
COST_SECONDS = 5.0
COST_RSS_MB = 600.0
LOAD_RSS_MB = 300.0


@pytest.fixture(scope="session")
def corpus(valid: Valid, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    files = {}
    for case in CASES:
        directory = tmp_path_factory.mktemp("case")
        files[case.name] = case.build(valid, directory)
    return files


def _piece(piece: str, path: Path) -> str:
    return piece.replace("{dir}", str(path.parent))


def _our_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("weighttie: ")]


def _assert_outcome(
    case: Case, expected: tuple[int, str], path: Path, code: int, out: str, err: str
) -> None:
    """Exit code; on exit 2 weighttie's own stderr is one error line, the last, with the piece."""
    want_code, piece = expected
    assert code == want_code, f"{case.name}: exit {code}, stderr {err!r}"
    assert "Traceback" not in err and "Traceback" not in out
    if want_code == 2:
        assert out == ""
        ours = _our_lines(err)
        assert len(ours) == 1 and ours[0].startswith("weighttie: error: "), err
        assert err.splitlines()[-1] == ours[0], err
        assert _piece(piece, path) in ours[0], f"{case.name}: {ours[0]!r}"
    assert SECRET[:20].decode() not in out + err  # a host file never shows up as weights


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_static_path(case: Case, corpus: dict[str, Path], tmp_path: Path) -> None:
    """Whole process, backends unimportable: exit code and message."""
    path = corpus[case.name]
    run = run_static(path, tmp_path / "peak")
    _assert_outcome(case, case.static, path, run.code, run.out, run.err)


@pytest.mark.budget
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_static_path_time_and_memory(case: Case, corpus: dict[str, Path], tmp_path: Path) -> None:
    path = corpus[case.name]
    run = run_static(path, tmp_path / "peak")
    _assert_outcome(case, case.static, path, run.code, run.out, run.err)
    assert run.seconds < STATIC_SECONDS, f"{case.name}: {run.seconds:.1f} s"
    if run.peak_mb is None:
        pytest.skip("peak memory is not measurable here (no /proc, no resource module)")
    limit = COST_RSS_MB if case.name in COST_CASES else STATIC_RSS_MB
    assert run.peak_mb < limit, f"{case.name}: peak RSS {run.peak_mb:.0f} MB"


COST_CASES = ["640,000 trivial layers", "one layer called 470,000 times"]


@pytest.mark.budget
@pytest.mark.parametrize("name", COST_CASES)
def test_small_files_with_a_big_cost_are_refused_fast(
    name: str, corpus: dict[str, Path], tmp_path: Path
) -> None:
    """Issue 9: a 3.6 MB archive took 25 s and 1.1 GB, a 0.26 MB one 15 s and 1.2 GB."""
    path = corpus[name]
    assert path.stat().st_size < 4_000_000
    run = run_static(path, tmp_path / "peak")
    assert run.code == 2, run.err
    assert run.seconds < COST_SECONDS, f"{name}: {run.seconds:.1f} s"
    if run.peak_mb is None:
        pytest.skip("peak memory is not measurable here (no /proc, no resource module)")
    assert run.peak_mb < COST_RSS_MB, f"{name}: peak RSS {run.peak_mb:.0f} MB"


LOAD_PEAK = (
    "import sys\n"
    + PEAK_KIB
    + "from weighttie.cli import main\n"
    + "code = main(sys.argv[1:])\n"
    + "print(peak_kib(), file=sys.stderr)\n"
    + "sys.exit(code)\n"
)


@pytest.mark.budget
@pytest.mark.parametrize(
    "name",
    [
        "zip bomb",
        "zip bomb, lying header",
        "config.json of 5 million empty objects",
        *COST_CASES,
    ],
    ids=lambda n: n,
)
def test_memory_stays_bounded_with_load(name: str, corpus: dict[str, Path]) -> None:
    """--load reads the config through the same bounded reader before Keras sees the file."""
    argv = [sys.executable, "-c", LOAD_PEAK, "report", str(corpus[name]), "--load"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=HANG_GUARD)
    assert result.returncode == 2
    *_, message, peak = result.stderr.strip().splitlines()
    assert message.startswith("weighttie: error: ")
    if int(peak) < 0:
        pytest.skip("peak memory is not measurable here (no /proc, no resource module)")
    assert int(peak) / 1024 < (COST_RSS_MB if name in COST_CASES else LOAD_RSS_MB)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_load_path(case: Case, corpus: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = corpus[case.name]
    with fifo_guard(path.parent) as opened:
        code = main(["report", str(path), "--load", "-f", "json"])
    out, err = capsys.readouterr()
    assert not opened, f"a FIFO was opened: {opened}"
    _assert_outcome(case, case.load, path, code, out, err)


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
        with fifo_guard(path.parent):
            main(["report", str(path)])
    capsys.readouterr()
    after = {n: (p.stat().st_size, p.stat().st_mtime_ns) for n, p in corpus.items() if p.is_file()}
    assert after == before
