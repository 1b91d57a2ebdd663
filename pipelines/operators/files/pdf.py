"""``pdfGenerate`` (WeasyPrint): a record rendered through :mod:`.template` to a PDF, with no fetches
and WeasyPrint's messages in the step's warnings."""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from pipelines.errors import ConfigError, RecordError
from pipelines.operators.base import OperatorContext, record_operator
from pipelines.operators.files._writer import (
    ALGORITHM_VERSION,
    OUTPUT_PROPS,
    Writer,
    compile_path,
    stored_digest,
)
from pipelines.operators.files.template import Template, TemplateError, as_text
from pipelines.records import MISSING

PDF_DIR = "datahub/pdfs/"

PAGE_SIZES = ("A4", "LETTER", "A3")
ORIENTATIONS = ("PORTRAIT", "LANDSCAPE")
_CSS_LENGTH = re.compile(r"^(0|\d+(\.\d+)?(mm|cm|in|pt|px|pc))$")

PDF_GENERATE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "template": {
            "type": "string",
            "description": "HTML template. {{a.b}} inserts a record value, HTML-escaped (missing: empty). "
            "{{#each items}}...{{/each}} repeats its body for each element of a list field; inside, "
            "{{this}} is the element, {{this.x}} or {{x}} a field of it (a name the element lacks is "
            "looked up in the enclosing record), {{@index}} its 0-based position. Blocks nest.",
        },
        "templateField": {
            "type": "string",
            "description": "Field holding the HTML template, used when 'template' is not given. A record whose "
            "template is empty passes unchanged.",
        },
        "targetField": {
            "type": "string",
            "description": "Field that receives the PDF (a storage name or a data URI).",
        },
        "pageSize": {
            "type": "string",
            "enum": list(PAGE_SIZES),
            "default": "A4",
            "description": "Page size.",
        },
        "orientation": {
            "type": "string",
            "enum": list(ORIENTATIONS),
            "default": "PORTRAIT",
            "description": "Page orientation.",
        },
        "margins": {
            "type": "string",
            "default": "50pt",
            "description": "Page margins as a CSS length list (1 to 4 values in mm, cm, in, pt, px or pc), "
            "e.g. '20mm' or '15mm 10mm'.",
        },
        "css": {
            "type": "string",
            "description": "Extra CSS applied after the page setup (it may override @page).",
        },
        "output": OUTPUT_PROPS["output"],
        "urlField": OUTPUT_PROPS["urlField"],
    },
    "required": ["targetField"],
    "additionalProperties": False,
}


# --------------------------------------------------------------------------------------------- PDF


def _refusing_fetcher(on_refused: Callable[[str], None] | None = None):
    """A WeasyPrint URL fetcher that serves data: URIs and refuses everything else.

    A template (or a record value, or the css arg) must not make the worker read local files
    (file:///etc/passwd) or call the network, internal addresses included. WeasyPrint treats the refusal
    like a broken link: the resource is left out and the document still renders.
    """
    from weasyprint.urls import URLFetcher

    class DataOnlyFetcher(URLFetcher):
        def __init__(self):
            super().__init__(allowed_protocols=("data",), allow_redirects=False, fail_on_errors=False)

        def fetch(self, url, headers=None):
            if not url[:5].lower() == "data:":
                if on_refused is not None:
                    on_refused(url)
                raise ValueError(f"refused to fetch {url[:200]}: a PDF template may only embed data: URIs")
            return super().fetch(url, headers)

    return DataOnlyFetcher()


class _WeasyPrintToStep(logging.Handler):
    """WeasyPrint's messages (CSS it ignored, a font it lacks) belong to the step rendering in this thread:
    they become that step's warnings, shown with the run, instead of lines on the worker's or the CLI's
    stderr. Its progress lines ("Step 4 - Creating formatting structure") tell a person nothing and are
    dropped. A message logged outside a render (none is expected) goes to the ``datahub.pdf`` logger."""

    sink = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.WARNING:
            return
        warn = getattr(self.sink, "warn", None)
        message = f"pdfGenerate: {record.getMessage()}"
        if warn is not None:
            warn(message)
        else:
            logging.getLogger("datahub.pdf").warning(message)


_WEASYPRINT_LOG = logging.getLogger("weasyprint")  # its progress logger is a child and propagates to it
_WEASYPRINT_LOG.addHandler(_WeasyPrintToStep())
_WEASYPRINT_LOG.propagate = False


class _messages_to:
    """While rendering: WeasyPrint's warnings of this thread go to ``warn``."""

    def __init__(self, warn: Callable[[str], None]):
        self.warn = warn

    def __enter__(self) -> None:
        _WeasyPrintToStep.sink.warn = self.warn

    def __exit__(self, *exc: object) -> None:
        _WeasyPrintToStep.sink.warn = None


def page_css(page_size: str = "A4", orientation: str = "PORTRAIT", margins: str = "50pt") -> str:
    return f"@page {{ size: {page_size} {orientation.lower()}; margin: {margins}; }}"


def render_document(
    html_text: str,
    *,
    page_size: str = "A4",
    orientation: str = "PORTRAIT",
    margins: str = "50pt",
    css: str | None = None,
    on_refused: Callable[[str], None] | None = None,
):
    """The WeasyPrint document (``.pages``, ``.write_pdf()``) of ``html_text``, fetching only data: URIs."""
    from weasyprint import CSS, HTML

    fetcher = _refusing_fetcher(on_refused)
    sheets = [CSS(string=page_css(page_size, orientation, margins), url_fetcher=fetcher)]
    if css:
        sheets.append(CSS(string=css, url_fetcher=fetcher))
    return HTML(string=html_text, url_fetcher=fetcher).render(stylesheets=sheets)


def _parse_margins(value: Any) -> str:
    if value is None:
        return "50pt"
    parts = str(value).split() if isinstance(value, str) else []
    if not 1 <= len(parts) <= 4 or not all(_CSS_LENGTH.match(p) for p in parts):
        raise ConfigError("must be 1 to 4 CSS lengths such as '20mm' or '15mm 10mm'", field="margins")
    return " ".join(parts)


@record_operator(
    "pdfGenerate",
    name="Generate PDF",
    category="file",
    description="Render an HTML template with {{field}} placeholders (values HTML-escaped) and "
    "{{#each list}} loops to a PDF with WeasyPrint; the template cannot fetch files or network resources.",
    schema=PDF_GENERATE_SCHEMA,
    pure=False,
)
def pdf_generate(args: dict, ctx: OperatorContext):
    target = compile_path(args, "targetField", required=True)
    template_field = compile_path(args, "templateField")
    inline = args.get("template")
    if inline is not None and not isinstance(inline, str):
        raise ConfigError("must be a string", field="template")
    if not inline and template_field is None:
        raise ConfigError("give 'template' (HTML) or 'templateField'", field="template")
    compiled = None
    if inline:
        try:
            compiled = Template(inline)
        except TemplateError as exc:
            raise ConfigError(str(exc), field="template") from None
    page_size = str(args.get("pageSize") or "A4").upper()
    if page_size not in PAGE_SIZES:
        raise ConfigError(f"must be one of {', '.join(PAGE_SIZES)}", field="pageSize")
    orientation = str(args.get("orientation") or "PORTRAIT").upper()
    if orientation not in ORIENTATIONS:
        raise ConfigError(f"must be one of {', '.join(ORIENTATIONS)}", field="orientation")
    margins = _parse_margins(args.get("margins"))
    css = args.get("css") or None
    writer = Writer(args, ctx, target, PDF_DIR)
    import weasyprint  # noqa: F401  (load Pango once, at compile time, and fail early if it is missing)

    cache: OrderedDict[str, Template] = OrderedDict()  # templates from records, parsed once each
    refused: set[str] = set()

    def note_refused(url: str) -> None:
        if url not in refused and len(refused) < 20:
            refused.add(url)
            ctx.warn(f"pdfGenerate: refused to fetch {url[:200]} (only data: URIs may be embedded)")

    def template_for(record: dict) -> Template | None:
        if compiled is not None:
            return compiled
        raw = template_field.get(record)
        if raw is MISSING or raw is None or raw == "":
            return None
        text = raw if isinstance(raw, str) else as_text(raw)
        hit = cache.get(text)
        if hit is None:
            try:
                hit = Template(text)
            except TemplateError as exc:
                raise RecordError(f"'{template_field.text}': {exc}", retryable=False) from None
            cache[text] = hit
            if len(cache) > 32:
                cache.popitem(last=False)
        return hit

    def apply(record: dict) -> dict:
        template = template_for(record)
        if template is None:
            return record
        html_text = template.render(record)
        name = None
        if writer.mode == "storage":
            digest = stored_digest(
                html_text.encode(),
                {
                    "v": ALGORITHM_VERSION,
                    "page": page_size,
                    "o": orientation,
                    "m": margins,
                    "css": css,
                },
            )
            name = writer.stored_name(digest, "pdf")
            if writer.already_stored(record, name):
                return record
        with _messages_to(ctx.warn):
            document = render_document(
                html_text,
                page_size=page_size,
                orientation=orientation,
                margins=margins,
                css=css,
                on_refused=note_refused,
            )
            pdf = document.write_pdf()
        writer.write(record, pdf, "application/pdf", name)
        return record

    return apply

