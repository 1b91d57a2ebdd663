"""Parallel execution: I/O-bound steps (threads) and CPU-bound branches (worker processes).

    .venv/bin/python bench/bench_parallel_speedup.py [--steps 8] [--wait 0.5] [--max 4]
        [--branches 4] [--records 200000] [--cpu-max 2] [--rounds 2] [--only io|cpu]

**CPU-bound branches** (issue 15, goal 8): TRIGGER -> ``--branches`` (4) independent branches, each an
EXTRACT of ``--records`` (200,000) generated records (bench_transform_chain's ``benchRecords``) -> a
TRANSFORM of bench_transform_chain's 10 operators. Three modes, interleaved over ``--rounds`` rounds:

* sequential (the baseline): parallelExecution off;
* threads: parallelExecution with maxConcurrentSteps ``--cpu-max`` (2) and ``processes: "off"``: the
  branches share one interpreter lock;
* processes: the same with ``processes: "auto"`` (the default): each TRANSFORM runs in a worker process
  (runs.engine.processes).

Printed per mode: the least wall time, its ratio against sequential, CPU seconds (this process plus what
the worker processes report) and CPU microseconds per record (records through a TRANSFORM), and the load
average before and after. Before timing, one run per mode (after a warm-up that starts the fork server) is
checked to give every branch the same records, in order, as sequential (sha256 of the output).

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
import hashlib
import math
import os
import time

import _common
from bench_transform_chain import OPERATORS  # registers benchRecords too

from pipelines import registry
from pipelines.adapters.base import Extractor
from pipelines.definition import parse
from runs.engine import processes
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


# --- CPU-bound branches ------------------------------------------------------------------------------

CPU_MODES = ("sequential", "threads", "processes")


def cpu_graph(branches: int, records: int, mode: str, cap: int):
    steps = [{"key": "start", "type": "TRIGGER", "config": {}}]
    edges = []
    for b in range(branches):
        steps.append({"key": f"gen{b}", "type": "EXTRACT", "adapterCode": "benchRecords", "config": {"count": records}})
        steps.append({"key": f"chain{b}", "type": "TRANSFORM", "config": {"operators": OPERATORS}})
        edges += [{"from": "start", "to": f"gen{b}"}, {"from": f"gen{b}", "to": f"chain{b}"}]
    d = {"version": 1, "steps": steps, "edges": edges}
    if mode != "sequential":
        d["context"] = {"parallelExecution": {"enabled": True, "maxConcurrentSteps": cap,
                                              "processes": "auto" if mode == "processes" else "off"}}
    return parse(d)


def cpu_run(definition, *, keep: bool = False):
    """(wall s, (CPU s of this process, CPU s of its worker processes), result, store)."""
    store = InMemoryStore()
    cpu0, child0 = sum(os.times()[:2]), processes.child_cpu_seconds()
    started = time.perf_counter()
    result = execute(definition, store, RunOptions(keep_outputs=keep))
    wall = time.perf_counter() - started
    cpu = (sum(os.times()[:2]) - cpu0, processes.child_cpu_seconds() - child0)
    assert result.status == "COMPLETED", result.error
    return wall, cpu, result, store


def digest(result, key: str) -> str:
    h = hashlib.sha256()
    for batch in result.outputs[key][None].batches():
        for record in batch:
            h.update(repr(sorted(record.items())).encode())
    return h.hexdigest()


def cpu_bench(branches: int, records: int, cap: int, rounds: int) -> None:
    print(f"CPU-bound: TRIGGER -> {branches} x (EXTRACT {records:,} generated records -> TRANSFORM of "
          f"{len(OPERATORS)} operators); parallel modes with maxConcurrentSteps {cap}; {processes.cpu_count()} CPUs")
    cpu_run(cpu_graph(2, 60_000, "processes", 2))  # warm-up: imports, the fork server
    digests = {}
    for mode in CPU_MODES:
        _, _, result, store = cpu_run(cpu_graph(branches, records, mode, cap), keep=True)
        digests[mode] = [digest(result, f"chain{b}") for b in range(branches)]
        result.close()
    assert digests["threads"] == digests["sequential"] == digests["processes"], "the modes differ in their output"
    print(f"same records in every branch, in order, in all three modes (sha256 of branch 0: {digests['sequential'][0][:16]})")
    print(f"load average before: {_common.load_average()}")
    walls = {m: [] for m in CPU_MODES}
    cpus = {m: [] for m in CPU_MODES}
    for r in range(rounds):
        order = CPU_MODES if r % 2 == 0 else tuple(reversed(CPU_MODES))
        for mode in order:
            wall, (own, workers), result, _ = cpu_run(cpu_graph(branches, records, mode, cap))
            walls[mode].append(wall)
            cpus[mode].append((own + workers, own, workers))
            print(f"  round {r + 1} {mode:<11} wall {wall:7.2f} s  CPU {own + workers:7.2f} s (this process "
                  f"{own:.2f}, worker processes {workers:.2f})  (load {_common.load_average()})")
    print(f"load average after: {_common.load_average()}")
    base = min(walls["sequential"])
    through = branches * records
    print()
    print(f"{'mode':<14}{'wall s (least)':>16}{'speedup':>9}{'CPU s (least)':>15}{'CPU us/record':>15}"
          f"{'of it workers':>15}")
    for mode in CPU_MODES:
        total, _, workers = min(cpus[mode])
        print(f"{mode:<14}{min(walls[mode]):16.2f}{base / min(walls[mode]):9.2f}{total:15.2f}"
              f"{total / through * 1e6:15.2f}{workers / through * 1e6:15.2f}")
    ratio = min(cpus["processes"])[0] / min(cpus["sequential"])[0]
    print(f"CPU per record, processes / sequential: {ratio:.2f}x (the speedup on 2 free CPUs is at most about "
          f"2 / {ratio:.2f} = {2 / ratio:.2f}x, less the parent's own share)")
    print()
    print(f"speedup with processes: {base / min(walls['processes']):.2f}x (threads: {base / min(walls['threads']):.2f}x;"
          f" ideal on {processes.cpu_count()} free CPUs: {min(processes.cpu_count(), cap, branches):.0f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--wait", type=float, default=0.5)
    parser.add_argument("--max", type=int, default=4)
    parser.add_argument("--branches", type=int, default=4)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--cpu-max", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", choices=("io", "cpu"))
    opts = parser.parse_args()
    n, wait, cap = opts.steps, opts.wait, opts.max

    if opts.only != "io":
        _common.header("parallel speedup, CPU-bound branches")
        cpu_bench(opts.branches, opts.records, opts.cpu_max, opts.rounds)
        print()
    if opts.only == "cpu":
        return
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
