"""The analytics numbers (runs, success rate, duration percentiles, records and records/s, failed records
by step and message, days, real time), the page that shows them, and its fixed number of queries."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pipelines.services import save_definition
from runs import analytics
from runs.models import RecordError, Run, RunStatus, StepRun
from tests.fixtures import simple_definition

pytestmark = pytest.mark.django_db


@pytest.fixture
def pipeline():
    return save_definition(simple_definition("shop"))


def make_run(pipeline, status=RunStatus.COMPLETED, seconds=10.0, records=(5, 5), days_ago=0, errors=(), **kw):
    now = timezone.now() - timedelta(days=days_ago)
    run = Run.objects.create(pipeline=pipeline, revision=pipeline.current_revision, status=status, **kw)
    started = now - timedelta(seconds=seconds) if status != RunStatus.PENDING else None
    finished = now if status in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED) else None
    Run.objects.filter(pk=run.pk).update(created_at=now - timedelta(seconds=seconds), started_at=started,
                                         finished_at=finished)
    StepRun.objects.bulk_create([StepRun(run=run, position=i, step_key=f"s{i}", records_out=n, status="COMPLETED",
                                         finished_at=finished) for i, n in enumerate(records)])
    RecordError.objects.bulk_create([RecordError(run=run, step_key=step, record={}, message=msg) for step, msg in errors])
    return run


def test_it_counts_runs_success_and_records(pipeline):
    make_run(pipeline, seconds=10, records=(100, 80))
    make_run(pipeline, seconds=30, records=(50, 60))
    make_run(pipeline, RunStatus.FAILED, seconds=20, records=(0,))
    make_run(pipeline, RunStatus.CANCELLED, seconds=40, records=(0,))
    make_run(pipeline, RunStatus.COMPLETED, seconds=5, records=(999,), dry_run=True)  # a preview: left out
    data = analytics.summary()
    assert data.runs == 4 and data.by_status == {"COMPLETED": 2, "FAILED": 1, "CANCELLED": 1}
    assert data.success_rate == 50.0
    assert data.records == 160  # the busiest step of each run: 100 + 60
    assert data.records_per_second == pytest.approx(160 / 100, rel=1e-3)


def test_it_takes_nearest_rank_percentiles_of_the_duration(pipeline):
    for seconds in range(1, 101):
        make_run(pipeline, seconds=seconds, records=())
    make_run(pipeline, RunStatus.RUNNING, seconds=5000)  # not ended: not counted
    data = analytics.summary()
    assert {p: round(s) for p, s in data.durations.items()} == {50: 50, 95: 95, 99: 99}


def test_it_groups_failed_records_by_step_and_message(pipeline):
    make_run(pipeline, errors=[("check", "sku is required")] * 3 + [("load", "HTTP 500")] * 2)
    make_run(pipeline, errors=[("check", "price < 0")])
    data = analytics.summary()
    assert data.failed_by_step == [("check", 4), ("load", 2)]
    assert data.failed_by_message == [("check", "sku is required", 3), ("load", "HTTP 500", 2), ("check", "price < 0", 1)]


def test_it_keeps_to_the_window_and_the_pipeline_and_tells_days(pipeline):
    other = save_definition(simple_definition("other"))
    make_run(pipeline, days_ago=2, records=(7,))
    make_run(pipeline, days_ago=40)
    make_run(other)
    data = analytics.summary(pipeline.pk, days=14)
    assert data.runs == 1
    assert len(data.trend) == 14
    two_days_ago = timezone.localdate() - timedelta(days=2)
    assert [d for d in data.trend if d["runs"]] == [
        {"date": two_days_ago, "runs": 1, "failed": 0, "completed": 1, "records": 7}]
    assert analytics.summary(days=90).runs == 3


def test_it_shows_what_runs_now(pipeline):
    make_run(pipeline, RunStatus.PENDING)
    make_run(pipeline, RunStatus.RUNNING, records=(3,))
    make_run(pipeline, RunStatus.PAUSED)
    make_run(pipeline, records=(40, 2))  # its steps ended just now
    make_run(pipeline, days_ago=1, records=(1000,))  # long ago
    data = analytics.summary()
    assert data.active == {"queued": 1, "running": 1, "paused": 1}
    assert data.records_last_minute == 42


def page_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_page_makes_the_same_queries_for_3_runs_as_for_60(pipeline, alice):
    client = Client()
    client.force_login(alice)
    for _ in range(3):
        make_run(pipeline, errors=[("s0", "bad")])
    few = page_queries(client, "/analytics/")
    for n in range(57):
        make_run(pipeline, RunStatus.FAILED if n % 3 else RunStatus.COMPLETED, days_ago=n % 10,
                 errors=[(f"s{n % 4}", f"bad {n % 7}")])
    many = page_queries(client, "/analytics/")
    assert few == many
    assert page_queries(client, "/analytics/?pipeline=shop") == many + 1  # finding the pipeline
    with CaptureQueriesContext(connection) as queries:
        analytics.summary()
    assert len(queries) == analytics.QUERY_COUNT


def test_the_page_shows_numbers_with_thousands_separators(pipeline, alice):
    make_run(pipeline, records=(1234567,), errors=[("check", "<b>sku</b> missing")])
    client = Client()
    client.force_login(alice)
    page = client.get("/analytics/?pipeline=shop&days=30").content.decode()
    assert '<div class="value" id="stat-records">1,234,567</div>' in page
    assert "&lt;b&gt;sku&lt;/b&gt; missing" in page  # error messages are escaped
    assert 'option value="30" selected' in page
    realtime = client.get("/analytics/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="realtime").content.decode()
    assert realtime.startswith('\n  <section class="panel" id="realtime"') or 'id="realtime"' in realtime[:200]
    assert "<html" not in realtime


def test_each_pipeline_links_to_its_analytics(pipeline, alice):
    client = Client()
    client.force_login(alice)
    assert 'href="/analytics/?pipeline=shop"' in client.get("/pipelines/").content.decode()


def test_it_answers_bad_filters_and_needs_the_permission(pipeline, alice, charlie):
    client = Client()
    client.force_login(alice)
    page = client.get("/analytics/?pipeline=nope&days=abc").content.decode()
    assert "There is no pipeline “nope”" in page and 'option value="14" selected' in page
    assert Client().get("/analytics/")["Location"].startswith("/accounts/login/")
    outsider = Client()
    outsider.force_login(charlie)
    assert outsider.get("/analytics/").status_code == 403
