"""A whole output handed over as one batch of a million records costs linear time everywhere.

Joins, aggregates, dedup and deltaFilter write their whole output as one batch, and a step reading it
re-batches it; an export writes whatever batch it is given. Each path below runs on 100,000 and on
1,000,000 records given as ONE batch: linear work takes about 10x as long for 10x the records, a quadratic
path 100x. Times are this process's CPU time, so other work on a shared machine does not count; the bound
(25x) leaves room for cache and allocator effects and still catches a quadratic path. Each path runs once
per size, and again if the bound is missed. About 9 s of CPU in all: a million records through eight
paths is the point of the test.
"""

import gc
import time

import pytest
from django.core.files.storage import FileSystemStorage

from pipelines import registry
from pipelines.adapters.base import AdapterContext
from pipelines.operators.base import OperatorContext
from runs.engine.buffers import RecordBuffer
from runs.engine.context import StepInput

SMALL, LARGE = 100_000, 1_000_000
BOUND = 25.0
RIGHT = [{"sku": f"S{k}", "price": k} for k in range(0, 20_000, 2)]


def generate(n: int) -> list[dict]:
    return [{"id": i, "sku": f"S{i % 20_000}", "qty": i % 13} for i in range(n)]


def operator(op: str, args: dict):
    """The batch operator itself, on records it may change (none of these changes what a rerun does)."""
    apply = registry.operators.get(op).impl.apply

    def run(records: list[dict]):
        # A fresh context per call: an operator may keep per-step state in it (the join's hashed right side).
        return apply(records, args, OperatorContext(step_outputs=lambda key: RIGHT))

    return run


def buffer_read(records: list[dict]):
    buf = RecordBuffer()
    buf.append(records)
    try:
        return sum(len(b) for b in buf.batches(1000))
    finally:
        buf.close()


def expand(records: list[dict]):
    """expand over records that each hold an array (made here: the shared records stay flat)."""
    apply = registry.operators.get("expand").impl.apply
    return apply([{"id": r["id"], "tags": [r["qty"], 0]} for r in records], {"path": "tags",
                 "parentFields": {"id": "id"}}, OperatorContext())


def step_input_read(records: list[dict]):
    held = RecordBuffer(spill_records=10**9)  # in memory: StepInput's own re-batching is what is timed
    held.append(records)
    return sum(len(b) for b in StepInput([held]).batches(1000))


def csv_export(tmp_path):
    cls = registry.exporters.get("csvExport").impl

    def run(records: list[dict]):
        writer = cls({"columns": ["id", "sku", "qty"]},
                     AdapterContext(step_key="x", storage=FileSystemStorage(location=tmp_path)))
        try:
            writer.write(records)
        finally:
            writer.close()

    return run


PATHS = {
    "RecordBuffer spilled read-back": lambda tmp: buffer_read,
    "StepInput re-batching": lambda tmp: step_input_read,
    "aggregate groupBy": lambda tmp: operator("aggregate", {"op": "avg", "source": "qty", "target": "avg",
                                                            "groupBy": "sku"}),
    "deduplicateRecords": lambda tmp: operator("deduplicateRecords", {"key": "sku", "keep": "LAST"}),
    "deltaFilter": lambda tmp: operator("deltaFilter", {"idPath": "id"}),
    "expand": lambda tmp: expand,
    "multiJoin FULL": lambda tmp: operator("multiJoin", {"leftKey": "sku", "rightKey": "sku", "type": "FULL",
                                                         "prefix": "r", "rightDataPath": "$.steps.r.output"}),
    "csvExport": csv_export,
}


@pytest.fixture(scope="module")
def records():
    gc.disable()
    try:
        made = {SMALL: generate(SMALL), LARGE: generate(LARGE)}
    finally:
        gc.enable()
    gc.freeze()  # the collector need not walk 1.25M records over and over during the other tests
    yield made
    gc.unfreeze()


def timed(fn, records: list[dict]) -> float:
    gc.disable()  # a collection landing in one run and not the other is noise, not complexity
    try:
        start = time.process_time()
        fn(records)
        return time.process_time() - start
    finally:
        gc.enable()


@pytest.mark.parametrize("name", list(PATHS))
def test_it_handles_a_million_records_in_one_batch_in_linear_time(name, records, tmp_path):
    fn = PATHS[name](tmp_path)
    for _attempt in range(2):  # a second chance when the machine was busy during one of the runs
        small = timed(fn, records[SMALL])
        large = timed(fn, records[LARGE])
        # 50 ms of absolute slack: a fast path's few milliseconds of CPU are mostly timer granularity.
        if large < BOUND * small + 0.05:
            return
    raise AssertionError(
        f"{name}: {LARGE:,} records took {large:.2f} s, {SMALL:,} took {small:.2f} s: {large / small:.1f}x "
        f"for 10x the records (linear is about 10x, quadratic 100x)"
    )
