"""Crashes: real worker processes killed with SIGKILL, with Redis and with the ORM broker, on PostgreSQL.

1. cluster A (two workers) has ``held`` paused at a gate with its records saved, ``slow-1`` and ``slow-2`` in
   the middle of a step that takes minutes, and the tasks of ``queued-1`` and ``queued-2`` in its memory
   (django-q2's pusher takes tasks ahead of the workers);
2. cluster B starts (another machine); then SIGKILL to every process of A;
3. the gate of ``held`` is approved; the reaper schedule runs on B (DATAHUB_HEARTBEAT_TIMEOUT=15 s); the ORM
   broker delivers A's unacknowledged tasks again after Q_CLUSTER retry (25 s here).

What must hold: the slow runs are FAILED with the reason within the stated time and never executed twice;
the queued runs run once; no run is left RUNNING or PENDING; ``held`` and its gate survived and continue
from the gate on B, without running the steps before it again; the failures are announced.
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

QUICK = {
    "version": 1, "code": "crash-queued", "name": "crash-queued",
    "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": [{"id": 1}]}},
        trace_step("quick", 0),
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
    ],
    "edges": [],
}

# In this order: cluster A's two workers take `held` and `slow-1`; `held` pauses and its worker takes
# `slow-2`; `queued-1` and `queued-2` wait in A's memory (its pusher takes tasks ahead of its workers).
START = """
import json
from pipelines.services import save_definition
from runs import services
definitions = json.loads({definitions!r})
pipelines = {{d["code"]: save_definition(d) for d in definitions}}
ids = {{}}
for name, code in [("held", "crash-held"), ("slow-1", "crash-slow"), ("slow-2", "crash-slow"),
                   ("queued-1", "crash-queued"), ("queued-2", "crash-queued")]:
    ids[name] = services.start_run(pipelines[code], allow_concurrent=True).pk
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


def broker_empty(fleet) -> bool:
    """No task is waiting in the broker: every task is with a cluster (or done)."""
    if fleet.env.get("REDIS_URL"):
        import redis

        return redis.Redis.from_url(fleet.env["REDIS_URL"]).llen("django_q:datahub:q") == 0
    return fleet.sql("SELECT count(*) FROM django_q_ormq WHERE lock <= now()")[0][0] == 0


@pytest.fixture(scope="module", params=["redis", "orm"])
def crash(request, postgres_url, tmp_path_factory):
    from pipelines import registry

    if "GATE" not in registry.step_types:
        pytest.skip("no GATE step type is registered (gates.step is not loaded)")
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    fleet = make_fleet(tmp_path_factory.mktemp(f"crash-{request.param}"), postgres_url, redis_url,
                       DATAHUB_WORKERS=2, DATAHUB_HEARTBEAT_TIMEOUT=HEARTBEAT_TIMEOUT,
                       # The ORM broker delivers an unacknowledged task again after 25 s (not 70 minutes).
                       DATAHUB_TASK_TIMEOUT=20, DATAHUB_TASK_RETRY=25)
    facts: dict = {"broker": request.param}
    try:
        a = fleet.start_cluster(f"cluster-a-{request.param}")
        fleet.wait_running(a)
        ids = facts["ids"] = fleet.shell(START.format(definitions=json.dumps([SLOW, HELD, QUICK])))

        def status(name):
            return fleet.sql("SELECT status FROM runs_run WHERE id = %s", (ids[name],))[0][0]

        def started(name):
            return any(t["run"] == ids[name] and t["step"] == "slow" for t in fleet.trace())

        wait_for(lambda: status("held") == "PAUSED" and fleet.sql(
            "SELECT count(*) FROM gates_gaterequest WHERE run_id = %s AND status = 'PENDING'",
            (ids["held"],))[0][0] == 1, 60, "the held run to pause at its gate")
        wait_for(lambda: started("slow-1") and started("slow-2"), 60, "both slow steps to start")
        wait_for(lambda: broker_empty(fleet), 30, "cluster A to take the queued runs' tasks")
        assert [status(n) for n in ("slow-1", "slow-2", "queued-1", "queued-2")] == [
            "RUNNING", "RUNNING", "PENDING", "PENDING"]
        resume_state = fleet.sql("SELECT resume_state FROM runs_run WHERE id = %s", (ids["held"],))[0][0]
        facts["held_file"] = Path(fleet.env["DATAHUB_VAR_DIR"]) / "media" / (
            resume_state["steps"]["gate"]["outputs"]["_main"])
        facts["held_file_before"] = facts["held_file"].read_text()

        # The reaper schedule is due (its cadence, every minute, is part of the stated time, not of this test).
        fleet.sql("UPDATE django_q_schedule SET next_run = now() WHERE func = 'runs.tasks.reap_stale_runs' "
                  "RETURNING id")
        b = fleet.start_cluster(f"cluster-b-{request.param}")  # another machine, alive before the crash
        fleet.wait_running(b)
        fleet.kill(a)
        killed_at = time.monotonic()
        facts["after_kill"] = {name: status(name) for name in ids}

        assert fleet.shell(APPROVE.format(run_id=ids["held"])) == "APPROVED"
        wait_for(lambda: status("held") == "COMPLETED", 60, "the held run to complete after the approval")
        budget = HEARTBEAT_TIMEOUT + HEARTBEAT_EVERY + SCHEDULER_TICK + 30
        wait_for(lambda: status("slow-1") == status("slow-2") == "FAILED", budget,
                 "the reaper to fail the runs of the killed worker")
        facts["failed_after_seconds"] = time.monotonic() - killed_at
        print(f"{request.param}: the killed worker's runs were FAILED {facts['failed_after_seconds']:.1f} s "
              "after the kill")
        wait_for(lambda: status("queued-1") == status("queued-2") == "COMPLETED", 60,
                 "the runs whose tasks died with cluster A to run")
        facts["queued_after_seconds"] = time.monotonic() - killed_at
        if request.param == "orm":  # the broker's second delivery of the slow runs (25 s) is handled
            wait_for(lambda: fleet.sql("SELECT count(*) FROM django_q_task WHERE name = ANY(%s)",
                                       ([f"run-{ids['slow-1']}", f"run-{ids['slow-2']}"],))[0][0] == 2,
                     60, "the second delivery of the slow runs")
        facts["left"] = dict(fleet.sql("SELECT status, count(*) FROM runs_run WHERE id = ANY(%s) GROUP BY status",
                                       (list(ids.values()),)))
        facts["report"] = {int(k): v for k, v in fleet.shell(REPORT.format(ids=list(ids.values()))).items()}
        facts["trace"] = fleet.trace()
        facts["log_b"] = b.log_path.read_text()
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{fleet.logs_text()}") from None
    finally:
        fleet.close()
    return facts


def runs_of(crash, *names):
    return [crash["report"][crash["ids"][name]] for name in names]


def test_it_fails_the_runs_of_a_killed_worker_with_the_reason_in_the_stated_time(crash):
    assert crash["after_kill"]["slow-1"] == crash["after_kill"]["slow-2"] == "RUNNING"  # nobody noticed...
    for run in runs_of(crash, "slow-1", "slow-2"):
        assert run["status"] == "FAILED"  # ...until the reaper did
        assert run["error"].startswith("the worker stopped responding (no heartbeat since ")
        assert f"limit {HEARTBEAT_TIMEOUT} s); the run was marked failed" in run["error"]
        assert run["steps"]["src"][0] == "COMPLETED"
        assert run["steps"]["slow"][0] == "FAILED" and run["steps"]["slow"][3] == "the worker stopped responding"
    # Stated: DATAHUB_HEARTBEAT_TIMEOUT + one heartbeat interval + the reaper's period (60 s; due here) + one
    # scheduler tick (30 s, counted here from cluster B's start, a few seconds before the kill).
    assert crash["failed_after_seconds"] < HEARTBEAT_TIMEOUT + HEARTBEAT_EVERY + SCHEDULER_TICK + 10
    assert crash["left"] == {"COMPLETED": 3, "FAILED": 2}  # nothing RUNNING, PENDING or PAUSED is left


def test_it_never_executes_a_killed_run_a_second_time(crash):
    for name in ("slow-1", "slow-2"):
        [run] = runs_of(crash, name)
        starts = [t for t in crash["trace"] if t["run"] == crash["ids"][name] and t["event"] == "start"]
        assert len(starts) == 1
        # The first delivery died with its worker (no result). The ORM broker delivers the task again once
        # Q_CLUSTER retry has passed: that delivery finds the run claimed and does nothing. Redis had
        # handed the task over for good.
        assert run["deliveries"] == (["skipped"] if crash["broker"] == "orm" else [])


def test_it_runs_once_the_runs_whose_tasks_died_with_the_cluster(crash):
    """Their tasks were in the killed cluster's memory: the reaper (Redis) or the broker (ORM, after its
    retry) hands them out again, and each runs once."""
    for name in ("queued-1", "queued-2"):
        [run] = runs_of(crash, name)
        assert crash["after_kill"][name] == "PENDING"
        assert run["status"] == "COMPLETED" and run["steps"]["quick"][:2] == ["COMPLETED", 1]
        assert len([t for t in crash["trace"] if t["run"] == crash["ids"][name] and t["event"] == "start"]) == 1
        assert "COMPLETED" in run["deliveries"]
        if crash["broker"] == "redis":  # Redis never gives a task back: the reaper queued it again
            assert f"run {crash['ids'][name]} has waited more than {HEARTBEAT_TIMEOUT} s with an empty queue" in (
                crash["log_b"])
    assert crash["queued_after_seconds"] < HEARTBEAT_TIMEOUT + HEARTBEAT_EVERY + SCHEDULER_TICK + 30


def test_it_announces_the_failure_of_a_run_whose_worker_died(crash):
    """run_ended is sent for a reaped run, so its failure notice goes out (and schedules catch up)."""
    for run in runs_of(crash, "slow-1", "slow-2"):
        assert run["notices"] == ["WEBHOOK"]


def test_a_paused_run_and_its_gate_survive_the_death_of_the_processes_that_ran_it(crash):
    [run] = runs_of(crash, "held")
    held = crash["ids"]["held"]
    assert crash["after_kill"]["held"] == "PAUSED"
    assert run["status"] == "COMPLETED" and run["error"] == ""
    assert run["gates"] == ["APPROVED"]
    assert {k: v[:3] for k, v in run["steps"].items()} == {
        "src": ["COMPLETED", 1, 0], "left": ["COMPLETED", 1, 3], "right": ["COMPLETED", 1, 3],
        "gate": ["COMPLETED", 1, 6], "after": ["COMPLETED", 1, 6], "out": ["COMPLETED", 1, 6]}
    # The held records were on disk through the crash; the resume read them and then removed them.
    assert len(crash["held_file_before"].splitlines()) == 6
    assert run["resume_state"] is None and not crash["held_file"].exists()
    # The steps before the gate ran once, on the killed cluster; the step after it once, on the other one.
    events = Counter((t["step"], t["event"]) for t in crash["trace"] if t["run"] == held)
    assert events == {(s, e): 1 for s in ("left", "right", "after") for e in ("start", "end")}
    pids = {t["step"]: t["pid"] for t in crash["trace"] if t["run"] == held}
    assert pids["left"] == pids["right"] != pids["after"]
