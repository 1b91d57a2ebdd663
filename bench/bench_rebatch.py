"""Reading back a whole output written as ONE batch (a join, an aggregate), in batches of 1000.

    .venv/bin/python bench/bench_rebatch.py [--sizes 100000,250000,500000,1000000]

For each size, the records ``{"id", "sku", "qty"}`` are appended to a ``RecordBuffer`` as one batch and read
back with ``batches(1000)``: spilled (past ``DEFAULT_SPILL_RECORDS``, the default) and held in memory (a
spill threshold above the size), and through ``StepInput.batches`` (what a step reads). The baselines, in
the same run: for the spilled buffer, ``orjson.loads`` of the same bytes as one array plus slicing it
(the least a reader of that file can do); for the in-memory paths, slicing the list
``records[i:i + 1000]``. Times are CPU seconds of this process (the least of three runs), so other work
on a shared machine does not count. Linear code keeps the ratio to its baseline flat as the size grows.
"""

from __future__ import annotations

import argparse
import time

import _common
import orjson

from runs.engine.buffers import RecordBuffer
from runs.engine.context import StepInput


def cpu(fn, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def drain(batches) -> int:
    return sum(len(b) for b in batches)


def measure(n: int) -> None:
    records = [{"id": i, "sku": f"SKU-{i % 150_000}", "qty": i % 13} for i in range(n)]
    spilled = RecordBuffer()
    spilled.append(records)
    held = RecordBuffer(spill_records=n + 1)
    held.append(records)
    raw = orjson.dumps(records)

    def file_floor():
        loaded = orjson.loads(raw)
        return drain(loaded[i:i + 1000] for i in range(0, n, 1000))

    t_spilled = cpu(lambda: drain(spilled.batches(1000)))
    t_file_floor = cpu(file_floor)
    t_held = cpu(lambda: drain(held.batches(1000)))
    t_slice = cpu(lambda: drain(records[i:i + 1000] for i in range(0, n, 1000)))
    t_input = cpu(lambda: drain(StepInput([held]).batches(1000)))
    floor = max(t_slice, 1e-4)
    print(f"{n:9,} | {t_spilled:8.3f} {t_file_floor:8.3f} {t_spilled / t_file_floor:5.2f}x | {t_held:8.4f} "
          f"{t_slice:8.4f} {t_held / floor:5.1f}x | {t_input:9.4f} {t_input / floor:5.1f}x", flush=True)
    spilled.close()
    held.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,250000,500000,1000000")
    args = parser.parse_args()
    _common.header("RecordBuffer / StepInput: one large batch read back in batches of 1000")
    print(f"{'records':>9} | {'spilled':>8} {'baseline':>8} {'ratio':>6} | {'memory':>8} {'slicing':>8} "
          f"{'ratio':>6} | {'StepInput':>9} {'ratio':>6}")
    for n in (int(x) for x in args.sizes.split(",")):
        measure(n)
    print(f"load average: {_common.load_average()}")


if __name__ == "__main__":
    main()
