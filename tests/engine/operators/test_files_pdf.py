"""pdfGenerate: a real PDF from an HTML template, escaped values, loops, page setup, no fetching."""

from __future__ import annotations

import base64
import io
import re
import zlib

import pytest
from weasyprint.formatting_structure import boxes

from pipelines.errors import ConfigError
from pipelines.operators.base import OperatorContext
from pipelines.operators.files.pdf import render_document
from pipelines.operators.files.template import Template, TemplateError
from pipelines.registry import operators as operator_registry

PIXEL_PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
    "AAAABJRU5ErkJggg=="
)

INVOICE = """
<html><head><title>Invoice {{number}}</title></head><body>
<h1>Invoice {{number}}</h1>
<p class="customer">{{customer.name}}</p>
<table>
  <tr><th>#</th><th>SKU</th><th>Qty</th><th>Price</th></tr>
  {{#each lines}}<tr><td>{{@index}}</td><td>{{this.sku}}</td><td>{{qty}}</td><td>{{price}} {{currency}}</td></tr>
  {{/each}}
</table>
<p>Total: {{total}} {{currency}}</p>
</body></html>
"""

RECORD = {
    "number": "INV-7",
    "customer": {"name": "Jürgen & Söhne"},
    "currency": "EUR",
    "total": 42.5,
    "lines": [{"sku": "A-1", "qty": 2, "price": 10.0}, {"sku": "B-2", "qty": 1, "price": 22.5}],
}


# ------------------------------------------------------------------------------------------- helpers


def pdf_bytes(value: str) -> bytes:
    assert value.startswith("data:application/pdf;base64,"), value[:40]
    return base64.b64decode(value.split(",", 1)[1])


def pdf_objects(pdf: bytes) -> bytes:
    """The PDF with its compressed streams (object streams included) inflated, for searching."""
    parts = [pdf]
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            parts.append(zlib.decompress(m.group(1)))
        except zlib.error:
            pass
    return b"\n".join(parts)


def page_boxes(pdf: bytes) -> list[tuple[float, float]]:
    """(width, height) in points of every page: one /MediaBox per /Type /Page object."""
    objects = pdf_objects(pdf)
    count = len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", objects))
    sizes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", objects)
    assert len(sizes) == count, (count, sizes)
    return [(float(w), float(h)) for w, h in sizes]


def pdf_text(pdf: bytes) -> str:
    """The text drawn in a PDF, decoded with the fonts' ToUnicode maps.

    The maps of all fonts are merged, so this is exact only for a one-font document (the tests that use
    it set one font with css).
    """
    objects = pdf_objects(pdf)
    glyphs: dict[bytes, str] = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", objects, re.S):
        for code, uni in re.findall(rb"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", block):
            glyphs[code.lower()] = bytes.fromhex(uni.decode()).decode("utf-16-be")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", objects, re.S):
        for lo, hi, uni in re.findall(rb"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", block):
            first = int(uni, 16)
            for i, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                glyphs[b"%0*x" % (len(lo), code)] = chr(first + i)
    lines = []
    for shown in re.findall(rb"\[(.*?)\]\s*TJ|<([0-9a-fA-F]+)>\s*Tj", objects, re.S):
        codes = re.findall(rb"<([0-9a-fA-F]+)>", shown[0] or b"<" + shown[1] + b">")
        lines.append("".join(
            glyphs.get(hexed[i:i + 4].lower(), "?") for hexed in codes for i in range(0, len(hexed), 4)
        ))
    return "\n".join(lines)


ONE_FONT = "* { font: 12pt 'DejaVu Sans' !important }"


def document_text(document) -> str:
    return "".join(
        box.text
        for page in document.pages
        for box in page._page_box.descendants()
        if isinstance(box, boxes.TextBox)
    )


def pdf_item(**args):
    return {"op": "pdfGenerate", "args": {"targetField": "pdf", "output": "dataUri", **args}}


def run_one(apply_ops, item, record, **kwargs):
    result = apply_ops([item], [record], **kwargs)
    assert not result.failures, result.failures
    return result.records[0]


class MemoryStorage:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.saves = 0

    def save(self, name, content):
        self.saves += 1
        self.files[name] = content.read()
        return name

    def open(self, name, mode="rb"):
        return io.BytesIO(self.files[name])

    def exists(self, name):
        return name in self.files

    def url(self, name):
        raise NotImplementedError


A4 = (595.28, 841.89)


def same_size(actual, expected):
    return all(abs(a - b) < 0.5 for a, b in zip(actual, expected, strict=True))


# ------------------------------------------------------------------------------------------- rendering


def test_it_renders_a_real_one_page_a4_pdf(apply_ops):
    record = run_one(apply_ops, pdf_item(template=INVOICE), dict(RECORD))
    pdf = pdf_bytes(record["pdf"])
    assert pdf.startswith(b"%PDF-")
    sizes = page_boxes(pdf)
    assert len(sizes) == 1 and same_size(sizes[0], A4)
    text = pdf_text(pdf_bytes(run_one(apply_ops, pdf_item(template=INVOICE, css=ONE_FONT), dict(RECORD))["pdf"]))
    assert "Invoice INV-7" in text and "Jürgen & Söhne" in text and "Total: 42.5 EUR" in text
    assert "B-2" in text and "22.5 EUR" in text


@pytest.mark.parametrize(
    ("page_size", "orientation", "points"),
    [
        ("A4", "PORTRAIT", A4),
        ("A4", "LANDSCAPE", (841.89, 595.28)),
        ("LETTER", "PORTRAIT", (612, 792)),
        ("LETTER", "LANDSCAPE", (792, 612)),
        ("A3", "PORTRAIT", (841.89, 1190.55)),
    ],
)
def test_it_sets_page_size_and_orientation(apply_ops, page_size, orientation, points):
    item = pdf_item(template="<p>{{number}}</p>", pageSize=page_size, orientation=orientation)
    sizes = page_boxes(pdf_bytes(run_one(apply_ops, item, dict(RECORD))["pdf"]))
    assert len(sizes) == 1 and same_size(sizes[0], points)


def test_it_breaks_a_long_table_over_several_pages(apply_ops):
    record = {**RECORD, "lines": [{"sku": f"SKU-{i}", "qty": i, "price": 1.5} for i in range(150)]}
    html = Template(INVOICE).render(record)
    document = render_document(html)
    assert len(document.pages) > 2
    assert "SKU-149" in document_text(document)
    out = run_one(apply_ops, pdf_item(template=INVOICE), record)
    assert len(page_boxes(pdf_bytes(out["pdf"]))) == len(document.pages)


def test_it_applies_margins_and_extra_css():
    html = "<p>x</p>"
    narrow = render_document(html, margins="10mm")
    wide = render_document(html, margins="40mm 30mm")
    first = [b for b in narrow.pages[0]._page_box.descendants() if isinstance(b, boxes.TextBox)][0]
    later = [b for b in wide.pages[0]._page_box.descendants() if isinstance(b, boxes.TextBox)][0]
    assert first.position_y < later.position_y and first.position_x < later.position_x
    red = render_document("<p>x</p>", css="@page { size: A5 }")
    assert round(red.pages[0].width * 0.75) == 420  # A5: 148 mm = 419.5 pt


# ------------------------------------------------------------------------------------------- templates


def test_it_escapes_record_values():
    record = {"name": '<script>alert("x")</script>', "lines": [{"sku": "<b>bold</b>"}]}
    html = Template("<h1>{{name}}</h1>{{#each lines}}<p>{{sku}}</p>{{/each}}").render(record)
    assert html == (
        "<h1>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</h1><p>&lt;b&gt;bold&lt;/b&gt;</p>"
    )
    text = document_text(render_document(html))
    assert '<script>alert("x")</script>' in text and "<b>bold</b>" in text


def test_it_fills_an_invoice_table_from_a_list():
    html = Template(INVOICE).render(RECORD)
    assert "<td>0</td><td>A-1</td><td>2</td><td>10 EUR</td>" in html
    assert "<td>1</td><td>B-2</td><td>1</td><td>22.5 EUR</td>" in html
    assert "Jürgen &amp; Söhne" in html
    assert "Total: 42.5 EUR" in html
    text = document_text(render_document(html))
    assert "Jürgen & Söhne" in text and "B-2" in text


def test_it_renders_missing_values_empty_and_this_for_scalars():
    template = Template("[{{nope}}][{{a.b.c}}][{{#each tags}}<{{this}}>{{/each}}][{{#each none}}x{{/each}}]")
    assert template.render({"tags": ["x", 1, True, None], "a": {"b": None}}) == "[][][<x><1><true><>][]"


def test_it_nests_loops():
    template = Template("{{#each groups}}{{name}}:{{#each items}}{{this}}{{@index}},{{/each}};{{/each}}")
    record = {"groups": [{"name": "a", "items": ["x", "y"]}, {"name": "b", "items": []}]}
    assert template.render(record) == "a:x0,y1,;b:;"


@pytest.mark.parametrize(
    "text",
    ["{{#each lines}}<tr>", "{{/each}}", "{{#each}}x{{/each}}", "{{#if x}}y{{/if}}", "{{a..b}}"],
)
def test_it_refuses_a_broken_template(text):
    with pytest.raises(TemplateError):
        Template(text)


def test_it_refuses_a_broken_inline_template_when_the_step_is_compiled(apply_ops):
    with pytest.raises(ConfigError) as caught:
        apply_ops([pdf_item(template="<table>{{#each lines}}<tr></tr></table>")], [])
    assert caught.value.field == "operators[0].args.template"
    assert "never closed" in str(caught.value)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({}, "template"),
        ({"template": "x", "margins": "wide"}, "margins"),
        ({"template": "x", "pageSize": "A5"}, "pageSize"),
        ({"template": "x", "output": "storage"}, "output"),  # no storage in this context
    ],
)
def test_it_refuses_impossible_args(apply_ops, args, field):
    item = {"op": "pdfGenerate", "args": {"targetField": "pdf", **args}}
    with pytest.raises(ConfigError) as caught:
        apply_ops([item], [])
    assert caught.value.field.endswith(field)


def test_it_takes_the_template_from_the_record(apply_ops):
    records = [
        {"tpl": "<p>{{number}}</p>", "number": "N-1"},
        {"tpl": "", "number": "N-2"},
        {"tpl": "{{#each x}}", "number": "N-3"},
    ]
    result = apply_ops([pdf_item(templateField="tpl")], records)
    assert pdf_bytes(result.records[0]["pdf"]).startswith(b"%PDF-")
    assert "pdf" not in result.records[1]  # an empty template: unchanged, as in the plugin
    assert len(result.failures) == 1 and "'tpl'" in result.failures[0].message


# ------------------------------------------------------------------------------------------- security


def test_it_fetches_nothing_from_the_network_or_the_disk(apply_ops, httpserver, tmp_path):
    httpserver.expect_request("/logo.png").respond_with_data(b"x", content_type="image/png")
    secret_css = tmp_path / "secret.css"
    secret_css.write_text('body::after { content: "TOPSECRET" }')
    template = (
        f'<img src="{httpserver.url_for("/logo.png")}">'
        f'<link rel="stylesheet" href="{httpserver.url_for("/style.css")}">'
        f'<link rel="stylesheet" href="file://{secret_css}">'
        '<img src="file:///etc/passwd">'
        f'<img src="{PIXEL_PNG}">'
        "<p>{{number}}</p>"
    )
    css = f'@import url("file://{secret_css}"); p {{ background: url("{httpserver.url_for("/bg.png")}") }}'
    ctx = OperatorContext(op_index=0)
    result = apply_ops([pdf_item(template=template, css=css)], [dict(RECORD)], context_for=lambda i: ctx)
    assert not result.failures
    assert pdf_bytes(result.records[0]["pdf"]).startswith(b"%PDF-")
    assert len(httpserver.log) == 0
    refused = "\n".join(ctx.warnings)
    for url in ("/logo.png", "/style.css", "/bg.png", "secret.css", "file:///etc/passwd"):
        assert url in refused

    document = render_document(Template(template).render(RECORD), css=css)
    assert "TOPSECRET" not in document_text(document) and "INV-7" in document_text(document)
    images = [b for b in document.pages[0]._page_box.descendants() if isinstance(b, boxes.InlineReplacedBox)]
    assert len(images) == 1  # only the data: URI pixel was embedded


def test_it_does_not_let_a_record_value_inject_markup(apply_ops, httpserver):
    record = {"number": f'<img src="{httpserver.url_for("/x.png")}">'}
    ctx = OperatorContext(op_index=0)
    result = apply_ops([pdf_item(template="<p>{{number}}</p>")], [record], context_for=lambda i: ctx)
    assert not result.failures and not ctx.warnings and len(httpserver.log) == 0


# ------------------------------------------------------------------------------------------- storage


def test_it_stores_the_pdf_once_per_rendered_html(apply_ops):
    storage = MemoryStorage()
    ctx = {"context_for": lambda i: OperatorContext(op_index=i, storage=storage)}
    item = {"op": "pdfGenerate", "args": {"template": INVOICE, "targetField": "pdf"}}

    first = apply_ops([item], [dict(RECORD), dict(RECORD)], **ctx)
    name = first.records[0]["pdf"]
    assert re.fullmatch(r"datahub/pdfs/[0-9a-f]{32}\.pdf", name)
    assert first.records[1]["pdf"] == name and storage.saves == 1
    assert storage.files[name].startswith(b"%PDF-")

    assert apply_ops([item], [dict(RECORD)], **ctx).records[0]["pdf"] == name and storage.saves == 1
    changed = apply_ops([item], [{**RECORD, "number": "INV-8"}], **ctx)
    assert changed.records[0]["pdf"] != name and storage.saves == 2


def test_it_registers_with_a_complete_schema():
    entry = operator_registry.get("pdfGenerate")
    assert entry.category == "file"
    assert entry.schema["additionalProperties"] is False
    for name, prop in entry.schema["properties"].items():
        assert prop.get("type") and prop.get("description"), name
    assert "{{#each" in entry.schema["properties"]["template"]["description"]


def test_it_turns_weasyprints_messages_into_step_warnings_not_stderr(apply_ops, capfd):
    """CSS WeasyPrint ignores is worth a warning on the run; its progress lines are worth nothing."""
    ctx = OperatorContext(op_index=0)
    template = "<p style='colour: red; display: flexx'>{{number}}</p>"
    result = apply_ops([pdf_item(template=template)], [dict(RECORD)], context_for=lambda i: ctx)
    assert not result.failures
    warnings = "\n".join(ctx.warnings)
    assert "pdfGenerate: Ignored `colour: red`" in warnings and "`display: flexx`" in warnings, ctx.warnings
    assert not any("Step " in w for w in ctx.warnings)
    out, err = capfd.readouterr()
    assert "Ignored" not in err + out and "Fetching and parsing" not in err + out
