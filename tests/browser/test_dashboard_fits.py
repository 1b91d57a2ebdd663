"""The dashboard's run tables fit their half of the page at 1400 px: nothing scrolls sideways."""

from playwright.sync_api import expect

from pipelines.services import save_definition
from runs import services
from runs.models import Run, RunStatus
from tests.browser.conftest import log_in
from tests.fixtures import simple_definition


def test_it_fits_the_failures_table_at_1400_px(page, shoot, alice):
    pipeline = save_definition(simple_definition("a-pipeline-with-a-rather-long-code", records=[]),
                               message="created")
    for _ in range(3):
        run = services.create_run(pipeline)
        Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED, error="boom")
    page.set_viewport_size({"width": 1400, "height": 900})
    log_in(page, "alice")
    expect(page.locator("#failures table")).to_be_visible()
    shoot(page, "dashboard")
    overflow = page.eval_on_selector("#failures .table-wrap", "e => e.scrollWidth - e.clientWidth")
    assert overflow <= 0, f"the failures table is {overflow}px wider than its panel"
