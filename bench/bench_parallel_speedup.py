"""Parallel execution of I/O-bound steps: 8 steps that each wait 0.5 s, fed by one TRIGGER.

    .venv/bin/python bench/bench_parallel_speedup.py [--steps 8] [--wait 0.5] [--max 4]

The graph is TRIGGER -> 8 independent EXTRACT steps. Each extract is a bench-only extractor that waits
``--wait`` seconds (in 10 ms sleeps, checking ``ctx.cancelled`` as a real extractor waiting on I/O
would) and yields one record. It runs:

* sequential (the baseline): ``parallelExecution`` off, so one step at a time: about 8 x 0.5 = 4 s;
* parallel: ``parallelExecution.enabled`` with ``maxConcurrentSteps`` ``--max`` (4): two waves of four,
  about 1 s, so a speedup near 4;
* parallel with maxConcurrentSteps 8 (every step at once, about 0.5 s), to show the cap is what limits.

The ideal times are printed next to the measured ones; the difference is the executor's own cost.
"""

from __future__ import annotations

import argparse
import math
import time

import _common

from pipelines import registry
from pipelines.adapters.base import Extractor
from pipelines.definition import parse
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore


class BenchWait(Extractor):
    """Bench-only: waits ``seconds`` as if on I/O, checking for cancellation, then yields one record."""

    def batches(self):
        deadline = time.monotonic() + float(self.config["seconds"])
        while (left := deadline - time.monotonic()) > 0:
            if self.ctx.cancelled.is_set():
                return
            time.sleep(min(0.01, left))
        yield [{"step": self.ctx.step_key}]


registry.extractors.register("benchWait", BenchWait, schema={"type": "object"})


def graph(steps: int, wait: float, max_concurrent: int | None):
    d = {
        "version": 1,
        "steps": [{"key": "start", "type": "TRIGGER", "config": {}}] + [
            {"key": f"io{i}", "type": "EXTRACT", "adapterCode": "benchWait", "config": {"seconds": wait}}
            for i in range(steps)
        ],
        "edges": [{"from": "start", "to": f"io{i}"} for i in range(steps)],
    }
    if max_concurrent is not None:
        d["context"] = {"parallelExecution": {"enabled": True, "maxConcurrentSteps": max_concurrent}}
    return parse(d)


def run(definition) -> float:
    store = InMemoryStore()
    started = time.perf_counter()
    result = execute(definition, store, RunOptions())
    elapsed = time.perf_counter() - started
    assert result.status == "COMPLETED", result.error
    assert all(e.status == "COMPLETED" for e in store.finished().values())
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--wait", type=float, default=0.5)
    parser.add_argument("--max", type=int, default=4)
    opts = parser.parse_args()
    n, wait, cap = opts.steps, opts.wait, opts.max

    _common.header(f"parallel speedup: TRIGGER -> {n} steps each waiting {wait} s on I/O")
    print(f"load average: {_common.load_average()}")
    run(graph(2, 0.01, 2))  # warm-up: imports, first thread

    sequential = run(graph(n, wait, None))
    parallel = run(graph(n, wait, cap))
    everything = run(graph(n, wait, n))

    print()
    print(f"{'':<42}{'seconds':>9}{'ideal':>8}{'speedup':>9}")
    print(f"{'sequential (parallelExecution off)':<42}{sequential:9.3f}{n * wait:8.2f}{1:9.2f}")
    print(f"{f'parallel, maxConcurrentSteps {cap}':<42}{parallel:9.3f}{math.ceil(n / cap) * wait:8.2f}"
          f"{sequential / parallel:9.2f}")
    print(f"{f'parallel, maxConcurrentSteps {n}':<42}{everything:9.3f}{wait:8.2f}{sequential / everything:9.2f}")
    print()
    print(f"speedup with maxConcurrentSteps {cap}: {sequential / parallel:.2f}x "
          f"(ideal {n / math.ceil(n / cap):.2f}x); executor overhead over ideal: "
          f"sequential {(sequential - n * wait) * 1000:.0f} ms, parallel {(parallel - math.ceil(n / cap) * wait) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
