from datetime import timedelta

import pytest
from django.utils import timezone

from pipelines.services import save_definition
from runs import dashboard_tiles
from runs.models import Run
from runs.services import create_run, run_now
from tests.fixtures import simple_definition
from tests.web.conftest import htmx

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_shows_pipelines_with_their_last_run(as_bob, pipeline):
    save_definition(simple_definition("never"))
    run = run_now(create_run(pipeline)).run
    page = as_bob.get("/").content.decode()
    assert f'href="/runs/{run.pk}/"' in page and "never run" in page
    assert "s-completed" in page


def test_it_shows_runs_in_progress_and_refreshes_them(as_bob, pipeline):
    active = create_run(pipeline)
    page = as_bob.get("/").content.decode()
    section = page.split('id="active-runs"')[1].split("</section>")[0]
    assert f'href="/runs/{active.pk}/"' in section and 'hx-trigger="every 3s"' in page
    html = as_bob.get("/", **htmx(target="active-runs")).content.decode()
    assert html.lstrip().startswith('<section class="panel" id="active-runs"')


def test_it_shows_failures_of_the_last_day_only(as_bob, pipeline):
    recent = create_run(pipeline, allow_concurrent=True)
    old = create_run(pipeline, allow_concurrent=True)
    now = timezone.now()
    Run.objects.filter(pk=recent.pk).update(status="FAILED", finished_at=now - timedelta(hours=2))
    Run.objects.filter(pk=old.pk).update(status="FAILED", finished_at=now - timedelta(days=3))
    section = as_bob.get("/").content.decode().split('id="failures"')[1].split("</section>")[0]
    assert f'href="/runs/{recent.pk}/"' in section and f'href="/runs/{old.pk}/"' not in section


def test_it_charts_runs_and_records_per_day(as_bob, pipeline):
    run_now(create_run(pipeline))
    page = as_bob.get("/").content.decode()
    assert '<svg class="chart"' in page and page.count('class="day"') == 14
    assert "1 run, 0 failed, 2 records" in page


def test_it_shows_the_tiles_other_apps_register(as_bob, pipeline, monkeypatch):
    # gates registers its figure from GatesConfig.ready (runs never imports gates).
    page = as_bob.get("/").content.decode()
    assert 'id="gates-waiting"' in page and "Gates waiting" in page and "Runs, 14 days" not in page
    monkeypatch.setattr(dashboard_tiles, "_TILES", {})
    page = as_bob.get("/").content.decode()
    assert "Gates waiting" not in page and "Runs, 14 days" in page
    dashboard_tiles.register_tile(dashboard_tiles.Tile("queued", "Queued", lambda user: 7, "/runs/", "see them"))
    assert '<div class="label">Queued</div><div class="value">7</div>' in as_bob.get("/").content.decode()


def test_it_has_empty_states(as_bob, db):
    page = as_bob.get("/").content.decode()
    assert "Nothing is running" in page and "No failures" in page and "No pipelines yet" in page
