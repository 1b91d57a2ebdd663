"""Crashes: real worker processes killed with SIGKILL.

One scenario, on a scratch PostgreSQL database with the ORM broker (the broker that delivers a task again
when its worker died without acknowledging it: the case that could run a step twice):

1. cluster A (every process of it) runs two runs: ``slow`` is in the middle of a step that takes minutes,
   ``held`` is paused at a gate with its held records saved;
2. SIGKILL to every process of A: nothing is left of the old fleet;
3. cluster B starts (DATAHUB_HEARTBEAT_TIMEOUT=15 s); the gate of ``held`` is approved; ``slow``'s task is
   delivered again by the broker; the reaper schedule runs on B.

What must hold: ``slow`` is FAILED with the reason within the stated time and was not executed a second
time; no run is left RUNNING; ``held`` and its gate survived and continue after the approval from the gate,
without running the steps before it again.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.ops.conftest import make_fleet, wait_for

HEARTBEAT_TIMEOUT = 15
# django-q2's guard calls the scheduler every 30 s; the executor writes a heartbeat every 5 s.
SCHEDULER_TICK, HEARTBEAT_EVERY = 30, 5


def trace_step(key: str, sleep_ms: int) -> dict:
    return {"key": key, "type": "TRANSFORM", "config": {"operators": [{"op": "opsTrace", "args": {"sleepMs": sleep_ms}}]}}


SLOW = {
    "version": 1, "code": "crash-slow", "name": "crash-slow",
    "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": [{"id": 1}]}},
        trace_step("slow", 600_000),
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
    ],
    "edges": [],
    # A failed run sends its notice (webhook) even when it failed because its worker died.
    "context": {"notifications": {"onError": True, "webhookUrl": "http://127.0.0.1:9/datahub-notice"}},
}

HELD = {
    "version": 1, "code": "crash-held", "name": "crash-held",
    "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory",
         "config": {"data": [{"id": 1}, {"id": 2}, {"id": 3}]}},
        trace_step("left", 100),
        trace_step("right", 100),
        {"key": "gate", "type": "GATE", "config": {"approvalType": "MANUAL"}},
        trace_step("after", 0),
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
    ],
    "edges": [{"from": "src", "to": "left"}, {"from": "src", "to": "right"}, {"from": "left", "to": "gate"},
              {"from": "right", "to": "gate"}, {"from": "gate", "to": "after"}, {"from": "after", "to": "out"}],
    "context": {"parallelExecution": {"enabled": True}},
}

START = """
import json
from pipelines.services import save_definition
from runs import services
ids = {{}}
for definition in json.loads({definitions!r}):
    ids[definition["code"]] = services.start_run(save_definition(definition)).pk
print(json.dumps(ids))
"""

APPROVE = """
import json
from django.contrib.auth import get_user_model
from gates import services as gates
user, _ = get_user_model().objects.get_or_create(username="ops", defaults={{"is_superuser": True}})
print(json.dumps(gates.approve({run_id}, "gate", user).status))
"""

REPORT = """
import json
from django_q.models import Task
from runs.models import HookDelivery, Run
report = {{}}
for run in Run.objects.filter(pk__in={ids!r}).prefetch_related("step_runs", "gate_requests"):
    report[run.pk] = {{
        "status": run.status, "error": run.error, "resume_state": run.resume_state,
        "steps": {{s.step_key: [s.status, s.attempts, s.records_in, s.error] for s in run.step_runs.all()}},
        "gates": [g.status for g in run.gate_requests.all()],
        "deliveries": sorted(str(t.result) for t in Task.objects.filter(name=f"run-{{run.pk}}")),
        "notices": list(HookDelivery.objects.filter(run=run, stage="NOTIFICATION").values_list("action_type", flat=True)),
    }}
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def crash(postgres_url, tmp_path_factory):
    from pipelines import registry

    if "GATE" not in registry.step_types:
        pytest.skip("no GATE step type is registered (gates.step is not loaded)")
    fleet = make_fleet(tmp_path_factory.mktemp("crash"), postgres_url, DATAHUB_WORKERS=2,
                       DATAHUB_HEARTBEAT_TIMEOUT=HEARTBEAT_TIMEOUT,
                       # The broker delivers an unacknowledged task again after 25 s (not 70 minutes).
                       DATAHUB_TASK_TIMEOUT=20, DATAHUB_TASK_RETRY=25)
    facts: dict = {}
    try:
        a = fleet.start_cluster("cluster-a")
        fleet.wait_running(a)
        ids = fleet.shell(START.format(definitions=json.dumps([SLOW, HELD])))
        slow, held = facts["slow"], facts["held"] = ids["crash-slow"], ids["crash-held"]

        def status(run_id):
            return fleet.sql("SELECT status FROM runs_run WHERE id = %s", (run_id,))[0][0]

        wait_for(lambda: status(held) == "PAUSED" and fleet.sql(
            "SELECT count(*) FROM gates_gaterequest WHERE run_id = %s AND status = 'PENDING'", (held,))[0][0] == 1,
            60, "the held run to pause at its gate")
        wait_for(lambda: any(t["run"] == slow and t["step"] == "slow" for t in fleet.trace()), 60,
                 "the slow step to start")
        assert status(slow) == "RUNNING"
        resume_state = fleet.sql("SELECT resume_state FROM runs_run WHERE id = %s", (held,))[0][0]
        facts["held_file"] = Path(fleet.env["DATAHUB_VAR_DIR"]) / "media" / (
            resume_state["steps"]["gate"]["outputs"]["_main"])
        facts["held_file_before"] = facts["held_file"].read_text()

        fleet.kill(a)
        killed_at = time.monotonic()
        facts["running_after_kill"] = status(slow)

        # The reaper schedule is due (its cadence, every minute, is part of the stated time, not of this test).
        fleet.sql("UPDATE django_q_schedule SET next_run = now() WHERE func = 'runs.tasks.reap_stale_runs' "
                  "RETURNING id")
        b = fleet.start_cluster("cluster-b")
        fleet.wait_running(b)
        assert fleet.shell(APPROVE.format(run_id=held)) == "APPROVED"
        wait_for(lambda: status(held) == "COMPLETED", 60, "the held run to complete after the approval")
        wait_for(lambda: status(slow) == "FAILED", HEARTBEAT_TIMEOUT + SCHEDULER_TICK + HEARTBEAT_EVERY + 30,
                 "the reaper to fail the run of the killed worker")
        facts["failed_after_seconds"] = time.monotonic() - killed_at
        print(f"the killed worker's run was FAILED {facts['failed_after_seconds']:.1f} s after the kill")
        # The broker's second delivery of the slow run (25 s after the dead worker took it) is handled.
        wait_for(lambda: fleet.sql("SELECT count(*) FROM django_q_task WHERE name = %s", (f"run-{slow}",))[0][0],
                 60, "the second delivery of the slow run")
        facts["running"] = fleet.sql("SELECT count(*) FROM runs_run WHERE status = 'RUNNING'")[0][0]
        facts["report"] = {int(k): v for k, v in fleet.shell(REPORT.format(ids=[slow, held])).items()}
        facts["trace"] = fleet.trace()
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{fleet.logs_text()}") from None
    finally:
        fleet.close()
    return facts


def test_it_fails_the_run_of_a_killed_worker_with_the_reason_in_the_stated_time(crash):
    run = crash["report"][crash["slow"]]
    assert crash["running_after_kill"] == "RUNNING"  # nothing else noticed the death...
    assert run["status"] == "FAILED"  # ...until the reaper did
    assert run["error"].startswith("the worker stopped responding (no heartbeat since ")
    assert f"limit {HEARTBEAT_TIMEOUT} s); the run was marked failed" in run["error"]
    assert run["steps"]["src"][0] == "COMPLETED"
    assert run["steps"]["slow"][0] == "FAILED" and run["steps"]["slow"][3] == "the worker stopped responding"
    # Stated: DATAHUB_HEARTBEAT_TIMEOUT + one heartbeat interval + the reaper's period (60 s, due here) + one
    # scheduler tick (30 s).
    assert crash["failed_after_seconds"] < HEARTBEAT_TIMEOUT + HEARTBEAT_EVERY + SCHEDULER_TICK + 10
    assert crash["running"] == 0


def test_it_does_not_execute_the_killed_run_again_when_the_broker_delivers_it_again(crash):
    run = crash["report"][crash["slow"]]
    # Only the delivery handled after the crash left a result (the first died with its worker): it found
    # the run claimed and did nothing.
    assert run["deliveries"] == ["skipped"]
    slow_starts = [t for t in crash["trace"] if t["run"] == crash["slow"] and t["event"] == "start"]
    assert len(slow_starts) == 1


def test_it_announces_the_failure_of_a_run_whose_worker_died(crash):
    """run_ended is sent for a reaped run, so its failure notice goes out (and schedules catch up)."""
    assert crash["report"][crash["slow"]]["notices"] == ["WEBHOOK"]


def test_a_paused_run_and_its_gate_survive_the_death_of_every_process(crash):
    run = crash["report"][crash["held"]]
    assert run["status"] == "COMPLETED" and run["error"] == ""
    assert run["gates"] == ["APPROVED"]
    assert {k: v[:3] for k, v in run["steps"].items()} == {
        "src": ["COMPLETED", 1, 0], "left": ["COMPLETED", 1, 3], "right": ["COMPLETED", 1, 3],
        "gate": ["COMPLETED", 1, 6], "after": ["COMPLETED", 1, 6], "out": ["COMPLETED", 1, 6]}
    # The held records were on disk through the crash; the resume read them and then removed them.
    assert len(crash["held_file_before"].splitlines()) == 6
    assert run["resume_state"] is None and not crash["held_file"].exists()
    # The steps before the gate ran once, on the killed cluster; the step after it once, on the new one.
    events = Counter((t["step"], t["event"]) for t in crash["trace"] if t["run"] == crash["held"])
    assert events == {(s, e): 1 for s in ("left", "right", "after") for e in ("start", "end")}
    pids = {t["step"]: t["pid"] for t in crash["trace"] if t["run"] == crash["held"]}
    assert pids["left"] == pids["right"] != pids["after"]
