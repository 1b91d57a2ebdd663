"""The import wizard's preview costs the sample, not the file: CPU time to sniff and preview a CSV of
2,000 rows (the baseline, measured in the same run) and of 1,000,000 rows (about 48 MB).

    .venv/bin/python bench/bench_wizard_preview.py [--rows 1000000] [--reps 20]

The preview reads the first 200 records with the csv extractor itself (record limit), guesses the types
and keeps 10 rows; the separator is found from the first 64 KiB. A ratio near 1 means the size of the
file does not matter.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import header, load_average  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "datahub_project.settings")
import django  # noqa: E402

django.setup()

from django.test import override_settings  # noqa: E402

from pipelines.adapters.base import AdapterContext  # noqa: E402
from pipelines.registry import extractors  # noqa: E402
from pipelines.wizards import sniff  # noqa: E402


def make(folder: Path, rows: int) -> Path:
    path = folder / f"products-{rows}.csv"
    with open(path, "w") as out:
        out.write("sku,name,price,qty,since\n")
        for i in range(rows):
            out.write(f"A-{i},Product {i},{i}.50,{i % 90},31/12/2024\n")
    return path


def preview_cpu(path: Path, folder: Path, reps: int) -> float:
    started = time.process_time()
    for _ in range(reps):
        with override_settings(DATAHUB_FILE_ROOTS=[str(folder)]):
            with path.open("rb") as stream:
                head = stream.read(64 * 1024)
            options = sniff.csv_options(head.decode("utf-8", errors="replace"), path.name)
            records = sniff.read_sample(extractors.get("csv").impl, {"path": str(path), **options}, AdapterContext())
            sniff.preview_of("csv", options, records)
    return (time.process_time() - started) / reps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    header("Import wizard preview: a small and a large CSV")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        small, large = make(folder, 2_000), make(folder, args.rows)
        base = preview_cpu(small, folder, args.reps)
        big = preview_cpu(large, folder, args.reps)
        print(f"small: {small.stat().st_size / 1e6:.2f} MB, {base * 1000:.1f} ms CPU per preview (baseline)")
        print(f"large: {large.stat().st_size / 1e6:.1f} MB, {big * 1000:.1f} ms CPU per preview")
        print(f"ratio large / small: {big / base:.2f}   load: {load_average()}")


if __name__ == "__main__":
    main()
