"""A large LEFT join in a real pipeline holds the hashed right side and a few batches, not its input.

A fresh Python process runs EXTRACT csv (300,000 rows) -> TRANSFORM multiJoin (rightDataPath to an
EXTRACT csv of 30,000 rows) through the executor and reports its peak RSS growth over the run. Holding
the left side (as a step gathering its whole input does) costs about 200 MiB here; streaming keeps the
growth to the right side plus the spill buffers. bench/bench_join_pipeline.py runs 1,000,000 x 100,000.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LEFT, RIGHT = 300_000, 30_000
BOUND_MIB = 100  # streaming: about 25 MiB here; gathering the input: about 200 MiB

SCRIPT = """
import json, os, resource, sys
import django
django.setup()
from django.core.files.storage import FileSystemStorage
from pipelines.definition import parse
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore

folder = sys.argv[1]
definition = parse({"version": 1, "steps": [
    {"key": "orders", "type": "EXTRACT", "adapterCode": "csv", "config": {"storagePath": "left.csv"}},
    {"key": "prices", "type": "EXTRACT", "adapterCode": "csv", "config": {"storagePath": "right.csv"}},
    {"key": "join", "type": "TRANSFORM", "config": {"operators": [{"op": "multiJoin", "args": {
        "leftKey": "sku", "rightKey": "sku", "rightDataPath": "$.steps.prices.output", "type": "LEFT",
        "prefix": "r", "memoryBudgetMb": 64}}]}}],
    "edges": [{"from": "orders", "to": "join"}, {"from": "prices", "to": "join", "dependencyOnly": True}]})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
result = execute(definition, InMemoryStore(), RunOptions(storage=FileSystemStorage(location=folder)))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
join = result.steps["join"]
print(json.dumps({"status": result.status, "error": result.error, "out": join.counts.records_out,
                  "growth": peak - before}))
"""


def test_it_joins_a_large_left_side_in_bounded_memory(tmp_path):
    with open(tmp_path / "left.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "sku", "qty"])
        w.writerows((i, f"SKU-{i % 45_000}", i % 13) for i in range(LEFT))
    with open(tmp_path / "right.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sku", "price", "name"])
        w.writerows((f"SKU-{2 * j}", j % 997, f"Product {j}") for j in range(RIGHT))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "datahub_project.settings"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["status"] == "COMPLETED", report["error"]
    assert report["out"] == LEFT
    assert report["growth"] < BOUND_MIB, f"peak RSS grew by {report['growth']:.0f} MiB during the run"
