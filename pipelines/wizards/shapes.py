"""Templates for common files: what their columns mean, and how they are written. [pure]

A template names the columns a well-known file has (Shopify's and WooCommerce's product exports, a price
list, a stock list) and the field each one means (``Variant Price`` -> ``price``, a number), plus the
strategy and key that suit it (a price list UPDATEs existing rows by ``sku``). The person still picks
the connection and the table: :func:`apply` matches the template's columns to the uploaded file's and
its fields to the table's, both loosely (:mod:`.automap`), so ``stock`` finds a column called ``qty``.
Columns of the file that the template does not know are auto-mapped as any file's would be.

:data:`TEMPLATES` is the one table of them; the wizard's first page lists it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipelines.wizards.automap import automap, normalize
from pipelines.wizards.build import MappingRow


@dataclass(frozen=True)
class Column:
    header: str  # as the file names it
    field: str  # what it means: a canonical field name, matched loosely to the target's
    type: str = "keep"
    transform: str = ""


@dataclass(frozen=True)
class Template:
    code: str
    name: str
    description: str
    columns: tuple[Column, ...]
    strategy: str
    keys: tuple[str, ...]
    example: str  # the first lines of such a file (docs and tests)
    ignore: tuple[str, ...] = ()  # columns of such a file that are never mapped (the shop's own ids)


TEMPLATES: dict[str, Template] = {t.code: t for t in (
    Template(
        "shopify-products", "Shopify product CSV",
        "Products exported from Shopify (Products > Export): one row per variant, upserted by SKU.",
        (Column("Handle", "slug"), Column("Title", "name", "string", "trim"),
         Column("Body (HTML)", "description", "string", "stripHtml"), Column("Vendor", "brand", "string", "trim"),
         Column("Type", "category", "string", "trim"), Column("Tags", "tags"),
         Column("Published", "active", "boolean"), Column("Variant SKU", "sku", "string", "trim"),
         Column("Variant Grams", "weight", "number"), Column("Variant Inventory Qty", "stock", "integer"),
         Column("Variant Price", "price", "number"), Column("Variant Compare At Price", "compare_at_price", "number"),
         Column("Variant Barcode", "barcode", "string", "trim"), Column("Image Src", "image_url")),
        "UPSERT", ("sku",),
        "Handle,Title,Body (HTML),Vendor,Type,Tags,Published,Variant SKU,Variant Grams,Variant Inventory Qty,"
        "Variant Price,Variant Compare At Price,Variant Barcode,Image Src\n"
        "oak-chair,Oak chair,<p>Solid <b>oak</b></p>,Woodly,Chairs,\"oak, chair\",TRUE,CH-1,5200,12,"
        "129.00,149.00,4006381333931,https://shop.example/oak.jpg\n"),
    Template(
        "woocommerce-products", "WooCommerce product CSV",
        "Products exported from WooCommerce (Products > Export): upserted by SKU.",
        (Column("SKU", "sku", "string", "trim"), Column("Name", "name", "string", "trim"),
         Column("Published", "active", "boolean"), Column("Short description", "short_description", "string",
                                                          "stripHtml"),
         Column("Description", "description", "string", "stripHtml"), Column("Regular price", "price", "number"),
         Column("Sale price", "sale_price", "number"), Column("Stock", "stock", "integer"),
         Column("Weight (kg)", "weight", "number"), Column("Categories", "category", "string", "trim"),
         Column("Tags", "tags"), Column("Images", "image_url")),
        "UPSERT", ("sku",),
        "ID,Type,SKU,Name,Published,Short description,Description,Regular price,Sale price,Stock,Weight (kg),"
        "Categories,Tags,Images\n"
        "17,simple,CH-1,Oak chair,1,Solid oak,<p>Solid <b>oak</b></p>,129,119,12,5.2,Chairs,oak,"
        "https://shop.example/oak.jpg\n",
        ignore=("ID", "Type")),
    Template(
        "price-list", "Price-list update",
        "New prices for existing products: SKU and price (and a currency if the file has one); rows are "
        "UPDATEd by SKU, so an unknown SKU is reported, never created.",
        (Column("SKU", "sku", "string", "trim"), Column("Price", "price", "number"),
         Column("Currency", "currency", "string", "uppercase")),
        "UPDATE", ("sku",),
        "SKU;Price;Currency\nCH-1;119.00;eur\nTB-2;349.50;eur\n"),
    Template(
        "stock-levels", "Stock-level update",
        "Stock on hand per SKU (and per warehouse if the file has one); rows are UPDATEd by SKU.",
        (Column("SKU", "sku", "string", "trim"), Column("Quantity", "stock", "integer"),
         Column("Warehouse", "warehouse", "string", "trim")),
        "UPDATE", ("sku",),
        "sku,qty\nCH-1,12\nTB-2,0\n"),
)}


def apply(template: Template, file_columns: Sequence[str], target_fields: Sequence[str] | None,
          column_types: dict[str, str] | None = None) -> tuple[list[MappingRow], str, list[str]]:
    """The mapping, strategy and keys of ``template`` for this file and this target.

    Both matches are one-to-one and best first (:func:`automap`): the template's columns to the file's
    (by header, then by meaning), then their fields to the target's, so an exact ``description`` is never
    lost to a ``short_description`` that only contains the word. ``target_fields`` is None for a target
    without fixed fields (a REST endpoint): then each field keeps the template's name. Columns the template
    ignores (a shop's own ids) stay unmapped; keys the target does not have are dropped (the strategy page
    then asks for one).
    """
    columns = [c for c in file_columns if c not in template.ignore]
    by_header = {m.target: m.source for m in automap(columns, [c.header for c in template.columns])}
    left = [c for c in columns if c not in by_header.values()]
    missing = [c for c in template.columns if c.header not in by_header]
    by_field = {m.target: m.source for m in automap(left, [c.field for c in missing])}
    found = {c.field: (by_header.get(c.header) or by_field.get(c.field), c) for c in template.columns}
    found = {f: pair for f, pair in found.items() if pair[0] is not None}
    if target_fields is None:
        placed = {f: f for f in found}
    else:
        placed = {m.source: m.target for m in automap(list(found), list(target_fields))}
    rows: dict[str, MappingRow] = {}
    for field, (source, col) in found.items():
        if field in placed:
            rows[placed[field]] = MappingRow(target=placed[field], source=source, type=col.type, transform=col.transform)
    # The file's other columns, mapped as any file's would be.
    used = {r.source for r in rows.values()}
    if target_fields is not None:
        free = [f for f in target_fields if f not in rows]
        for match in automap([c for c in columns if c not in used], free):
            t = (column_types or {}).get(match.source, "keep")
            rows[match.target] = MappingRow(target=match.target, source=match.source,
                                            type=t if t in ("integer", "number", "boolean") else "keep")
    keys = [placed[k] for k in template.keys if k in placed and placed[k] in rows]
    return list(rows.values()), template.strategy, keys


# How a target column's kind (pipelines.adapters.sqlconn Column.kind, or a model field's) asks the value to
# be converted; a kind not listed keeps the value as read.
KIND_TYPES = {"int": "integer", "num": "number", "bool": "boolean", "date": "date"}
GUESSED_TYPES = {"integer": "integer", "number": "number", "boolean": "boolean", "date": "date"}


def initial_mapping(columns: Sequence, target_fields: Sequence[str] | None,
                    target_kinds: dict[str, str] | None = None,
                    template: Template | None = None) -> tuple[list[MappingRow], str | None, list[str]]:
    """The mapping the mapping page starts with: one row per target field (a table's columns, a model's
    fields), or one per file column for a target without fixed fields; filled by the template when one is
    chosen, else by :func:`automap`. ``columns`` are sniff.Column (name, type, date_format). Returns the
    rows, and the template's strategy and keys (None and [] without a template)."""
    names = [c.name for c in columns]
    by_name = {c.name: c for c in columns}
    guessed = {c.name: c.type for c in columns}
    strategy, keys = None, []
    if template is not None:
        matched, strategy, keys = apply(template, names, target_fields, guessed)
        found = {r.target: r for r in matched}
    else:
        found = {m.target: MappingRow(target=m.target, source=m.source)
                 for m in automap(names, list(target_fields) if target_fields is not None
                                  else [field_name_of(n) for n in names])}
    rows = []
    if target_fields is not None:
        for f in target_fields:
            row = found.get(f) or MappingRow(target=f)
            rows.append(_typed(row, by_name, (target_kinds or {}).get(f)))
    else:
        by_source = {r.source: r for r in found.values()}
        for name in names:
            row = by_source.get(name) or MappingRow(target=field_name_of(name), source=name)
            rows.append(_typed(row, by_name, None))
    return rows, strategy, keys


def field_name_of(name: str) -> str:
    return normalize(name) or "field"


def _typed(row: MappingRow, by_name: dict, target_kind: str | None) -> MappingRow:
    """The row with the type its target column (or else its source sample) asks for, unless the template
    chose one; a date conversion only where the source's dates are not ISO."""
    column = by_name.get(row.source)
    kind = row.type
    if kind == "keep" and row.source:
        if target_kind is not None:
            kind = KIND_TYPES.get(target_kind, "keep")
        elif column is not None:
            kind = GUESSED_TYPES.get(column.type, "keep")
    date_format = column.date_format if (column is not None and kind == "date") else None
    if kind == "date" and not date_format:
        kind = "keep"
    return MappingRow(target=row.target, source=row.source, type=kind, transform=row.transform,
                      date_format=date_format)
