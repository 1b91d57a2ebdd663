"""``manage.py worker`` stopping: real processes signalled, on PostgreSQL with the ORM broker.

1. An idle worker exits within its drain window on SIGTERM to its main process and on SIGINT to its whole
   process group (Ctrl-C in a terminal), and leaves no process behind.
2. A worker with two runs in flight is sent SIGTERM (to its process group, as systemd's default KillMode
   does): ``boundary`` is in a 3 s step that ends within the window, ``interrupted`` in a step that would
   take a minute. The worker exits within the window; both runs are handed back (PENDING, never FAILED) and
   another worker completes them: ``boundary`` from the step after the one that ended, ``interrupted``
   running its step again from its start. Completed steps never run twice.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter

import pytest

from tests.ops.conftest import group_alive, make_fleet, wait_for

# Real workers on a PostgreSQL database of the test's own: the same whatever DATABASE_URL says.
pytestmark = pytest.mark.own_database

DRAIN = 8
# The worker's own promise is the window; the rest is a loaded 2-core machine starting the clock late.
SLACK = 4


def trace_step(key: str, **args) -> dict:
    return {"key": key, "type": "TRANSFORM", "config": {"operators": [{"op": "opsTrace", "args": args}]}}


# These runs are about step boundaries: streaming would start each step together with the one before it (a
# streamed chain has no boundary inside it: docs/streaming.md), so it is off for them.
NO_STREAMING = {"streaming": {"enabled": False}}
BOUNDARY = {
    "version": 1, "code": "drain-boundary", "name": "drain-boundary", "context": NO_STREAMING,
    "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": [{"id": 1}, {"id": 2}]}},
        trace_step("first", sleepMs=3000),
        trace_step("second", sleepMs=0),
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
    ],
    "edges": [],
}
INTERRUPTED = {
    "version": 1, "code": "drain-interrupted", "name": "drain-interrupted", "context": NO_STREAMING,
    "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": [{"id": 1}]}},
        trace_step("long", sleepMs=0, sleepMsFirstTime=60_000),
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
    ],
    "edges": [],
}

START = """
import json
from pipelines.services import save_definition
from runs import services
ids = {{}}
for d in json.loads({definitions!r}):
    ids[d["code"]] = services.start_run(save_definition(d)).pk
print(json.dumps(ids))
"""

REPORT = """
import json
from runs.models import Run
out = {{}}
for run in Run.objects.filter(pk__in={ids!r}):
    out[run.pk] = {{"status": run.status, "error": run.error, "resumes": run.resumes,
                   "steps": {{s.step_key: [s.status, s.records_out] for s in run.step_runs.all()}},
                   "events": [[e.kind, e.worker] for e in run.events.all()]}}
print(json.dumps(out))
"""


def stop_and_time(proc, sig, to_group: bool) -> float:
    began = time.monotonic()
    if to_group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    proc.wait(DRAIN + 30)
    return time.monotonic() - began


@pytest.fixture(scope="module")
def fleet(postgres_url, tmp_path_factory):
    fleet = make_fleet(tmp_path_factory.mktemp("drain"), postgres_url, DATAHUB_WORKERS=2,
                       DATAHUB_DRAIN_SECONDS=DRAIN)
    try:
        yield fleet
    finally:
        fleet.close()


@pytest.mark.parametrize("sig, to_group", [(signal.SIGTERM, False), (signal.SIGINT, True)],
                         ids=["SIGTERM-to-process", "SIGINT-to-group"])
def test_an_idle_worker_exits_at_once_and_leaves_nothing_behind(fleet, sig, to_group):
    proc = fleet.start_cluster(f"idle-{sig.name}", command="worker")
    fleet.wait_running(proc)
    took = stop_and_time(proc, sig, to_group)
    print(f"idle worker, {sig.name} to the {'group' if to_group else 'process'}: exited after {took:.1f} s")
    assert proc.returncode == 0, fleet.logs_text()
    assert took < DRAIN + SLACK
    wait_for(lambda: not group_alive(proc.pid), 5, "every process of the worker to exit")


def test_runs_in_flight_are_handed_back_and_finished_by_another_worker(fleet):
    a = fleet.start_cluster("worker-a", command="worker")
    fleet.wait_running(a)
    ids = fleet.shell(START.format(definitions=json.dumps([BOUNDARY, INTERRUPTED])))

    def started(code, step):
        return any(t["run"] == ids[code] and t["step"] == step and t["event"] == "start" for t in fleet.trace())

    wait_for(lambda: started("drain-boundary", "first") and started("drain-interrupted", "long"), 60,
             "both runs to be in their slow steps")
    took = stop_and_time(a, signal.SIGTERM, to_group=True)
    print(f"worker A with two runs in flight: exited {took:.1f} s after SIGTERM (drain window {DRAIN} s)")
    assert a.returncode == 0, fleet.logs_text()
    assert took < DRAIN + SLACK, f"worker A took {took:.1f} s to stop\n{fleet.logs_text()}"
    wait_for(lambda: not group_alive(a.pid), 5, "every process of worker A to exit")
    handed = fleet.shell(REPORT.format(ids=list(ids.values())))
    assert {r["status"] for r in handed.values()} == {"PENDING"}, handed

    b = fleet.start_cluster("worker-b", command="worker")
    wait_for(lambda: {s for (s,) in fleet.sql("SELECT status FROM runs_run WHERE id = ANY(%s)",
                                              (list(ids.values()),))} == {"COMPLETED"},
             60, "worker B to complete both runs")
    report = {int(k): v for k, v in fleet.shell(REPORT.format(ids=list(ids.values()))).items()}
    trace = fleet.trace()
    starts = {code: Counter(t["step"] for t in trace if t["run"] == ids[code] and t["event"] == "start")
              for code in ids}
    pids = {code: {t["step"]: t["pid"] for t in trace if t["run"] == ids[code] and t["event"] == "start"}
            for code in ids}

    boundary = report[ids["drain-boundary"]]
    assert boundary["resumes"] == 0 and boundary["error"] == ""  # a hand-back is not a crash
    assert starts["drain-boundary"] == {"first": 1, "second": 1}  # `first` ended on A, never ran again
    assert pids["drain-boundary"]["first"] != pids["drain-boundary"]["second"]
    assert boundary["steps"]["out"] == ["COMPLETED", 2]

    interrupted = report[ids["drain-interrupted"]]
    assert starts["drain-interrupted"] == {"long": 2}  # interrupted on A, run again from its start on B
    assert interrupted["steps"]["long"] == ["COMPLETED", 1] and interrupted["steps"]["out"] == ["COMPLETED", 1]

    for run in report.values():
        kinds = [kind for kind, _ in run["events"]]
        assert kinds == ["STARTED", "HANDED_BACK", "RESUMED"], run["events"]
        assert run["events"][0][1] == run["events"][1][1] != run["events"][2][1]  # A took it, B finished it
    fleet.stop(b)
