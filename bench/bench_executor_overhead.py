"""What the executor costs per step: 200 no-op steps through ``execute`` with an InMemoryStore.

    .venv/bin/python bench/bench_executor_overhead.py [--steps 200] [--rounds 5] [--profile]

Graphs (every step a TRANSFORM with ``operators: []`` and no records, so a step does nothing but be
scheduled, started in its thread, reported, and recorded):

* chain: ``--steps`` TRANSFORM steps in list order (no edges: each feeds the next).
* fan-out: one TRIGGER feeding ``--steps - 1`` TRANSFORM steps, parallel execution off (one at a time).
* fan-out, parallel: the same with ``parallelExecution`` enabled, maxConcurrentSteps 4.

Baseline: calling ``--steps`` no-op Python functions. The ratio against it is printed, but what matters
is the absolute per-step time: a bare call is ~50 ns, so any scheduler that starts a thread per step is
thousands of times that. As a second reference the script starts and joins one thread per step, the
mechanism the executor uses, which bounds what a thread-per-step design can reach.

Each figure is the median of ``--rounds`` runs after a warm-up run, with min and max: on a shared 2-CPU
machine a thread's wake-up now and then waits for the other process, and single runs vary a lot. A
scaling section runs the chain at several sizes and counts the scheduler's readiness checks: a per-step
time that grows with the number of steps means the scheduler does work proportional to the graph size
on every step. ``--profile`` adds a cProfile of the
executor's main thread for the 200-step chain.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import _common

from pipelines.definition import parse
from runs.engine import executor as executor_module
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore


def chain_graph(n: int) -> dict:
    return {"version": 1, "steps": [
        {"key": f"t{i}", "type": "TRANSFORM", "config": {"operators": []}} for i in range(n)
    ]}


def fan_out_graph(n: int, parallel: bool) -> dict:
    steps = [{"key": "start", "type": "TRIGGER", "config": {}}]
    steps += [{"key": f"t{i}", "type": "TRANSFORM", "config": {"operators": []}} for i in range(n - 1)]
    d = {"version": 1, "steps": steps, "edges": [{"from": "start", "to": f"t{i}"} for i in range(n - 1)]}
    if parallel:
        d["context"] = {"parallelExecution": {"enabled": True, "maxConcurrentSteps": 4}}
    return d


def run_once(definition) -> float:
    store = InMemoryStore()
    started = time.perf_counter()
    result = execute(definition, store, RunOptions())
    elapsed = time.perf_counter() - started
    assert result.status == "COMPLETED", result.error
    assert len(store.finished()) == len(definition.steps)
    return elapsed


def measure(definition, rounds: int) -> tuple[float, float, float]:
    run_once(definition)  # warm-up
    times = [run_once(definition) for _ in range(rounds)]
    return statistics.median(times), min(times), max(times)


def readiness_checks(definition) -> int:
    """How many times the scheduler asks whether a step is ready during one run (counted in a separate,
    untimed run by wrapping ``_Execution._readiness``; put back afterwards)."""
    original = executor_module._Execution._readiness
    calls = 0

    def counting(self, key):
        nonlocal calls
        calls += 1
        return original(self, key)

    executor_module._Execution._readiness = counting
    try:
        run_once(definition)
    finally:
        executor_module._Execution._readiness = original
    return calls


def noop() -> None:
    pass


def bare_calls(n: int, rounds: int) -> tuple[float, float, float]:
    fns = [noop] * n
    times = []
    for _ in range(rounds + 1):
        started = time.perf_counter()
        for fn in fns:
            fn()
        times.append(time.perf_counter() - started)
    times = times[1:]
    return statistics.median(times), min(times), max(times)


def thread_per_call(n: int, rounds: int) -> tuple[float, float, float]:
    times = []
    for _ in range(rounds + 1):
        started = time.perf_counter()
        for _ in range(n):
            t = threading.Thread(target=noop, daemon=True)
            t.start()
            t.join()
        times.append(time.perf_counter() - started)
    times = times[1:]
    return statistics.median(times), min(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--profile", action="store_true")
    opts = parser.parse_args()
    n, rounds = opts.steps, opts.rounds

    _common.header(f"executor overhead: {n} no-op steps, median of {rounds} runs [min, max]")
    print(f"load average: {_common.load_average()}")
    print()

    base = bare_calls(n, rounds)
    rows = [
        (f"baseline: {n} no-op function calls", *base),
        (f"reference: {n} x (start a thread, join it)", *thread_per_call(n, rounds)),
    ]
    graphs = [
        (f"executor: chain of {n} TRANSFORM steps", parse(chain_graph(n))),
        (f"executor: TRIGGER -> {n - 1} steps, sequential", parse(fan_out_graph(n, False))),
        (f"executor: TRIGGER -> {n - 1} steps, parallel (max 4)", parse(fan_out_graph(n, True))),
    ]
    for label, definition in graphs:
        rows.append((label, *measure(definition, rounds)))

    print(f"{'':<50}{'total ms':>26}{'per step ms':>12}{'x bare call':>13}")
    for label, med, low, high in rows:
        print(f"{label:<50}{med * 1000:8.2f} [{low * 1000:6.2f}, {high * 1000:6.1f}]{med * 1000 / n:12.4f}"
              f"{med / base[0]:13,.0f}")
    print()
    print("the per-step ms is the figure that matters: the ratio to a bare call (~tens of ns) only says "
          "that a step is not a function call")
    print()

    print("scaling (chain, median of 7): per-step time and readiness checks vs graph size")
    for size in (25, 50, 100, 200, 400, 800):
        definition = parse(chain_graph(size))
        med, _, _ = measure(definition, 7)
        checks = readiness_checks(definition)
        print(f"  {size:>4} steps: total {med * 1000:8.1f} ms, per step {med * 1000 / size:6.3f} ms, "
              f"_readiness called {checks:>7,} times ({checks / size:5.0f} per step)")
    print(f"load average at the end: {_common.load_average()}")

    if opts.profile:
        import cProfile
        import pstats

        definition = parse(chain_graph(n))
        run_once(definition)
        profiler = cProfile.Profile()
        profiler.enable()
        run_once(definition)
        profiler.disable()
        print()
        print(f"profile of the executor's main thread, chain of {n} steps:")
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
