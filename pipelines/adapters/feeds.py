"""Product feeds: ``googleMerchant`` (RSS 2.0 with the g: namespace), ``metaCatalog`` (CSV), ``amazonFeed``
(tab-separated) and ``customFeed`` (XML, CSV, JSON or TSV from a field mapping). [pure]

Each feed maps a record to the feed's fields with the plugin's field options (``titleField`` default
``name``, ``descriptionField`` ``description``, ``priceField`` ``price``, ``imageField`` ``image``,
``linkField`` ``link``, ``brandField`` ``brand``, ``gtinField`` ``gtin``, ``availabilityField``
``availability``; the id is ``idField`` or else ``id``, then ``sku``). Prices: ``priceUnit`` MINOR (the
default: 1999 is 19.99, as Vendure stores prices) or MAJOR, with ``pricePrecision`` decimals (2), and the
``currency`` code after the amount where the feed wants one.

A record that lacks a required field of its feed (``requiredFields``, defaults below) fails alone, with a
message naming the field and where it was read from; the rest of the batch is written. Files are written
like the exporters' (:mod:`pipelines.adapters.exports`): streamed to a temporary file, saved into the file
storage at the end under ``outputPath`` (the plugin's: a relative file name, placeholders allowed) or
``path`` + ``filenamePattern``.

Why one module of this size: the four feeds are short formats over FeedWriter (field mapping, required-field
checks, the file write).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urljoin

from pipelines.adapters.exports import (
    LOCALISATION_PROPERTIES,
    OUTPUT_PROPERTIES,
    CsvFormat,
    FileExportWriter,
    JsonFormat,
    XmlFormat,
    check_element_name,
    localise,
    text_value,
    xml_text,
)
from pipelines.errors import ConfigError
from pipelines.records import MISSING, Batch, PathError, Record
from pipelines.records import path as field_path
from pipelines.registry import feeds

GOOGLE_NS = "http://base.google.com/ns/1.0"


class _RecordProblem(Exception):
    pass


def _blank(value: Any) -> bool:
    return value is None or value is MISSING or (isinstance(value, str) and not value.strip())


def _field(description: str, default: str) -> dict:
    return {"type": "string", "minLength": 1, "default": default, "description": description}


COMMON_FIELDS = {
    "idField": {"type": "string", "minLength": 1,
                "description": "Field path of the product id; default: id, or else sku."},
    "titleField": _field("Field path of the product title.", "name"),
    "descriptionField": _field("Field path of the description.", "description"),
    "priceField": _field("Field path of the price.", "price"),
    "priceUnit": {"enum": ["MINOR", "MAJOR"], "default": "MINOR",
                  "description": "MINOR: prices are in cents (1999 = 19.99), as Vendure keeps them; MAJOR: the "
                  "source already holds 19.99."},
    "pricePrecision": {"type": "integer", "minimum": 0, "maximum": 6, "default": 2,
                       "description": "Decimals of the currency (2 for EUR and USD, 0 for JPY)."},
    "imageField": _field("Field path of the main image URL.", "image"),
    "brandField": _field("Field path of the brand.", "brand"),
}
LINK_FIELD = {"linkField": _field("Field path of the product page URL.", "link")}
GTIN_FIELD = {"gtinField": _field("Field path of the UPC, EAN or GTIN.", "gtin")}
AVAILABILITY_FIELD = {"availabilityField": _field(
    "Field path of the availability (text as is; true/false or a stock number become in stock / out of "
    "stock; missing: in stock).", "availability")}
STORE_URL = {"storeUrl": {"type": "string", "minLength": 1,
                          "description": "The shop's URL: the channel link, and the base of relative product "
                          "and image links."}}


def _required(default: list[str]) -> dict:
    return {"requiredFields": {
        "type": "array", "items": {"type": "string", "minLength": 1}, "default": default,
        "description": "Feed fields a record must have (not empty); a record without one fails alone."}}


def _outputs(default_name: str) -> dict:
    return {
        "outputPath": {"type": "string", "minLength": 1,
                       "description": f"Relative file name in the file storage (e.g. {default_name}); "
                       "placeholders as in filenamePattern. Or give path and filenamePattern."},
        **OUTPUT_PROPERTIES,
    }


class FeedWriter(FileExportWriter):
    """Maps each record with ``map_record`` (raising _RecordProblem for a record that cannot be mapped) and
    checks the required fields; the format writes the mapped items."""

    required_default: tuple[str, ...] = ()
    sources: dict[str, str]

    def configure(self) -> None:
        c = self.config
        self.paths = {}
        for key, default in (("titleField", "name"), ("descriptionField", "description"), ("priceField", "price"),
                             ("imageField", "image"), ("brandField", "brand"), ("linkField", "link"),
                             ("gtinField", "gtin"), ("availabilityField", "availability")):
            self.paths[key] = self._path(c.get(key, default), key)
        self.id_path = self._path(c["idField"], "idField") if c.get("idField") else None
        self.unit = c.get("priceUnit", "MINOR")
        self.precision = int(c.get("pricePrecision", 2))
        self.currency = c.get("currency", "")
        self.store_url = c.get("storeUrl")
        required = c.get("requiredFields")
        self.required = list(required) if required is not None else list(self.required_default)

    @staticmethod
    def _path(text: Any, field: str):
        try:
            return field_path(text)
        except PathError as exc:
            raise ConfigError(str(exc), field=field) from None

    def get(self, record: Record, key: str) -> Any:
        return self.paths[key].get(record)

    def record_id(self, record: Record) -> Any:
        if self.id_path is not None:
            return self.id_path.get(record)
        value = record.get("id")
        return value if not _blank(value) else record.get("sku", MISSING)

    def url(self, value: Any) -> str:
        text = "" if _blank(value) else text_value(value).strip()
        if text and self.store_url and text.startswith("/"):
            return urljoin(self.store_url, text)
        return text

    def amount(self, value: Any) -> str:
        """The price as a decimal string; '' when missing (the required check names it)."""
        if _blank(value):
            return ""
        if isinstance(value, bool):
            raise _RecordProblem(f"price {value!r} is not a number (field '{self.paths['priceField'].text}')")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise _RecordProblem(f"price {value!r} is not a number (field '{self.paths['priceField'].text}')") \
                from None
        if not number.is_finite():
            raise _RecordProblem(f"price {value!r} is not a number (field '{self.paths['priceField'].text}')")
        if self.unit == "MINOR":
            number = number.scaleb(-self.precision)
        return str(number.quantize(Decimal(1).scaleb(-self.precision), rounding=ROUND_HALF_UP))

    def price(self, value: Any) -> str:
        amount = self.amount(value)
        return f"{amount} {self.currency}".strip() if amount else ""

    @staticmethod
    def availability(value: Any) -> str:
        if _blank(value):
            return "in stock"
        if isinstance(value, bool):
            return "in stock" if value else "out of stock"
        if isinstance(value, int | float):
            return "in stock" if value > 0 else "out of stock"
        return text_value(value)

    @staticmethod
    def text(value: Any) -> str:
        return "" if _blank(value) else text_value(value)

    def map_record(self, record: Record) -> dict[str, Any]:
        raise NotImplementedError

    def source_of(self, name: str) -> str | None:
        """Where a feed field is read from, for messages."""
        return None

    def prepare(self, batch: Batch) -> tuple[list[Record], list[tuple[Record, str]]]:
        items: list[Record] = []
        failed: list[tuple[Record, str]] = []
        for original, record in zip(batch, localise(batch, self.config), strict=True):
            try:
                item = self.map_record(record)
            except _RecordProblem as exc:
                failed.append((original, str(exc)))
                continue
            missing = [name for name in self.required if _blank(item.get(name, MISSING))]
            if missing:
                parts = []
                for name in missing:
                    source = self.source_of(name)
                    parts.append(f"'{name}'" + (f" (from '{source}')" if source else ""))
                noun = "field" if len(parts) == 1 else "fields"
                failed.append((original, f"missing required feed {noun} {', '.join(parts)}"))
                continue
            items.append(item)
        return items, failed


# --- Google Merchant --------------------------------------------------------------------------------------


class GoogleRssFormat:
    """RSS 2.0 with ``xmlns:g``; empty optional attributes are left out rather than written empty."""

    ORDER = ("id", "title", "description", "link", "image_link", "price", "brand", "gtin", "availability",
             "condition")

    def __init__(self, out, *, store_url: str, title: str, description: str):
        self.out = out
        self.store_url = store_url
        self.title = title
        self.description = description

    def begin(self) -> None:
        self.out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        self.out.write(f'<rss version="2.0" xmlns:g="{GOOGLE_NS}">\n  <channel>\n')
        self.out.write(f"    <title>{xml_text(self.title)}</title>\n")
        self.out.write(f"    <link>{xml_text(self.store_url)}</link>\n")
        self.out.write(f"    <description>{xml_text(self.description)}</description>\n")

    def write(self, items: Iterable[Record]) -> None:
        for item in items:
            lines = ["    <item>\n"]
            for key in self.ORDER:
                value = item.get(key)
                if not _blank(value):
                    lines.append(f"      <g:{key}>{xml_text(value)}</g:{key}>\n")
            lines.append("    </item>\n")
            self.out.write("".join(lines))

    def end(self) -> None:
        self.out.write("  </channel>\n</rss>\n")


_SOURCES_GOOGLE = {"title": "titleField", "description": "descriptionField", "link": "linkField",
                   "image_link": "imageField", "price": "priceField", "brand": "brandField", "gtin": "gtinField",
                   "availability": "availabilityField"}


@feeds.register(
    "googleMerchant",
    name="Google Merchant Center",
    category="feed",
    builtin=True,
    description="A Google Merchant Center product feed: RSS 2.0 with the g: namespace.",
    schema={
        "type": "object",
        "properties": {
            **_outputs("feeds/google-merchant.xml"),
            "currency": {"type": "string", "minLength": 3, "maxLength": 3,
                         "description": "ISO 4217 currency code written after each price (USD, EUR)."},
            **STORE_URL,
            **COMMON_FIELDS, **LINK_FIELD, **GTIN_FIELD, **AVAILABILITY_FIELD,
            "title": {"type": "string", "default": "Product Feed", "description": "The channel's title."},
            "description": {"type": "string", "default": "Google Merchant Center Product Feed",
                            "description": "The channel's description."},
            **_required(["id", "title", "description", "link", "image_link", "price"]),
            **LOCALISATION_PROPERTIES,
        },
        "required": ["currency", "storeUrl"],
        "additionalProperties": False,
    },
)
class GoogleMerchantFeed(FeedWriter):
    extension = "xml"
    required_default = ("id", "title", "description", "link", "image_link", "price")

    def configure(self) -> None:
        super().configure()
        if not self.currency:
            raise ConfigError("currency is required (an ISO code such as USD)", field="currency")
        if not self.store_url:
            raise ConfigError("storeUrl is required", field="storeUrl")

    def make_format(self, out):
        return GoogleRssFormat(out, store_url=self.store_url, title=self.config.get("title", "Product Feed"),
                               description=self.config.get("description", "Google Merchant Center Product Feed"))

    def source_of(self, name: str) -> str | None:
        if name == "id":
            return self.id_path.text if self.id_path else "id or sku"
        key = _SOURCES_GOOGLE.get(name)
        return self.paths[key].text if key else None

    def map_record(self, record: Record) -> dict[str, Any]:
        return {
            "id": self.text(self.record_id(record)),
            "title": self.text(self.get(record, "titleField")),
            "description": self.text(self.get(record, "descriptionField")),
            "link": self.url(self.get(record, "linkField")),
            "image_link": self.url(self.get(record, "imageField")),
            "price": self.price(self.get(record, "priceField")),
            "brand": self.text(self.get(record, "brandField")),
            "gtin": self.text(self.get(record, "gtinField")),
            "availability": self.availability(self.get(record, "availabilityField")),
            "condition": "new",
        }


# --- Meta catalog -----------------------------------------------------------------------------------------

META_COLUMNS = ["id", "title", "description", "availability", "condition", "price", "link", "image_link", "brand"]


@feeds.register(
    "metaCatalog",
    name="Meta (Facebook, Instagram) catalog",
    category="feed",
    builtin=True,
    description="A Meta commerce catalog feed: CSV with Meta's columns (id, title, description, availability, "
    "condition, price, link, image_link, brand).",
    schema={
        "type": "object",
        "properties": {
            **_outputs("feeds/meta-catalog.csv"),
            "currency": {"type": "string", "minLength": 3, "maxLength": 3,
                         "description": "ISO 4217 currency code written after each price."},
            **COMMON_FIELDS, **LINK_FIELD, **AVAILABILITY_FIELD, **STORE_URL,
            **_required(["id", "title", "description", "price", "link", "image_link", "brand"]),
            **LOCALISATION_PROPERTIES,
        },
        "required": ["currency"],
        "additionalProperties": False,
    },
)
class MetaCatalogFeed(GoogleMerchantFeed):
    extension = "csv"
    required_default = ("id", "title", "description", "price", "link", "image_link", "brand")

    def configure(self) -> None:
        FeedWriter.configure(self)
        if not self.currency:
            raise ConfigError("currency is required (an ISO code such as USD)", field="currency")

    def make_format(self, out):
        return CsvFormat(out, self.ctx, columns=META_COLUMNS, formula_safe=False)


# --- Amazon -----------------------------------------------------------------------------------------------

AMAZON_COLUMNS = ["sku", "product-id", "product-id-type", "item-name", "item-description", "standard-price",
                  "quantity", "main-image-url", "brand-name"]
_SOURCES_AMAZON = {"product-id": "gtinField", "item-name": "titleField", "item-description": "descriptionField",
                   "standard-price": "priceField", "main-image-url": "imageField", "brand-name": "brandField"}
_ID_TYPES = {12: "UPC", 13: "EAN", 14: "GTIN", 10: "ASIN"}


@feeds.register(
    "amazonFeed",
    name="Amazon Seller Central",
    category="feed",
    builtin=True,
    description="An Amazon inventory flat file: tab-separated sku, product-id, item-name, standard-price, "
    "quantity, ...",
    schema={
        "type": "object",
        "properties": {
            **_outputs("feeds/amazon.txt"),
            "currency": {"type": "string", "description": "Accepted as in the plugin; Amazon prices carry none."},
            **COMMON_FIELDS, **GTIN_FIELD,
            "skuField": _field("Field path of the seller SKU (falls back to id).", "sku"),
            "quantityField": {"type": "string", "minLength": 1,
                              "description": "Field path of the quantity; default: stockOnHand, else quantity, "
                              "else 0."},
            "productIdType": {"enum": ["UPC", "EAN", "GTIN", "ASIN", "ISBN"],
                              "description": "Type of product-id; default: from its length (12 UPC, 13 EAN, "
                              "14 GTIN, 10 ASIN)."},
            **_required(["sku", "item-name", "standard-price"]),
            **LOCALISATION_PROPERTIES,
        },
        "additionalProperties": False,
    },
)
class AmazonFeed(FeedWriter):
    extension = "txt"
    required_default = ("sku", "item-name", "standard-price")

    def configure(self) -> None:
        super().configure()
        self.sku_path = self._path(self.config.get("skuField", "sku"), "skuField")
        self.quantity_path = self._path(self.config["quantityField"], "quantityField") \
            if self.config.get("quantityField") else None

    def make_format(self, out):
        return CsvFormat(out, self.ctx, delimiter="\t", columns=AMAZON_COLUMNS, formula_safe=False, plain_tsv=True)

    def source_of(self, name: str) -> str | None:
        if name == "sku":
            return f"{self.sku_path.text} or id"
        key = _SOURCES_AMAZON.get(name)
        return self.paths[key].text if key else None

    def map_record(self, record: Record) -> dict[str, Any]:
        sku = self.sku_path.get(record)
        if _blank(sku):
            sku = record.get("id")
        if self.quantity_path is not None:
            quantity = self.quantity_path.get(record)
        else:
            quantity = record.get("stockOnHand", record.get("quantity"))
        product_id = self.text(self.get(record, "gtinField")).strip()
        id_type = self.config.get("productIdType") or (_ID_TYPES.get(len(product_id), "UPC") if product_id else "")
        return {
            "sku": self.text(sku),
            "product-id": product_id,
            "product-id-type": id_type,
            "item-name": self.text(self.get(record, "titleField")),
            "item-description": self.text(self.get(record, "descriptionField")),
            "standard-price": self.amount(self.get(record, "priceField")),
            "quantity": self.text(quantity) or "0",
            "main-image-url": self.url(self.get(record, "imageField")),
            "brand-name": self.text(self.get(record, "brandField")),
        }


# --- custom -----------------------------------------------------------------------------------------------


@feeds.register(
    "customFeed",
    name="Custom feed",
    category="feed",
    builtin=True,
    description="A feed of your own fields (fieldMapping: output name -> source field path) as XML, CSV, JSON "
    "or TSV.",
    schema={
        "type": "object",
        "properties": {
            **_outputs("feeds/custom.csv"),
            "format": {"enum": ["XML", "CSV", "JSON", "TSV"], "description": "The file format."},
            "fieldMapping": {"type": "object", "minProperties": 1,
                             "additionalProperties": {"type": "string", "minLength": 1},
                             "description": "Output field name -> source field path (dotted)."},
            "rootElement": {"type": "string", "default": "feed", "description": "XML: the document element."},
            "itemElement": {"type": "string", "default": "item", "description": "XML: each record's element."},
            "pretty": {"type": "boolean", "default": True, "description": "JSON: indent by two spaces."},
            "formulaMode": {"enum": ["SPREADSHEET_SAFE", "PRESERVE"], "default": "PRESERVE",
                            "description": "CSV/TSV: PRESERVE writes cells as they are (feeds are read by "
                            "machines); SPREADSHEET_SAFE prefixes formula-like text cells with a quote."},
            **_required([]),
            **LOCALISATION_PROPERTIES,
        },
        "required": ["format", "fieldMapping"],
        "additionalProperties": False,
    },
)
class CustomFeed(FeedWriter):
    def configure(self) -> None:
        c = self.config
        fmt = c.get("format")
        if not isinstance(fmt, str) or fmt.upper() not in ("XML", "CSV", "JSON", "TSV"):
            raise ConfigError("format must be JSON, CSV, TSV or XML", field="format")
        self.fmt = fmt.upper()
        self.extension = self.fmt.lower()
        mapping = c.get("fieldMapping")
        if not isinstance(mapping, dict) or not mapping:
            raise ConfigError("fieldMapping must map output field names to source paths", field="fieldMapping")
        self.mapping = []
        for target, source in mapping.items():
            if not target or target.strip() != target or not isinstance(source, str) or not source.strip():
                raise ConfigError("fieldMapping must map non-empty output names to source paths",
                                  field=f"fieldMapping.{target}")
            self.mapping.append((target, self._path(source.strip(), f"fieldMapping.{target}")))
        if self.fmt == "XML":
            self.root = check_element_name(c.get("rootElement", "feed"), "rootElement")
            self.item = check_element_name(c.get("itemElement", "item"), "itemElement")
        required = c.get("requiredFields") or []
        unknown = [r for r in required if r not in mapping]
        if unknown:
            raise ConfigError(f"requiredFields names fields the mapping does not make: {', '.join(unknown)}",
                              field="requiredFields")
        self.required = list(required)

    def make_format(self, out):
        columns = [t for t, _ in self.mapping]
        safe = self.config.get("formulaMode", "PRESERVE") == "SPREADSHEET_SAFE"
        if self.fmt == "CSV":
            return CsvFormat(out, self.ctx, columns=columns, formula_safe=safe)
        if self.fmt == "TSV":
            return CsvFormat(out, self.ctx, delimiter="\t", columns=columns, formula_safe=safe)
        if self.fmt == "JSON":
            return JsonFormat(out, pretty=self.config.get("pretty", True))
        return XmlFormat(out, root=self.root, item=self.item, attribute_prefix="")

    def source_of(self, name: str) -> str | None:
        return dict((t, p.text) for t, p in self.mapping).get(name)

    def map_record(self, record: Record) -> dict[str, Any]:
        out = {}
        for target, source in self.mapping:
            value = source.get(record)
            if value is not MISSING:
                out[target] = value
        return out

