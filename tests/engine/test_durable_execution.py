"""The executor's side of durable runs, without Django: saving completed steps' outputs (the durable
boundary), handing a run back when its worker drains (at a step boundary, or interrupting what still runs
at the deadline), and stopping at once when another worker owns the run."""

import time

from pipelines.definition import parse
from runs.engine.buffers import RecordBuffer
from runs.engine.context import RunOptions
from runs.engine.events import StepFinished, StepInterrupted, StepStarted
from runs.engine.executor import execute
from runs.engine.status import Handover
from runs.engine.store import InMemoryStore


def chain(first_sleep=0.0, second_sleep=0.0):
    return parse({"steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "probe",
         "config": {"records": [{"n": 1}, {"n": 2}], "sleep": first_sleep}},
        {"key": "slow", "type": "EXTRACT", "adapterCode": "probe", "config": {"sleep": second_sleep}},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
    ], "edges": [{"from": "src", "to": "out"}, {"from": "slow", "to": "out"}]})


class Saver:
    def __init__(self):
        self.saved = {}

    def __call__(self, key, outputs):
        self.saved[key] = {b or "_main": buf.to_list() for b, buf in outputs.items()}
        return {b or "_main": f"{key}.ndjson" for b in outputs}


def started(store):
    return [e.step_key for e in store.events if isinstance(e, StepStarted)]


def test_it_saves_the_outputs_a_later_step_reads_before_the_step_completes(probes):
    saver = Saver()
    store = InMemoryStore()
    result = execute(chain(), store, RunOptions(persist=saver))
    assert result.status == "COMPLETED"
    assert saver.saved == {"src": {"_main": [{"n": 1}, {"n": 2}]}, "slow": {"_main": [{"n": 1}]}}
    finished = store.finished()
    assert finished["src"].outputs == {"_main": "src.ndjson"}
    assert finished["out"].outputs == {}  # nobody reads the last step's output: nothing to save


def test_without_persist_nothing_is_saved(probes):
    store = InMemoryStore()
    execute(chain(), store, RunOptions())
    assert {k: e.outputs for k, e in store.finished().items()} == {"src": None, "slow": None, "out": None}


def test_a_draining_worker_hands_the_run_back_at_the_next_step_boundary(probes):
    """Drain while `src` runs (0.3 s; the deadline is far): `src` completes, nothing else starts."""
    store = InMemoryStore()
    asked = time.time()
    options = RunOptions(persist=Saver(), drain=lambda: asked + 60 if time.time() >= asked + 0.1 else None)
    result = execute(chain(first_sleep=0.3), store, options)
    assert result.status is Handover.HANDED_BACK
    assert started(store) == ["src"]
    assert result.statuses == {"src": "COMPLETED", "slow": "PENDING", "out": "PENDING"}
    assert result.saved == {"src": {"_main": "src.ndjson"}}
    assert not [e for e in store.events if isinstance(e, StepInterrupted)]


def test_at_the_drain_deadline_a_step_still_running_is_interrupted_to_run_again_elsewhere(probes):
    store = InMemoryStore()
    began = time.monotonic()
    options = RunOptions(persist=Saver(), drain=lambda: _deadline(began))
    result = execute(chain(first_sleep=30), store, options)
    assert time.monotonic() - began < 5  # not the 30 s of the step
    assert result.status is Handover.HANDED_BACK
    assert result.statuses["src"] == "PENDING"
    assert [e.step_key for e in store.events if isinstance(e, StepInterrupted)] == ["src"]
    assert "src" not in store.finished()  # never reported as ended: it runs again from its start


_DEADLINES: dict = {}


def _deadline(began):
    """Draining from 0.2 s after ``began``, with the deadline 0.3 s after that (wall-clock)."""
    if time.monotonic() - began < 0.2:
        return None
    return _DEADLINES.setdefault(began, time.time() + 0.3)


def test_a_run_that_ends_while_draining_ends_normally(probes):
    store = InMemoryStore()
    result = execute(chain(), store, RunOptions(drain=lambda: time.time() + 60 if started(store) else None))
    # Draining began after `src` started: with one step at a time, `slow` and `out` never start.
    assert result.status is Handover.HANDED_BACK
    store = InMemoryStore()
    single = parse({"steps": [{"key": "src", "type": "EXTRACT", "adapterCode": "probe", "config": {}}]})
    result = execute(single, store, RunOptions(drain=lambda: time.time() + 60 if started(store) else None))
    assert result.status == "COMPLETED"  # nothing was left to hand back


def test_it_stops_at_once_and_writes_no_end_when_another_worker_owns_the_run(probes):
    class Replaced(InMemoryStore):
        def heartbeat(self):
            super().heartbeat()
            return self.heartbeats < 2  # the second beat finds another worker's name on the run

    store = Replaced()
    began = time.monotonic()
    result = execute(chain(first_sleep=30), store, RunOptions(heartbeat_seconds=0.1))
    assert result.status is Handover.LOST
    assert time.monotonic() - began < 5
    assert not [e for e in store.events if isinstance(e, StepFinished)]


def test_previous_steps_read_back_are_not_run_again(probes):
    from runs.engine.context import PreviousStep

    buf = RecordBuffer()
    buf.append([{"n": 7}])
    store = InMemoryStore()
    result = execute(chain(), store, RunOptions(keep_outputs=True,
                                                previous={"src": PreviousStep("COMPLETED", True, {None: buf})}))
    assert result.status == "COMPLETED"
    assert started(store) == ["slow", "out"]
    assert result.output("out") == [{"n": 7}, {"n": 1}]
