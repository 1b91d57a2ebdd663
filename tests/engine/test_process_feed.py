"""A TRANSFORM that may go to a worker process reads its producer's output as a stream: the parent feeds
the child while the producer still runs (runs.engine.process_feed), with the same records, errors, dead
letters, failures and cancellation as a thread."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime

import pytest

from pipelines import registry
from pipelines.adapters.base import Extractor
from pipelines.definition import parse
from pipelines.errors import StepError
from runs.engine import processes
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore
from tests.engine import process_operators
from tests.engine.test_processes import OPERATORS, _assert_gone, _wait_for_children, records, without_pid

pytestmark = pytest.mark.skipif(processes.cpu_count() < 2, reason="worker processes are used on 2+ CPUs only")
BATCH = 100
seen_child: list[bool] = []


class Rows(Extractor):
    """``batches`` batches of ``size`` (BATCH) records. ``setAt``: that batch holds a set. ``waitForChild``: after the first, waits for a worker process
    to run (only a fed child can); ``failAfter``: fails after that many; ``sleep``: between batches."""

    def batches(self):
        size = self.config.get("size", BATCH)
        for n in range(self.config["batches"]):
            batch = records((n + 1) * size)[n * size:]
            if self.config.get("setAt") == n:
                batch[0]["tags"] = {"not", "json"}
            yield batch
            if n == 0 and self.config.get("waitForChild"):
                deadline = time.monotonic() + 20
                while not processes.live_pids() and time.monotonic() < deadline:
                    time.sleep(0.01)
                seen_child.append(bool(processes.live_pids()))
            if self.config.get("failAfter") == n + 1:
                raise StepError("source broke half way", retryable=False)
            time.sleep(self.config.get("sleep", 0))


@pytest.fixture
def custom(registries):
    seen_child.clear()
    process_operators._tried.clear()
    process_operators.register_all()
    registry.extractors.register("rows", Rows, schema={"type": "object"}, replace=True)


def pipeline(operators=OPERATORS, processes_mode="auto", **config):
    return parse({
        "version": 1,
        "context": {"parallelExecution": {"enabled": True, "maxConcurrentSteps": 2, "processes": processes_mode}},
        "steps": [{"key": "src", "type": "EXTRACT", "adapterCode": "rows", "config": {"batches": 30, **config}},
                  {"key": "t0", "type": "TRANSFORM", "config": {"operators": operators}}],
        "edges": [{"from": "src", "to": "t0"}],
    })


def run(definition, store=None, **options):
    store = store or InMemoryStore()
    options.setdefault("process_min_records", BATCH)
    result = execute(definition, store, RunOptions(keep_outputs=True, **options))
    return result, store


def test_it_feeds_a_worker_process_while_the_producer_still_runs(custom):
    fed, f_store = run(pipeline(waitForChild=True))
    assert seen_child == [True]  # the child ran before the extract's second batch
    in_thread, t_store = run(pipeline(processes_mode="off"))
    assert fed.status == in_thread.status == "COMPLETED"
    rows = fed.output("t0")
    assert os.getpid() not in {r["pid"] for r in rows}
    assert without_pid(rows) == without_pid(in_thread.output("t0"))
    assert f_store.finished()["t0"].counts == t_store.finished()["t0"].counts
    assert [(e.record, e.message) for e in f_store.record_errors()] == \
        [(e.record, e.message) for e in t_store.record_errors()]
    assert len(f_store.record_errors()) == len([i for i in range(30 * BATCH) if i % 5 == 0 and i % 7])
    assert processes.live_pids() == set()


def test_a_streamed_input_under_the_threshold_stays_in_a_thread(custom):
    result, store = run(pipeline([{"op": "stampPid", "args": {}}], batches=3), process_min_records=10_000)
    assert result.status == "COMPLETED"
    assert [r["id"] for r in result.output("t0")] == list(range(3 * BATCH))
    assert {r["pid"] for r in result.output("t0")} == {os.getpid()}
    assert store.finished()["t0"].counts.records_in == 3 * BATCH


def test_a_producer_failing_mid_stream_ends_the_step_as_in_a_thread(custom):
    fed, f_store = run(pipeline([{"op": "stampPid", "args": {}}], failAfter=12, waitForChild=True))
    assert seen_child == [True]
    in_thread, t_store = run(pipeline([{"op": "stampPid", "args": {}}], processes_mode="off", failAfter=12))
    assert fed.status == in_thread.status == "FAILED" and "source broke half way" in fed.error
    f, t = f_store.finished()["t0"], t_store.finished()["t0"]
    assert (f.status, f.error) == (t.status, t.error) and "upstream step 'src' did not complete" in f.error
    _assert_gone(set(processes.live_pids()))


def test_an_operator_the_child_gives_back_runs_in_a_thread_over_the_whole_input(custom, caplog):
    caplog.set_level("INFO", logger="runs.engine.handlers")
    fixed = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    # a lambda clock does not pickle: the child stops at the operator's first use and the step runs again
    # in a thread, from what the child was sent (the tee) and on through the rest of the stream
    result, store = run(pipeline([{"op": "stampClock", "args": {}}], sleep=0.002), now=lambda: fixed)
    assert result.status == "COMPLETED"
    rows = result.output("t0")
    assert [r["id"] for r in rows] == list(range(30 * BATCH))
    assert {(r["at"], r["pid"]) for r in rows} == {(fixed.isoformat(), os.getpid())}
    assert store.finished()["t0"].counts.records_in == 30 * BATCH
    assert "reads the run's clock in the worker process" in caplog.text  # it did start in one


def test_cancelling_the_run_ends_the_fed_worker_process(custom):
    store = InMemoryStore()
    done = threading.Event()
    box = {}

    def go():
        box["result"], _ = run(pipeline([{"op": "stampPid", "args": {}}], batches=100_000, sleep=0.01), store=store)
        done.set()

    threading.Thread(target=go, daemon=True).start()
    children = _wait_for_children(1)
    store.cancel.set()
    assert done.wait(20)
    assert box["result"].status == "CANCELLED"
    assert {e.status for e in store.finished().values()} == {"CANCELLED"}
    _assert_gone(children)


def test_batches_larger_than_a_spill_line_reach_the_child_whole_and_in_order(custom):
    result, store = run(pipeline([{"op": "stampPid", "args": {}}], batches=2, size=25_000))
    assert result.status == "COMPLETED"
    rows = result.output("t0")
    assert [r["id"] for r in rows] == list(range(50_000)) and os.getpid() not in {r["pid"] for r in rows}


def test_an_input_record_that_is_not_json_fails_the_step_with_a_clear_error(custom):
    result, store = run(pipeline([{"op": "stampPid", "args": {}}], setAt=3))
    assert result.status == "FAILED"
    assert "a record of the step's input is not JSON" in store.finished()["t0"].error
    _assert_gone(set(processes.live_pids()))
