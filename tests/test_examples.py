"""The bundled examples run and say what the README says they say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from support import REPO
from weighttie.backend_logs import is_backend_log_line

EXAMPLES = REPO / "examples"


def run(script: str, out: Path) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), str(out)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    # Whatever the backend prints on this CPU stays off the terminal.
    leaked = [line for line in result.stderr.splitlines() if is_backend_log_line(line.encode())]
    assert leaked == []
    return result.stdout


def test_siamese_example_builds_a_shared_tower(tmp_path: Path) -> None:
    from weighttie.static import read_report

    out = run("siamese.py", tmp_path / "siamese.keras")
    assert out.startswith("wrote ") and "86,785 parameters" in out
    report = read_report(tmp_path / "siamese.keras")
    (group,) = report.groups
    assert (group.kind.value, group.layers, group.params) == ("shared-model", ("tower",), 86_720)


def test_tied_example_resumes_tied(tmp_path: Path) -> None:
    out = run("tied_convs.py", tmp_path / "tied.keras")
    assert "still tied, optimizer state restored" in out
    assert "G1 tied" in out
    assert re.search(r"^valid +same +bias, kernel +bound$", out, re.MULTILINE)  # the tie row


def test_examples_refuse_bad_usage() -> None:
    for script in ("siamese.py", "tied_convs.py"):
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / script)], capture_output=True, text=True
        )
        assert result.returncode == 2
        assert result.stderr.splitlines()[-1].startswith(f"usage: python examples/{script}")


def test_readme_sample_is_what_make_demo_prints(tmp_path: Path) -> None:
    """The README's first screen shows `make demo`'s report, byte for byte."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("```text\nModel 'siamese'") + len("```text\n")
    sample = readme[start : readme.index("```", start)]
    (tmp_path / "build").mkdir()
    run("siamese.py", tmp_path / "build" / "siamese.keras")
    exe = Path(sys.executable).with_name("weighttie")
    result = subprocess.run(
        [str(exe), "report", "build/siamese.keras"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    assert result.stdout == sample
