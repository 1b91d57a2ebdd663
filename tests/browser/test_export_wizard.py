"""What a person does with the export wizard: a SELECT on a SQLite connection (a misspelt column first),
pick and rename fields, JSON, the file storage, an hourly schedule, create, run, and the file is there."""

import json
import re
import sqlite3

from playwright.sync_api import expect

from pipelines.models import Pipeline
from pipelines.services import definition_of
from tests.browser.conftest import log_in
from tests.browser.test_build_and_run import execute_in_background
from tests.browser.test_import_wizard import settled, shop  # noqa: F401 (fixture)


def test_it_exports_a_query_to_a_json_file_on_a_schedule(page, shoot, alice, shop, tmp_path):  # noqa: F811
    db = sqlite3.connect(shop)
    db.execute("INSERT INTO products (sku, name, price, stock) VALUES ('A-1', 'Oak chair', 129, 12)")
    db.commit()
    db.close()

    log_in(page, "alice")
    page.goto("/wizards/")
    page.click("#start-export")
    expect(page.locator("#wizard-panel")).to_have_attribute("data-step", "source")
    page.select_option("#w-connection", "shop")
    page.fill("#w-query", "SELECT sku, nme FROM products")
    page.click("#wizard-next")
    expect(page.locator("#w-query ~ .field-errors")).to_contain_text("nme")
    shoot(page, "bad-query")
    page.fill("#w-query", "SELECT sku, name, price, stock FROM products ORDER BY sku")
    page.click("#wizard-next")

    expect(page.locator("#wizard-panel")).to_have_attribute("data-step", "fields")
    expect(page.locator("#fields-table")).to_contain_text("Oak chair")
    page.uncheck("input[name='fields-3-include']")
    page.fill("input[name='fields-1-target']", "title")
    shoot(page, "fields")
    page.click("#wizard-next")

    expect(page.locator("#wizard-panel")).to_have_attribute("data-step", "format")
    page.check("input[name=exporter][value=jsonExport]")
    page.check("#w-pretty")
    page.click("#wizard-next")

    expect(page.locator("#wizard-panel")).to_have_attribute("data-step", "destination")
    page.fill("#w-filename", "products.json")
    page.click("#wizard-next")

    expect(page.locator("#wizard-panel")).to_have_attribute("data-step", "schedule")
    page.check("input[name=kind][value=interval]")
    page.fill("#w-interval", "an hour")
    page.click("#wizard-next")
    expect(page.locator("#w-interval ~ .field-errors")).to_contain_text("is not a whole number of minutes")
    page.fill("#w-interval", "60")
    page.click("#wizard-next")

    expect(page.locator("#wizard-panel")).to_have_attribute("data-step", "review")
    page.fill("#w-code", "products-json")
    shoot(page, "review")
    page.click("#wizard-next")
    expect(page.locator(".message.success")).to_contain_text("Created")
    steps = definition_of(Pipeline.objects.get(code="products-json"))["steps"]
    assert [(s["type"], s.get("adapterCode")) for s in steps] == [
        ("TRIGGER", None), ("EXTRACT", "database"), ("TRANSFORM", None), ("EXPORT", "jsonExport")]
    assert steps[0]["config"] == {"type": "SCHEDULE", "intervalSec": 3600}

    page.click("#run-now")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    worker = execute_in_background(int(re.search(r"/runs/(\d+)/", page.url).group(1)))
    expect(page.locator("#run-progress")).to_have_attribute("data-status", "COMPLETED", timeout=20_000)
    worker.join(10)
    written = json.loads((tmp_path / "media" / "exports" / "products.json").read_text())
    assert written == [{"sku": "A-1", "title": "Oak chair", "price": 129}, {"sku": "B-2", "title": "Old table", "price": 300}]
