"""A status line on a terminal while slow work runs, and nothing when stderr is not one."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from support import zoo
from weighttie.progress import status


class Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_a_terminal_sees_the_status_then_a_cleared_line(monkeypatch) -> None:
    monkeypatch.setenv("WEIGHTTIE_PROGRESS_DELAY", "0")
    out = Terminal()
    shown = threading.Event()
    original = out.write

    def write(text: str) -> int:
        if "reading m.keras" in text:
            shown.set()
        return original(text)

    out.write = write  # type: ignore[method-assign]
    with status("reading m.keras", out):
        assert shown.wait(10)  # the line appears while the block runs, whatever the clock
    text = out.getvalue()
    assert text.startswith("\r\x1b[Kweighttie: reading m.keras … ")
    assert text.endswith("\r\x1b[K")  # the line is cleared: the output after it is clean


def test_nothing_is_written_when_stderr_is_not_a_terminal(monkeypatch) -> None:
    monkeypatch.setenv("WEIGHTTIE_PROGRESS_DELAY", "0")
    out = io.StringIO()
    with status("reading m.keras", out):
        pass
    assert out.getvalue() == ""


def test_a_fast_step_shows_nothing_even_on_a_terminal(monkeypatch) -> None:
    monkeypatch.setenv("WEIGHTTIE_PROGRESS_DELAY", "3600")
    out = Terminal()
    with status("reading m.keras", out):
        pass
    assert out.getvalue() == ""


@pytest.mark.skipif(sys.platform != "linux", reason="a pseudo-terminal, as on Linux")
def test_the_command_line_shows_loading_on_a_terminal_only(tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    zoo.siamese_tower().save(path)
    env = {**os.environ, "WEIGHTTIE_PROGRESS_DELAY": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "weighttie", "report", str(path), "--load"]
    leader, follower = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:  # read while the command runs: a closed terminal drops its buffer
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        result = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=follower)
    finally:
        os.close(follower)
        reader.join(10)
        os.close(leader)
    terminal = b"".join(chunks).decode("utf-8", "replace")
    assert result.returncode == 0
    assert f"weighttie: building {path} through Keras" in terminal
    piped = subprocess.run(command, env=env, capture_output=True, text=True)
    assert piped.returncode == 0 and "building" not in piped.stderr
    assert piped.stdout == result.stdout.decode()
