"""The wizard pages over HTTP (Django's test client): a CSV upload to a real SQLite table, then a run; an
export to the file storage; and bad input at every page answered at its field."""

from __future__ import annotations

import io
import sqlite3
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from pipelines.models import Connection, Pipeline
from pipelines.services import definition_of
from runs import services as runs

CSV = "Article No;Product Name;Price;Qty\n A-1 ;Chair;10.50;3\nB-2;Table;99;1\nC-3;Lamp;5.25;0\n"


@pytest.fixture
def shop(tmp_path, settings):
    """A real SQLite database with a products table, behind a SQLITE connection."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.DATAHUB_SQLITE_DIRS = [str(tmp_path)]
    path = tmp_path / "shop.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE products (id INTEGER PRIMARY KEY, sku VARCHAR(40) NOT NULL UNIQUE, "
               "name VARCHAR(100) NOT NULL, price NUMERIC(10,2), stock INTEGER, note TEXT)")
    db.commit()
    db.close()
    Connection.objects.create(code="shop", type="SQLITE", config={"path": str(path)})
    return path


def rows(path, sql="SELECT sku, name, price, stock FROM products ORDER BY sku"):
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def start(client, kind="import", template=""):
    response = client.post(reverse("wizard-new"), {"kind": kind, "template": template})
    assert response.status_code == 302
    return response["Location"].split("/")[2]


def url(wid, step):
    return reverse("wizard-step", args=[wid, step])


def upload(client, wid, name="products.csv", body=CSV, **extra):
    data = {"mode": "upload", "file": SimpleUploadedFile(name, body.encode() if isinstance(body, str) else body),
            **extra}
    return client.post(url(wid, "source"), data)


def errors_of(response) -> str:
    from html import unescape

    return unescape(response.content.decode())


@pytest.fixture
def logged_in(client, alice):
    client.force_login(alice)
    return client


# The engine runs steps in threads with their own database connections: they see committed rows only.
@pytest.mark.django_db(transaction=True)
def test_it_imports_an_uploaded_csv_into_a_sqlite_table_and_the_run_writes_the_rows(logged_in, shop):
    client = logged_in
    wid = start(client)
    assert upload(client, wid).status_code == 302
    preview = client.get(url(wid, "preview"))
    assert preview.status_code == 200
    page = preview.content.decode()
    assert "Article No" in page and "Chair" in page and "number" in page  # columns, rows, guessed type
    assert client.post(url(wid, "preview"), {"delimiter": ";", "hasHeader": "1"}).status_code == 302
    assert client.post(url(wid, "target"), {"kind": "sql", "connection": "shop", "table": "products"}).status_code == 302
    mapping = client.get(url(wid, "mapping")).content.decode()
    # auto-mapped: sku <- Article No (synonym), name <- Product Name, price <- Price, stock <- Qty
    assert 'value="Article No" selected' in mapping and 'value="Qty" selected' in mapping
    assert '<span class="help">synonym</span>' in mapping and '<span class="help">same name</span>' in mapping
    rows_in = {"mapping-0-source": "", "mapping-1-source": "Article No", "mapping-1-transform": "trim",
               "mapping-2-source": "Product Name", "mapping-2-transform": "uppercase",
               "mapping-3-source": "Price", "mapping-3-type": "number",
               "mapping-4-source": "Qty", "mapping-4-type": "integer", "mapping-5-source": ""}
    assert client.post(url(wid, "mapping"), rows_in).status_code == 302
    assert client.post(url(wid, "strategy"), {"strategy": "UPSERT", "keys": ["sku"]}).status_code == 302
    assert client.post(url(wid, "schedule"), {"kind": "none"}).status_code == 302
    review = client.get(url(wid, "review")).content.decode()
    assert "tableUpsert" in review
    response = client.post(url(wid, "review"), {"code": "products-import", "name": "Products import"})
    assert response.status_code == 302 and response["Location"] == reverse("pipeline-editor", args=["products-import"])

    pipeline = Pipeline.objects.get(code="products-import")
    definition = definition_of(pipeline)
    assert [(s["key"], s["type"], s.get("adapterCode")) for s in definition["steps"]] == [
        ("read", "EXTRACT", "csv"), ("map", "TRANSFORM", None), ("load", "LOAD", "tableUpsert")]
    assert definition["steps"][2]["config"] == {"connectionCode": "shop", "table": "products", "strategy": "UPSERT",
                                                "lookupFields": ["sku"]}
    outcome = runs.run_now(runs.create_run(pipeline))
    assert outcome.run.status == "COMPLETED", outcome.run.error
    assert rows(shop) == [("A-1", "CHAIR", 10.5, 3), ("B-2", "TABLE", 99, 1), ("C-3", "LAMP", 5.25, 0)]


def test_it_refuses_bad_files_at_the_file_field(logged_in, shop, settings):
    client = logged_in
    wid = start(client)
    cases = [
        ("notes.pdf", b"%PDF-1.4", "is not a file the wizard can read"),
        ("empty.csv", b"", "is empty"),
        ("header-only.csv", b"sku,name\n", "has no records"),
        ("bad.csv", b'sku,name\nA,"unclosed\n', "line"),
        ("fake.xlsx", b"sku,name\nA,b\n", "is not an Excel workbook"),
        ("broken.json", b'[{"sku": "A",', "JSON"),
    ]
    for name, body, expected in cases:
        response = upload(client, wid, name, body)
        assert response.status_code == 400, name
        text = errors_of(response)
        assert expected in text, (name, text[text.find("field-errors"):][:400])
        assert 'class="dropzone field has-error"' in text
    settings.DATAHUB_MAX_FILE_BYTES = 10
    response = upload(client, wid)
    assert "larger than the limit" in errors_of(response)
    assert client.get(url(wid, "preview")).status_code == 302  # nothing was accepted: back to the source page


def test_it_reads_an_xlsx_upload(logged_in, shop):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["SKU", "Name", "Stock"])
    sheet.append(["A-1", "Chair", 4])
    buffer = io.BytesIO()
    workbook.save(buffer)
    client = logged_in
    wid = start(client)
    assert upload(client, wid, "stock.xlsx", buffer.getvalue()).status_code == 302
    page = client.get(url(wid, "preview")).content.decode()
    assert "Chair" in page and "integer" in page
    not_a_workbook = io.BytesIO()
    with zipfile.ZipFile(not_a_workbook, "w") as archive:
        archive.writestr("hello.txt", "hi")
    response = upload(client, wid, "other.xlsx", not_a_workbook.getvalue())
    assert "not an Excel workbook" in errors_of(response)


def test_it_answers_bad_mapping_strategy_schedule_and_code_at_their_fields(logged_in, shop):
    client = logged_in
    wid = start(client)
    upload(client, wid)
    client.post(url(wid, "preview"), {"delimiter": ";", "hasHeader": "1"})
    response = client.post(url(wid, "target"), {"kind": "sql", "connection": "shop", "table": "prodcts"})
    assert "no table 'prodcts'" in errors_of(response) or "prodcts" in errors_of(response)
    assert "products" in errors_of(response)  # the nearest name
    client.post(url(wid, "target"), {"kind": "sql", "connection": "shop", "table": "products"})
    client.get(url(wid, "mapping"))
    response = client.post(url(wid, "mapping"), {"mapping-1-source": "Nope", "mapping-2-source": "Product Name"})
    assert response.status_code == 400
    assert "unknown column 'Nope' in the source" in errors_of(response)
    response = client.post(url(wid, "mapping"), {f"mapping-{n}-source": "" for n in range(6)})
    assert "map at least one field" in errors_of(response)
    client.post(url(wid, "mapping"), {"mapping-1-source": "Article No", "mapping-2-source": "Product Name",
                                      "mapping-4-source": "Qty"})
    response = client.post(url(wid, "strategy"), {"strategy": "UPSERT"})
    assert "UPSERT needs at least one key field" in errors_of(response)
    response = client.post(url(wid, "strategy"), {"strategy": "UPDATE", "keys": ["price"]})
    assert "key field 'price' is not mapped" in errors_of(response)
    client.post(url(wid, "strategy"), {"strategy": "UPSERT", "keys": ["sku"]})
    response = client.post(url(wid, "schedule"), {"kind": "cron", "cron": "61 * * * *"})
    assert "not a valid 5-field cron expression" in errors_of(response)
    response = client.post(url(wid, "schedule"), {"kind": "interval", "interval": "soon"})
    assert "is not a whole number of minutes" in errors_of(response)
    assert client.post(url(wid, "schedule"), {"kind": "cron", "cron": "0 6 * * *", "timezone": "Europe/Berlin"}
                       ).status_code == 302
    Pipeline.objects.create(code="taken", name="Taken")
    response = client.post(url(wid, "review"), {"code": "taken", "name": "x"})
    assert "exists already" in errors_of(response)
    response = client.post(url(wid, "review"), {"code": "Bad Code", "name": "x"})
    assert "lower-case" in errors_of(response).lower()
    response = client.post(url(wid, "review"), {"code": "nightly-products", "name": "Nightly products"})
    assert response.status_code == 302
    steps = definition_of(Pipeline.objects.get(code="nightly-products"))["steps"]
    assert steps[0] == {"key": "schedule", "type": "TRIGGER", "name": "Schedule",
                        "config": {"type": "SCHEDULE", "cron": "0 6 * * *", "timezone": "Europe/Berlin"}}


def test_it_needs_login_and_the_permission_to_add_pipelines(client, bob, shop):
    assert client.get(reverse("wizard-start")).status_code == 302  # to the login page
    client.force_login(bob)  # may view, not add
    assert client.get(reverse("wizard-start")).status_code == 403
    assert client.post(reverse("wizard-new"), {"kind": "import"}).status_code == 403


def test_it_keeps_pages_in_order_and_unknown_wizards_out(logged_in, shop):
    client = logged_in
    wid = start(client)
    response = client.get(url(wid, "mapping"))
    assert response.status_code == 302 and response["Location"] == url(wid, "source")
    assert client.get(url("no-such-wizard", "source")).status_code == 404


def test_it_prefills_the_mapping_and_strategy_from_the_stock_template(logged_in, shop):
    client = logged_in
    wid = start(client, template="stock-levels")
    upload(client, wid, "stock.csv", "Artikelnummer,Menge\nA-1,7\n", template="stock-levels")
    client.post(url(wid, "preview"), {"delimiter": ",", "hasHeader": "1"})
    client.post(url(wid, "target"), {"kind": "sql", "connection": "shop", "table": "products"})
    mapping = client.get(url(wid, "mapping")).content.decode()
    assert 'value="Artikelnummer" selected' in mapping and 'value="Menge" selected' in mapping
    client.post(url(wid, "mapping"), {"mapping-1-source": "Artikelnummer", "mapping-4-source": "Menge",
                                      "mapping-4-type": "integer"})
    strategy = client.get(url(wid, "strategy")).content.decode()
    assert 'value="UPDATE" checked' in strategy and 'value="sku" checked' in strategy


@pytest.mark.django_db(transaction=True)
def test_it_exports_a_query_to_a_csv_file_in_the_storage(logged_in, shop, tmp_path):
    db = sqlite3.connect(shop)
    db.execute("INSERT INTO products (sku, name, price, stock) VALUES ('A-1', 'Chair', 10.5, 3), ('B-2', 'Table', 99, 1)")
    db.commit()
    db.close()
    client = logged_in
    wid = start(client, "export")
    response = client.post(url(wid, "source"), {"kind": "sql", "connection": "shop", "query": "SELECT sku, nam FROM products"})
    assert "nam" in errors_of(response) and response.status_code == 400
    assert client.post(url(wid, "source"), {"kind": "sql", "connection": "shop",
                                            "query": "SELECT sku, name, price FROM products ORDER BY sku"}).status_code == 302
    page = client.get(url(wid, "fields")).content.decode()
    assert "Chair" not in page or "A-1" in page
    assert client.post(url(wid, "fields"), {"fields-0-include": "1", "fields-0-target": "SKU",
                                            "fields-2-include": "1", "fields-2-target": "Price"}).status_code == 302
    assert client.post(url(wid, "format"), {"exporter": "csvExport", "delimiter": ";", "includeHeader": "1"}).status_code == 302
    response = client.post(url(wid, "destination"), {"kind": "storage", "path": "../up", "filenamePattern": "x.csv"})
    assert "without '..'" in errors_of(response)
    assert client.post(url(wid, "destination"), {"kind": "storage", "path": "exports",
                                                 "filenamePattern": "prices.csv"}).status_code == 302
    client.post(url(wid, "schedule"), {"kind": "none"})
    assert client.post(url(wid, "review"), {"code": "price-export", "name": "Price export"}).status_code == 302
    pipeline = Pipeline.objects.get(code="price-export")
    outcome = runs.run_now(runs.create_run(pipeline))
    assert outcome.run.status == "COMPLETED", outcome.run.error
    written = (tmp_path / "media" / "exports" / "prices.csv").read_text()
    assert written.splitlines() == ["SKU;Price", "A-1;10.5", "B-2;99"]


@pytest.mark.django_db(transaction=True)
def test_it_imports_into_an_allowed_django_model(logged_in, shop, settings):
    from django.contrib.auth.models import Group

    settings.DATAHUB_MODEL_ALLOWLIST = ["auth.Group"]
    client = logged_in
    wid = start(client)
    upload(client, wid, "teams.json", '[{"Group Name": "buyers"}, {"Group Name": "sellers"}]')
    assert client.post(url(wid, "preview"), {}).status_code == 302
    response = client.post(url(wid, "target"), {"kind": "model", "model": "auth.User"})
    assert "not in DATAHUB_MODEL_ALLOWLIST" in errors_of(response)
    assert client.post(url(wid, "target"), {"kind": "model", "model": "auth.Group"}).status_code == 302
    mapping = client.get(url(wid, "mapping")).content.decode()
    assert 'value="Group Name" selected' in mapping  # name <- Group Name (the words of one hold the other)
    assert client.post(url(wid, "mapping"), {"mapping-0-source": "Group Name"}).status_code == 302
    response = client.post(url(wid, "strategy"), {"strategy": "UPSERT", "keys": ["name"]})
    assert response.status_code == 302
    client.post(url(wid, "schedule"), {"kind": "none"})
    assert client.post(url(wid, "review"), {"code": "groups", "name": "Groups"}).status_code == 302
    outcome = runs.run_now(runs.create_run(Pipeline.objects.get(code="groups")))
    assert outcome.run.status == "COMPLETED", outcome.run.error
    assert sorted(Group.objects.values_list("name", flat=True)) == ["buyers", "sellers"]


def test_it_refuses_a_rest_target_without_a_usable_endpoint(logged_in, shop):
    client = logged_in
    wid = start(client)
    upload(client, wid)
    client.post(url(wid, "preview"), {"delimiter": ";", "hasHeader": "1"})
    response = client.post(url(wid, "target"), {"kind": "rest", "endpoint": "/api/items"})
    assert "without a connection the endpoint must be a full http(s):// URL" in errors_of(response)
    response = client.post(url(wid, "target"), {"kind": "rest", "http_connection": "shop", "endpoint": "/x"})
    assert "no connection 'shop' of type HTTP" in errors_of(response)
    assert client.post(url(wid, "target"), {"kind": "rest", "endpoint": "https://api.example/items"}).status_code == 302
    mapping = client.get(url(wid, "mapping")).content.decode()
    assert 'name="mapping-0-target" value="article_no"' in mapping  # free targets: the normalized names
    response = client.post(url(wid, "mapping"), {"mapping-0-source": "Article No", "mapping-0-target": "1st"})
    assert "is not a plain field name" in errors_of(response)


@pytest.mark.django_db(transaction=True)
def test_it_turns_a_product_csv_into_a_google_merchant_feed(logged_in, shop, tmp_path):
    client = logged_in
    wid = start(client)
    upload(client, wid, "feed.csv", "SKU,Title,Body,Price,Image URL,URL,Vendor\n"
                                    "CH-1,Oak chair,Solid oak,129.00,/img/oak.jpg,/p/oak,Woodly\n")
    client.post(url(wid, "preview"), {"delimiter": ",", "hasHeader": "1"})
    response = client.post(url(wid, "target"), {"kind": "feed", "feed": "googleMerchant", "currency": "euro",
                                                "outputPath": "../feed.xml"})
    text = errors_of(response)
    assert "ISO 4217" in text and "needs the shop's URL" in text and "without '..'" in text
    assert client.post(url(wid, "target"), {"kind": "feed", "feed": "googleMerchant", "currency": "eur",
                                            "storeUrl": "https://shop.example", "outputPath": "feeds/google.xml"}
                       ).status_code == 302
    mapping = client.get(url(wid, "mapping")).content.decode()
    # auto-mapped onto the feed's fields; the id is left to the person (here: the SKU)
    for n, (target, source) in enumerate((("id", ""), ("name", "Title"), ("description", "Body"), ("price", "Price"),
                                          ("image", "Image URL"), ("link", "URL"), ("brand", "Vendor"))):
        row = mapping[mapping.index(f'id="mapping-row-{n}"'):mapping.index("</tr>", mapping.index(f'id="mapping-row-{n}"'))]
        assert f'data-target="{target}"' in row
        assert (f'value="{source}" selected' in row) if source else ("selected" not in row.split("-type")[0]), row
    form = {"mapping-0-source": "SKU", "mapping-1-source": "Title", "mapping-2-source": "Body",
            "mapping-3-source": "Price", "mapping-3-type": "number", "mapping-4-source": "Image URL",
            "mapping-5-source": "URL", "mapping-6-source": "Vendor"}
    assert client.post(url(wid, "mapping"), form).status_code == 302
    assert client.post(url(wid, "strategy"), {"strategy": "MAJOR"}).status_code == 302
    client.post(url(wid, "schedule"), {"kind": "none"})
    assert client.post(url(wid, "review"), {"code": "google-feed", "name": "Google feed"}).status_code == 302
    outcome = runs.run_now(runs.create_run(Pipeline.objects.get(code="google-feed")))
    assert outcome.run.status == "COMPLETED", outcome.run.error
    feed = (tmp_path / "media" / "feeds" / "google.xml").read_text()
    assert "<g:id>CH-1</g:id>" in feed and "129.00 EUR" in feed and "https://shop.example/p/oak" in feed


@pytest.mark.django_db(transaction=True)
def test_it_imports_a_file_named_on_a_folder_connection(logged_in, shop, tmp_path, settings):
    inbox = tmp_path / "inbox"
    (inbox / "daily").mkdir(parents=True)
    (inbox / "daily" / "stock.csv").write_text("sku,qty\nA-1,7\n")
    settings.DATAHUB_FILE_ROOTS = [str(tmp_path)]
    Connection.objects.create(code="inbox", type="FOLDER", config={"root": str(inbox)})
    db = sqlite3.connect(shop)
    db.execute("INSERT INTO products (sku, name, stock) VALUES ('A-1', 'Chair', 1)")
    db.commit()
    db.close()
    client = logged_in
    wid = start(client)
    response = client.post(url(wid, "source"), {"mode": "connection", "connection": "inbox", "path": "daily/none.csv"})
    assert "no such file" in errors_of(response)
    response = client.post(url(wid, "source"), {"mode": "connection", "connection": "inbox", "path": "../shop.db"})
    assert "must not contain '..'" in errors_of(response)
    response = client.post(url(wid, "source"), {"mode": "connection", "connection": "shop", "path": "x.csv"})
    assert "no connection 'shop' of type FOLDER or SFTP or FTP" in errors_of(response)
    assert client.post(url(wid, "source"), {"mode": "connection", "connection": "inbox",
                                            "path": "daily/stock.csv"}).status_code == 302
    assert "A-1" in client.get(url(wid, "preview")).content.decode()
    client.post(url(wid, "preview"), {"delimiter": ",", "hasHeader": "1"})
    client.post(url(wid, "target"), {"kind": "sql", "connection": "shop", "table": "products"})
    client.get(url(wid, "mapping"))
    assert client.post(url(wid, "mapping"), {"mapping-1-source": "sku", "mapping-4-source": "qty",
                                             "mapping-4-type": "integer"}).status_code == 302
    assert client.post(url(wid, "strategy"), {"strategy": "UPDATE", "keys": ["sku"]}).status_code == 302
    client.post(url(wid, "schedule"), {"kind": "none"})
    assert client.post(url(wid, "review"), {"code": "inbox-stock", "name": "Inbox stock"}).status_code == 302
    pipeline = Pipeline.objects.get(code="inbox-stock")
    assert definition_of(pipeline)["steps"][0]["config"] == {"connectionCode": "inbox", "path": "daily/stock.csv",
                                                             "delimiter": ",", "hasHeader": True}
    outcome = runs.run_now(runs.create_run(pipeline))
    assert outcome.run.status == "COMPLETED", outcome.run.error
    assert rows(shop) == [("A-1", "Chair", None, 7)]


def test_an_htmx_request_gets_the_next_panel_and_its_url_or_the_same_panel_with_errors(logged_in, shop):
    client = logged_in
    wid = start(client)
    htmx = {"HTTP_HX_REQUEST": "true"}
    bad = client.post(url(wid, "source"), {"mode": "upload"}, **htmx)
    assert bad.status_code == 200 and "HX-Push-Url" not in bad  # htmx swaps 2xx only: the errors show
    assert b"<html" not in bad.content and b"choose a file to upload" in bad.content
    good = client.post(url(wid, "source"), {"mode": "upload", "file": SimpleUploadedFile("p.csv", CSV.encode())},
                       **htmx)
    assert good.status_code == 200 and good["HX-Push-Url"] == url(wid, "preview")
    assert b'data-step="preview"' in good.content and b"<html" not in good.content


def test_it_lists_a_connections_tables_and_says_when_it_cannot_open_one(logged_in, shop, tmp_path):
    Connection.objects.create(code="gone", type="SQLITE", config={"path": str(tmp_path / "missing.db")})
    client = logged_in
    wid = start(client)
    upload(client, wid)
    client.post(url(wid, "preview"), {"delimiter": ";", "hasHeader": "1"})
    listed = client.post(url(wid, "target"), {"kind": "sql", "connection": "shop", "_action": "refresh"})
    assert listed.status_code == 200
    assert b'<select id="w-table" name="table">' in listed.content and b'<option value="products"' in listed.content
    response = client.post(url(wid, "target"), {"kind": "sql", "connection": "gone", "_action": "refresh"})
    page = errors_of(response)
    connection_field = page[page.rindex('<div class="field', 0, page.index('for="w-connection"')):page.index("</div>", page.index('for="w-connection"'))]
    assert "has-error" in connection_field and "does not exist" in connection_field
    response = client.post(url(wid, "target"), {"kind": "sql", "connection": "shop"})
    assert "choose the table to write to" in errors_of(response)


def test_it_prunes_old_uploads_that_no_pipeline_reads(logged_in, shop):
    import os
    import time

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.core.management import call_command

    from pipelines.services import save_definition

    old, used, fresh = ("wizard-uploads/w1/old.csv", "wizard-uploads/w2/used.csv", "wizard-uploads/w3/fresh.csv")
    for name in (old, used, fresh):
        default_storage.save(name, ContentFile(b"a\n1\n"))
    ten_days_ago = time.time() - 10 * 86400
    for name in (old, used):
        os.utime(default_storage.path(name), (ten_days_ago, ten_days_ago))
    save_definition({"version": 1, "code": "reads-used", "steps": [
        {"key": "read", "type": "EXTRACT", "adapterCode": "csv", "config": {"fileId": used}}]})
    out = io.StringIO()
    call_command("prune_wizard_uploads", "--dry-run", stdout=out)
    assert default_storage.exists(old) and "would delete wizard-uploads/w1/old.csv" in out.getvalue()
    call_command("prune_wizard_uploads", stdout=io.StringIO())
    assert [default_storage.exists(n) for n in (old, used, fresh)] == [False, True, True]
