"""A 1,000,000 x 100,000 LEFT join in a real pipeline, through ``rightDataPath``: peak memory and time.

    .venv/bin/python bench/bench_join_pipeline.py [--left 1000000] [--right 100000] [--type LEFT]

The pipeline, run by the executor (``runs.engine.executor.execute``, in-memory run store):

    orders (EXTRACT csv, left.csv) -> join (TRANSFORM multiJoin, rightDataPath $.steps.prices.output) -> out (EXPORT csvExport)
    prices (EXTRACT csv, right.csv) --(read by the join through rightDataPath)

Both CSV files are written first into a scratch folder, which is also the run's file storage. Each run happens
in a fresh Python process, whose peak RSS (``ru_maxrss``) is its own; the process loads Django and the
plugins before its figures start. The baseline, in another fresh process, is a hand-written streaming join
with the standard library: ``csv.DictReader`` over right.csv into a dict of lists, then ``csv.DictReader``
over left.csv row by row, merged rows to ``csv.DictWriter``; the least memory any join of these files can
take in Python. Both outputs must have the same number of rows and the same header.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import _common

SELF = os.path.abspath(__file__)


def write_inputs(folder: str, n_left: int, n_right: int) -> None:
    with open(os.path.join(folder, "left.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "sku", "qty"])
        w.writerows((i, f"SKU-{i % 150_000}", i % 13) for i in range(n_left))
    with open(os.path.join(folder, "right.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sku", "price", "name"])
        w.writerows((f"SKU-{2 * j}", round(1 + (j % 997) * 0.25, 2), f"Product {j}") for j in range(n_right))


def child_pipeline(folder: str, join_type: str) -> dict:
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
        "steps": [
            {"key": "orders", "type": "EXTRACT", "adapterCode": "csv", "config": {"storagePath": "left.csv"}},
            {"key": "prices", "type": "EXTRACT", "adapterCode": "csv", "config": {"storagePath": "right.csv"}},
            {"key": "join", "type": "TRANSFORM", "config": {"operators": [{"op": "multiJoin", "args": {
                "leftKey": "sku", "rightKey": "sku", "rightDataPath": "$.steps.prices.output",
                "type": join_type, "prefix": "r_"}}]}},
            {"key": "out", "type": "EXPORT", "adapterCode": "csvExport",
             "config": {"path": "out", "filenamePattern": "pipeline.csv", "formulaMode": "PRESERVE"}},
        ],
        "edges": [{"from": "orders", "to": "join"}, {"from": "prices", "to": "join", "dependencyOnly": True},
                  {"from": "join", "to": "out"}],
    })
    start_rss = _common.current_rss_mb()
    c0, t0 = os.times(), time.perf_counter()
    result = execute(definition, InMemoryStore(), RunOptions(storage=FileSystemStorage(location=folder)))
    t1, c1 = time.perf_counter(), os.times()
    steps = {k: {"status": s.status, "in": s.counts.records_in, "out": s.counts.records_out,
                 "seconds": round(s.duration_ms / 1000, 2)} for k, s in result.steps.items()}
    result.close()
    return {"status": result.status, "error": result.error, "steps": steps,
            "seconds": t1 - t0, "cpu": (c1.user - c0.user) + (c1.system - c0.system),
            "start_rss": start_rss, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "output": os.path.join(folder, "out", "pipeline.csv")}


def child_baseline(folder: str, join_type: str) -> dict:
    """The hand-written streaming join (LEFT or INNER; RIGHT/FULL add the unmatched right rows)."""
    start_rss = _common.current_rss_mb()
    c0, t0 = os.times(), time.perf_counter()
    index: dict[str, list[dict]] = {}
    right_rows = []
    with open(os.path.join(folder, "right.csv"), newline="") as f:
        for row in csv.DictReader(f):
            projected = {"r_" + k: v for k, v in row.items()}
            index.setdefault(row["sku"], []).append(projected)
            right_rows.append(projected)
    fields = ["id", "sku", "qty", "r_sku", "r_price", "r_name"]
    blank = dict.fromkeys(fields[3:])
    matched = set()
    out_path = os.path.join(folder, "baseline.csv")
    rows = 0
    with open(os.path.join(folder, "left.csv"), newline="") as f, open(out_path, "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\r\n")
        writer.writeheader()
        for left in csv.DictReader(f):
            hits = index.get(left["sku"])
            if hits is None:
                if join_type in ("LEFT", "FULL"):
                    writer.writerow({**left, **blank})
                    rows += 1
                continue
            matched.add(left["sku"])
            for projected in hits:
                writer.writerow({**left, **projected})
                rows += 1
        if join_type in ("RIGHT", "FULL"):
            for projected in right_rows:
                if projected["r_sku"] not in matched:
                    writer.writerow(projected)
                    rows += 1
    t1, c1 = time.perf_counter(), os.times()
    return {"seconds": t1 - t0, "cpu": (c1.user - c0.user) + (c1.system - c0.system), "rows": rows,
            "start_rss": start_rss, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "output": out_path}


def in_fresh_process(kind: str, folder: str, join_type: str) -> dict:
    done = subprocess.run([sys.executable, SELF, "--child", kind, folder, join_type],
                          capture_output=True, text=True, cwd=_common.ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def header_and_rows(path: str) -> tuple[list[str], int, str]:
    """The file's header, its number of rows, and a digest of every row (cell by cell, in order)."""
    digest = hashlib.sha256()
    with open(path, newline="") as f:
        reader = csv.reader(f)
        head = next(reader)
        rows = 0
        for row in reader:
            digest.update("\x1f".join(row).encode() + b"\x1e")
            rows += 1
        return head, rows, digest.hexdigest()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, folder, join_type = sys.argv[2:5]
        payload = child_pipeline(folder, join_type) if kind == "pipeline" else child_baseline(folder, join_type)
        print(json.dumps(payload))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--left", type=int, default=1_000_000)
    parser.add_argument("--right", type=int, default=100_000)
    parser.add_argument("--type", default="LEFT", choices=["INNER", "LEFT", "RIGHT", "FULL"])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    _common.header(f"multiJoin in a pipeline: {args.left:,} x {args.right:,} {args.type}, rightDataPath")
    with tempfile.TemporaryDirectory(prefix="bench-join-") as folder:
        t0 = time.perf_counter()
        write_inputs(folder, args.left, args.right)
        print(f"wrote left.csv and right.csv in {time.perf_counter() - t0:.1f} s "
              f"({os.path.getsize(os.path.join(folder, 'left.csv')) / 2**20:.0f} MiB + "
              f"{os.path.getsize(os.path.join(folder, 'right.csv')) / 2**20:.0f} MiB); "
              f"load average {_common.load_average()}")
        best: dict[str, dict] = {}
        for rep in range(args.repeat):
            for kind in (("pipeline", "baseline") if rep % 2 == 0 else ("baseline", "pipeline")):
                got = in_fresh_process(kind, folder, args.type)
                if kind == "pipeline" and got["status"] != "COMPLETED":
                    raise SystemExit(f"the pipeline did not complete: {got['error']}\n{got['steps']}")
                print(f"  {kind:8} {got['seconds']:6.2f} s  CPU {got['cpu']:6.2f} s  peak RSS "
                      f"{got['peak_rss']:5.0f} MiB (at start {got['start_rss']:.0f} MiB)", flush=True)
                if kind not in best or got["cpu"] < best[kind]["cpu"]:
                    best[kind] = got
        pipe, base = best["pipeline"], best["baseline"]
        head_p, rows_p, digest_p = header_and_rows(pipe["output"])
        head_b, rows_b, digest_b = header_and_rows(base["output"])
        same = (head_p, rows_p, digest_p) == (head_b, rows_b, digest_b)
        print(f"load average after the runs: {_common.load_average()}")
        print()
        print("pipeline steps:", ", ".join(f"{k} {v['status']} in {v['in']:,} out {v['out']:,} {v['seconds']} s"
                                           for k, v in pipe["steps"].items()))
        print(f"same header and rows, cell for cell, as the baseline: {'yes' if same else 'NO'} "
              f"({rows_p:,} rows, {head_p}; baseline {rows_b:,}, {head_b})")
        if not same:
            raise SystemExit("the pipeline's output differs from the baseline's: its figures mean nothing")
        print()
        print(f"{'':10} {'wall s':>8} {'CPU s':>8} {'peak RSS MiB':>13} {'over start':>11}")
        for name, x in (("pipeline", pipe), ("baseline", base)):
            print(f"{name:10} {x['seconds']:8.2f} {x['cpu']:8.2f} {x['peak_rss']:13.0f} "
                  f"{x['peak_rss'] - x['start_rss']:11.0f}")
        print(f"{'ratio':10} {pipe['seconds'] / base['seconds']:7.2f}x {pipe['cpu'] / base['cpu']:7.2f}x "
              f"{pipe['peak_rss'] / base['peak_rss']:12.2f}x")
        verdict = "under" if pipe["peak_rss"] < 600 else "OVER"
        print(f"pipeline peak RSS {pipe['peak_rss']:.0f} MiB: {verdict} the 600 MiB goal")


if __name__ == "__main__":
    main()
