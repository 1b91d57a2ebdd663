"""The analytics page in a browser, with runs of several days and some failures: numbers, charts, the
real-time panel refreshing itself. Offline, with a clean console."""

from playwright.sync_api import expect

from pipelines.services import save_definition
from runs.models import RunStatus
from tests.browser.conftest import log_in
from tests.fixtures import simple_definition
from tests.operate.test_analytics import make_run


def test_it_shows_how_pipelines_behave(offline_page, shoot, alice):
    pipeline = save_definition(simple_definition("shop"))
    for n in range(24):
        make_run(pipeline, RunStatus.FAILED if n % 5 == 0 else RunStatus.COMPLETED, seconds=5 + n, days_ago=n % 9,
                 records=(1000 + 250 * n, 900), errors=[("check", f"sku is required ({n % 3})")] * (n % 4))
    make_run(pipeline, RunStatus.RUNNING)
    page = offline_page
    log_in(page, "alice")
    page.click("nav >> text=Analytics")
    expect(page.locator("#stat-runs")).to_have_text("25")
    expect(page.locator("#stat-records")).to_have_text("93,000")
    expect(page.locator("#rt-running")).to_have_text("1")
    expect(page.locator("#trend svg.chart")).to_be_visible()
    shoot(page, "all")
    page.select_option("select[name=days]", "7")
    page.click("#analytics-filter button")
    expect(page.locator("select[name=days]")).to_have_value("7")
    with page.expect_response(lambda r: "/analytics/" in r.url and r.request.headers.get("hx-target") == "realtime",
                              timeout=8000):
        pass
    expect(page.locator("#rt-running")).to_have_text("1")
