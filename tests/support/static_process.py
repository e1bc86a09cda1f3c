"""weighttie's static command in a child process where no backend can be imported, with
the child's own peak memory: what the hostile-file and no-backend tests run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.hostile import fifo_guard

__all__ = ["BLOCKER", "HANG_GUARD", "PEAK_KIB", "Run", "run_static"]

#: Seconds a child may take before a test calls it hung.
HANG_GUARD = 120.0

#: Source of ``peak_kib()`` for child processes: the process's own peak resident
#: memory in KiB, or -1 where it cannot be measured. VmHWM first: ``ru_maxrss``
#: survives ``exec`` on Linux, so a child forked from a large pytest would report
#: the parent's size.
PEAK_KIB = textwrap.dedent(
    """
    def peak_kib():
        try:
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            pass
        try:
            import resource
        except ImportError:
            return -1
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak // 1024 if sys.platform == "darwin" else peak  # macOS counts bytes
    """
)

BLOCKER = (
    "import os, sys\n"
    + PEAK_KIB
    + textwrap.dedent(
        """
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"tensorflow", "jax", "torch", "keras"}:
                    raise ImportError(f"blocked: {name}")
        sys.meta_path.insert(0, Block())
        from weighttie.cli import main
        code = main(sys.argv[1:])
        assert not {"tensorflow", "jax", "torch", "keras"} & set(sys.modules), sorted(sys.modules)
        peak_file = os.environ.get("WEIGHTTIE_PEAK_FILE")
        if peak_file:
            with open(peak_file, "w") as out:
                out.write(str(peak_kib()))
        sys.exit(code)
        """
    )
)


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str
    seconds: float
    peak_mb: float | None  # None: not measurable on this platform


def run_static(path: Path, peak_file: Path, *args: str, watch: Path | None = None) -> Run:
    """``weighttie report PATH -f json ARGS`` under :data:`BLOCKER`, within
    :data:`HANG_GUARD`; no FIFO in ``watch`` (default: the folder holding ``path``) may
    be opened."""
    argv = [sys.executable, "-c", BLOCKER, "report", str(path), "-f", "json", *args]
    env = {**os.environ, "WEIGHTTIE_PEAK_FILE": str(peak_file)}
    with fifo_guard(path.parent if watch is None else watch) as opened:
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        try:
            out, err = proc.communicate(timeout=HANG_GUARD)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail(f"{path}: no answer within {HANG_GUARD:.0f} s")
        seconds = time.perf_counter() - start
    assert not opened, f"a FIFO was opened: {opened}"
    peak = int(peak_file.read_text())
    return Run(proc.returncode, out, err, seconds, None if peak < 0 else peak / 1024)
