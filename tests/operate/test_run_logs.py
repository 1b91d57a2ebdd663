"""Run logs: the lines a run writes at its level (per pipeline or the hub's), the explorer's filters and
JSON export, a run's log page, bad filters named at their field, permissions, and retention."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from pipelines import hub_settings
from pipelines.errors import DefinitionError
from pipelines.services import save_definition
from runs import retention, run_logs, services
from runs.models import RunLog
from tests.fixtures import simple_definition

pytestmark = pytest.mark.django_db


def run(definition):
    return services.run_now(services.create_run(save_definition(definition))).run


def failing(code="bad", records=3, **context):
    d = simple_definition(code, records=[{"sku": None}] * records, **context)
    d["steps"].insert(2, {"key": "check", "type": "VALIDATE", "config": {"fields": {"sku": {"required": True}}}})
    return d


def lines(r):
    return list(RunLog.objects.filter(run=r).values_list("level", "step_key", "message"))


def test_a_run_logs_its_steps_at_the_default_level():
    r = run(simple_definition("shop"))
    got = lines(r)
    assert got[0] == ("INFO", "", "run started with 3 steps")
    assert ("INFO", "src", "step started (attempt 1)") in got
    assert any(step == "clean" and msg.startswith("step completed: 2 in, 2 out, 0 errors in ") for _, step, msg in got)
    assert got[-1] == ("INFO", "", "run completed")
    line = RunLog.objects.filter(run=r, step_key="clean", message__startswith="step completed").get()
    assert line.data["recordsOut"] == 2 and line.data["status"] == "COMPLETED"


def test_the_pipeline_level_decides(settings):
    assert lines(run(simple_definition("quiet", logLevel="ERROR"))) == []
    r = run(simple_definition("loud", logLevel="PIPELINE"))
    assert [m for _, _, m in lines(r)] == ["run started with 3 steps", "run completed"]


def test_the_hub_level_applies_without_a_pipeline_level(admin_user, monkeypatch):
    monkeypatch.delenv("DATAHUB_RUN_LOG_LEVEL", raising=False)
    hub_settings.save({"runLogLevel": "PIPELINE"}, admin_user)
    assert len(lines(run(simple_definition("shop")))) == 2


def test_debug_logs_failed_records_up_to_a_limit(monkeypatch):
    monkeypatch.setattr(run_logs, "RECORD_LINES", 2)
    r = run(failing(records=5, logLevel="DEBUG"))
    record_lines = [m for _, step, m in lines(r) if step == "check" and m.startswith("record failed")]
    assert len(record_lines) == 2 and "sku" in record_lines[0]
    assert ("DEBUG", "check", "3 more record lines not logged (see the record errors)") in lines(r)


def test_errors_are_logged_at_the_error_level(settings):
    settings.DATAHUB_HTTP_ALLOW = []
    d = simple_definition("broken", logLevel="ERROR")
    d["steps"][0] = {"key": "src", "type": "EXTRACT", "adapterCode": "httpApi",
                     "config": {"url": "http://127.0.0.1:1/items"}}  # loopback: refused by the guard
    r = run(d)
    assert r.status == "FAILED"
    got = lines(r)
    assert [(level, step) for level, step, _ in got] == [("ERROR", "src"), ("ERROR", "")]
    assert got[0][2].startswith("step failed after") and got[1][2].startswith("run failed")


def test_an_unknown_level_is_refused_when_saved():
    with pytest.raises(DefinitionError) as caught:
        save_definition(simple_definition("x", logLevel="LOUD"))
    assert "context.logLevel" in str(caught.value)


@pytest.fixture
def viewer(alice):
    client = Client()
    client.force_login(alice)
    return client


def test_the_explorer_filters_and_exports(viewer):
    good = run(simple_definition("shop"))
    bad = run(failing("other", logLevel="DEBUG"))
    page = viewer.get("/logs/").content.decode()
    assert "run started with 3 steps" in page and f'href="/runs/{bad.pk}/log/"' in page
    page = viewer.get("/logs/", {"pipeline": "other", "level": "WARNING"}).content.decode()
    assert "record failed" in page and "run started" not in page
    page = viewer.get("/logs/", {"run": good.pk, "step": "clean", "q": "COMPLETED: 2 IN"}).content.decode()
    assert "step completed: 2 in, 2 out" in page and "step started" not in page
    tomorrow = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert "No log lines" in viewer.get("/logs/", {"since": tomorrow}).content.decode()
    export = viewer.get("/logs/", {"run": good.pk, "format": "json"})
    assert export["Content-Type"] == "application/json"
    body = json.loads(export.content)
    assert body["count"] == RunLog.objects.filter(run=good).count() and body["truncated"] is False
    first = body["lines"][0]
    assert set(first) == {"id", "time", "level", "pipeline", "run", "step", "message", "data"}
    assert first["pipeline"] == "shop" and first["run"] == good.pk


def test_bad_filters_are_named_at_their_field(viewer):
    run(simple_definition("shop"))
    response = viewer.get("/logs/", {"run": "abc", "since": "yesterday", "level": "LOUD"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "Enter a whole number." in page and "Enter a valid date/time." in page and "Select a valid choice" in page
    assert "No log lines" in page
    assert viewer.get("/logs/", {"run": str(2**70)}).status_code == 200
    page = viewer.get("/logs/", {"since": "2026-01-02", "until": "2026-01-01"}).content.decode()
    assert "must be after From" in page


def test_a_run_has_its_log_page_and_a_tab(viewer):
    r = run(failing("other"))
    assert f'href="/runs/{r.pk}/log/"' in viewer.get(f"/runs/{r.pk}/").content.decode()
    page = viewer.get(f"/runs/{r.pk}/log/").content.decode()
    assert "run started with 4 steps" in page and 'class="active" id="tab-log"' in page
    page = viewer.get(f"/runs/{r.pk}/log/", {"step": "check"}).content.decode()
    assert "run started" not in page and "step completed" in page
    assert viewer.get("/runs/999999/log/").status_code == 404


def test_it_needs_the_permission(charlie):
    client = Client()
    client.force_login(charlie)
    assert client.get("/logs/").status_code == 403
    assert Client().get("/logs/")["Location"].startswith("/accounts/login/")


def test_retention_deletes_old_lines(monkeypatch):
    monkeypatch.delenv("DATAHUB_KEEP_RUN_LOGS_DAYS", raising=False)
    r = run(simple_definition("shop"))
    total = RunLog.objects.filter(run=r).count()
    RunLog.objects.filter(pk=RunLog.objects.filter(run=r).first().pk).update(created_at=timezone.now() - timedelta(days=20))
    assert retention.prune()["log_lines"] == 1
    assert RunLog.objects.filter(run=r).count() == total - 1


def test_the_explorer_makes_the_same_queries_for_few_and_many_lines(viewer):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(params) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert viewer.get("/logs/", params).status_code == 200
        return len(captured)

    run(simple_definition("shop"))
    few = queries({}), queries({"format": "json"})
    for n in range(8):
        run(simple_definition(f"p{n}", logLevel="DEBUG"))
    assert (queries({}), queries({"format": "json"})) == few


def test_the_api_lists_lines_with_the_same_filters(alice, charlie):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    r = run(failing("other", records=1, logLevel="DEBUG"))
    run(simple_definition("shop"))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=alice).key}")
    page = api.get("/api/logs/", {"pipeline": "other", "level": "WARNING", "limit": 5}).json()
    assert page["count"] == 1 and page["results"][0]["message"] == "record failed: sku is required"
    assert page["results"][0] | {"id": 0, "time": ""} == {
        "id": 0, "time": "", "level": "WARNING", "pipeline": "other", "run": r.pk, "step": "check",
        "message": "record failed: sku is required", "data": {"attempts": 1}}
    assert api.get("/api/logs/", {"run": r.pk}).json()["count"] == RunLog.objects.filter(run=r).count()
    bad = api.get("/api/logs/", {"level": "LOUD", "run": "x"})
    assert bad.status_code == 400 and {p["field"] for p in bad.json()["problems"]} == {"level", "run"}
    outsider = APIClient()
    outsider.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=charlie).key}")
    assert outsider.get("/api/logs/").status_code == 403
    assert APIClient().get("/api/logs/").status_code == 401


def test_an_active_runs_log_polls_itself(viewer):
    pending = services.create_run(save_definition(simple_definition("waiting")))
    page = viewer.get(f"/runs/{pending.pk}/log/").content.decode()
    assert f'hx-get="/runs/{pending.pk}/log/?' in page and 'hx-trigger="every 3s"' in page
    part = viewer.get(f"/runs/{pending.pk}/log/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="run-log-lines")
    body = part.content.decode()
    assert '<section class="panel" id="run-log-lines"' in body and "<html" not in body and "times in UTC" in body
    ended = run(simple_definition("done"))
    assert "hx-trigger" not in viewer.get(f"/runs/{ended.pk}/log/").content.decode().split('id="run-log-lines"')[1][:200]


def test_only_the_pipelines_one_may_use_count_in_logs_and_analytics(viewer, bob):
    """A pipeline with owners (pipelines.access) is someone else's: its lines, runs and figures stay out."""
    mine = run(simple_definition("mine"))
    theirs = run(simple_definition("theirs"))
    theirs.pipeline.owners.add(bob)
    page = viewer.get("/logs/").content.decode()
    assert f'href="/runs/{mine.pk}/log/"' in page and f'href="/runs/{theirs.pk}/log/"' not in page
    assert viewer.get(f"/runs/{theirs.pk}/log/").status_code == 404
    assert viewer.get("/logs/", {"run": theirs.pk, "format": "json"}).json()["count"] == 0
    analytics_page = viewer.get("/analytics/").content.decode()
    assert '<div class="value" id="stat-runs">1</div>' in analytics_page and "theirs" not in analytics_page
