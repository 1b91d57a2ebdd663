"""Runs over REST: start (dry run, record limit, revision), list with filters, retrieve with step runs,
cancel and re-run."""

import datetime as dt

import pytest
from django.utils import timezone

from pipelines.services import save_definition
from runs import services
from runs.models import Run
from tests.fixtures import simple_definition


def test_it_starts_a_run_for_a_worker(pipeline, as_alice, alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        response = as_alice.post("/api/runs/", {"pipeline": "simple", "dryRun": True, "recordLimit": 5},
                                 format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "PENDING" and body["dryRun"] is True and body["recordLimit"] == 5
    assert body["pipeline"] == "simple" and body["revision"] == 1 and body["trigger"] == "api"
    assert body["triggeredBy"] == "alice" and body["stepRuns"] == []
    assert len(queued) == 1  # handed to a worker once the transaction committed


def test_it_starts_a_chosen_revision(pipeline, as_alice):
    save_definition(simple_definition(records=[]))
    assert as_alice.post("/api/runs/", {"pipeline": "simple"}, format="json").json()["revision"] == 2
    Run.objects.all().delete()
    assert as_alice.post("/api/runs/", {"pipeline": "simple", "revision": 1}, format="json").json()["revision"] == 1
    Run.objects.all().delete()
    missing = as_alice.post("/api/runs/", {"pipeline": "simple", "revision": 9}, format="json")
    assert missing.status_code == 400 and missing.json()["problems"][0]["field"] == "revision"


def test_it_refuses_a_second_active_run(pipeline, as_alice):
    assert as_alice.post("/api/runs/", {"pipeline": "simple"}, format="json").status_code == 201
    second = as_alice.post("/api/runs/", {"pipeline": "simple"}, format="json")
    assert second.status_code == 409 and "already has an active run" in second.json()["detail"]
    allowed = as_alice.post("/api/runs/", {"pipeline": "simple", "allowConcurrent": True}, format="json")
    assert allowed.status_code == 201


def test_it_refuses_an_unknown_or_disabled_pipeline(pipeline, as_alice):
    unknown = as_alice.post("/api/runs/", {"pipeline": "smple"}, format="json")
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "no pipeline 'smple'"}
    pipeline.enabled = False
    pipeline.save()
    disabled = as_alice.post("/api/runs/", {"pipeline": "simple"}, format="json")
    assert disabled.status_code == 409 and "disabled" in disabled.json()["detail"]


@pytest.fixture
def three_runs(pipeline):
    other = save_definition(simple_definition(code="other"))
    a = services.create_run(pipeline, dry_run=True)
    b = services.create_run(other)
    c = services.create_run(pipeline, dry_run=True)
    Run.objects.filter(pk=a.pk).update(status="COMPLETED", created_at=timezone.now() - dt.timedelta(days=3))
    Run.objects.filter(pk=b.pk).update(status="FAILED", created_at=timezone.now() - dt.timedelta(days=1))
    return a.pk, b.pk, c.pk


def test_it_lists_runs_newest_first_with_filters(three_runs, as_bob):
    a, b, c = three_runs

    def ids(**query):
        response = as_bob.get("/api/runs/", query)
        assert response.status_code == 200, response.content
        return [r["id"] for r in response.json()["results"]]

    assert ids() == [c, b, a]
    assert ids(pipeline="simple") == [c, a]
    assert ids(status="FAILED") == [b]
    assert as_bob.get("/api/runs/?status=FAILED&status=COMPLETED").json()["count"] == 2
    two_days_ago = (timezone.now() - dt.timedelta(days=2)).isoformat()
    assert ids(since=two_days_ago) == [c, b]
    assert ids(until=two_days_ago) == [a]
    assert ids(since=timezone.now().date().isoformat()) == [c]


def test_it_refuses_bad_filters(three_runs, as_bob):
    for query, field in (({"status": "DONE"}, "status[0]"), ({"since": "yesterday"}, "since"),
                         ({"limit": 0}, "limit"), ({"offset": -1}, "offset"), ({"limit": ""}, "limit")):
        response = as_bob.get("/api/runs/", query)
        assert response.status_code == 400, query
        assert response.json()["problems"][0]["field"] == field


def test_it_shows_a_run_with_its_step_runs(pipeline, as_bob):
    run = services.create_run(pipeline)
    services.run_now(run)
    body = as_bob.get(f"/api/runs/{run.pk}/").json()
    assert body["status"] == "COMPLETED" and body["durationSeconds"] >= 0 and body["recordErrors"] == 0
    steps = {s["stepKey"]: s for s in body["stepRuns"]}
    assert list(steps) == ["src", "clean", "out"]
    assert steps["clean"]["recordsIn"] == 2 and steps["clean"]["recordsOut"] == 2
    assert steps["out"]["status"] == "COMPLETED" and steps["out"]["durationMs"] is not None


def test_it_answers_404_for_an_unknown_run(as_bob, db):
    assert as_bob.get("/api/runs/12345/").json() == {"detail": "no run 12345"}
    assert as_bob.get(f"/api/runs/{2**80}/").status_code == 404


def test_it_cancels_an_active_run_but_not_an_ended_one(pipeline, as_alice):
    run = services.create_run(pipeline)
    response = as_alice.post(f"/api/runs/{run.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "CANCELLED" and "alice" in response.json()["error"]
    again = as_alice.post(f"/api/runs/{run.pk}/cancel/")
    assert again.status_code == 409 and "already ended (CANCELLED)" in again.json()["detail"]


def test_it_reruns_the_same_revision_with_the_same_options(pipeline, as_alice):
    run = services.create_run(pipeline, dry_run=True, record_limit=1)
    Run.objects.filter(pk=run.pk).update(status="FAILED")
    save_definition(simple_definition(records=[]))  # revision 2 exists; the re-run keeps revision 1
    response = as_alice.post(f"/api/runs/{run.pk}/rerun/")
    assert response.status_code == 201
    body = response.json()
    assert body["id"] != run.pk and body["revision"] == 1
    assert body["dryRun"] is True and body["recordLimit"] == 1 and body["trigger"] == "rerun"


def test_it_refuses_a_rerun_while_the_run_is_active(pipeline, as_alice):
    run = services.create_run(pipeline)
    response = as_alice.post(f"/api/runs/{run.pk}/rerun/", {}, format="json")
    assert response.status_code == 409
