"""csvExport, jsonExport and xmlExport into a real FileSystemStorage, through the real executor; every
file is parsed back (csv module, json, defusedxml)."""

import csv
import io
import json
import os
from datetime import UTC, datetime

import pytest
from defusedxml import ElementTree
from django.core.files.storage import FileSystemStorage

from pipelines.adapters.base import AdapterContext
from pipelines.adapters.exports import CsvExportWriter, JsonExportWriter, XmlExportWriter, render_filename
from pipelines.definition import parse
from pipelines.errors import ConfigError, DefinitionError
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore

NOW = datetime(2024, 3, 9, 14, 5, 7, 123000, tzinfo=UTC)
PRODUCTS = [
    {"sku": "A-1", "name": "Chair", "price": 19.9, "stock": 3, "active": True, "tags": ["garden", "wood"],
     "dims": {"w": 40}},
    {"sku": "A-2", "name": 'Towel, "blue"\nbig', "price": 9.0, "stock": 0, "active": False, "tags": [],
     "dims": None},
]


@pytest.fixture
def storage(tmp_path):
    return FileSystemStorage(location=tmp_path / "storage")


def export(code, config, storage, data=PRODUCTS, step_type="EXPORT", **options):
    d = {"steps": [{"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": data}},
                   {"key": "out", "type": step_type, "adapterCode": code, "config": config}],
         "context": options.pop("context", {})}
    store = InMemoryStore()
    result = execute(parse(d), store, RunOptions(keep_outputs=True, storage=storage, now=lambda: NOW, **options))
    return result, store


def written(store, key="out"):
    """The stored file names the step reported."""
    return [w.split(" ")[1] for w in store.finished()[key].warnings if w.startswith("wrote ")]


def read(storage, name):
    with storage.open(name, "rb") as f:
        return f.read().decode("utf-8")


def ctx(storage, **kw):
    return AdapterContext(step_key="out", storage=storage, now=lambda: NOW, **kw)


# --- csvExport --------------------------------------------------------------------------------------------


def test_csv_export_writes_a_file_that_parses_back(storage):
    result, store = export("csvExport", {"path": "exports"}, storage)
    assert result.status == "COMPLETED", result.error
    [name] = written(store)
    assert name == f"exports/out-{int(NOW.timestamp() * 1000)}.csv"
    assert store.finished()["out"].warnings == (f"wrote {name} (2 records)",)
    rows = list(csv.reader(io.StringIO(read(storage, name))))
    assert rows == [
        ["sku", "name", "price", "stock", "active", "tags", "dims"],
        ["A-1", "Chair", "19.9", "3", "true", '["garden","wood"]', '{"w":40}'],
        ["A-2", 'Towel, "blue"\nbig', "9", "0", "false", "[]", ""],
    ]
    assert result.output("out") == []  # an export passes nothing on


def test_csv_export_escapes_formula_injection_by_default(storage):
    data = [{"v": v} for v in ("=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "\tTab", "\rCR", "plain", -5)]
    _, store = export("csvExport", {}, storage, data=data)
    rows = list(csv.reader(io.StringIO(read(storage, written(store)[0]), newline="")))
    assert [r[0] for r in rows[1:]] == ["'=HYPERLINK(\"http://x\")", "'+1", "'-2", "'@SUM(A1)", "'\tTab", "'\rCR",
                                        "plain", "-5"]
    _, store = export("csvExport", {"formulaMode": "PRESERVE"}, storage, data=data)
    rows = list(csv.reader(io.StringIO(read(storage, written(store)[0]), newline="")))
    assert [r[0] for r in rows[1:]] == [d["v"] if isinstance(d["v"], str) else "-5" for d in data]


def test_csv_export_delimiters_header_and_bom(storage):
    data = [{"a": "x;y", "b": "1"}]
    for delimiter, char in ((";", ";"), ("tab", "\t"), ("\t", "\t"), ("|", "|")):
        _, store = export("csvExport", {"delimiter": delimiter, "includeHeader": False}, storage, data=data)
        text = read(storage, written(store)[0])
        assert list(csv.reader(io.StringIO(text), delimiter=char)) == [["x;y", "1"]]
    _, store = export("csvExport", {"addBom": True}, storage, data=data)
    assert read(storage, written(store)[0]).startswith("\ufeffa,b\r\n")


def test_csv_export_refuses_a_bad_delimiter(storage):
    with pytest.raises(ConfigError) as info:
        CsvExportWriter({"delimiter": ":"}, ctx(storage))
    assert info.value.field == "delimiter"
    with pytest.raises(DefinitionError, match="delimiter"):
        export("csvExport", {"delimiter": "::"}, storage)


def test_csv_export_columns_from_config_or_from_the_first_record(storage):
    data = [{"a": 1}, {"a": 2, "b": 3}]
    _, store = export("csvExport", {}, storage, data=data)
    assert read(storage, written(store)[0]) == "a\r\n1\r\n2\r\n"
    assert any("left out: b" in w for w in store.finished()["out"].warnings)
    _, store = export("csvExport", {"columns": ["b", "a"]}, storage, data=data)
    assert read(storage, written(store)[0]) == "b,a\r\n,1\r\n3,2\r\n"


def test_csv_export_streams_batches_into_a_temporary_file_and_saves_at_the_end(storage):
    writer = CsvExportWriter({"filenamePattern": "stream.csv"}, ctx(storage))
    for i in range(5):
        assert writer.write([{"n": i * 2}, {"n": i * 2 + 1}]).written == 2
        assert not storage.exists("stream.csv")  # nothing in the storage until finish()
    writer.finish()
    writer.close()
    assert read(storage, "stream.csv") == "n\r\n" + "".join(f"{i}\r\n" for i in range(10))


def test_a_failed_step_saves_no_file(storage):
    writer = CsvExportWriter({"filenamePattern": "never.csv"}, ctx(storage))
    writer.write([{"n": 1}])
    writer.close()  # the step failed: finish() is not called
    assert not storage.exists("never.csv")


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc (Linux)")
@pytest.mark.parametrize("cls", [CsvExportWriter, JsonExportWriter, XmlExportWriter])
def test_a_writer_closes_its_temporary_file_saved_or_not(storage, cls):
    before = open_descriptors()
    for finish in (True, False):
        writer = cls({"filenamePattern": f"fd-{finish}.txt"}, ctx(storage))
        writer.write([{"n": "zq7"}])
        if finish:
            writer.finish()
        writer.close()
    assert open_descriptors() == before
    assert read(storage, "fd-True.txt").count("zq7") == 1


def test_a_dry_run_writes_no_file(storage):
    result, store = export("csvExport", {"filenamePattern": "dry.csv"}, storage, dry_run=True)
    assert result.status == "COMPLETED"
    assert not storage.exists("dry.csv")
    assert result.output("out") == PRODUCTS


def test_exports_need_a_storage():
    with pytest.raises(ConfigError, match="no file storage"):
        CsvExportWriter({}, AdapterContext(step_key="out"))
    result, store = export("jsonExport", {}, None)
    assert result.status == "FAILED" and "no file storage" in store.finished()["out"].error


# --- file names -------------------------------------------------------------------------------------------


def test_filename_placeholders(storage):
    name = render_filename("p-${date:YYYY-MM-DD_HHmmss.SSS}-${timestamp}-${date}.csv", NOW)
    assert name == f"p-2024-03-09_140507.123-{int(NOW.timestamp() * 1000)}-2024-03-09.csv"
    a, b = render_filename("${uuid}", NOW), render_filename("${uuid}", NOW)
    assert len(a) == 36 and a != b
    _, store = export("jsonExport", {"path": "daily/", "filenamePattern": "${date:YYYY/MM}/p.json"}, storage)
    assert written(store) == ["daily/2024/03/p.json"]
    assert storage.exists("daily/2024/03/p.json")


def test_output_names_stay_inside_the_storage(storage):
    for config, field in (({"path": "../up"}, "path"), ({"path": "/etc"}, "path"), ({"path": "a\\b"}, "path"),
                          ({"filenamePattern": "../x.csv"}, "filenamePattern"),
                          ({"filenamePattern": "/tmp/x.csv"}, "filenamePattern"),
                          ({"filenamePattern": "x-${nope}.csv"}, "filenamePattern")):
        with pytest.raises(ConfigError) as info:
            CsvExportWriter(config, ctx(storage))
        assert info.value.field == field, config
    result, store = export("csvExport", {"path": "a/../../b"}, storage)
    assert result.status == "FAILED" and "path: 'a/../../b' must not contain '..'" in store.finished()["out"].error


def test_an_existing_file_is_kept_and_the_new_name_reported(storage):
    _, first = export("csvExport", {"filenamePattern": "same.csv"}, storage)
    _, second = export("csvExport", {"filenamePattern": "same.csv"}, storage)
    assert written(first) == ["same.csv"]
    [other] = written(second)
    assert other != "same.csv" and storage.exists(other)


# --- jsonExport -------------------------------------------------------------------------------------------


def test_json_export_array_pretty_and_ndjson(storage):
    _, store = export("jsonExport", {}, storage)
    [name] = written(store)
    assert name.endswith(".json") and json.loads(read(storage, name)) == PRODUCTS
    _, store = export("jsonExport", {"pretty": True}, storage)
    text = read(storage, written(store)[0])
    assert json.loads(text) == PRODUCTS and text.startswith('[\n  {\n    "sku": "A-1",')
    _, store = export("jsonExport", {"format": "NDJSON"}, storage)
    [name] = written(store)
    assert name.endswith(".ndjson")
    assert [json.loads(line) for line in read(storage, name).splitlines()] == PRODUCTS


def test_json_export_of_no_records_is_an_empty_array(storage):
    _, store = export("jsonExport", {}, storage, data=[])
    assert json.loads(read(storage, written(store)[0])) == []
    _, store = export("jsonExport", {"pretty": True}, storage, data=[])
    assert json.loads(read(storage, written(store)[0])) == []


def test_json_export_many_batches(storage):
    data = [{"n": i} for i in range(25)]
    _, store = export("jsonExport", {"pretty": True}, storage, data=data, context={"throughput": {"batchSize": 4}})
    assert json.loads(read(storage, written(store)[0])) == data


# --- xmlExport --------------------------------------------------------------------------------------------


def test_xml_export_escapes_everything_and_parses_back(storage):
    data = [{"sku": "A&B", "name": '<b>"Chair"</b> & \'co\'', "ctrl": "bell\x07here", "price": 9.5,
             "@id": "x<1>", "dims": {"w": 40, "h": None}, "tags": ["a", "b"], "bad key!": "v", "1st": "n"}]
    _, store = export("xmlExport", {"rootElement": "products", "itemElement": "product"}, storage, data=data)
    text = read(storage, written(store)[0])
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<products>\n  <product id="x&lt;1&gt;">')
    root = ElementTree.fromstring(text.encode())
    assert root.tag == "products"
    [product] = root
    assert product.get("id") == "x<1>"
    assert product.findtext("sku") == "A&B"
    assert product.findtext("name") == '<b>"Chair"</b> & \'co\''
    assert product.findtext("ctrl") == "bell\ufffdhere"
    assert product.findtext("price") == "9.5"
    assert product.find("dims").findtext("w") == "40" and product.find("dims").find("h").text is None
    assert [t.text for t in product.findall("tags")] == ["a", "b"]
    assert product.findtext("bad_key_") == "v" and product.findtext("_1st") == "n"


def test_xml_export_round_trips_through_the_xml_extractor(storage):
    data = [{"@id": "1", "name": "Chair", "tags": ["a", "b"], "dims": {"@unit": "cm", "w": "40"}},
            {"@id": "2", "name": "Lamp & shade"}]
    _, store = export("xmlExport", {"filenamePattern": "round.xml"}, storage, data=data)
    d = {"steps": [{"key": "src", "type": "EXTRACT", "adapterCode": "xml",
                    "config": {"fileId": "round.xml", "recordPath": "feed/item"}}]}
    result = execute(parse(d), InMemoryStore(), RunOptions(keep_outputs=True, storage=storage))
    assert result.output("src") == data


def test_xml_export_without_declaration_and_with_defaults(storage):
    _, store = export("xmlExport", {"declaration": False}, storage, data=[{"a": 1}])
    assert read(storage, written(store)[0]) == "<feed>\n  <item>\n    <a>1</a>\n  </item>\n</feed>\n"


def test_xml_export_refuses_invalid_element_names(storage):
    for config, field in (({"rootElement": "1root"}, "rootElement"), ({"itemElement": "a b"}, "itemElement"),
                          ({"rootElement": "xmlThing"}, "rootElement"), ({"itemElement": "<x>"}, "itemElement")):
        with pytest.raises(ConfigError, match="not a valid XML element name") as info:
            XmlExportWriter(config, ctx(storage))
        assert info.value.field == field
    with pytest.raises(DefinitionError, match="rootElement"):
        export("xmlExport", {"rootElement": "bad name"}, storage)


# --- shared -----------------------------------------------------------------------------------------------


def test_language_code_overlays_the_translation(storage):
    data = [{"sku": "A", "name": "Chair", "translations": [{"languageCode": "de", "name": "Stuhl", "id": 9}]},
            {"sku": "B", "name": "Lamp"}]
    _, store = export("jsonExport", {"languageCode": "de"}, storage, data=data)
    out = json.loads(read(storage, written(store)[0]))
    assert [(r["sku"], r["name"]) for r in out] == [("A", "Stuhl"), ("B", "Lamp")]


def test_writer_classes_work_directly(storage):
    writer = JsonExportWriter({"format": "NDJSON", "filenamePattern": "d.ndjson"}, ctx(storage))
    result = writer.write([{"a": 1}])
    assert result.written == 1 and result.failed == [] and result.output is None
    writer.finish()
    writer.close()
    assert read(storage, "d.ndjson") == '{"a":1}\n'


def test_every_exporter_schema_describes_each_property():
    from pipelines import registry

    for code in ("csvExport", "jsonExport", "xmlExport"):
        schema = registry.exporters.get(code).schema
        assert schema["additionalProperties"] is False
        for name, prop in schema["properties"].items():
            assert prop.get("description"), (code, name)
