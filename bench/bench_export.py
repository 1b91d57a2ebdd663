"""csvExport against the standard library's csv.writer, at 5 and at 50 columns.

    .venv/bin/python bench/bench_export.py [--cells 1000000] [--rounds 5] [--batch 1000]

Records are generated once: each column cycles through text, an integer (negative too), a non-integral
float and a short string or null, so every kind of column the exporter prepares differently is present.
5 columns x 200,000 records and 50 columns x 20,000 records (``--cells`` cells each).

(a) baseline: ``csv.writer(f, lineterminator="\\r\\n")`` and ``writer.writerow([r.get(c) for c in columns])``
    per record, into a ``TextIOWrapper`` over a ``TemporaryFile``: the least a script writing dict records
    with the standard library does.
(b) ``csv.DictWriter`` the same way (for reference).
(c) csvExport: ``CsvExportWriter.write(batch)`` for every batch of ``--batch`` records (the default
    SPREADSHEET_SAFE formula mode: text cells are checked for a leading = + - @ tab CR), into its own
    ``TextIOWrapper`` over a ``TemporaryFile``. Saving the finished file into the storage (a file copy in
    ``finish()``) is not timed: the baseline has no storage to save into.

Before timing, the script checks that (a) and (c) write the same bytes. Each round runs the three in
rotating order; the figures are the least CPU time (user + system) of the rounds, the steadier figure on a
shared machine, and the wall time of that round.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import tempfile
import time

import _common
from django.conf import settings

from pipelines.adapters.base import AdapterContext
from pipelines.adapters.exports import CsvExportWriter


def generate(n: int, ncols: int) -> tuple[list[str], list[dict]]:
    columns = [f"col{j}" for j in range(ncols)]
    records = []
    for i in range(n):
        r = {}
        for j, c in enumerate(columns):
            kind = j % 4
            if kind == 0:
                r[c] = f"Product name {i} {j}"
            elif kind == 1:
                r[c] = i * (j + 1) - 500
            elif kind == 2:
                r[c] = (i % 1000) / 8 + 0.01
            else:
                r[c] = "x" * (i % 7) if i % 5 else None
        records.append(r)
    return columns, records


def text_file():
    return io.TextIOWrapper(tempfile.TemporaryFile(), encoding="utf-8", newline="")


def content(out, readable=None) -> bytes:
    """What was written to out; readable: a readable file over the same bytes when out is write-only (csvExport
    writes through a write-only duplicate of its temporary file's descriptor)."""
    out.flush()
    raw = readable or out.buffer
    raw.seek(0)
    return raw.read()


def baseline(columns, records, batch):
    out = text_file()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for r in records:
        writer.writerow([r.get(c) for c in columns])
    return out


def dict_writer(columns, records, batch):
    out = text_file()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for r in records:
        writer.writerow(r)
    return out


def ours(columns, records, batch, storage, *, whole=False):
    writer = CsvExportWriter({}, AdapterContext(step_key="out", storage=storage))
    for start in range(0, len(records), batch):
        writer.write(records[start:start + batch])
    writer.format.end()
    return writer if whole else writer.out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    if not settings.configured:
        settings.configure()
    from django.core.files.storage import FileSystemStorage

    _common.header(f"csvExport vs csv.writer, {args.cells:,} cells per table, batches of {args.batch}")
    with tempfile.TemporaryDirectory() as folder:
        storage = FileSystemStorage(location=folder)
        paths = {"csv.writer (baseline)": baseline, "csv.DictWriter": dict_writer,
                 "csvExport": lambda c, r, b: ours(c, r, b, storage)}
        for ncols in (5, 50):
            columns, records = generate(args.cells // ncols, ncols)
            exporter = ours(columns, records, args.batch, storage, whole=True)
            same = content(baseline(columns, records, args.batch)) == content(exporter.out, exporter._tmp)
            exporter.close()
            print(f"{ncols} columns x {len(records):,} records; csvExport writes the same bytes as csv.writer: "
                  f"{'yes' if same else 'NO'}; load average {_common.load_average()}")
            if not same:
                raise SystemExit("the outputs differ; not timing")
            best: dict[str, tuple[float, float]] = {}
            names = list(paths)
            for rnd in range(args.rounds):
                k = rnd % len(names)
                for name in names[k:] + names[:k]:
                    c0, t0 = os.times(), time.perf_counter()
                    out = paths[name](columns, records, args.batch)
                    out.flush()
                    t1, c1 = time.perf_counter(), os.times()
                    out.close()
                    cpu = (c1.user - c0.user) + (c1.system - c0.system)
                    if name not in best or cpu < best[name][0]:
                        best[name] = (cpu, t1 - t0)
            base_cpu = best["csv.writer (baseline)"][0]
            for name in names:
                cpu, wall = best[name]
                print(f"  {name:24} CPU {cpu:6.2f} s  wall {wall:6.2f} s  {len(records) / cpu:>10,.0f} records/s  "
                      f"{cpu / base_cpu:5.2f}x the baseline")
            print()
    print(f"load average at the end: {_common.load_average()}")


if __name__ == "__main__":
    main()
