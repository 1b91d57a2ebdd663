"""The wizards' plain-Python core, without HTTP: the auto-mapper, sniffing a file, the templates and the
definition builder, with bad input. Built definitions are run by the real engine on inline data."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from pipelines.adapters.base import AdapterContext
from pipelines.definition import parse, problems_of
from pipelines.registry import extractors
from pipelines.wizards import automap, build, shapes, sniff
from pipelines.wizards.build import ImportSpec, MappingRow, Schedule
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.status import RunStatus
from runs.engine.store import InMemoryStore

# --- the auto-mapper --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "normalized"), [
    ("Variant SKU", "variant_sku"), ("variant-sku", "variant_sku"), ("variantSku", "variant_sku"),
    ("  Product  Name ", "product_name"), ("HTTPStatus", "http_status"), ("Größe", "grosse"), ("Prix (€)", "prix"),
    ("e.mail", "e_mail"),
])
def test_it_normalizes_names(name, normalized):
    assert automap.normalize(name) == normalized


@pytest.mark.parametrize(("source", "target", "reason"), [
    ("SKU", "sku", "exact"), ("Product_Name", "productName", "exact"), ("E-Mail", "email", "compact"),
    ("Qty", "stock", "synonym"), ("Artikelnummer", "sku", "synonym"), ("Handle", "slug", "synonym"),
    ("Variant Price", "price", "synonym"), ("Regular price", "price", "synonym"), ("Colours", "colour", "compact"),
    ("Warehouse Code", "warehouse", "words"), ("Prcie", "price", "spelling"),
])
def test_it_matches_names_loosely(source, target, reason):
    assert automap.score(source, target)[1] == reason


@pytest.mark.parametrize(("source", "target"), [("id", "product_id"), ("Notes", "name"), ("Price", "stock"),
                                                 ("", "sku")])
def test_it_does_not_match_unrelated_names(source, target):
    assert automap.score(source, target) is None


def test_it_maps_one_to_one_best_first():
    # "sku" matches both SKU (exact) and Article No (synonym): the exact one wins, the other stays free
    matches = automap.automap(["Article No", "SKU", "Product Name", "Qty", "Notes"],
                              ["id", "sku", "name", "stock", "note"])
    assert [(m.source, m.target, m.reason) for m in matches] == [
        ("SKU", "sku", "exact"), ("Product Name", "name", "synonym"), ("Qty", "stock", "synonym"),
        ("Notes", "note", "compact")]


def test_it_gives_the_same_mapping_for_the_same_input():
    sources = ["Variant Price", "Price", "Cost", "Variant SKU", "sku"]
    targets = ["price", "sku", "cost"]
    first = automap.automap(sources, targets)
    assert all(automap.automap(sources, targets) == first for _ in range(3))
    assert [(m.source, m.target) for m in first] == [("Price", "price"), ("sku", "sku"), ("Cost", "cost")]


# --- sniffing --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "head", "message"), [
    ("report.pdf", b"%PDF", "is not a file the wizard can read"),
    ("noext", b"a,b", "is not a file the wizard can read"),
    ("empty.csv", b"", "is empty"),
    ("blank.json", b"  \n\xef\xbb\xbf\n", "is empty"),
    ("fake.xlsx", b"sku,name", "is not an Excel workbook"),
    ("zipped.csv", b"PK\x03\x04rest", "looks like a binary file"),
    ("nul.json", b'{"a":\x00}', "looks like a binary file"),
])
def test_it_refuses_files_it_cannot_read(name, head, message):
    with pytest.raises(sniff.SniffError, match=message) as caught:
        sniff.format_of(name, head)
    assert caught.value.field == "file"


@pytest.mark.parametrize(("name", "kind"), [("a.CSV", "csv"), ("a.tsv", "csv"), ("a.ndjson", "json"),
                                            ("a.xlsx", "xlsx")])
def test_it_knows_the_formats_by_extension(name, kind):
    head = b"PK\x03\x04" if kind == "xlsx" else b"x"
    assert sniff.format_of(name, head) == kind


def test_it_refuses_a_zip_that_is_no_workbook():
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "hi")
    with pytest.raises(sniff.SniffError, match="no xl/workbook.xml"):
        sniff.check_xlsx(io.BytesIO(buffer.getvalue()), "a.xlsx")
    with pytest.raises(sniff.SniffError, match="damaged"):
        sniff.check_xlsx(io.BytesIO(b"PK\x03\x04broken"), "a.xlsx")


@pytest.mark.parametrize(("text", "delimiter"), [("a,b,c\n1,2,3\n", ","), ("a;b;c\n1;2;3\n", ";"),
                                                 ("a\tb\n1\t2\n", "tab"), ("a|b\n1|2\n", "|"), ("single\n1\n", ",")])
def test_it_finds_the_csv_delimiter(text, delimiter):
    assert sniff.csv_options(text)["delimiter"] == delimiter


@pytest.mark.parametrize(("values", "kind", "date_format"), [
    (["1", "-2", " 30 "], "integer", None), (["1.5", "2", ".5", "1e3"], "number", None),
    (["00123", "00124"], "string", None), (["0.5", "07"], "string", None),
    (["yes", "No", "TRUE"], "boolean", None), (["0", "1"], "integer", None),
    (["2024-01-31", ""], "date", None), (["2024-01-31T10:00:00Z"], "datetime", None),
    (["31/12/2024", "01/02/2024"], "date", "DD/MM/YYYY"), (["12/31/2024"], "date", "MM/DD/YYYY"),
    (["31.12.2024"], "date", "DD.MM.YYYY"), (["01/02/2024"], "date", "DD/MM/YYYY"),
    ([1, 2], "integer", None), ([1, 2.5], "number", None), ([True], "boolean", None),
    ([{"a": 1}], "object", None), ([[1]], "array", None), (["", None], "empty", None), (["1", "x"], "string", None),
])
def test_it_guesses_types_from_the_sample(values, kind, date_format):
    assert sniff.guess_type(values) == (kind, date_format)


def read(adapter: str, config: dict, limit: int = 200) -> list[dict]:
    return sniff.read_sample(extractors.get(adapter).impl, config, AdapterContext(), limit=limit)


def test_it_previews_what_the_extractor_reads():
    records = read("csv", {"csvText": "sku;price;since\nA;1.50;31/12/2024\nB;2;01/01/2025\n", "delimiter": ";"})
    preview = sniff.preview_of("csv", {"delimiter": ";"}, records)
    assert [(c.name, c.type, c.date_format, c.examples) for c in preview.columns] == [
        ("sku", "string", None, ["A", "B"]), ("price", "number", None, ["1.50", "2"]),
        ("since", "date", "DD/MM/YYYY", ["31/12/2024", "01/01/2025"])]
    assert preview.rows[1] == {"sku": "B", "price": "2", "since": "01/01/2025"}
    assert sniff.Preview.from_dict(preview.as_dict()) == preview


def test_it_samples_at_most_the_limit_and_shows_ten_rows():
    body = "n\n" + "".join(f"{i}\n" for i in range(500))
    records = read("csv", {"csvText": body}, limit=50)
    preview = sniff.preview_of("csv", {}, records)
    assert (len(records), preview.sampled, len(preview.rows)) == (50, 50, sniff.PREVIEW_ROWS)


def test_it_reads_nested_json_and_keeps_columns_in_first_seen_order():
    records = read("json", {"jsonText": '{"data": {"items": [{"a": 1, "tags": ["x"]}, {"b": {"c": 2}, "a": 3}]}}',
                            "itemsPath": "data.items"})
    preview = sniff.preview_of("json", {"itemsPath": "data.items"}, records)
    assert [(c.name, c.type) for c in preview.columns] == [("a", "integer"), ("tags", "array"), ("b", "object")]


@pytest.mark.parametrize(("adapter", "config", "message"), [
    ("csv", {"csvText": 'a,b\n1,"open\n'}, "line"),
    ("csv", {"csvText": "a,b\n1,2,3\n"}, "line 2"),
    ("json", {"jsonText": "[{"}, "JSON"),
    ("json", {"jsonText": '{"x": 1}', "itemsPath": "data.items"}, "items"),
])
def test_it_says_what_is_wrong_with_a_bad_file(adapter, config, message):
    with pytest.raises(sniff.SniffError, match=message):
        read(adapter, config)


def test_it_refuses_a_file_without_records():
    with pytest.raises(sniff.SniffError, match="has no records"):
        sniff.preview_of("csv", {}, read("csv", {"csvText": "sku,name\n"}))


# --- templates ------------------------------------------------------------------------------------------------


def columns_of(template: shapes.Template) -> list[sniff.Column]:
    records = read("csv", {"csvText": template.example, **sniff.csv_options(template.example)})
    return sniff.preview_of("csv", {}, records).columns


@pytest.mark.parametrize("code", list(shapes.TEMPLATES))
def test_each_template_maps_its_own_example_onto_a_table_and_runs(code):
    template = shapes.TEMPLATES[code]
    table = ["id", "sku", "name", "description", "price", "qty", "currency", "active", "warehouse_code"]
    rows, strategy, keys = shapes.initial_mapping(columns_of(template), table,
                                                  {"id": "int", "qty": "int", "price": "num", "active": "bool"},
                                                  template)
    mapped = {r.target: r for r in rows if r.source}
    assert (strategy, keys) == (template.strategy, ["sku"])
    assert mapped["sku"].source in ("Variant SKU", "SKU", "sku")
    assert "id" not in mapped
    spec = ImportSpec(code=f"t-{code}", name=code, adapter="csv",
                      source={"csvText": template.example}, options=sniff.csv_options(template.example),
                      target_kind="sql", target={"connectionCode": "shop", "table": "products"}, mapping=rows,
                      strategy=strategy, keys=keys)
    definition = build.import_definition(spec)
    definition["steps"][-1] = {"key": "keep", "type": "SINK", "adapterCode": "records", "config": {}}
    result = execute(parse(definition), InMemoryStore(), RunOptions(keep_outputs=True))
    assert result.status == RunStatus.COMPLETED, result.error
    [record] = result.output("map")[:1]
    assert record["sku"] in ("CH-1",)
    assert set(record) == set(mapped)
    if "price" in mapped:
        assert isinstance(record["price"], int | float)


def test_the_shopify_template_cleans_html_and_reads_booleans_and_numbers():
    template = shapes.TEMPLATES["shopify-products"]
    rows, _, _ = shapes.initial_mapping(columns_of(template), None, None, template)
    by_target = {r.target: r for r in rows}
    assert (by_target["description"].source, by_target["description"].transform) == ("Body (HTML)", "stripHtml")
    assert (by_target["stock"].source, by_target["stock"].type) == ("Variant Inventory Qty", "integer")
    ops = build.mapping_operators(rows)
    definition = {"version": 1, "code": "s", "steps": [
        {"key": "read", "type": "EXTRACT", "adapterCode": "csv", "config": {"csvText": template.example}},
        {"key": "map", "type": "TRANSFORM", "config": {"operators": ops}}]}
    result = execute(parse(definition), InMemoryStore(), RunOptions(keep_outputs=True))
    [record] = result.output("map")
    assert record["description"] == "Solid oak"
    assert (record["active"], record["stock"], record["price"], record["weight"]) == (True, 12, 129, 5200)
    assert record["slug"] == "oak-chair"


def test_a_template_finds_its_fields_under_other_names_and_skips_what_the_table_lacks():
    template = shapes.TEMPLATES["stock-levels"]
    cols = [sniff.Column("Artikelnummer", "string"), sniff.Column("Menge", "integer"), sniff.Column("Lager", "string")]
    rows, strategy, keys = shapes.initial_mapping(cols, ["sku", "on_hand", "updated_at"], {"on_hand": "int"}, template)
    assert [(r.target, r.source, r.type) for r in rows] == [
        ("sku", "Artikelnummer", "string"), ("on_hand", "Menge", "integer"), ("updated_at", "", "keep")]
    assert (strategy, keys) == ("UPDATE", ["sku"])
    # a table without any key-like column: the key is dropped, the strategy page will ask for one
    rows, _, keys = shapes.initial_mapping(cols, ["qty"], None, template)
    assert keys == [] and [(r.target, r.source) for r in rows] == [("qty", "Menge")]


# --- building and checking ------------------------------------------------------------------------------------


def test_it_checks_the_mapping_and_names_each_bad_row():
    rows = [MappingRow("sku", "SKU"), MappingRow("name", "Nmae"), MappingRow("sku", "Name"),
            MappingRow("price", "Price", type="money"), MappingRow("x", "a.b"), MappingRow("ghost", "Name"),
            MappingRow("stock", "")]
    problems = build.check_mapping(rows, ["SKU", "Name", "Price", "a.b"], target_fields=["sku", "name", "price", "stock", "x"])
    assert [(p.field, p.message) for p in problems] == [
        ("mapping-1-source", "unknown column 'Nmae' in the source; did you mean 'Name'?"),
        ("mapping-2-target", "'sku' is already filled by row 1; a target field takes one source"),
        ("mapping-3-type", "unknown type 'money'"),
        ("mapping-4-source", "column 'a.b' has '.', '[' or ']' in its name, which steps read as a path; rename the "
                             "column in the file"),
        ("mapping-5-target", "unknown target field 'ghost'"),
    ]
    assert [p.message for p in build.check_mapping([MappingRow("sku")], ["SKU"])] == ["map at least one field"]
    free = build.check_mapping([MappingRow("2nd field", "SKU")], ["SKU"])
    assert free[0].field == "mapping-0-target" and "not a plain field name" in free[0].message


def test_it_checks_strategy_and_key_fields():
    assert build.check_strategy("sql", "UPSERT", ["sku"], ["sku", "name"]) == []
    assert [p.field for p in build.check_strategy("sql", "MERGE", [], ["sku"])] == ["strategy"]
    assert "needs at least one key field" in build.check_strategy("sql", "UPDATE", [], ["sku"])[0].message
    assert "'price' is not mapped" in build.check_strategy("sql", "DELETE", ["price"], ["sku"])[0].message
    assert "requires name" in build.check_strategy("model", "CREATE", [], ["sku"], required=["name"])[0].message
    assert build.check_strategy("sql", "UPDATE", ["sku"], ["sku"], required=["name"]) == []
    assert build.check_strategy("rest", "PATCH", [], ["sku"]) == []


def test_it_checks_the_schedule_shape():
    assert build.check_schedule(Schedule("none")) == []
    assert build.check_schedule(Schedule("cron", cron="0 6 * *"))[0].field == "cron"
    assert build.check_schedule(Schedule("interval", interval_sec=30))[0].field == "interval"
    assert build.check_schedule(Schedule("hourly"))[0].field == "kind"


def spec(**overrides) -> ImportSpec:
    values = dict(code="imp", name="Imp", adapter="csv", source={"fileId": "wizard-uploads/x/p.csv"},
                  options={"delimiter": ";", "hasHeader": True}, target_kind="sql",
                  target={"connectionCode": "shop", "table": "products"},
                  mapping=[MappingRow("sku", "SKU", transform="trim"), MappingRow("price", "Price", type="number"),
                           MappingRow("on", "Active", type="boolean"), MappingRow("since", "Since", type="date",
                                                                                  date_format="DD.MM.YYYY"),
                           MappingRow("stock", "")],
                  strategy="UPSERT", keys=["sku"])
    values.update(overrides)
    return ImportSpec(**values)


def test_it_builds_an_ordinary_pipeline_for_each_target():
    sql = build.import_definition(spec())
    assert problems_of(sql) == []
    assert [(s["key"], s["type"], s.get("adapterCode")) for s in sql["steps"]] == [
        ("read", "EXTRACT", "csv"), ("map", "TRANSFORM", None), ("load", "LOAD", "tableUpsert")]
    assert sql["steps"][0]["config"] == {"fileId": "wizard-uploads/x/p.csv", "delimiter": ";", "hasHeader": True}
    assert [o["op"] for o in sql["steps"][1]["config"]["operators"]] == [
        "map", "trim", "toNumber", "lowercase", "switch", "dateParse", "dateFormat"]
    assert sql["steps"][1]["config"]["operators"][0]["args"] == {
        "mapping": {"sku": "SKU", "price": "Price", "on": "Active", "since": "Since"}}
    model = build.import_definition(spec(target_kind="model", target={"model": "auth.Group"}, strategy="CREATE", keys=[]))
    assert model["steps"][-1]["config"] == {"model": "auth.Group", "strategy": "CREATE"}
    rest = build.import_definition(spec(target_kind="rest", target={"endpoint": "https://api.example/items"},
                                        strategy="PUT", keys=[], schedule=Schedule("interval", interval_sec=3600)))
    assert rest["steps"][0] == {"key": "schedule", "type": "TRIGGER", "name": "Schedule",
                                "config": {"type": "SCHEDULE", "intervalSec": 3600}}
    assert rest["steps"][-1]["config"] == {"endpoint": "https://api.example/items", "method": "PUT"}
    assert problems_of(rest) == []


def test_the_built_mapping_converts_as_asked():
    rows = spec().mapping
    definition = {"version": 1, "code": "c", "steps": [
        {"key": "read", "type": "EXTRACT", "adapterCode": "csv",
         "config": {"csvText": "SKU;Price;Active;Since;Other\n A-1 ;1.50;Yes;31.12.2024;x\nB;;off;01.02.2025;y\n",
                    "delimiter": ";"}},
        {"key": "map", "type": "TRANSFORM", "config": {"operators": build.mapping_operators(rows)}}]}
    result = execute(parse(definition), InMemoryStore(), RunOptions(keep_outputs=True))
    assert result.output("map") == [
        {"sku": "A-1", "price": 1.5, "on": True, "since": "2024-12-31"},
        {"sku": "B", "price": None, "on": False, "since": "2025-02-01"}]


def test_a_bad_cron_is_refused_by_the_trigger_check_at_the_cron_field():
    definition = build.import_definition(spec(schedule=Schedule("cron", cron="61 * * * *")))
    [problem] = problems_of(definition)
    assert build.field_of(problem.step, problem.field) == "cron"
    assert "not a valid 5-field cron expression" in problem.message


def test_it_builds_an_export_pipeline():
    export = build.ExportSpec(code="exp", name="Exp", source_kind="sql",
                              source={"connectionCode": "shop", "query": "SELECT sku, name FROM products"},
                              fields=[MappingRow("SKU", "sku"), MappingRow("name", "")], exporter="csvExport",
                              options={"delimiter": ";", "includeHeader": True},
                              destination={"path": "exports", "filenamePattern": "p.csv", "connectionCode": ""})
    definition = build.export_definition(export)
    assert problems_of(definition) == []
    assert definition["steps"][-1] == {"key": "export", "type": "EXPORT", "adapterCode": "csvExport",
                                       "name": "Write a CSV file",
                                       "config": {"path": "exports", "filenamePattern": "p.csv", "delimiter": ";",
                                                  "includeHeader": True, "columns": ["SKU"]}}


def test_the_core_modules_import_no_django():
    code = ("import sys; import pipelines.wizards.sniff, pipelines.wizards.automap, pipelines.wizards.shapes, "
            "pipelines.wizards.build; print('django.db' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": "."})
    assert out.stdout.strip() == "False"
