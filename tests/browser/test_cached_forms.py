"""Forms on pages served from the page cache still post: the CSRF token in a cached page was made from the
reader's own CSRF secret (part of the key), so Django accepts it, whether htmx sends it (the gate's Approve,
``hx-headers`` on <body>) or the form does (the run page's Re-run)."""

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from gates.models import GateRequest, GateStatus
from runs.models import Run
from tests.browser.conftest import log_in
from tests.ops.test_query_counts import paused_gates


@pytest.fixture(autouse=True)
def page_cache(settings):
    settings.DATAHUB_PAGE_CACHE = True
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "cached-forms"}}
    cache.clear()


def _token(page) -> str:
    return page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")


def served_from_the_cache(page, url: str) -> None:
    """Django masks the CSRF token afresh each time it renders a page: the same masked token twice is the
    same stored page."""
    page.goto(url)
    rendered = _token(page)
    page.goto(url)
    assert _token(page) == rendered, f"{url} was rendered again, not served from the cache"


def test_a_cached_pages_forms_are_accepted(page, alice, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    run = paused_gates("gated", 1)[0]
    log_in(page, "alice")

    served_from_the_cache(page, f"/gates/{run.pk}/gate/")
    page.click("#approve")
    expect(page.locator("#gate-decided-by")).to_have_text("alice")
    assert GateRequest.objects.get(run=run).status == GateStatus.APPROVED

    Run.objects.filter(pk=run.pk).update(status="FAILED")
    served_from_the_cache(page, f"/runs/{run.pk}/")
    page.get_by_role("button", name="↻ Re-run").click()
    page.wait_for_url(lambda url: f"/runs/{run.pk}/" not in url)
    assert Run.objects.count() == 2  # the re-run was started
