"""Shared helpers of the engine benchmarks (not a benchmark itself; not collected by pytest).

Importing this module puts the project root on ``sys.path`` and loads the built-in operators, adapters
and step handlers, as the engine tests do, so a benchmark runs as ``.venv/bin/python bench/<name>.py``.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from pipelines.plugins import load_plugins  # noqa: E402

load_plugins(["runs.engine.handlers"], entry_point_group=None)


def step_thread_cpu(into: dict[str, float], wrapper=None):
    """A ``RunOptions.thread_wrapper`` that records each step thread's own CPU seconds (``time.thread_time``)
    in ``into`` by step key: what a step costs, wherever its wall time went. ``wrapper``: another
    thread wrapper to run it inside."""

    def wrap(body):
        def timed():
            start = time.thread_time()
            try:
                body()
            finally:
                into[threading.current_thread().name.removeprefix("datahub-step-")] = time.thread_time() - start

        return wrapper(timed) if wrapper else timed

    return wrap


def peak_rss_mb() -> float:
    """The process's peak resident set size so far, in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """The resident set size now, in MiB (Linux ``/proc/self/statm``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def _cmd(*args: str) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> str:
    """One line naming the machine: CPUs, CPU model, memory, Python, date (UTC), git commit."""
    model = ""
    for line in _cmd("lscpu").splitlines():
        if line.startswith("Model name"):
            model = line.split(":", 1)[1].strip()
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = f"{int(line.split()[1]) / 2**20:.1f} GiB RAM"
    except OSError:
        pass
    commit = _cmd("git", "-C", ROOT, "rev-parse", "--short", "HEAD")
    dirty = " (+ uncommitted changes)" if _cmd("git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no") else ""
    return (
        f"nproc {os.cpu_count()}, {model or platform.processor() or '?'}, {mem or '?'}, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"commit {commit or '?'}{dirty}"
    )


MALLOC_ENV = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_ARENA_MAX")


def header(title: str) -> None:
    print(title)
    print("machine:", machine())
    tuned = [f"{k}={os.environ[k]}" for k in MALLOC_ENV if k in os.environ]
    print("glibc malloc:", " ".join(tuned) if tuned else "defaults (no MALLOC_* environment variables)")
    print()


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine skews wall-clock figures."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"
