import pytest

from pipelines.services import save_definition
from runs.models import Run
from runs.services import create_run
from tests.fixtures import simple_definition
from tests.web.conftest import htmx

pytestmark = pytest.mark.django_db


@pytest.fixture
def runs(pipeline):
    other = save_definition(simple_definition("other"))
    done = create_run(pipeline)
    Run.objects.filter(pk=done.pk).update(status="COMPLETED")
    failed = create_run(other)
    Run.objects.filter(pk=failed.pk).update(status="FAILED")
    active = create_run(pipeline)
    return done, failed, active


def test_it_lists_runs_newest_first(as_bob, runs):
    page = as_bob.get("/runs/").content.decode()
    done, failed, active = runs
    assert page.index(f'href="/runs/{active.pk}/"') < page.index(f'href="/runs/{done.pk}/"')
    assert "s-failed" in page and "s-completed" in page and "s-pending" in page


def test_it_filters_by_pipeline_and_status(as_bob, runs):
    done, failed, active = runs
    page = as_bob.get("/runs/?pipeline=other").content.decode()
    assert f'href="/runs/{failed.pk}/"' in page and f'href="/runs/{done.pk}/"' not in page
    page = as_bob.get("/runs/?status=COMPLETED").content.decode()
    assert f'href="/runs/{done.pk}/"' in page and f'href="/runs/{active.pk}/"' not in page
    assert "No runs match these filters" in as_bob.get("/runs/?pipeline=other&status=RUNNING").content.decode()


def test_it_refreshes_the_table_while_runs_are_active(as_bob, runs):
    html = as_bob.get("/runs/?pipeline=simple", **htmx(target="runs-table")).content.decode()
    assert html.lstrip().startswith('<div id="runs-table"') and 'hx-trigger="every 2s"' in html
    html = as_bob.get("/runs/?status=FAILED", **htmx(target="runs-table")).content.decode()
    assert "hx-trigger" not in html


def test_it_has_an_empty_state(as_bob, db):
    assert "No runs yet" in as_bob.get("/runs/").content.decode()


def test_each_row_links_and_dates_as_django_would_in_the_current_time_zone(as_bob, runs, settings):
    """The rows' links and creation times are worked out once per page (runs.views._finish), not with a url
    tag and a date filter per row: the same text as reverse() and the date filter give, in the time zone set."""
    from django.template.defaultfilters import date
    from django.urls import reverse
    from django.utils import timezone

    settings.TIME_ZONE = "Asia/Kathmandu"  # +05:45: a shift no rounding hides
    timezone.activate("Asia/Kathmandu")
    try:
        page = as_bob.get("/runs/").content.decode()
        for run in Run.objects.select_related("pipeline"):
            assert f'href="{reverse("run-detail", args=[run.pk])}"' in page
            assert f'href="{reverse("pipeline-editor", args=[run.pipeline.code])}"' in page
            assert f'title="{date(timezone.localtime(run.created_at), "Y-m-d H:i:s")}"' in page
    finally:
        timezone.deactivate()
    assert "narrow:" not in page and "{%" not in page and "{#" not in page  # the template's note stays a comment
