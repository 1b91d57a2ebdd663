"""What a person does with the import wizard: upload a CSV (a wrong file first), look at the preview, pick a
SQLite table through its connection, adjust the auto-mapping, choose UPSERT by sku, create the pipeline,
run it from the editor, and find the rows in the table."""

import re
import sqlite3

import pytest
from playwright.sync_api import expect

from pipelines.models import Connection, Pipeline
from pipelines.services import definition_of
from tests.browser.conftest import log_in
from tests.browser.test_build_and_run import execute_in_background

CSV = ("Article No,Product Name,Price,Qty,Remarks\n"
       " A-1 ,Oak chair,129.00,12,solid oak\n"
       "B-2,Pine table,349.50,3,\n"
       "C-3,Desk lamp,19.99,40,LED\n")


@pytest.fixture
def shop(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.DATAHUB_SQLITE_DIRS = [str(tmp_path)]
    path = tmp_path / "shop.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE products (id INTEGER PRIMARY KEY, sku VARCHAR(40) NOT NULL UNIQUE, "
               "name VARCHAR(100) NOT NULL, price NUMERIC(10,2), stock INTEGER, note TEXT)")
    db.execute("INSERT INTO products (sku, name, price, stock) VALUES ('B-2', 'Old table', 300, 1)")
    db.commit()
    db.close()
    Connection.objects.create(code="shop", type="SQLITE", name="Shop database", config={"path": str(path)})
    return path


def settled(page):
    """htmx has swapped and settled the panel (its new elements are live)."""
    expect(page.locator(".htmx-settling, .htmx-swapping, .htmx-added, .htmx-request")).to_have_count(0)


def test_it_imports_a_csv_into_a_sqlite_table_and_runs_it(page, shoot, alice, shop, tmp_path):
    csv_file = tmp_path / "products.csv"
    csv_file.write_text(CSV)
    wrong = tmp_path / "products.pdf"
    wrong.write_bytes(b"%PDF-1.4 not a table")

    log_in(page, "alice")
    page.click("nav >> text=Pipelines")
    page.click("#open-wizards")
    expect(page.locator("h1")).to_have_text("New pipeline from a wizard")
    shoot(page, "start")
    page.click("#start-import")

    # 1. source: a wrong file is refused at the file field; then the CSV
    expect(page.locator("#wizard-panel")).to_have_attribute("data-step", "source")
    page.set_input_files("#w-file", str(wrong))
    page.click("#wizard-next")
    expect(page.locator(".dropzone .field-errors")).to_contain_text("is not a file the wizard can read")
    shoot(page, "wrong-file")
    page.set_input_files("#w-file", str(csv_file))
    page.click("#wizard-next")

    # 2. preview: the columns with guessed types and the first rows, read by the csv extractor
    expect(page.locator("#wizard-panel")).to_have_attribute("data-step", "preview")
    expect(page).to_have_url(re.compile(r"/wizards/[\w-]+/preview/$"))
    expect(page.locator("#preview-columns tbody tr")).to_have_count(5)
    expect(page.locator("#preview-columns")).to_contain_text("number")
    expect(page.locator("#preview-rows")).to_contain_text("Desk lamp")
    shoot(page, "preview")
    page.click("#wizard-next")

    # 3. target: choosing the connection lists its tables (htmx), then the table
    expect(page.locator("#wizard-panel")).to_have_attribute("data-step", "target")
    settled(page)
    page.select_option("#w-connection", "shop")
    expect(page.locator("select#w-table")).to_be_visible()
    page.select_option("select#w-table", "products")
    shoot(page, "target")
    page.click("#wizard-next")

    # 4. mapping: auto-mapped loosely (Article No -> sku by synonym, Qty -> stock, ...); adjust it
    expect(page.locator("#wizard-panel")).to_have_attribute("data-step", "mapping")
    row = {t: page.locator(f"#mapping-table tr[data-target='{t}']") for t in ("id", "sku", "name", "price", "stock", "note")}
    expect(row["sku"].locator("select[name$='-source']")).to_have_value("Article No")
    expect(row["name"].locator("select[name$='-source']")).to_have_value("Product Name")
    expect(row["price"].locator("select[name$='-source']")).to_have_value("Price")
    expect(row["stock"].locator("select[name$='-source']")).to_have_value("Qty")
    expect(row["stock"].locator("select[name$='-type']")).to_have_value("integer")
    expect(row["note"].locator("select[name$='-source']")).to_have_value("")
    # a wrong choice first: two rows from one column is fine, an id from text is the database's business;
    # but nothing mapped at all is refused at the table
    row["sku"].locator("select[name$='-transform']").select_option("trim")
    row["note"].locator("select[name$='-source']").select_option("Remarks")
    row["note"].locator("select[name$='-transform']").select_option("uppercase")
    shoot(page, "mapping")
    page.click("#wizard-next")

    # 5. strategy: UPSERT needs a key; refused without one, at the key fields
    expect(page.locator("#wizard-panel")).to_have_attribute("data-step", "strategy")
    page.check("input[name=strategy][value=UPSERT]")
    if page.is_checked("input[name=keys][value=sku]"):
        page.uncheck("input[name=keys][value=sku]")
    page.click("#wizard-next")
    expect(page.locator("#w-keys .field-errors")).to_contain_text("UPSERT needs at least one key field")
    shoot(page, "strategy-missing-key")
    page.check("input[name=keys][value=sku]")
    page.click("#wizard-next")

    # 6. schedule: none
    expect(page.locator("#wizard-panel")).to_have_attribute("data-step", "schedule")
    page.check("input[name=kind][value=none]")
    page.click("#wizard-next")

    # 7. review, then create: the editor opens on an ordinary pipeline
    expect(page.locator("#wizard-panel")).to_have_attribute("data-step", "review")
    expect(page.locator("#review-mapping")).to_contain_text("Article No")
    page.fill("#w-code", "shop-products")
    page.fill("#w-name", "Shop products from CSV")
    shoot(page, "review")
    page.click("#wizard-next")
    expect(page.locator("h1")).to_have_text("Shop products from CSV")
    expect(page.locator(".message.success")).to_contain_text("Created Shop products from CSV")
    shoot(page, "editor")

    definition = definition_of(Pipeline.objects.get(code="shop-products"))
    assert [(s["key"], s["type"], s.get("adapterCode")) for s in definition["steps"]] == [
        ("read", "EXTRACT", "csv"), ("map", "TRANSFORM", None), ("load", "LOAD", "tableUpsert")]

    # run it from the editor, as a worker would
    page.click("#run-now")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    run_id = int(re.search(r"/runs/(\d+)/", page.url).group(1))
    worker = execute_in_background(run_id)
    expect(page.locator("#run-progress")).to_have_attribute("data-status", "COMPLETED", timeout=20_000)
    worker.join(10)
    shoot(page, "run-completed")

    db = sqlite3.connect(shop)
    try:
        found = db.execute("SELECT sku, name, price, stock, note FROM products ORDER BY sku").fetchall()
    finally:
        db.close()
    assert found == [("A-1", "Oak chair", 129, 12, "SOLID OAK"), ("B-2", "Pine table", 349.5, 3, ""),
                     ("C-3", "Desk lamp", 19.99, 40, "LED")]
