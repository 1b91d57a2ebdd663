"""/healthz for load balancers and /metrics for Prometheus."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from pipelines.services import save_definition
from runs import services
from runs.models import Run, RunStatus, StepRun
from tests.fixtures import simple_definition

pytestmark = pytest.mark.django_db


def a_finished_task(stopped=None):
    """What a worker leaves behind when it finishes a task (the reaper's, every minute)."""
    from django_q.models import Task

    stopped = stopped or timezone.now()
    return Task.objects.create(id=f"t{Task.objects.count()}", name="reaper", func="runs.tasks.reap_stale_runs",
                               started=stopped - timedelta(seconds=1), stopped=stopped, success=True)


def metrics_of(response) -> dict:
    """{(name, labels as a sorted tuple): value} of a Prometheus text response."""
    values = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def completed_runs(code, n):
    pipeline = save_definition(simple_definition(code))
    for _ in range(n):
        services.run_now(services.create_run(pipeline))
    return pipeline


# --- /healthz -----------------------------------------------------------------------------------------


def test_it_is_healthy_when_the_database_the_broker_and_a_worker_answer():
    a_finished_task()
    response = Client().get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "workers"}
    assert all(c["ok"] for c in body["checks"].values())
    assert body["checks"]["broker"]["kind"] == "orm"
    assert body["checks"]["workers"]["lastSeenSecondsAgo"] < 5
    assert response["Cache-Control"].startswith("max-age=0")


def test_it_fails_when_no_worker_showed_life_within_the_limit(settings):
    settings.DATAHUB_HEALTH_WORKER_SECONDS = 60
    a_finished_task(timezone.now() - timedelta(seconds=90))
    response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["workers"] == {"ok": False, "lastSeenSecondsAgo": pytest.approx(90, abs=5),
                                         "limitSeconds": 60, "ms": body["checks"]["workers"]["ms"]}
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]


def test_it_counts_a_running_runs_heartbeat_as_a_worker_alive(settings):
    """Workers busy with long runs finish no task for a while; their runs' heartbeats show they live."""
    settings.DATAHUB_HEALTH_WORKER_SECONDS = 60
    a_finished_task(timezone.now() - timedelta(hours=1))
    run = services.create_run(save_definition(simple_definition("busy")))
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, heartbeat_at=timezone.now())
    assert Client().get("/healthz").status_code == 200


def test_it_fails_with_no_worker_ever_seen():
    body = Client().get("/healthz").json()
    assert body["checks"]["workers"]["ok"] is False and body["checks"]["workers"]["lastSeenSecondsAgo"] is None


def test_it_answers_only_the_checks_asked_for():
    response = Client().get("/healthz?checks=database,broker")  # no worker ever seen, not asked
    assert response.status_code == 200 and set(response.json()["checks"]) == {"database", "broker"}
    response = Client().get("/healthz?checks=database,disk")
    assert response.status_code == 400 and "disk" in response.json()["error"]


def test_it_names_the_failure_without_revealing_it(monkeypatch):
    from datahub_project import ops

    def broken():
        raise ConnectionError("redis://:s3cret-password@10.1.2.3:6379/0 refused")

    monkeypatch.setitem(ops.CHECKS, "broker", broken)
    a_finished_task()
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == {"ok": False, "error": "ConnectionError",
                                                   "ms": response.json()["checks"]["broker"]["ms"]}
    assert b"s3cret" not in response.content and b"10.1.2.3" not in response.content


def test_it_checks_the_redis_broker_with_a_ping(settings, monkeypatch):
    from datahub_project import ops

    pings = []

    class FakeRedis:
        def ping(self):
            pings.append(1)
            return True

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "redis": "redis://127.0.0.1:6379/0"}
    monkeypatch.setattr(ops, "_redis", lambda: FakeRedis())
    a_finished_task()
    body = Client().get("/healthz").json()
    assert body["checks"]["broker"]["ok"] and body["checks"]["broker"]["kind"] == "redis" and pings == [1]


def test_it_needs_no_login_and_refuses_writes(client):
    a_finished_task()
    assert client.get("/healthz").status_code == 200
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405


# --- /metrics -----------------------------------------------------------------------------------------


def test_it_exposes_runs_records_and_step_durations():
    completed_runs("metrics-a", 3)
    completed_runs("metrics-b", 1)
    StepRun.objects.filter(run__pipeline__code="metrics-a", step_key="clean").update(duration_ms=2500)
    services.create_run(save_definition(simple_definition("metrics-c")))  # PENDING
    a_finished_task()

    response = Client().get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    m = metrics_of(response)
    assert m[("datahub_runs", (("pipeline", "metrics-a"), ("status", "COMPLETED")))] == 3
    assert m[("datahub_runs", (("pipeline", "metrics-c"), ("status", "PENDING")))] == 1
    assert m[("datahub_runs_by_status", (("status", "COMPLETED"),))] == 4
    assert m[("datahub_runs_by_status", (("status", "FAILED"),))] == 0
    # Each run: src puts out 2, clean 2, out 2.
    assert m[("datahub_records_processed", (("pipeline", "metrics-a"),))] == 18
    assert m[("datahub_records_processed", (("pipeline", "metrics-b"),))] == 6
    assert m[("datahub_record_errors", (("pipeline", "metrics-a"),))] == 0
    steps_a = StepRun.objects.filter(run__pipeline__code="metrics-a", duration_ms__isnull=False).count()
    assert m[("datahub_step_duration_seconds_count", (("pipeline", "metrics-a"),))] == steps_a == 9
    assert m[("datahub_step_duration_seconds_bucket", (("le", "1.0"), ("pipeline", "metrics-a")))] == 6
    assert m[("datahub_step_duration_seconds_bucket", (("le", "5.0"), ("pipeline", "metrics-a")))] == 9
    assert m[("datahub_step_duration_seconds_sum", (("pipeline", "metrics-a"),))] >= 7.5
    assert m[("datahub_worker_last_seen_seconds", ())] < 5
    assert m[("datahub_queue_tasks", (("broker", "orm"),))] == 0


def test_it_exposes_waiting_gates_and_their_age():
    from gates.models import GateRequest

    pipeline = save_definition(simple_definition("gated-metrics"))
    for minutes in (5, 30):
        run = services.create_run(pipeline, allow_concurrent=True)
        Run.objects.filter(pk=run.pk).update(status=RunStatus.PAUSED)
        gate = GateRequest.objects.create(run=run, step_key="clean", approval_type="MANUAL")
        GateRequest.objects.filter(pk=gate.pk).update(created_at=timezone.now() - timedelta(minutes=minutes))
    decided = services.create_run(pipeline, allow_concurrent=True)
    GateRequest.objects.create(run=decided, step_key="clean", approval_type="MANUAL", status="APPROVED")

    m = metrics_of(Client().get("/metrics"))
    assert m[("datahub_gates_waiting", (("pipeline", "gated-metrics"),))] == 2
    assert m[("datahub_gates_waiting_oldest_seconds", (("pipeline", "gated-metrics"),))] == pytest.approx(1800, abs=30)


def test_it_asks_for_the_bearer_token_when_one_is_set(settings):
    settings.DATAHUB_METRICS_TOKEN = "scrape-me"
    response = Client().get("/metrics")
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Basic scrape-me").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").status_code == 200


def test_it_computes_metrics_with_a_fixed_number_of_queries(django_assert_max_num_queries):
    from gates.models import GateRequest

    def scrape():
        with django_assert_max_num_queries(8):
            assert Client().get("/metrics").status_code == 200

    completed_runs("few", 1)
    scrape()
    for n in range(6):
        pipeline = completed_runs(f"many-{n}", 3)
        run = services.create_run(pipeline, allow_concurrent=True)
        Run.objects.filter(pk=run.pk).update(status=RunStatus.PAUSED)
        GateRequest.objects.create(run=run, step_key="clean", approval_type="MANUAL")
    scrape()
