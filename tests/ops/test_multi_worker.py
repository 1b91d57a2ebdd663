"""Several workers: two real ``manage.py qcluster`` processes, 50 runs started at once, every run and every
gate resume delivered twice; each run executes exactly once, parallel steps and the resume included.
Once with Redis as the broker and once with the ORM broker, both on PostgreSQL."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import pytest

from tests.ops.conftest import pgid_of, wait_for

# Real workers on a PostgreSQL database of the test's own: the same whatever DATABASE_URL says.
pytestmark = pytest.mark.own_database

RUNS = 50
STEP_SLEEP_MS = 200


def trace_step(key: str) -> dict:
    return {"key": key, "type": "TRANSFORM",
            "config": {"operators": [{"op": "opsTrace", "args": {"sleepMs": STEP_SLEEP_MS}}]}}


def fan_out(code: str) -> dict:
    """src -> (left || right) -> gate -> after -> out: two parallel steps, a gate, a step after it."""
    return {
        "version": 1,
        "code": code,
        "name": code,
        "steps": [
            {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory",
             "config": {"data": [{"id": 1}, {"id": 2}, {"id": 3}]}},
            trace_step("left"),
            trace_step("right"),
            {"key": "gate", "type": "GATE", "config": {"approvalType": "MANUAL"}},
            trace_step("after"),
            {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
        ],
        "edges": [{"from": "src", "to": "left"}, {"from": "src", "to": "right"}, {"from": "left", "to": "gate"},
                  {"from": "right", "to": "gate"}, {"from": "gate", "to": "after"}, {"from": "after", "to": "out"}],
        "context": {"parallelExecution": {"enabled": True, "maxConcurrentSteps": 4}},
    }


START = """
import json
from django.db import transaction
from pipelines.services import save_definition
from runs import services
pipeline = save_definition(json.loads({definition!r}))
ids = []
with transaction.atomic():  # all of them reach the broker at once, when this commits
    for _ in range({n}):
        ids.append(services.start_run(pipeline, allow_concurrent=True).pk)
        # Each run a second time, right behind the first: two workers take the two deliveries together.
        transaction.on_commit(lambda run_id=ids[-1]: services.enqueue(run_id))
print(json.dumps(ids))
"""

APPROVE = """
import json
from django.db import transaction
from django.contrib.auth import get_user_model
from gates import services as gates
from runs import services
user, _ = get_user_model().objects.get_or_create(username="ops", defaults={{"is_superuser": True}})
ids = json.loads({ids!r})
with transaction.atomic():
    for run_id in ids:
        gates.approve(run_id, "gate", user)
        # Every resume a second time, right behind the first.
        transaction.on_commit(lambda run_id=run_id: services.enqueue_resume(run_id))
print(json.dumps(len(ids)))
"""

REPORT = """
import json
from django_q.models import Task
from gates.models import GateRequest
from runs.models import Run
ids = json.loads({ids!r})
results = {{}}
for task in Task.objects.filter(group="runs"):
    results.setdefault(task.name, []).append(str(task.result))
report = {{}}
for run in Run.objects.filter(pk__in=ids).prefetch_related("step_runs", "gate_requests"):
    report[run.pk] = {{
        "status": run.status, "error": run.error,
        "steps": {{s.step_key: [s.status, s.attempts, s.records_in] for s in run.step_runs.all()}},
        "gates": [[g.status, g.decided_by.username if g.decided_by else None] for g in run.gate_requests.all()],
        "execute": sorted(results.get(f"run-{{run.pk}}", [])),
        "resume": sorted(results.get(f"resume-{{run.pk}}", [])),
    }}
print(json.dumps(report))
"""


@pytest.fixture(params=["redis", "orm"])
def broker(request):
    if request.param == "redis":
        return request.getfixturevalue("redis_url")
    return None


def test_it_executes_each_of_50_runs_exactly_once_on_two_clusters(postgres_url, broker, fleet_factory):
    from pipelines import registry

    if "GATE" not in registry.step_types:
        pytest.skip("no GATE step type is registered (gates.step is not loaded)")
    kind = "redis" if broker else "orm"
    fleet = fleet_factory(postgres_url, broker, DATAHUB_WORKERS=2)
    clusters = [fleet.start_cluster(f"cluster-{kind}-{n}") for n in (1, 2)]
    for cluster in clusters:
        fleet.wait_running(cluster)

    ids = fleet.shell(START.format(definition=json.dumps(fan_out(f"fan-out-{kind}")), n=RUNS))
    assert len(ids) == RUNS

    def count(status):
        return fleet.sql("SELECT count(*) FROM runs_run WHERE id = ANY(%s) AND status = %s", (ids, status))[0][0]

    def waiting_gates():
        return fleet.sql("SELECT count(*) FROM gates_gaterequest WHERE run_id = ANY(%s) AND status = 'PENDING'",
                         (ids,))[0][0]

    try:
        wait_for(lambda: count("PAUSED") == RUNS and waiting_gates() == RUNS, 120, f"{RUNS} runs paused at the gate")
        assert fleet.shell(APPROVE.format(ids=json.dumps(ids))) == RUNS
        wait_for(lambda: count("COMPLETED") == RUNS, 120, f"{RUNS} runs completed")
        # Every delivery has been handled (and its result saved) once there are 4 per run.
        wait_for(lambda: fleet.sql("SELECT count(*) FROM django_q_task WHERE name = ANY(%s)",
                                   ([f"{p}-{i}" for i in ids for p in ("run", "resume")],))[0][0] == 4 * RUNS,
                 60, "every delivery to be acknowledged")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{fleet.logs_text()}") from None

    trace = fleet.trace()
    # The workers that ran the steps, and which cluster each belongs to, while they are still alive.
    cluster_of = {pid: pgid_of(pid) for pid in {line["pid"] for line in trace}}
    report = {int(k): v for k, v in fleet.shell(REPORT.format(ids=json.dumps(ids))).items()}
    assert fleet.sql("SELECT count(*) FROM runs_run WHERE status IN ('PENDING', 'RUNNING', 'PAUSED')")[0][0] == 0

    by_run = defaultdict(list)
    for line in trace:
        by_run[line["run"]].append(line)
    assert set(by_run) == set(ids)
    for run_id in ids:
        run = report[run_id]
        assert run["status"] == "COMPLETED" and run["error"] == "", run
        # One StepRun per step, each completed on its first attempt: nothing ran twice.
        assert run["steps"] == {"src": ["COMPLETED", 1, 0], "left": ["COMPLETED", 1, 3],
                                "right": ["COMPLETED", 1, 3], "gate": ["COMPLETED", 1, 6],
                                "after": ["COMPLETED", 1, 6], "out": ["COMPLETED", 1, 6]}, run
        # Claims: of the two deliveries of the run one executed it (to the gate) and one found it claimed;
        # of the two deliveries of the resume one continued it and one found it claimed.
        assert run["execute"] == ["PAUSED", "skipped"], run
        assert run["resume"] == ["COMPLETED", "skipped"], run
        assert run["gates"] == [["APPROVED", "ops"]], run
        # The steps' own record of where they ran: each traced step ran once (the resume did not run the
        # steps before the gate again), and the two parallel steps overlapped in time.
        events = Counter((line["step"], line["event"]) for line in by_run[run_id])
        assert events == {(s, e): 1 for s in ("left", "right", "after") for e in ("start", "end")}, by_run[run_id]
        at = {(line["step"], line["event"]): line["t"] for line in by_run[run_id]}
        assert at["left", "start"] < at["right", "end"] and at["right", "start"] < at["left", "end"], at

    # Both clusters did part of the work.
    assert set(cluster_of.values()) == {c.pid for c in clusters}, (cluster_of, [c.pid for c in clusters])
