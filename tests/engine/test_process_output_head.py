"""A TRANSFORM in a worker process whose output no step reads keeps only its head there, as a thread would
(RunOptions.output_head): the parent gets the head and the total back with the counts and errors, and the
child writes no output file."""

from __future__ import annotations

import os

import pytest

from runs.engine import processes
from runs.engine.buffers import HeadBuffer
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore
from tests.engine import process_operators
from tests.engine.test_processes import N, pipeline, without_pid

pytestmark = pytest.mark.skipif(processes.cpu_count() < 2, reason="worker processes are used on 2+ CPUs only")


@pytest.fixture
def custom(registries):
    process_operators._tried.clear()
    process_operators.register_all()


def run(definition, **options):
    store = InMemoryStore()
    result = execute(definition, store, RunOptions(process_min_records=100, spill_records=100, **options))
    return result, store


def test_it_gives_an_unread_output_the_same_head_and_total_as_a_thread(custom, monkeypatch):
    adopted = []
    monkeypatch.setattr(processes.RecordBuffer, "adopt", classmethod(lambda cls, *a: adopted.append(a)))
    in_process, p_store = run(pipeline(), output_head=25)
    in_thread, t_store = run(pipeline(processes_mode="off"), output_head=25)
    assert in_process.status == in_thread.status == "COMPLETED"
    assert adopted == []  # no output file came back from the children
    for key in ("t0", "t1"):
        p_buf, t_buf = in_process.outputs[key][None], in_thread.outputs[key][None]
        assert isinstance(p_buf, HeadBuffer) and not p_buf.spilled
        assert len(p_buf) == len(t_buf) == p_store.finished()[key].counts.records_out
        assert p_store.finished()[key].counts == t_store.finished()[key].counts
        head = p_buf.to_list()
        assert len(head) == 25 and {r["pid"] for r in head} - {os.getpid()} and os.getpid() not in {r["pid"] for r in head}
        assert without_pid(head) == without_pid(t_buf.to_list())
    # dead letters come back as before: each failed record as it entered the step, with its message
    assert sorted((e.step_key, e.record["id"], e.message) for e in p_store.record_errors()) == \
        sorted((e.step_key, e.record["id"], e.message) for e in t_store.record_errors())
    assert len(p_store.record_errors()) == 2 * len([i for i in range(N) if i % 5 == 0 and i % 7])
    in_process.close()
    in_thread.close()


def test_without_a_head_the_child_keeps_nothing_and_counts_everything(custom):
    result, store = run(pipeline([{"op": "stampPid", "args": {}}], branches=1))
    assert result.outputs == {} and store.finished()["t0"].counts.records_out == N


def test_a_head_that_does_not_pickle_sends_the_step_back_to_a_thread(custom):
    result, store = run(pipeline([{"op": "holdLock", "args": {}}], branches=1), output_head=5)
    assert result.status == "COMPLETED"
    head = result.outputs["t0"][None].to_list()
    assert [r["pid"] for r in head] == [os.getpid()] * 5  # ran again, in the parent's thread
    assert store.finished()["t0"].counts.records_out == N
    result.close()
