"""Backend start-up lines stay off the user's terminal; everything else comes through.

These tests write lines in the backends' log formats to file descriptor 2 from a
real child process, so they do not depend on what the installed backend prints
on this CPU.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from support import zoo
from weighttie.backend_logs import is_backend_log_line

BACKEND_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795609712.231587    3670 port.cc:153] oneDNN custom operations are on. "
    "You may see slightly different numerical results.",
    "E0000 00:00:1732631234.567890   12345 cuda_dnn.cc:8310] Unable to register cuDNN factory",
    "W0000 00:00:1732631234.567890   12345 gpu_device.cc:2344] Cannot dlopen some GPU libraries.",
    "2024-11-26 10:12:13.123456: I tensorflow/core/util/port.cc:153] oneDNN custom operations",
    "2024-11-26 10:12:13.123456: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] Could not "
    "find cuda drivers on your machine, GPU will not be used.",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow "
    "with the appropriate compiler flags.",
]

OTHER_LINES = [
    "weighttie: error: no such file: 'x.keras'",
    "Traceback (most recent call last):",
    "I0000 is not a log line without its file:line] part",
    "usage: python examples/siamese.py OUT.keras",
]


@pytest.mark.parametrize("line", BACKEND_LINES)
def test_backend_log_lines_are_recognised(line: str) -> None:
    assert is_backend_log_line(line.encode())
    assert is_backend_log_line(line.encode() + b"\n")


@pytest.mark.parametrize("line", OTHER_LINES)
def test_other_lines_are_not(line: str) -> None:
    assert not is_backend_log_line(line.encode())


CHILD = textwrap.dedent(
    """
    import os, sys
    from weighttie import quiet_backend_logs
    backend, other = sys.argv[1].encode(), sys.argv[2]
    print("before", file=sys.stderr)
    with quiet_backend_logs():
        os.write(2, backend + b"\\n")            # C++ code writes to the descriptor itself
        print(other, file=sys.stderr)           # Python code writes through sys.stderr
        os.write(2, backend + b"\\n")
    print("after", file=sys.stderr)
    """
)


@pytest.mark.parametrize("debug", [False, True])
def test_quiet_backend_logs_holds_fd_2_and_passes_on_the_rest(debug: bool) -> None:
    env = {"PATH": "/usr/bin:/bin"} | ({"WEIGHTTIE_DEBUG": "1"} if debug else {})
    result = subprocess.run(
        [sys.executable, "-c", CHILD, BACKEND_LINES[1], "a line of the user's"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    expected = ["before", "a line of the user's", "after"]
    if debug:  # WEIGHTTIE_DEBUG=1 shows everything, in order
        expected = ["before", BACKEND_LINES[1], "a line of the user's", BACKEND_LINES[1], "after"]
    assert result.stderr.splitlines() == expected


def test_quiet_backend_logs_passes_output_on_when_the_block_raises() -> None:
    code = textwrap.dedent(
        """
        import os, sys
        from weighttie import quiet_backend_logs
        try:
            with quiet_backend_logs():
                print("kept", file=sys.stderr)
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            print("caught", file=sys.stderr)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stderr.splitlines() == ["kept", "caught"]


def test_load_errors_are_one_line_in_a_fresh_process(tmp_path: Path) -> None:
    """Through Keras, in a new process where the backend starts: what Keras cannot build is
    still one line on stderr (a warning: the static report follows)."""
    path = tmp_path / "model.keras"
    zoo.siamese_tower().save(path)
    import json
    import zipfile

    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][-1]["class_name"] = "NoSuchLayer"
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    exe = Path(sys.executable).with_name("weighttie")
    result = subprocess.run(
        [str(exe), "report", str(path), "--load"], capture_output=True, text=True
    )
    # Keras cannot build the class: one warning line, then the static report
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("weighttie: warning: --load could not build")
    assert "NoSuchLayer" in result.stderr and "this is the static report" in result.stderr
    assert result.stdout.startswith("Model ")
