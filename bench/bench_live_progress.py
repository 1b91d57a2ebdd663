"""What live progress costs (issue 15 goal 6): a running step's counters reported about once a second.

    .venv/bin/python bench/bench_live_progress.py [--records 300000] [--rounds 5]

Two parts, CPU seconds (user + system, all threads), each against a baseline in the same process:

1. The counting: ``StepInput.batches`` (which counts the records it hands out, per batch) over N records held
   in memory in batches of 1000, against ``rebatch`` over the same buffers (what it did before counting).
2. The reporting: EXTRACT (N generated records) -> TRANSFORM (6 operators) -> TRANSFORM (none), run with
   reports every 1 s (the default), every 0.05 s (20 a second per step, a stress setting) and never
   (``PROGRESS_SECONDS`` set out of reach: the baseline), interleaved round by round so the machine's load
   hits all three alike. With an ``InMemoryStore``: the database write a report costs in the service (one
   UPDATE of one row, about a second apart) is not in these figures.
"""

from __future__ import annotations

import argparse
import statistics
import time

import _common
from bench_transform_chain import OPERATORS as CHAIN_OPERATORS

from pipelines import registry
from pipelines.adapters.base import Extractor
from pipelines.definition import parse
from runs.engine import executor as executor_module
from runs.engine.buffers import RecordBuffer, rebatch
from runs.engine.context import RunOptions, StepInput
from runs.engine.events import StepProgress
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore

OPERATORS = CHAIN_OPERATORS[:6]  # trim, uppercase, toNumber, math, round, slugify


REPEAT = 50


def cpu() -> float:
    return time.process_time()  # user + system of every thread, at a finer grain than os.times()


class Generated(Extractor):
    """``records`` records made here, in batches of 1000."""

    def batches(self):
        n = self.config["records"]
        for start in range(0, n, 1000):
            yield [{"sku": f" ab{i} ", "price": str(i % 997), "name": f"Item number {i}"}
                   for i in range(start, min(n, start + 1000))]


def counting(records: int, rounds: int) -> tuple[float, float]:
    buffers = [RecordBuffer(10**9) for _ in range(2)]
    for buf in buffers:
        for start in range(0, records // 2, 1000):
            buf.append([{"n": i} for i in range(start, start + 1000)])
    plain, counted = [], []
    for _ in range(rounds):
        started = cpu()
        for _ in range(REPEAT):
            for _ in rebatch((b for buf in buffers for b in buf.batches(1000)), 1000):
                pass
        plain.append(cpu() - started)
        started = cpu()
        for _ in range(REPEAT):
            for _ in StepInput(buffers).batches(1000):
                pass
        counted.append(cpu() - started)
    return statistics.median(plain) / REPEAT, statistics.median(counted) / REPEAT


def pipeline_run(definition, every: float) -> tuple[float, int]:
    executor_module.PROGRESS_SECONDS = every
    store = InMemoryStore()
    started = cpu()
    result = execute(definition, store, RunOptions())
    spent = cpu() - started
    assert result.status == "COMPLETED", result.error
    return spent, sum(1 for e in store.events if isinstance(e, StepProgress))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=5)
    opts = parser.parse_args()
    _common.header(f"live progress: {opts.records:,} records, median of {opts.rounds} rounds (CPU seconds)")
    print(f"load average: {_common.load_average()}")

    plain, counted = counting(opts.records, opts.rounds)
    print(f"\n1. counting: {opts.records:,} records in batches of 1000 read through")
    print(f"   rebatch (baseline)        {plain * 1000:8.2f} ms")
    print(f"   StepInput.batches         {counted * 1000:8.2f} ms   {counted / plain:5.2f}x")

    registry.extractors.register("benchGenerated", Generated, schema={"type": "object"})
    definition = parse({"version": 1, "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "benchGenerated", "config": {"records": opts.records}},
        {"key": "clean", "type": "TRANSFORM", "config": {"operators": OPERATORS}},
        {"key": "pass", "type": "TRANSFORM", "config": {"operators": []}},
    ]})
    default = executor_module.PROGRESS_SECONDS
    modes = {"never (baseline)": 1e9, f"every {default:g} s (default)": default, "every 0.05 s (stress)": 0.05}
    pipeline_run(definition, 1e9)  # warm-up
    times: dict[str, list[float]] = {m: [] for m in modes}
    reports: dict[str, list[int]] = {m: [] for m in modes}
    for _ in range(opts.rounds):
        for mode, every in modes.items():
            spent, n = pipeline_run(definition, every)
            times[mode].append(spent)
            reports[mode].append(n)
    executor_module.PROGRESS_SECONDS = default
    base = statistics.median(times["never (baseline)"])
    print(f"\n2. reporting: EXTRACT -> TRANSFORM (6 operators) -> TRANSFORM, {opts.records:,} records")
    for mode in modes:
        med = statistics.median(times[mode])
        print(f"   reports {mode:<24} {med:7.3f} s  {med / base:5.3f}x   reports per run {reports[mode]}"
              f"   all rounds {[round(t, 3) for t in times[mode]]}")
    print(f"\nload average at the end: {_common.load_average()}")


if __name__ == "__main__":
    main()
