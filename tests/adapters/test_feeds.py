"""The product feeds (googleMerchant, metaCatalog, amazonFeed, customFeed) into a real FileSystemStorage,
through the real executor; every file is parsed back."""

import csv
import io
import json
import pathlib
from datetime import UTC, datetime

import pytest
from defusedxml import ElementTree
from django.core.files.storage import FileSystemStorage

from pipelines.adapters.base import AdapterContext
from pipelines.adapters.feeds import AmazonFeed, CustomFeed, GoogleMerchantFeed, MetaCatalogFeed
from pipelines.definition import parse
from pipelines.errors import ConfigError, DefinitionError
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore

NOW = datetime(2024, 3, 9, 14, 5, 7, tzinfo=UTC)
G = "{http://base.google.com/ns/1.0}"
PRODUCTS = [
    {"id": 1, "sku": "A-1", "name": "Chair & <cushion>", "description": "Oak chair", "price": 1999,
     "image": "/img/a1.png", "link": "https://shop.example/p/a1", "brand": "Acme", "gtin": "4006381333931",
     "availability": "in stock", "stockOnHand": 7},
    {"sku": "A-2", "name": "Towel", "description": "Soft\ttowel\nblue", "price": 950, "image": "https://cdn/x.png",
     "link": "/p/a2", "brand": "Acme", "availability": False},
    {"id": 3, "sku": "A-3", "description": "No name", "price": 100, "image": "/i.png", "link": "/p/a3",
     "brand": "Acme"},
]


@pytest.fixture
def storage(tmp_path):
    return FileSystemStorage(location=tmp_path / "storage")


def feed(code, config, storage, data=PRODUCTS):
    d = {"steps": [{"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": data}},
                   {"key": "feed", "type": "FEED", "adapterCode": code, "config": config}]}
    store = InMemoryStore()
    result = execute(parse(d), store, RunOptions(keep_outputs=True, storage=storage, now=lambda: NOW))
    assert result.status == "COMPLETED", result.error
    [name] = [w.split(" ")[1] for w in store.finished()["feed"].warnings if w.startswith("wrote ")]
    with storage.open(name, "rb") as f:
        text = f.read().decode("utf-8")
    errors = [(e.record.get("sku"), e.message) for e in store.record_errors()]
    return name, text, errors, store


def ctx(storage):
    return AdapterContext(step_key="feed", storage=storage, now=lambda: NOW)


GOOGLE = {"currency": "EUR", "storeUrl": "https://shop.example"}


def test_google_merchant_writes_rss_with_the_g_namespace(storage):
    name, text, errors, store = feed("googleMerchant", GOOGLE, storage)
    assert name == f"feed-{int(NOW.timestamp() * 1000)}.xml"
    rss = ElementTree.fromstring(text.encode())
    assert rss.tag == "rss" and rss.get("version") == "2.0"
    channel = rss.find("channel")
    assert channel.findtext("link") == "https://shop.example"
    items = channel.findall("item")
    assert len(items) == 2
    first = {child.tag.replace(G, "g:"): child.text for child in items[0]}
    assert first == {
        "g:id": "1", "g:title": "Chair & <cushion>", "g:description": "Oak chair",
        "g:link": "https://shop.example/p/a1", "g:image_link": "https://shop.example/img/a1.png",
        "g:price": "19.99 EUR", "g:brand": "Acme", "g:gtin": "4006381333931", "g:availability": "in stock",
        "g:condition": "new"}
    second = {child.tag.replace(G, "g:"): child.text for child in items[1]}
    assert second["g:id"] == "A-2"  # no id: the sku
    assert second["g:link"] == "https://shop.example/p/a2" and second["g:price"] == "9.50 EUR"
    assert second["g:availability"] == "out of stock" and "g:gtin" not in second
    # the record without a name fails alone, naming the field
    assert errors == [("A-3", "missing required feed field 'title' (from 'name')")]
    assert store.finished()["feed"].counts.errors == 1


def test_google_merchant_price_units_precision_and_field_mapping(storage):
    data = [{"code": "X", "title": "Thing", "body": "b", "cost": "19.999", "url": "/x", "pic": "/x.png",
             "stock": 0}]
    config = {**GOOGLE, "currency": "JPY", "idField": "code", "titleField": "title", "descriptionField": "body",
              "priceField": "cost", "priceUnit": "MAJOR", "pricePrecision": 0, "linkField": "url",
              "imageField": "pic", "availabilityField": "stock"}
    _, text, errors, _ = feed("googleMerchant", config, storage, data)
    item = ElementTree.fromstring(text.encode()).find("channel/item")
    assert errors == []
    assert item.findtext(f"{G}id") == "X" and item.findtext(f"{G}price") == "20 JPY"
    assert item.findtext(f"{G}availability") == "out of stock"
    assert item.findtext(f"{G}link") == "https://shop.example/x"


def test_google_merchant_fails_a_record_whose_price_is_not_a_number(storage):
    data = [{**PRODUCTS[0], "price": "cheap"}, {**PRODUCTS[0], "sku": "ok", "price": None}]
    _, text, errors, _ = feed("googleMerchant", GOOGLE, storage, data)
    assert errors == [("A-1", "price 'cheap' is not a number (field 'price')"),
                      ("ok", "missing required feed field 'price' (from 'price')")]
    assert ElementTree.fromstring(text.encode()).find("channel/item") is None


def test_google_merchant_required_fields_can_be_changed(storage):
    _, _, errors, _ = feed("googleMerchant", {**GOOGLE, "requiredFields": ["id", "price", "gtin"]}, storage)
    assert errors == [("A-2", "missing required feed field 'gtin' (from 'gtin')"),
                      ("A-3", "missing required feed field 'gtin' (from 'gtin')")]  # a title is not required now


def test_google_merchant_needs_currency_and_store_url(storage):
    with pytest.raises(DefinitionError, match="currency"):
        feed("googleMerchant", {"storeUrl": "https://x"}, storage)
    with pytest.raises(ConfigError) as info:
        GoogleMerchantFeed({"storeUrl": "https://x"}, ctx(storage))
    assert info.value.field == "currency"
    with pytest.raises(ConfigError) as info:
        GoogleMerchantFeed({"currency": "EUR"}, ctx(storage))
    assert info.value.field == "storeUrl"


def test_meta_catalog_writes_metas_columns(storage):
    name, text, errors, _ = feed("metaCatalog", {"currency": "USD", "brandField": "maker",
                                                 "outputPath": "feeds/meta-${date:YYYY-MM-DD}.csv"},
                                 storage, [{**p, "maker": p["brand"]} for p in PRODUCTS[:2]] + [{"sku": "Z"}])
    assert name == "feeds/meta-2024-03-09.csv"
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert list(rows[0]) == ["id", "title", "description", "availability", "condition", "price", "link",
                             "image_link", "brand"]
    assert rows[0]["price"] == "19.99 USD" and rows[0]["brand"] == "Acme" and rows[0]["title"] == "Chair & <cushion>"
    assert rows[1]["description"] == "Soft\ttowel\nblue" and rows[1]["availability"] == "out of stock"
    assert len(rows) == 2
    assert errors == [("Z", "missing required feed fields 'title' (from 'name'), 'description' (from "
                       "'description'), 'price' (from 'price'), 'link' (from 'link'), 'image_link' (from "
                       "'image'), 'brand' (from 'maker')")]


def test_meta_catalog_fails_a_record_without_a_brand(storage):
    _, text, errors, _ = feed("metaCatalog", {"currency": "USD"}, storage, [{**PRODUCTS[0], "brand": " "}])
    assert errors == [("A-1", "missing required feed field 'brand' (from 'brand')")]
    assert list(csv.reader(io.StringIO(text))) == [["id", "title", "description", "availability", "condition",
                                                   "price", "link", "image_link", "brand"]]


def test_amazon_feed_is_tab_separated(storage):
    name, text, errors, _ = feed("amazonFeed", {"outputPath": "feeds/amazon.txt"}, storage)
    assert name == "feeds/amazon.txt"
    rows = list(csv.DictReader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE))
    assert [r["sku"] for r in rows] == ["A-1", "A-2"]
    assert rows[0] == {"sku": "A-1", "product-id": "4006381333931", "product-id-type": "EAN",
                       "item-name": "Chair & <cushion>", "item-description": "Oak chair",
                       "standard-price": "19.99", "quantity": "7", "main-image-url": "/img/a1.png",
                       "brand-name": "Acme"}
    assert rows[1]["item-description"] == "Soft towel blue"  # a flat file: no tabs or breaks inside values
    assert rows[1]["product-id-type"] == "" and rows[1]["quantity"] == "0"
    assert errors == [("A-3", "missing required feed field 'item-name' (from 'name')")]


def test_custom_feed_in_every_format(storage):
    mapping = {"code": "sku", "title": "name", "cents": "price", "first": "tags.0"}
    data = [{"sku": "A", "name": "=Chair", "price": 5, "tags": ["x", "y"]}, {"sku": "B", "price": 7}]
    _, text, errors, _ = feed("customFeed", {"format": "CSV", "fieldMapping": mapping}, storage, data)
    assert list(csv.reader(io.StringIO(text))) == [["code", "title", "cents", "first"], ["A", "=Chair", "5", "x"],
                                                   ["B", "", "7", ""]]
    _, text, _, _ = feed("customFeed", {"format": "CSV", "fieldMapping": mapping, "formulaMode": "SPREADSHEET_SAFE"},
                         storage, data)
    assert list(csv.reader(io.StringIO(text)))[1][1] == "'=Chair"
    name, text, _, _ = feed("customFeed", {"format": "TSV", "fieldMapping": mapping}, storage, data)
    assert name.endswith(".tsv") and list(csv.reader(io.StringIO(text), delimiter="\t"))[1] == ["A", "=Chair", "5", "x"]
    name, text, _, _ = feed("customFeed", {"format": "JSON", "fieldMapping": mapping}, storage, data)
    assert name.endswith(".json")
    assert json.loads(text) == [{"code": "A", "title": "=Chair", "cents": 5, "first": "x"}, {"code": "B", "cents": 7}]
    name, text, _, _ = feed("customFeed", {"format": "XML", "fieldMapping": mapping, "rootElement": "products",
                                           "itemElement": "product"}, storage, data)
    root = ElementTree.fromstring(text.encode())
    assert root.tag == "products"
    assert [(p.findtext("code"), p.findtext("title")) for p in root] == [("A", "=Chair"), ("B", None)]


def test_custom_feed_required_fields_fail_records_alone(storage):
    config = {"format": "JSON", "fieldMapping": {"code": "sku", "title": "name"}, "requiredFields": ["title"]}
    _, text, errors, _ = feed("customFeed", config, storage, [{"sku": "A", "name": "x"}, {"sku": "B"}])
    assert json.loads(text) == [{"code": "A", "title": "x"}]
    assert errors == [("B", "missing required feed field 'title' (from 'name')")]


def test_custom_feed_config_errors(storage):
    with pytest.raises(ConfigError, match="format must be"):
        CustomFeed({"format": "YAML", "fieldMapping": {"a": "b"}}, ctx(storage))
    with pytest.raises(ConfigError, match="fieldMapping"):
        CustomFeed({"format": "CSV", "fieldMapping": {}}, ctx(storage))
    with pytest.raises(ConfigError, match="fieldMapping"):
        CustomFeed({"format": "CSV", "fieldMapping": {" a": "b"}}, ctx(storage))
    with pytest.raises(ConfigError, match="requiredFields names fields the mapping does not make: c"):
        CustomFeed({"format": "CSV", "fieldMapping": {"a": "b"}, "requiredFields": ["c"]}, ctx(storage))
    with pytest.raises(ConfigError, match="not a valid XML element name"):
        CustomFeed({"format": "XML", "fieldMapping": {"a": "b"}, "rootElement": "1x"}, ctx(storage))
    with pytest.raises(DefinitionError, match="fieldMapping"):
        feed("customFeed", {"format": "CSV"}, storage)


def test_feed_output_names(storage):
    with pytest.raises(ConfigError, match="not both"):
        AmazonFeed({"outputPath": "a.txt", "path": "x"}, ctx(storage))
    with pytest.raises(ConfigError, match="must not contain '..'"):
        MetaCatalogFeed({"currency": "USD", "outputPath": "../a.csv"}, ctx(storage))
    name, _, _, _ = feed("amazonFeed", {"path": "feeds", "filenamePattern": "amz-${date:YYYYMMDD}.txt"}, storage)
    assert name == "feeds/amz-20240309.txt"


def test_every_feed_schema_describes_each_property():
    from pipelines import registry

    for code in ("googleMerchant", "metaCatalog", "amazonFeed", "customFeed"):
        schema = registry.feeds.get(code).schema
        assert schema["additionalProperties"] is False
        for name, prop in schema["properties"].items():
            assert prop.get("description"), (code, name)


def test_the_demo_reads_a_csv_and_writes_a_google_feed(storage):
    demo = pathlib.Path(__file__).resolve().parents[2] / "pipelines" / "demo" / "demo-csv-to-feed.json"
    definition = json.loads(demo.read_text())
    store = InMemoryStore()
    result = execute(parse(definition), store, RunOptions(keep_outputs=True, storage=storage, now=lambda: NOW))
    assert result.status == "COMPLETED", result.error
    [name] = [w.split(" ")[1] for w in store.finished()["feed"].warnings if w.startswith("wrote ")]
    with storage.open(name, "rb") as f:
        items = ElementTree.fromstring(f.read()).findall("channel/item")
    assert len(items) == 3
    assert [e.message for e in store.record_errors()] == ["missing required feed field 'price' (from 'price')"]
