"""The file extractors (csv, json, xml, xlsx) against real files, a real FileSystemStorage and the real
executor; bad input for each."""

import datetime as dt
import os
import threading

import openpyxl
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

from pipelines.adapters.base import AdapterContext
from pipelines.adapters.files import (
    CsvExtractor,
    JsonExtractor,
    XlsxExtractor,
    XmlExtractor,
)
from pipelines.definition import parse
from pipelines.errors import ConfigError, DefinitionError, StepError
from pipelines.filestores.limits import allowed_roots, max_file_bytes
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore


@pytest.fixture
def storage(tmp_path):
    return FileSystemStorage(location=tmp_path / "storage")


@pytest.fixture
def root(tmp_path, settings):
    """An allowed folder for `path` sources."""
    folder = tmp_path / "imports"
    folder.mkdir()
    settings.DATAHUB_FILE_ROOTS = [str(folder)]
    return folder


def extract(code, config, storage=None, store=None, **options):
    d = {"steps": [{"key": "src", "type": "EXTRACT", "adapterCode": code, "config": config},
                   {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}}]}
    store = store if store is not None else InMemoryStore()
    result = execute(parse(d), store, RunOptions(keep_outputs=True, storage=storage, **options))
    return result, store


def records(code, config, storage=None, **options):
    result, _ = extract(code, config, storage, **options)
    assert result.status == "COMPLETED", result.error
    return result.output("src")


def failure(code, config, storage=None, **options):
    result, store = extract(code, config, storage, **options)
    assert result.status == "FAILED"
    return store.finished()["src"].error


def batches(cls, config, storage=None, batch_size=1000, **ctx):
    extractor = cls(config, AdapterContext(step_key="src", batch_size=batch_size, storage=storage, **ctx))
    try:
        return list(extractor.batches())
    finally:
        extractor.close()


def save(storage, name, data):
    return storage.save(name, ContentFile(data if isinstance(data, bytes) else data.encode()))


# --- csv --------------------------------------------------------------------------------------------------


def test_csv_reads_inline_text_as_string_records():
    out = records("csv", {"csvText": "sku,name,price\nA-1,Chair,19.90\nA-2,\"Towel, blue\",9.5\n"})
    assert out == [{"sku": "A-1", "name": "Chair", "price": "19.90"},
                   {"sku": "A-2", "name": "Towel, blue", "price": "9.5"}]


def test_csv_reads_a_file_from_storage_with_options(storage):
    save(storage, "uploads/p.csv", "\ufefftitle line\nsku; name ;price\n A ; 'Chair; big';1\n\nB;Lamp;2\n")
    out = records("csv", {"fileId": "uploads/p.csv", "delimiter": ";", "quoteChar": "'", "skipRows": 1,
                          "trim": True}, storage)
    assert out == [{"sku": "A", "name": "Chair; big", "price": "1"}, {"sku": "B", "name": "Lamp", "price": "2"}]
    # storagePath is the same thing by another name
    assert records("csv", {"storagePath": "uploads/p.csv", "delimiter": ";", "quoteChar": "'", "headerRow": 2,
                           "trim": True}, storage) == out


def test_csv_decodes_the_given_encoding(storage):
    save(storage, "latin.csv", "name\nCafé Crème\n".encode("latin-1"))
    assert records("csv", {"fileId": "latin.csv", "encoding": "latin-1"}, storage) == [{"name": "Café Crème"}]
    error = failure("csv", {"fileId": "latin.csv"}, storage)
    assert "not valid utf-8" in error


def test_tsv_by_delimiter_and_by_extension(storage):
    save(storage, "p.tsv", "a\tb\n1\t2,3\n")
    assert records("csv", {"fileId": "p.tsv"}, storage) == [{"a": "1", "b": "2,3"}]
    assert records("csv", {"csvText": "a\tb\n1\t2\n", "delimiter": "tab"}) == [{"a": "1", "b": "2"}]
    assert records("csv", {"csvText": "a\tb\n1\t2\n", "delimiter": "\t"}) == [{"a": "1", "b": "2"}]


def test_csv_without_header_names_fields_col1_to_colN():
    out = records("csv", {"csvText": "A,1\nB,2\n", "hasHeader": False})
    assert out == [{"col1": "A", "col2": "1"}, {"col1": "B", "col2": "2"}]


def test_csv_reads_inline_rows_as_objects_or_arrays():
    assert records("csv", {"rows": [{"a": 1}, {"a": 2}]}) == [{"a": 1}, {"a": 2}]
    assert records("csv", {"rows": [["sku", "qty"], ["A", 3]]}) == [{"sku": "A", "qty": 3}]
    assert records("csv", {"rows": [["A", 3]], "hasHeader": False}) == [{"col1": "A", "col2": 3}]
    with pytest.raises(ConfigError, match="all objects or all arrays"):
        batches(CsvExtractor, {"rows": [{"a": 1}, ["x"]]})


def test_csv_keeps_quoted_line_breaks_and_names_the_right_line_of_a_bad_row():
    text = 'sku,notes\nA,"two\nlines"\nB,ok,extra\nC,fine\n'
    with pytest.raises(StepError) as info:
        batches(CsvExtractor, {"csvText": text})
    assert str(info.value).startswith("line 4: expected 2 fields, got 3")
    assert info.value.retryable is False
    result, store = extract("csv", {"csvText": text})
    assert result.status == "FAILED" and "line 4: expected 2 fields, got 3" in result.error


def test_csv_skips_bad_rows_with_a_warning_when_told():
    text = 'sku,name\nA,x\nB\nC,"broken"quote\nD,y\n'
    result, store = extract("csv", {"csvText": text, "onBadRow": "skip"})
    assert result.status == "COMPLETED"
    assert [r["sku"] for r in result.output("src")] == ["A", "D"]
    warnings = store.finished()["src"].warnings
    assert "line 3: expected 2 fields, got 1 (skipped)" in warnings
    assert any(w.startswith("line 4:") for w in warnings)
    assert "2 bad rows skipped" in warnings


def test_csv_bad_quoting_fails_with_its_line():
    with pytest.raises(StepError, match=r"^line 3: .*expected after"):
        batches(CsvExtractor, {"csvText": 'a,b\n1,2\n3,"x"y\n'})


def test_csv_refuses_a_bad_delimiter():
    for bad in ("", ";;", "\n"):
        with pytest.raises(ConfigError) as info:
            batches(CsvExtractor, {"csvText": "a\n1\n", "delimiter": bad})
        assert info.value.field == "delimiter"
    with pytest.raises(DefinitionError, match="delimiter"):
        extract("csv", {"csvText": "a\n", "delimiter": "ab"})
    with pytest.raises(ConfigError, match="must differ"):
        batches(CsvExtractor, {"csvText": "a\n", "delimiter": ";", "quoteChar": ";"})


def test_csv_refuses_a_duplicate_header_and_conflicting_header_options():
    with pytest.raises(StepError, match="line 1: the header names 'a' twice"):
        batches(CsvExtractor, {"csvText": "a,a\n1,2\n"})
    with pytest.raises(ConfigError, match="headerRow or skipRows"):
        batches(CsvExtractor, {"csvText": "a\n", "headerRow": 2, "skipRows": 1})


def test_csv_yields_batches_of_the_batch_size_and_honours_the_limit():
    text = "n\n" + "".join(f"{i}\n" for i in range(5))
    assert [len(b) for b in batches(CsvExtractor, {"csvText": text}, batch_size=2)] == [2, 2, 1]
    assert [len(b) for b in batches(CsvExtractor, {"csvText": text}, batch_size=2, record_limit=3)] == [2, 1]
    assert len(records("csv", {"csvText": text}, record_limit=3)) == 3


def test_csv_stops_when_cancelled():
    cancelled = threading.Event()
    extractor = CsvExtractor({"csvText": "n\n1\n2\n3\n4\n"}, AdapterContext(batch_size=1, cancelled=cancelled))
    it = extractor.batches()
    assert next(it) == [{"n": "1"}]
    cancelled.set()
    assert list(it) == []


class RecordingStorage(FileSystemStorage):
    def _open(self, name, mode="rb"):
        self.opened = super()._open(name, mode)
        return self.opened


def test_csv_streams_a_large_file_instead_of_reading_it_whole(tmp_path):
    storage = RecordingStorage(location=tmp_path)
    data = "sku,name\n" + "".join(f"SKU-{i},Product number {i}\n" for i in range(100_000))
    save(storage, "big.csv", data)
    extractor = CsvExtractor({"fileId": "big.csv"}, AdapterContext(batch_size=100, storage=storage))
    it = extractor.batches()
    first = next(it)
    assert first[0] == {"sku": "SKU-0", "name": "Product number 0"} and len(first) == 100
    assert storage.opened.file.tell() < len(data) / 10  # only a few buffers read so far
    assert sum(len(b) for b in it) == 99_900
    extractor.close()


def test_csv_resumes_after_the_records_read_before_only_when_resumable(storage):
    save(storage, "feed.csv", "sku\nA\nB\n")
    store = InMemoryStore()
    config = {"fileId": "feed.csv", "resumable": True}
    result, _ = extract("csv", config, storage, store)
    assert [r["sku"] for r in result.output("src")] == ["A", "B"]
    assert store.checkpoints["src"] == {"source": "storage:feed.csv", "offset": 2}
    storage.delete("feed.csv")
    save(storage, "feed.csv", "sku\nA\nB\nC\n")
    result, _ = extract("csv", config, storage, store)
    assert [r["sku"] for r in result.output("src")] == ["C"]
    assert store.checkpoints["src"]["offset"] == 3
    result, _ = extract("csv", {**config, "resetCheckpoint": True}, storage, store)
    assert [r["sku"] for r in result.output("src")] == ["A", "B", "C"]
    # a preview never moves the offset; without resumable the checkpoint is not touched
    store.checkpoints["src"] = {"source": "storage:feed.csv", "offset": 1}
    extract("csv", config, storage, store, record_limit=1)
    assert store.checkpoints["src"]["offset"] == 1
    other = InMemoryStore()
    extract("csv", {"fileId": "feed.csv"}, storage, other)
    assert other.checkpoints.get("src", {}) == {}


# --- where files come from --------------------------------------------------------------------------------


def test_a_path_inside_an_allowed_folder_is_read(root):
    (root / "sub").mkdir()
    (root / "sub" / "p.csv").write_text("a\n1\n")
    assert records("csv", {"path": str(root / "sub" / "p.csv")}) == [{"a": "1"}]
    assert records("csv", {"path": "sub/p.csv"}) == [{"a": "1"}]


def test_a_path_outside_the_allowed_folders_is_refused(root, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    (root / "link.csv").symlink_to(secret)
    for path in (str(secret), "../secret.csv", "link.csv", "/etc/passwd"):
        with pytest.raises(ConfigError, match="path is outside the allowed folders"):
            batches(CsvExtractor, {"path": path})
    assert "path: path is outside the allowed folders" in failure("csv", {"path": str(secret)})


def test_paths_are_refused_when_no_folder_is_allowed(tmp_path, settings):
    settings.DATAHUB_FILE_ROOTS = []
    (tmp_path / "a.csv").write_text("a\n")
    assert allowed_roots() == []
    with pytest.raises(ConfigError, match="no allowed folders"):
        batches(CsvExtractor, {"path": str(tmp_path / "a.csv")})


def test_allowed_roots_and_the_size_limit_come_from_settings(tmp_path, settings):
    settings.DATAHUB_FILE_ROOTS = [str(tmp_path), " "]
    settings.DATAHUB_MAX_FILE_BYTES = 1234
    assert allowed_roots() == [tmp_path.resolve()]
    assert max_file_bytes() == 1234
    del settings.DATAHUB_MAX_FILE_BYTES
    assert max_file_bytes() == 100 * 1024 * 1024


def test_a_missing_file_is_a_config_error(root, storage):
    assert "file not found: nope.csv" in failure("csv", {"path": "nope.csv"})
    assert "file 'nope.csv' not found in storage" in failure("csv", {"fileId": "nope.csv"}, storage)
    assert "not found" in failure("xlsx", {"fileId": "nope.xlsx"}, storage)
    with pytest.raises(ConfigError, match="no file storage"):
        batches(JsonExtractor, {"fileId": "x.json"}, storage=None)
    with pytest.raises(ConfigError, match="without '..'"):
        batches(JsonExtractor, {"fileId": "../x.json"}, storage=storage)


def test_a_file_over_the_size_limit_is_refused_with_its_name_and_the_limit(root, storage, settings):
    settings.DATAHUB_MAX_FILE_BYTES = 10
    (root / "big.csv").write_text("a\n" + "1\n" * 20)
    save(storage, "big.json", "[" + ",".join(["{}"] * 20) + "]")
    with pytest.raises(ConfigError, match=r"file 'big.csv' is 42 bytes, larger than the limit of 10 bytes"):
        batches(CsvExtractor, {"path": "big.csv"})
    error = failure("json", {"fileId": "big.json"}, storage)
    assert "file 'big.json'" in error and "limit of 10 bytes" in error and "DATAHUB_MAX_FILE_BYTES" in error
    assert "larger than the limit" in failure("csv", {"csvText": "a\n" * 20})


class LyingStorage(FileSystemStorage):
    def size(self, name):
        return 1  # a storage that reports the wrong size (or a file that grew since)


def test_a_file_larger_than_its_reported_size_is_stopped_while_read(tmp_path, settings):
    storage = LyingStorage(location=tmp_path)
    save(storage, "grow.ndjson", '{"a": 1}\n' * 100)
    settings.DATAHUB_MAX_FILE_BYTES = 300
    extractor = JsonExtractor({"fileId": "grow.ndjson"}, AdapterContext(batch_size=10, storage=storage))
    with pytest.raises(ConfigError, match="file 'grow.ndjson' is larger than the limit of 300 bytes"):
        list(extractor.batches())
    extractor.close()


def test_exactly_one_source_is_needed():
    with pytest.raises(ConfigError, match="no source"):
        batches(CsvExtractor, {})
    with pytest.raises(ConfigError, match="give one source, not csvText and fileId"):
        batches(CsvExtractor, {"csvText": "a", "fileId": "x.csv"})


# --- json -------------------------------------------------------------------------------------------------


def test_json_reads_the_items_at_items_path(storage):
    save(storage, "api.json", '{"data": {"items": [{"id": 1, "tags": ["a"]}, {"id": 2}]}, "total": 2}')
    assert records("json", {"fileId": "api.json", "itemsPath": "data.items"}, storage) == [
        {"id": 1, "tags": ["a"]}, {"id": 2}]
    assert records("json", {"jsonText": '[{"a": 1}, {"a": 2}]'}) == [{"a": 1}, {"a": 2}]
    assert records("json", {"jsonText": '{"a": 1}'}) == [{"a": 1}]


def test_json_items_path_errors():
    with pytest.raises(ConfigError, match="itemsPath 'data.rows' is not in the document"):
        batches(JsonExtractor, {"jsonText": '{"data": {}}', "itemsPath": "data.rows"})
    with pytest.raises(ConfigError, match="holds string, not a list"):
        batches(JsonExtractor, {"jsonText": '{"data": "x"}', "itemsPath": "data"})
    with pytest.raises(StepError, match=r"data\[1\]: expected an object, got number"):
        batches(JsonExtractor, {"jsonText": '{"data": [{}, 3]}', "itemsPath": "data"})


def test_json_reports_a_broken_document_with_line_and_column():
    with pytest.raises(StepError, match="invalid JSON in inline jsonText: line 2, column"):
        batches(JsonExtractor, {"jsonText": '[{"a": 1},\n {"a": }]'})


def test_ndjson_streams_lines_by_format_or_extension(storage):
    save(storage, "events.ndjson", '{"n": 1}\n\n{"n": 2}\r\n{"n": 3}')
    assert records("json", {"fileId": "events.ndjson"}, storage) == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert [len(b) for b in batches(JsonExtractor, {"fileId": "events.ndjson"}, storage, batch_size=2)] == [2, 1]
    assert records("json", {"jsonText": '{"n": 1}\n{"n": 2}\n', "format": "NDJSON"}) == [{"n": 1}, {"n": 2}]


def test_ndjson_names_the_line_of_a_bad_record_or_skips_it():
    text = '{"n": 1}\n{"n": \n[1]\n{"n": 4}\n'
    with pytest.raises(StepError, match=r"^line 2: invalid JSON") as info:
        batches(JsonExtractor, {"jsonText": text, "format": "NDJSON"})
    assert info.value.retryable is False
    result, store = extract("json", {"jsonText": text, "format": "NDJSON", "onBadRow": "skip"})
    assert result.output("src") == [{"n": 1}, {"n": 4}]
    assert "line 3: expected an object, got array (skipped)" in store.finished()["src"].warnings
    with pytest.raises(ConfigError, match="itemsPath does not apply to NDJSON"):
        batches(JsonExtractor, {"jsonText": "{}", "format": "NDJSON", "itemsPath": "a"})


# --- xml --------------------------------------------------------------------------------------------------

CATALOG = """<?xml version="1.0" encoding="UTF-8"?>
<catalog xmlns:g="http://base.google.com/ns/1.0">
  <info><products>not a record</products></info>
  <products>
    <product id="1" active="true">
      <name>Chair &amp; cushion</name>
      <g:price>19.90</g:price>
      <tag>garden</tag><tag>wood</tag>
      <dims unit="cm"><w>40</w><h>90</h></dims>
      <note lang="en">Nice</note>
      <empty/>
    </product>
    <product id="2"><name>Lamp</name></product>
  </products>
</catalog>"""

CHAIR = {"@id": "1", "@active": "true", "name": "Chair & cushion", "g:price": "19.90", "tag": ["garden", "wood"],
         "dims": {"@unit": "cm", "w": "40", "h": "90"}, "note": {"@lang": "en", "#text": "Nice"}, "empty": ""}


def test_xml_reads_records_at_the_record_path(storage):
    save(storage, "catalog.xml", CATALOG)
    for path in ("products/product", "//product", "/catalog/products/product", "catalog.products.product",
                 "products/*"):
        out = records("xml", {"fileId": "catalog.xml", "recordPath": path}, storage)
        assert out == [CHAIR, {"@id": "2", "name": "Lamp"}], path


def test_xml_attribute_prefix_and_default_record_path():
    out = records("xml", {"xmlText": '<list><row code="a">1</row><row code="b">2</row></list>',
                          "attributePrefix": "_"})
    assert out == [{"_code": "a", "#text": "1"}, {"_code": "b", "#text": "2"}]


def test_xml_honours_the_declared_or_the_given_encoding(storage):
    save(storage, "latin.xml", '<?xml version="1.0" encoding="ISO-8859-1"?><r><i><n>Crème</n></i></r>'
         .encode("latin-1"))
    assert records("xml", {"fileId": "latin.xml"}, storage) == [{"n": "Crème"}]
    save(storage, "undeclared.xml", "<r><i><n>Crème</n></i></r>".encode("latin-1"))
    assert records("xml", {"fileId": "undeclared.xml", "encoding": "latin-1"}, storage) == [{"n": "Crème"}]


def test_xml_streams_in_batches_and_clears_what_it_read(storage):
    body = "".join(f"<item><sku>S{i}</sku></item>" for i in range(5000))
    save(storage, "many.xml", f"<feed>{body}</feed>")
    extractor = XmlExtractor({"fileId": "many.xml"}, AdapterContext(batch_size=1000, storage=storage))
    sizes = []
    for batch in extractor.batches():
        sizes.append(len(batch))
    assert sizes == [1000] * 5
    extractor.close()


def test_xml_refuses_an_entity_expansion_bomb():
    bomb = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
            ' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n'
            ' <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">\n'
            ']>\n<lolz><item>&lol3;</item></lolz>')
    with pytest.raises(StepError, match="entity declarations") as info:
        batches(XmlExtractor, {"xmlText": bomb})
    assert "EntitiesForbidden" in str(info.value) and info.value.retryable is False
    assert "refused" in failure("xml", {"xmlText": bomb})


def test_xml_refuses_external_entities(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    xxe = (f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]>'
           "<r><i>&x;</i></r>")
    with pytest.raises(StepError, match="refused"):
        batches(XmlExtractor, {"xmlText": xxe})


def test_xml_reports_broken_xml_with_its_line():
    with pytest.raises(StepError, match="invalid XML in inline xmlText: line 3"):
        batches(XmlExtractor, {"xmlText": "<r>\n<i>1</i>\n<i>2</j>\n</r>"})


# --- xlsx -------------------------------------------------------------------------------------------------


def workbook(path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Products"
    ws.append(["Price list 2024"])
    ws.append([])
    ws.append(["sku", "name", "price", "added", None])
    ws.append(["A-1", " Chair ", 19.9, dt.datetime(2024, 5, 1, 12, 30), None])
    ws.append([None, None, None, None, None])
    ws.append(["A-2", "Lamp", 5, None, "stray"])
    other = wb.create_sheet("Stock")
    other.append(["sku", "qty"])
    other.append(["A-1", 3])
    wb.save(path)
    return path


def test_xlsx_reads_a_sheet_by_name_or_index_with_a_header_row(storage, tmp_path):
    with open(workbook(tmp_path / "p.xlsx"), "rb") as f:
        storage.save("p.xlsx", f)
    out = records("xlsx", {"fileId": "p.xlsx", "sheetName": "Products", "headerRow": 3, "trim": True}, storage)
    assert out == [{"sku": "A-1", "name": "Chair", "price": 19.9, "added": "2024-05-01T12:30:00"},
                   {"sku": "A-2", "name": "Lamp", "price": 5, "added": None, "col5": "stray"}]
    assert records("xlsx", {"fileId": "p.xlsx", "sheetName": 1}, storage) == [{"sku": "A-1", "qty": 3}]
    assert records("xlsx", {"fileId": "p.xlsx", "sheetName": "1"}, storage) == [{"sku": "A-1", "qty": 3}]
    assert records("xlsx", {"fileId": "p.xlsx", "sheetName": "Stock", "hasHeader": False}, storage) == [
        {"col1": "sku", "col2": "qty"}, {"col1": "A-1", "col2": 3}]


def test_xlsx_from_an_allowed_path(root):
    workbook(root / "p.xlsx")
    out = records("xlsx", {"path": "p.xlsx", "skipRows": 2})
    assert [r["sku"] for r in out] == ["A-1", "A-2"]


def test_xlsx_with_a_missing_sheet_names_the_sheets_it_has(root):
    workbook(root / "p.xlsx")
    with pytest.raises(ConfigError, match="sheet 'Prices' not found; the workbook has 'Products', 'Stock'") as info:
        batches(XlsxExtractor, {"path": "p.xlsx", "sheetName": "Prices"})
    assert info.value.field == "sheetName"
    with pytest.raises(ConfigError, match="sheet index 5 is out of range"):
        batches(XlsxExtractor, {"path": "p.xlsx", "sheetName": 5})
    assert "sheetName: sheet 'Prices' not found" in failure("xlsx", {"path": "p.xlsx", "sheetName": "Prices"})


def test_xlsx_refuses_a_file_that_is_not_a_workbook(root):
    (root / "fake.xlsx").write_text("sku,name\n")
    with pytest.raises(StepError, match="not a readable XLSX workbook"):
        batches(XlsxExtractor, {"path": "fake.xlsx"})


def test_xlsx_batches_and_limit(root):
    wb = openpyxl.Workbook()
    wb.active.append(["n"])
    for i in range(25):
        wb.active.append([i])
    wb.save(root / "n.xlsx")
    assert [len(b) for b in batches(XlsxExtractor, {"path": "n.xlsx"}, batch_size=10)] == [10, 10, 5]
    assert [len(b) for b in batches(XlsxExtractor, {"path": "n.xlsx"}, batch_size=10, record_limit=12)] == [10, 2]


def test_every_file_extractor_schema_describes_each_property():
    from pipelines import registry

    for code in ("csv", "json", "xml", "xlsx"):
        schema = registry.extractors.get(code).schema
        assert schema["additionalProperties"] is False
        for name, prop in schema["properties"].items():
            assert prop.get("description"), (code, name)


def test_symlinked_root_folders_are_resolved(tmp_path, settings):
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.csv").write_text("a\n1\n")
    os.symlink(real, tmp_path / "alias")
    settings.DATAHUB_FILE_ROOTS = [str(tmp_path / "alias")]
    assert records("csv", {"path": str(tmp_path / "alias" / "a.csv")}) == [{"a": "1"}]
