"""Crashes: real worker processes killed with SIGKILL, with Redis and with the ORM broker, on PostgreSQL.

1. cluster A (two workers) has ``held`` paused at a gate with its records saved, ``slow-1`` and ``slow-2`` in
   the middle of a step that takes minutes (the first time it runs), and the tasks of ``queued-1`` and
   ``queued-2`` in its memory (django-q2's pusher takes tasks ahead of the workers);
2. ``manage.py worker`` B starts (another machine); then SIGKILL to every process of A;
3. the gate of ``held`` is approved; B's sweep (every 5 s, DATAHUB_HEARTBEAT_TIMEOUT 15 s: the defaults)
   takes the slow runs back; the ORM broker delivers A's unacknowledged tasks again after Q_CLUSTER retry
   (25 s here).

What must hold: the slow runs go on on B within 30 s of the kill, from the step that was interrupted (the
steps that had completed do not run again) and complete; the queued runs run once; no run is left
RUNNING or PENDING; ``held`` and its gate survived and continue from the gate on B, without running the
steps before it again.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.ops.conftest import make_fleet, wait_for

# Real workers on a PostgreSQL database of the test's own: the same whatever DATABASE_URL says.
pytestmark = pytest.mark.own_database

HEARTBEAT_TIMEOUT = 15
# django-q2's guard calls the scheduler every 30 s; the executor writes a heartbeat every 5 s; `worker`
# sweeps for silent runs every 5 s.
SCHEDULER_TICK, HEARTBEAT_EVERY, SWEEP_EVERY = 30, 5, 5
# The stated time from a worker's death to its run going on elsewhere, with the defaults.
RESUMED_WITHIN = 30


def trace_step(key: str, sleep_ms: int, **args) -> dict:
    return {"key": key, "type": "TRANSFORM",
            "config": {"operators": [{"op": "opsTrace", "args": {"sleepMs": sleep_ms, **args}}]}}


SLOW = {
    "version": 1, "code": "crash-slow", "name": "crash-slow",
    "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": [{"id": 1}, {"id": 2}]}},
        trace_step("before", 0),
        # Minutes the first time (the worker is killed in it), at once when it runs again elsewhere.
        trace_step("slow", 0, sleepMsFirstTime=600_000),
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
    ],
    "edges": [],
    # A failed run would send its notice (webhook): a resumed run is not failed, so none goes out.
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
        "status": run.status, "error": run.error, "resume_state": run.resume_state, "resumes": run.resumes,
        "events": [[e.kind, e.worker, e.detail] for e in run.events.all()],
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

        # Another machine, alive before the crash: `manage.py worker` (its sweep takes back silent runs).
        b = fleet.start_cluster(f"cluster-b-{request.param}", command="worker")
        fleet.wait_running(b)
        fleet.kill(a)
        killed_at, facts["killed_at"] = time.monotonic(), time.time()
        facts["after_kill"] = {name: status(name) for name in ids}

        assert fleet.shell(APPROVE.format(run_id=ids["held"])) == "APPROVED"
        wait_for(lambda: status("held") == "COMPLETED", 60, "the held run to complete after the approval")
        wait_for(lambda: status("slow-1") == status("slow-2") == "COMPLETED", RESUMED_WITHIN + 30,
                 "the runs of the killed worker to be resumed and complete on B")
        facts["completed_after_seconds"] = time.monotonic() - killed_at
        wait_for(lambda: status("queued-1") == status("queued-2") == "COMPLETED", 60,
                 "the runs whose tasks died with cluster A to run")
        facts["queued_after_seconds"] = time.monotonic() - killed_at
        if request.param == "orm":  # the broker's second delivery of the slow runs (25 s) is handled
            wait_for(lambda: fleet.sql("SELECT count(*) FROM django_q_task WHERE name = ANY(%s)",
                                       ([f"run-{ids['slow-1']}", f"run-{ids['slow-2']}"],))[0][0] == 4,
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


def test_it_resumes_the_runs_of_a_killed_worker_elsewhere_within_the_stated_time(crash):
    assert crash["after_kill"]["slow-1"] == crash["after_kill"]["slow-2"] == "RUNNING"  # nobody noticed...
    for name in ("slow-1", "slow-2"):
        [run] = runs_of(crash, name)
        assert run["status"] == "COMPLETED" and run["error"] == ""  # ...until B's sweep took them back
        assert run["resumes"] == 1
        assert {k: v[0] for k, v in run["steps"].items()} == dict.fromkeys(("src", "before", "slow", "out"),
                                                                            "COMPLETED")
        assert run["steps"]["out"][2] == 2  # every record arrived
        kinds = [(kind, worker) for kind, worker, _ in run["events"]]
        assert [k for k, _ in kinds] == ["STARTED", "WORKER_LOST", "RESUMED"]
        assert kinds[0][1] == kinds[1][1] != kinds[2][1]
        assert "the worker stopped responding (no heartbeat since " in run["events"][1][2]
        # The interrupted step ran again on B: from the kill to that start is the stated time.
        slow = [t for t in crash["trace"] if t["run"] == crash["ids"][name] and t["step"] == "slow"
                and t["event"] == "start"]
        assert len(slow) == 2 and slow[0]["pid"] != slow[1]["pid"]
        resumed_after = slow[1]["t"] - crash["killed_at"]
        print(f"{crash['broker']}: run {name} went on on another worker {resumed_after:.1f} s after the kill")
        assert resumed_after < RESUMED_WITHIN
        assert run["notices"] == []  # it did not fail
    assert crash["left"] == {"COMPLETED": 5}  # nothing RUNNING, PENDING, PAUSED or FAILED is left


def test_it_never_runs_again_a_step_that_had_completed(crash):
    for name in ("slow-1", "slow-2"):
        [run] = runs_of(crash, name)
        starts = Counter(t["step"] for t in crash["trace"] if t["run"] == crash["ids"][name] and t["event"] == "start")
        assert starts == {"before": 1, "slow": 2}
        # The first delivery died with its worker (no result); B's sweep queued the run again (COMPLETED).
        # The ORM broker also delivers the first task again once Q_CLUSTER retry has passed: that delivery
        # finds the run claimed and does nothing. Redis had handed the task over for good.
        assert run["deliveries"] == (["COMPLETED", "skipped"] if crash["broker"] == "orm" else ["COMPLETED"])


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
    assert crash["queued_after_seconds"] < HEARTBEAT_TIMEOUT + SWEEP_EVERY + SCHEDULER_TICK + 30


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
