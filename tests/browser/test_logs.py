"""Logs in a browser: a run's log tab, and the explorer filtered by level and text. Offline, with a clean
console."""

from playwright.sync_api import expect

from pipelines.services import save_definition
from runs import services
from tests.browser.conftest import log_in
from tests.fixtures import simple_definition


def test_it_reads_a_runs_log_and_explores(offline_page, shoot, alice):
    definition = simple_definition("shop", records=[{"sku": None}, {"sku": " b "}], logLevel="DEBUG")
    definition["steps"].insert(2, {"key": "check", "type": "VALIDATE", "config": {"fields": {"sku": {"required": True}}}})
    run = services.run_now(services.create_run(save_definition(definition))).run
    page = offline_page
    log_in(page, "alice")
    page.goto(f"/runs/{run.pk}/")
    page.click("#tab-log")
    expect(page.locator("#log-lines")).to_contain_text("run started with 4 steps")
    expect(page.locator("#log-lines tr[data-level=WARNING]")).to_contain_text("record failed")
    shoot(page, "run-log")
    page.click("nav >> text=Logs")
    page.select_option("#id_level", "WARNING")
    page.fill("#id_q", "record")
    page.click("#log-filters button[type=submit]")
    expect(page.locator("#log-lines tbody tr")).to_have_count(1)
    shoot(page, "explorer")
    page.fill("#id_since", "2026-01-02T00:00")
    page.fill("#id_until", "2026-01-01T00:00")
    page.click("#log-filters button[type=submit]")
    expect(page.locator(".field-errors")).to_contain_text("must be after From")
    href = page.get_attribute("#export-json", "href")
    assert "format=json" in href
