"""weighttie's command line run in-process by the tests: one helper, not one per file."""

from __future__ import annotations

import pytest

from weighttie.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``weighttie *argv`` in this process: its exit code, standard output and error."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
