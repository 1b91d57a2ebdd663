"""Inline records as a grid: a person adds a record and a column in the inMemory step's grid, without
typing JSON, and the records land in the draft typed (numbers as numbers)."""

from playwright.sync_api import expect

from pipelines.services import save_definition
from tests.browser.conftest import log_in
from tests.fixtures import simple_definition
from tests.web.conftest import working


def test_it_edits_inline_records_in_a_grid(page, shoot, alice):
    save_definition(simple_definition("simple", records=[{"sku": "A-1", "price": 10}]), message="created")
    log_in(page, "alice")
    page.goto("/pipelines/simple/")
    page.click("#card-src > summary")
    grid = page.locator("#step-src .records-grid")
    expect(grid.locator("thead input")).to_have_count(2)
    expect(page.locator("#step-src [name='config.records']")).to_have_count(0)  # one field for the records
    grid.locator("button:has-text('+ Record')").click()
    grid.locator("[aria-label='Record 2 sku']").fill("B-2")
    grid.locator("[aria-label='Record 2 price']").fill("12.5")
    grid.locator("button:has-text('+ Column')").click()
    grid.locator("[aria-label='Column 3 name']").fill("active")
    grid.locator("[aria-label='Record 1 field3']").fill("true")
    expect(page.locator("#step-src .autosave-status")).to_have_text("Saved in your draft.")
    shoot(page, "grid")
    assert working("simple")["steps"][0]["config"]["data"] == [
        {"sku": "A-1", "price": 10, "active": True}, {"sku": "B-2", "price": 12.5}]
