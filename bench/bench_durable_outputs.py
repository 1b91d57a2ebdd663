"""What keeping step outputs durable costs: 1,000,000 records through 3 steps, with and without.

    .venv/bin/python bench/bench_durable_outputs.py [--records 1000000] [--rounds 3]

The pipeline: EXTRACT (generated records, 5 fields) -> TRANSFORM (trim, uppercase, toNumber, set) -> LOAD
(a loader that counts and drops). With durability on (the default, ``context.checkpointing.enabled``), the
outputs of the extract and of the transform (the ones a later step reads) are written to Django storage
(FileSystemStorage in a temporary folder, as with the default settings) by ``runs.resume.persist`` when
each step completes: 2,000,000 records as NDJSON. Without, they stay in the executor's buffers (which
spill to a temporary file past ``DATAHUB_SPILL_RECORDS``, 50,000, in both cases).

Both variants run in the same process, alternating (off, on, off, on, ...), after a warm-up of each; the
medians of wall time and of CPU time (user + system, all threads) are compared: on a shared machine the
CPU time is the steadier figure. Prints the ratios on/off; the goal is under 1.15.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

import _common

MEDIA = tempfile.mkdtemp(prefix="datahub-bench-durable-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "datahub_project.settings")
os.environ["DATAHUB_MEDIA_ROOT"] = MEDIA

import django  # noqa: E402

django.setup()

from pipelines import registry  # noqa: E402
from pipelines.adapters.base import Extractor, Writer, WriteResult  # noqa: E402
from pipelines.definition import parse  # noqa: E402
from runs import resume  # noqa: E402
from runs.engine.context import RunOptions  # noqa: E402
from runs.engine.executor import execute  # noqa: E402
from runs.engine.store import InMemoryStore  # noqa: E402


class Generated(Extractor):
    def batches(self):
        n = int(self.config["count"])
        for start in range(0, n, self.ctx.batch_size):
            yield [{"id": i, "sku": f"  sku-{i}  ", "name": "Some Product Name", "price": "12.50", "qty": i % 7}
                   for i in range(start, min(start + self.ctx.batch_size, n))]


class Drop(Writer):
    def write(self, batch):
        return WriteResult(written=len(batch), failed=[])


if "benchGenerated" not in registry.extractors:
    registry.extractors.register("benchGenerated", Generated, schema={"type": "object"})
if "benchDrop" not in registry.loaders:
    registry.loaders.register("benchDrop", Drop, schema={"type": "object"})


def definition(n: int):
    return parse({"version": 1, "steps": [
        {"key": "extract", "type": "EXTRACT", "adapterCode": "benchGenerated", "config": {"count": n}},
        {"key": "transform", "type": "TRANSFORM", "config": {"operators": [
            {"op": "trim", "args": {"path": "sku"}}, {"op": "uppercase", "args": {"path": "sku"}},
            {"op": "toNumber", "args": {"source": "price"}}, {"op": "set", "args": {"path": "source", "value": "bench"}},
        ]}},
        {"key": "load", "type": "LOAD", "adapterCode": "benchDrop", "config": {}},
    ]})


CPU: dict[bool, list[float]] = {False: [], True: []}


def run_once(n: int, durable: bool, run_id: int) -> tuple[float, int]:
    persist = (lambda key, outputs: resume.persist(run_id, key, outputs)) if durable else None
    store = InMemoryStore()
    began, cpu = time.perf_counter(), os.times()
    result = execute(definition(n), store, RunOptions(persist=persist))
    took, after = time.perf_counter() - began, os.times()
    CPU[durable].append(after.user + after.system - cpu.user - cpu.system)
    assert result.status == "COMPLETED", result.error
    assert store.finished()["load"].counts.records_in == n
    written = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(MEDIA) for f in files)
    shutil.rmtree(os.path.join(MEDIA, "datahub"), ignore_errors=True)
    return took, written


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    _common.header(f"durable step outputs: {args.records:,} records, extract -> transform -> load")
    print("load average before:", _common.load_average())
    run_once(args.records // 10, False, 0)
    run_once(args.records // 10, True, 0)
    CPU[False].clear()
    CPU[True].clear()
    off, on, written = [], [], 0
    for r in range(args.rounds):
        off.append(run_once(args.records, False, r)[0])
        took, written = run_once(args.records, True, r)
        on.append(took)
        print(f"round {r + 1}: without {off[-1]:.2f} s, with {on[-1]:.2f} s")
    base, durable = statistics.median(off), statistics.median(on)
    print()
    print(f"without durable outputs (baseline): median {base:.2f} s  (min {min(off):.2f}, max {max(off):.2f})")
    print(f"with durable outputs:               median {durable:.2f} s  (min {min(on):.2f}, max {max(on):.2f}); "
          f"{written / 2**20:.0f} MiB written per run")
    cpu_off, cpu_on = statistics.median(CPU[False]), statistics.median(CPU[True])
    print(f"CPU time (user + system), medians: without {cpu_off:.2f} s, with {cpu_on:.2f} s")
    print(f"ratio with/without: wall {durable / base:.3f}, CPU {cpu_on / cpu_off:.3f}  (goal: under 1.15)")
    print("load average after:", _common.load_average())
    shutil.rmtree(MEDIA, ignore_errors=True)


if __name__ == "__main__":
    main()
