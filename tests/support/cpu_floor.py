"""The floor a whole-process CPU budget is measured against, in the same run.

A budget in seconds holds on one machine and fails on a slower one. What no static
reader can avoid is starting Python and importing numpy and h5py; budgets are a
multiple of that floor, measured here, beside the run they bound (median of three).
On the reference machine the floor is about 0.2 s, so ``FLOOR_TIMES = 5`` is the
"under a second" the budgets were set as.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys

#: A whole-process budget: this many floors (about 1 s where the floor is 0.2 s).
FLOOR_TIMES = 5


def child_cpu(argv: list[str], env: dict[str, str] | None = None, timeout: float = 60) -> float:
    """CPU seconds (user + system) a child process takes to run ``argv``; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert done.returncode == 0, done.stderr
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def floor_cpu() -> float:
    """Median CPU seconds of ``python -c "import numpy, h5py"`` on this machine, now."""
    return statistics.median(
        child_cpu([sys.executable, "-c", "import numpy, h5py"]) for _ in range(3)
    )
