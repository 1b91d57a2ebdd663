"""Streaming between steps (issue 15 goal 2): pipelines against their slowest step and a hand-written script.

    .venv/bin/python bench/bench_streaming_pipeline.py [--rows 1000000] [--linear-records 200000]
                                                       [--io-ms 10] [--only csv|linear]

1. **CSV pipeline** (each run in a fresh process, figures from ``os.times`` and ``perf_counter``):
   EXTRACT ``csv`` (rows.csv: id, sku, name, price, qty) -> TRANSFORM (trim sku, uppercase sku, toNumber
   price) -> EXPORT ``csvExport``, once with streaming (the default) and once with
   ``context.streaming.enabled: false`` (every step waits for its input to end, the spill round trip
   between steps included), each step thread's own CPU (``time.thread_time``) printed beside its wall
   time. Baseline: a hand-written ``csv.DictReader`` -> the same three changes -> ``csv.DictWriter``
   script. The script checks that all three files are the same bytes.
2. **Linear extract -> transform -> export** whose ends wait on I/O as a paged API or a remote file does
   (bench-only adapters sleeping ``--io-ms`` per batch of 1000, like a request) and whose middle is CPU
   (the 3 operators above). Run with streaming off, each step's own duration is what it takes alone (the
   steps run one after the other); the streaming run's wall time is compared with the slowest of them.
   Then the same with ``--io-ms 0`` (all three CPU-bound): threads share one interpreter lock, so
   overlapping CPU-bound steps cannot beat their sum (see bench/README.md).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

import _common

SELF = os.path.abspath(__file__)
OPERATORS = [
    {"op": "trim", "args": {"path": "sku"}},
    {"op": "uppercase", "args": {"path": "sku"}},
    {"op": "toNumber", "args": {"source": "price"}},
]


def write_rows(path: str, n: int) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "sku", "name", "price", "qty"])
        w.writerows((i, f"  sku-{i}  ", f"Product {i % 977}", f"{i % 1000}.25", i % 7) for i in range(n))


def child_pipeline(folder: str, streaming: bool) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "datahub_project.settings")
    import django

    django.setup()
    from django.core.files.storage import FileSystemStorage

    from pipelines.definition import parse
    from runs.engine.context import RunOptions
    from runs.engine.executor import execute
    from runs.engine.store import InMemoryStore

    definition = parse({
        "version": 1,
        "context": {"streaming": {"enabled": streaming}},
        "steps": [
            {"key": "src", "type": "EXTRACT", "adapterCode": "csv", "config": {"storagePath": "rows.csv"}},
            {"key": "ops", "type": "TRANSFORM", "config": {"operators": OPERATORS}},
            {"key": "out", "type": "EXPORT", "adapterCode": "csvExport",
             "config": {"path": "out", "filenamePattern": f"pipeline-{int(streaming)}.csv", "formulaMode": "PRESERVE"}},
        ],
    })
    thread_cpu: dict[str, float] = {}

    c0, t0 = os.times(), time.perf_counter()
    result = execute(definition, InMemoryStore(),
                     RunOptions(storage=FileSystemStorage(location=folder),
                                thread_wrapper=_common.step_thread_cpu(thread_cpu)))
    t1, c1 = time.perf_counter(), os.times()
    steps = {k: round(s.duration_ms / 1000, 2) for k, s in result.steps.items()}
    return {"status": str(result.status), "error": result.error, "steps": steps, "seconds": t1 - t0,
            "cpu": (c1.user - c0.user) + (c1.system - c0.system),
            "step_cpu": {k: round(v, 2) for k, v in thread_cpu.items()},
            "output": os.path.join(folder, "out", f"pipeline-{int(streaming)}.csv")}


def child_baseline(folder: str) -> dict:
    """The hand-written script: what the pipeline does, in one loop over csv.DictReader."""
    c0, t0 = os.times(), time.perf_counter()
    out_path = os.path.join(folder, "baseline.csv")
    with open(os.path.join(folder, "rows.csv"), newline="") as f, open(out_path, "w", newline="") as out:
        reader = csv.DictReader(f)
        writer = csv.DictWriter(out, fieldnames=reader.fieldnames, lineterminator="\r\n")
        writer.writeheader()
        for row in reader:
            row["sku"] = row["sku"].strip().upper()
            price = float(row["price"])
            row["price"] = int(price) if price.is_integer() else price
            writer.writerow(row)
    t1, c1 = time.perf_counter(), os.times()
    return {"seconds": t1 - t0, "cpu": (c1.user - c0.user) + (c1.system - c0.system), "output": out_path}


def in_fresh_process(*args: str) -> dict:
    done = subprocess.run([sys.executable, SELF, "--child", *args], capture_output=True, text=True, cwd=_common.ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


def csv_pipeline(rows: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as folder:
        write_rows(os.path.join(folder, "rows.csv"), rows)
        print(f"== 1. CSV -> 3 operators -> csvExport, {rows:,} rows (load {_common.load_average()})")
        base = in_fresh_process("baseline", folder)
        on = in_fresh_process("pipeline", folder, "1")
        off = in_fresh_process("pipeline", folder, "0")
        base2 = in_fresh_process("baseline", folder)
        for r in (on, off):
            if r["status"] != "COMPLETED":
                raise SystemExit(f"pipeline {r['status']}: {r['error']}")
        same = {digest(on["output"]), digest(off["output"]), digest(base["output"])}
        print(f"   outputs identical: {len(same) == 1} ({', '.join(sorted(same))})")
        cpu_base = min(base["cpu"], base2["cpu"])
        wall_base = min(base["seconds"], base2["seconds"])
        print(f"   {'':34} {'CPU s':>7} {'wall s':>7} {'CPU / script':>13} {'wall / script':>14}")
        print(f"   {'hand-written DictReader/Writer':34} {cpu_base:7.2f} {wall_base:7.2f} {1:13.2f}x {1:13.2f}x")
        for name, r in (("pipeline, streaming", on), ("pipeline, streaming off", off)):
            print(f"   {name:34} {r['cpu']:7.2f} {r['seconds']:7.2f} {r['cpu'] / cpu_base:13.2f}x "
                  f"{r['seconds'] / wall_base:13.2f}x   steps' CPU s {r['step_cpu']}, wall s {r['steps']}")
        print(f"   (load after: {_common.load_average()})")
        print()


def linear(records: int, io_ms: float) -> None:
    from pipelines import registry
    from pipelines.adapters.base import Extractor, Writer, WriteResult
    from pipelines.definition import parse
    from runs.engine.context import RunOptions
    from runs.engine.executor import execute
    from runs.engine.store import InMemoryStore

    class PagedSource(Extractor):
        """Pages of 1000 records, each after ``io_ms`` of waiting (a request)."""

        def batches(self):
            for start in range(0, records, 1000):
                time.sleep(io_ms / 1000)
                yield [{"id": i, "sku": f"  sku-{i}  ", "price": f"{i % 1000}.25", "name": "Some Product Name"}
                       for i in range(start, min(start + 1000, records))]

    class SlowTarget(Writer):
        """Sends each batch (``io_ms`` of waiting) to a target that takes effect at finish (an upload)."""

        publishes_at_finish = True

        def write(self, batch):
            time.sleep(io_ms / 1000)
            return WriteResult(written=len(batch))

    registry.extractors.register("benchPaged", PagedSource, schema={"type": "object"}, replace=True)
    registry.exporters.register("benchSlowTarget", SlowTarget, schema={"type": "object"}, replace=True)

    def run(streaming: bool):
        d = parse({"version": 1, "context": {"streaming": {"enabled": streaming}}, "steps": [
            {"key": "extract", "type": "EXTRACT", "adapterCode": "benchPaged"},
            {"key": "transform", "type": "TRANSFORM", "config": {"operators": OPERATORS}},
            {"key": "export", "type": "EXPORT", "adapterCode": "benchSlowTarget"},
        ]})
        c0, t0 = os.times(), time.perf_counter()
        result = execute(d, InMemoryStore(), RunOptions())
        t1, c1 = time.perf_counter(), os.times()
        assert result.status == "COMPLETED", result.error
        assert result.steps["export"].counts.records_in == records
        return t1 - t0, (c1.user - c0.user) + (c1.system - c0.system), {
            k: s.duration_ms / 1000 for k, s in result.steps.items()}

    print(f"== 2. linear extract -> transform -> export, {records:,} records, {io_ms:g} ms of I/O per batch "
          f"at each end (load {_common.load_average()})")
    run(True)  # warm-up
    off_wall, off_cpu, alone = run(False)
    on_wall, on_cpu, on_steps = run(True)
    slowest = max(alone.values())
    print("   each step alone (streaming off): " + ", ".join(f"{k} {v:.2f} s" for k, v in alone.items()))
    print(f"   streaming off: wall {off_wall:.2f} s, CPU {off_cpu:.2f} s = {off_wall / slowest:.2f}x the slowest step")
    print(f"   streaming on:  wall {on_wall:.2f} s, CPU {on_cpu:.2f} s = {on_wall / slowest:.2f}x the slowest step "
          f"(steps overlap: " + ", ".join(f"{k} {v:.2f} s" for k, v in on_steps.items()) + ")")
    print(f"   (load after: {_common.load_average()})")
    print()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, folder = sys.argv[2], sys.argv[3]
        result = child_baseline(folder) if kind == "baseline" else child_pipeline(folder, sys.argv[4] == "1")
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--linear-records", type=int, default=200_000)
    parser.add_argument("--io-ms", type=float, default=10)
    parser.add_argument("--only", choices=["csv", "linear"])
    args = parser.parse_args()
    _common.header("Streaming between steps (issue 15 goal 2)")
    if args.only != "linear":
        csv_pipeline(args.rows)
    if args.only != "csv":
        linear(args.linear_records, args.io_ms)
        linear(args.linear_records, 0)


if __name__ == "__main__":
    main()
