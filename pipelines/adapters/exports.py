"""File exporters: ``csvExport``, ``jsonExport`` (JSON array or NDJSON) and ``xmlExport``. [pure]

Each writes one file into the run's Django storage (``ctx.storage``), or with ``connectionCode`` onto a
FOLDER, SFTP or FTP connection (:mod:`pipelines.filestores`; uploaded under a temporary name and renamed,
so a reader there never sees half a file): rows stream into a temporary file batch by batch in
``write()``, and ``finish()`` saves it under ``path`` (a folder inside the storage or the connection's root;
no ``..``, not absolute) and ``filenamePattern`` (default ``<step key>-${timestamp}.<ext>``; placeholders
``${date:YYYY-MM-DD}`` (tokens YYYY YY MM DD HH mm ss SSS), ``${timestamp}`` (milliseconds since the
epoch) and ``${uuid}``). Memory stays at about one batch. The stored name (the storage may add a suffix
to keep an existing file) is reported as a warning on the step: ``wrote exports/x.csv (120 records)``.
A failed step saves nothing. Dry runs never construct writers (see the WRITE handler), so they write
nothing.

The file formats here (:class:`CsvFormat`, :class:`JsonFormat`, :class:`XmlFormat`) and the output
plumbing (:class:`FileExportWriter`) are shared with the feeds in :mod:`pipelines.adapters.feeds`.

Localisation as the plugin has it: ``languageCode`` overlays the record's translation for that language
(an item of ``translationsField``, default ``translations``, whose ``languageCode`` matches) onto the
record before it is written. ``channelCode`` is accepted for compatibility and ignored with a warning.

Why one module of this size: the three exporters share FileExportWriter (file naming, localising, spreadsheet-
safe text, the storage write); each format is a short class over it.
"""

from __future__ import annotations

import csv
import io
import os
import posixpath
import re
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import partial
from itertools import chain, repeat
from operator import is_not, itemgetter
from typing import IO, Any

from pipelines.adapters.base import Writer, WriteResult
from pipelines.errors import ConfigError, StepError
from pipelines.filestores import open_store
from pipelines.records import Batch, Record, json_text
from pipelines.registry import exporters

# --- output names -----------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_DATE_TOKEN = re.compile(r"YYYY|YY|MM|DD|HH|mm|ss|SSS")


def format_date(when: datetime, pattern: str) -> str:
    """``YYYY-MM-DD`` style: YYYY YY MM DD HH mm ss SSS; everything else is literal."""
    values = {
        "YYYY": f"{when.year:04d}", "YY": f"{when.year % 100:02d}", "MM": f"{when.month:02d}",
        "DD": f"{when.day:02d}", "HH": f"{when.hour:02d}", "mm": f"{when.minute:02d}",
        "ss": f"{when.second:02d}", "SSS": f"{when.microsecond // 1000:03d}",
    }
    return _DATE_TOKEN.sub(lambda m: values[m.group(0)], pattern)


def render_filename(pattern: str, when: datetime, field: str = "filenamePattern") -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name == "timestamp":
            return str(int(when.timestamp() * 1000))
        if name == "uuid":
            return str(uuid.uuid4())
        if name == "date":
            return format_date(when, "YYYY-MM-DD")
        if name.startswith("date:") and name[5:]:
            return format_date(when, name[5:])
        raise ConfigError(f"unknown placeholder ${{{name}}}; use ${{date:YYYY-MM-DD}}, ${{timestamp}} or ${{uuid}}",
                          field=field)

    return _PLACEHOLDER.sub(sub, pattern)


_BAD_NAME_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")


def safe_relative(name: str, field: str, *, folder: bool = False) -> str:
    """A clean relative storage name: no absolute path, no ``..``, no backslash or control characters."""
    if not isinstance(name, str):
        raise ConfigError("must be a string", field=field)
    if _BAD_NAME_CHARS.search(name):
        raise ConfigError(f"'{name}' has a backslash or a control character", field=field)
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise ConfigError(f"'{name}' must be relative to the file storage, not an absolute path", field=field)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ConfigError(f"'{name}' must not contain '..'", field=field)
    if not parts and not folder:
        raise ConfigError("the file name is empty", field=field)
    return "/".join(parts)


def output_name(config: dict, ctx, extension: str) -> str:
    """Where the file goes: ``outputPath`` (feeds: a full relative name), else ``path`` + ``filenamePattern``."""
    when = ctx.now()
    if config.get("outputPath") is not None:
        if config.get("path") is not None or config.get("filenamePattern") is not None:
            raise ConfigError("give outputPath, or path and filenamePattern, not both", field="outputPath")
        return safe_relative(render_filename(config["outputPath"], when, "outputPath"), "outputPath")
    folder = safe_relative(config.get("path") or "", "path", folder=True)
    pattern = config.get("filenamePattern") or f"{ctx.step_key or 'export'}-${{timestamp}}.{extension}"
    filename = safe_relative(render_filename(pattern, when), "filenamePattern")
    return posixpath.join(folder, filename) if folder else filename


# --- localisation (the plugin's languageCode / translationsField / channelCode) ---------------------------


def localise(records: Iterable[Record], config: dict) -> Iterable[Record]:
    language = config.get("languageCode")
    if not language:
        return records
    field = config.get("translationsField") or "translations"

    def one(record: Record) -> Record:
        translations = record.get(field)
        if isinstance(translations, list):
            for t in translations:
                if isinstance(t, dict) and t.get("languageCode") == language:
                    overlay = {k: v for k, v in t.items() if k not in ("languageCode", "id")}
                    return {**record, **overlay}
        return record

    return (one(r) for r in records)


LOCALISATION_PROPERTIES = {
    "languageCode": {"type": "string", "minLength": 1,
                     "description": "Write each record in this language: its matching translation (from "
                     "translationsField) overlays the record."},
    "translationsField": {"type": "string", "minLength": 1, "default": "translations",
                          "description": "The record's list of translations, each with a languageCode."},
    "channelCode": {"type": "string",
                    "description": "Accepted for plugin compatibility; ignored (Datahub has no channels)."},
}

OUTPUT_PROPERTIES = {
    "connectionCode": {"type": "string", "minLength": 1,
                       "description": "Write to this FOLDER, SFTP or FTP connection (under its root) instead of "
                       "the file storage; uploaded under a temporary name and renamed, replacing a file there."},
    "path": {"type": "string", "default": ".",
             "description": "Folder inside the file storage, or under the connection's root ('.' = its top); "
             "relative, without '..'."},
    "filenamePattern": {"type": "string", "minLength": 1,
                        "description": "File name with placeholders ${date:YYYY-MM-DD}, ${timestamp}, ${uuid}; "
                        "default '<step key>-${timestamp}.<ext>'."},
}


# --- cell and element helpers -----------------------------------------------------------------------------

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def text_value(value: Any) -> str:
    """A record value as text: nested values as JSON, booleans as true/false, None as empty."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if isinstance(value, dict | list):
        return json_text(value)
    return str(value)


def spreadsheet_safe(text: str) -> str:
    """Prefix a cell that a spreadsheet would read as a formula with a quote (OWASP's CSV injection advice)."""
    return "'" + text if text.startswith(FORMULA_START) else text


_XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]*$")
_XML_INVALID_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def check_element_name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _XML_NAME.match(value) or value.lower().startswith("xml"):
        raise ConfigError(f"{value!r} is not a valid XML element name (a letter or _, then letters, digits, "
                          "'.', '-', '_'; not starting with 'xml')", field=field)
    return value


def element_name(key: str) -> str:
    """A record key made into a valid element name (invalid characters become _)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", str(key))
    if not name or not re.match(r"[A-Za-z_]", name[0]) or name.lower().startswith("xml"):
        name = "_" + name
    return name


def xml_text(value: Any) -> str:
    """Escaped text: & < > (and quotes, for attributes); characters XML 1.0 cannot carry become U+FFFD."""
    text = _XML_INVALID_CHARS.sub("\ufffd", text_value(value))
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&apos;"))


# --- formats: begin / write(items) / end over a text stream -----------------------------------------------


class CsvFormat:
    """CSV rows with a header. Columns: given, or the first record's keys (later new keys are dropped with
    one warning).

    A batch is written in one pass of ``csv.writer.writerows``. The cells are prepared column by column
    (one C-level ``map`` per column), with C-level checks deciding what needs work: a column of plain
    strings, integers and nulls is written as it is (unless a string in it starts like a formula, in
    formula-safe mode), floats only when one is integral (written as an integer), and only a column holding
    booleans, nested values or a formula-like string goes through :meth:`_cell` value by value. The file is
    the same as writing every value through :meth:`_cell`; ``tests/adapters/test_exports.py`` and
    ``tests/adapters/test_csv_format_one_pass.py`` check that on every kind of value.

    Rows are made by ``zip`` over the columns, which reuses one tuple while ``writerows`` consumes them: a
    batch leaves no row objects behind for the garbage collector to scan. The writer writes into a string
    buffer that goes to ``out`` once a batch: ``csv.writer`` calls ``write`` once a row, and a text file that
    can also be read (the exporters' temporary file) resets its decoder on every ``write``.
    """

    def __init__(self, out: IO[str], ctx, *, delimiter: str = ",", include_header: bool = True,
                 formula_safe: bool = True, columns: list[str] | None = None, plain_tsv: bool = False,
                 bom: bool = False):
        self.out = out
        self.ctx = ctx
        self.buffer = io.StringIO()
        # CRLF (RFC 4180): with a bare "\n" terminator the csv module would leave a "\r" inside a value unquoted.
        self.writer = csv.writer(self.buffer, delimiter=delimiter, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        self.include_header = include_header
        self.formula_safe = formula_safe
        self.columns = list(columns) if columns is not None else None
        self.plain_tsv = plain_tsv
        self.bom = bom
        self.warned = False
        self.header_written = False

    def begin(self) -> None:
        if self.bom:
            self.out.write("\ufeff")
        if self.columns is not None:
            self._header()

    def _cell(self, value: Any) -> str:
        text = text_value(value)
        if self.plain_tsv:  # a flat file without quoting: tabs and line breaks become spaces
            text = re.sub(r"[\t\r\n]+", " ", text)
        if self.formula_safe and isinstance(value, str):
            text = spreadsheet_safe(text)
        return text

    def _header(self) -> None:
        if self.include_header and not self.header_written:
            self.writer.writerow([self._cell(c) for c in self.columns])
            self._flush()
        self.header_written = True

    def _flush(self) -> None:
        self.out.write(self.buffer.getvalue())
        self.buffer.seek(0)
        self.buffer.truncate()

    def write(self, items: Iterable[Record]) -> None:
        records = items if isinstance(items, list) else list(items)
        if not records:
            return
        if self.columns is None:
            self.columns = list(records[0])
            self._header()
        columns = self.columns
        if not columns:
            self.writer.writerows([] for _ in records)
            self._flush()
            return
        try:
            cells = [list(map(itemgetter(column), records)) for column in columns]
            complete = True  # every record has every column
        except KeyError:
            cells = [list(map(dict.get, records, repeat(column))) for column in columns]
            complete = False
        if not self.warned:
            self._warn_extra(records, complete)
        self.writer.writerows(zip(*map(self._ready, cells), strict=True))
        self._flush()

    def _warn_extra(self, records: list[Record], complete: bool) -> None:
        known = set(self.columns)
        # Records holding every column have a field beyond them exactly when they have more fields.
        if complete and max(map(len, records)) <= len(known):
            return
        if known.issuperset(chain.from_iterable(records)):
            return
        extra = list(dict.fromkeys(k for r in records for k in r if k not in known))
        self.warned = True
        self.ctx.warn(f"fields not in the CSV header (taken from the first record) are left out: "
                      f"{', '.join(extra[:10])}; list every column in 'columns' to keep them")

    def _ready(self, column: Sequence[Any]) -> Sequence[Any]:
        """The column as csv.writer must get it: the same object when it can take it as it is.

        The first two checks run in C over the whole column and raise TypeError at the first value of
        another kind (a null, a number among strings), which sends the column to the general check."""
        if self.plain_tsv:  # every text may hold a tab or a line break
            return list(map(self._cell, column))
        try:
            if self.formula_safe:
                if not any(map(str.startswith, column, repeat(FORMULA_START))):
                    return column  # only strings, none formula-like
            elif all(map(str.__instancecheck__, column)):
                return column
        except TypeError:
            pass
        try:
            if not any(map(float.is_integer, column)):
                return column  # only non-integral floats: csv.writer writes repr(float), as text_value does
        except TypeError:
            pass
        kinds = set(map(type, column))
        if kinds <= _AS_IS:
            return column
        if kinds <= _TEXT:
            texts = filter(None, column)
            if not (self.formula_safe and any(map(str.startswith, texts, repeat(FORMULA_START)))):
                return column
        elif kinds <= _FLOAT and not any(map(float.is_integer, filter(partial(is_not, None), column))):
            return column
        return list(map(self._cell, column))

    def end(self) -> None:
        if self.columns is not None:
            self._header()


# What csv.writer writes exactly as text_value does: integers (not booleans) and null (an empty cell).
_AS_IS = frozenset({int, type(None)})
_TEXT = frozenset({str, type(None)})
_FLOAT = frozenset({float, type(None)})


class JsonFormat:
    """A JSON array (pretty: two-space indent) or NDJSON (one object a line)."""

    def __init__(self, out: IO[str], *, ndjson: bool = False, pretty: bool = False):
        self.out = out
        self.ndjson = ndjson
        self.pretty = pretty and not ndjson
        self.count = 0

    def begin(self) -> None:
        pass

    def write(self, items: Iterable[Record]) -> None:
        for item in items:
            text = json_text(item, indent=self.pretty)
            if self.ndjson:
                self.out.write(text + "\n")
            else:
                if self.pretty:
                    text = "  " + text.replace("\n", "\n  ")
                sep = "\n" if self.pretty else ""
                self.out.write(("[" + sep if self.count == 0 else "," + sep) + text)
            self.count += 1

    def end(self) -> None:
        if self.ndjson:
            return
        if self.count == 0:
            self.out.write("[]\n")
        else:
            self.out.write(("\n]" if self.pretty else "]") + "\n")


class XmlFormat:
    """``<root><item>...</item></root>``, two-space indent. A nested object becomes nested elements, a list
    repeats its element; keys starting with ``attributePrefix`` become attributes and ``#text`` the text (the
    shapes the xml extractor reads). Everything is escaped."""

    def __init__(self, out: IO[str], *, root: str = "feed", item: str = "item", declaration: bool = True,
                 attribute_prefix: str = "@"):
        self.out = out
        self.root = root
        self.item = item
        self.declaration = declaration
        self.prefix = attribute_prefix

    def begin(self) -> None:
        if self.declaration:
            self.out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        self.out.write(f"<{self.root}>\n")

    def write(self, items: Iterable[Record]) -> None:
        for item in items:
            self.out.write("".join(self._element(self.item, item, 1)))

    def end(self) -> None:
        self.out.write(f"</{self.root}>\n")

    def _element(self, name: str, value: Any, depth: int) -> list[str]:
        pad = "  " * depth
        if isinstance(value, list):
            return [line for v in value for line in self._element(name, v, depth)]
        if not isinstance(value, dict):
            if value is None:
                return [f"{pad}<{name}/>\n"]
            return [f"{pad}<{name}>{xml_text(value)}</{name}>\n"]
        attrs = []
        children = []
        text = None
        for key, v in value.items():
            if self.prefix and isinstance(key, str) and key.startswith(self.prefix) and len(key) > len(self.prefix) \
                    and not isinstance(v, dict | list):
                attrs.append(f' {element_name(key[len(self.prefix):])}="{xml_text(v)}"')
            elif key == "#text":
                text = v
            else:
                children.append((element_name(key), v))
        head = f"{pad}<{name}{''.join(attrs)}"
        if not children:
            if text is None:
                return [head + "/>\n"]
            return [f"{head}>{xml_text(text)}</{name}>\n"]
        lines = [head + ">" + (xml_text(text) if text is not None else "") + "\n"]
        for child, v in children:
            lines.extend(self._element(child, v, depth + 1))
        lines.append(f"{pad}</{name}>\n")
        return lines


# --- the writer -------------------------------------------------------------------------------------------


class FileExportWriter(Writer):
    """Streams formatted records into a temporary file; saves it into the storage in ``finish()``.

    Subclasses set ``extension`` and build their format in ``make_format(out)``; ``prepare(batch)`` may map
    records and fail some alone (feeds)."""

    extension = "txt"
    publishes_at_finish = True

    def __init__(self, config: dict, ctx):
        super().__init__(config, ctx)
        self.configure()
        self.connection_code = config.get("connectionCode")
        if self.connection_code is None and ctx.storage is None:
            raise ConfigError("this run has no file storage to write the file into")
        self.target = output_name(config, ctx, self.extension)
        if config.get("channelCode"):
            ctx.warn("channelCode is ignored: Datahub has no channels")
        self.count = 0
        self._tmp = tempfile.TemporaryFile()
        # Written through a write-only duplicate of its descriptor (one file offset; finish() reads the file
        # back through _tmp): a TextIOWrapper over a file it could also read resets its decoder, two Python
        # calls, on every write(). Each closes its own descriptor, in any order.
        self.out = io.TextIOWrapper(open(os.dup(self._tmp.fileno()), "wb"), encoding="utf-8", newline="")
        self.format = self.make_format(self.out)
        self.format.begin()

    def configure(self) -> None:
        """Check the config (raise ConfigError) before anything is opened."""

    def make_format(self, out: IO[str]):
        raise NotImplementedError

    def prepare(self, batch: Batch) -> tuple[list[Record], list[tuple[Record, str]]]:
        return list(localise(batch, self.config)), []

    def write(self, batch: Batch) -> WriteResult:
        items, failed = self.prepare(batch)
        self.format.write(items)
        self.count += len(items)
        return WriteResult(written=len(items), failed=failed)

    def finish(self) -> None:
        from django.core.files import File

        self.format.end()
        self.out.flush()
        self._tmp.seek(0)
        if self.connection_code is not None:
            self._upload()
            return
        try:
            name = self.ctx.storage.save(self.target, File(self._tmp, name=posixpath.basename(self.target)))
        except OSError as exc:
            raise StepError(f"could not save {self.target}: {exc}", retryable=True) from exc
        self.saved_name = name
        self.ctx.warn(f"wrote {name} ({self.count} records)")

    def _upload(self) -> None:
        """The file goes to a connection instead of the storage: the same name, under the connection's root."""
        with open_store(self.connection_code, self.ctx.connection, self.ctx.secret) as store:
            store.write(self.target, self._tmp)
        self.saved_name = self.target
        self.ctx.warn(f"wrote {self.target} on connection '{self.connection_code}' ({self.count} records)")

    def close(self) -> None:
        for stream in (getattr(self, "out", None), getattr(self, "_tmp", None)):
            if stream is not None:
                try:
                    stream.close()
                except Exception:
                    pass


CSV_DELIMITERS = {",": ",", ";": ";", "\t": "\t", "tab": "\t", "|": "|"}


@exporters.register(
    "csvExport",
    name="CSV file",
    category="file",
    builtin=True,
    description="Writes the records to a CSV file in the file storage, escaping formula-like cells for "
    "spreadsheets unless told to preserve them.",
    schema={
        "type": "object",
        "properties": {
            **OUTPUT_PROPERTIES,
            "delimiter": {"enum": [",", ";", "\t", "tab", "|"], "default": ",",
                          "description": "Field separator: , ; tab (or '\\t') |."},
            "includeHeader": {"type": "boolean", "default": True, "description": "Write a header row."},
            "formulaMode": {"enum": ["SPREADSHEET_SAFE", "PRESERVE"], "default": "SPREADSHEET_SAFE",
                            "description": "SPREADSHEET_SAFE prefixes text cells starting with = + - @ tab or CR "
                            "with a quote, so a spreadsheet shows them instead of running them; PRESERVE writes "
                            "them as they are (machine-to-machine CSV)."},
            "columns": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                        "description": "The columns, in order; default: the first record's fields."},
            "addBom": {"type": "boolean", "default": False,
                       "description": "Start the file with a UTF-8 byte order mark (for Excel)."},
            **LOCALISATION_PROPERTIES,
        },
        "additionalProperties": False,
    },
)
class CsvExportWriter(FileExportWriter):
    extension = "csv"

    def configure(self) -> None:
        delimiter = self.config.get("delimiter", ",")
        if delimiter not in CSV_DELIMITERS:
            raise ConfigError(f"delimiter must be one of , ; tab |, got {delimiter!r}", field="delimiter")
        self.delimiter = CSV_DELIMITERS[delimiter]
        mode = self.config.get("formulaMode", "SPREADSHEET_SAFE")
        if mode not in ("SPREADSHEET_SAFE", "PRESERVE"):
            raise ConfigError("formulaMode must be SPREADSHEET_SAFE or PRESERVE", field="formulaMode")
        self.formula_safe = mode == "SPREADSHEET_SAFE"

    def make_format(self, out):
        return CsvFormat(out, self.ctx, delimiter=self.delimiter, include_header=self.config.get("includeHeader", True),
                         formula_safe=self.formula_safe, columns=self.config.get("columns"),
                         bom=bool(self.config.get("addBom")))


@exporters.register(
    "jsonExport",
    name="JSON file",
    category="file",
    builtin=True,
    description="Writes the records to a JSON file (one array) or an NDJSON file (one object a line) in the "
    "file storage.",
    schema={
        "type": "object",
        "properties": {
            **OUTPUT_PROPERTIES,
            "format": {"enum": ["JSON", "NDJSON"], "default": "JSON",
                       "description": "JSON: one array; NDJSON: one object a line."},
            "pretty": {"type": "boolean", "default": False,
                       "description": "JSON: indent by two spaces (NDJSON stays one line a record)."},
            **LOCALISATION_PROPERTIES,
        },
        "additionalProperties": False,
    },
)
class JsonExportWriter(FileExportWriter):
    def configure(self) -> None:
        fmt = self.config.get("format", "JSON")
        if fmt not in ("JSON", "NDJSON"):
            raise ConfigError("format must be JSON or NDJSON", field="format")
        self.ndjson = fmt == "NDJSON"
        self.extension = "ndjson" if self.ndjson else "json"

    def make_format(self, out):
        return JsonFormat(out, ndjson=self.ndjson, pretty=bool(self.config.get("pretty")))


@exporters.register(
    "xmlExport",
    name="XML file",
    category="file",
    builtin=True,
    description="Writes the records to an XML file in the file storage: <feed><item>...</item></feed>.",
    schema={
        "type": "object",
        "properties": {
            **OUTPUT_PROPERTIES,
            "rootElement": {"type": "string", "default": "feed", "pattern": "^[A-Za-z_][A-Za-z0-9._-]*$",
                            "description": "Name of the document element (e.g. products)."},
            "itemElement": {"type": "string", "default": "item", "pattern": "^[A-Za-z_][A-Za-z0-9._-]*$",
                            "description": "Name of each record's element (e.g. product)."},
            "declaration": {"type": "boolean", "default": True,
                            "description": "Start with <?xml version=\"1.0\" encoding=\"UTF-8\"?>."},
            "attributePrefix": {"type": "string", "default": "@",
                                "description": "Fields starting with this become attributes (as the xml "
                                "extractor reads them); empty: none do."},
            **LOCALISATION_PROPERTIES,
        },
        "additionalProperties": False,
    },
)
class XmlExportWriter(FileExportWriter):
    extension = "xml"

    def configure(self) -> None:
        self.root = check_element_name(self.config.get("rootElement", "feed"), "rootElement")
        self.item = check_element_name(self.config.get("itemElement", "item"), "itemElement")

    def make_format(self, out):
        return XmlFormat(out, root=self.root, item=self.item, declaration=self.config.get("declaration", True),
                         attribute_prefix=self.config.get("attributePrefix", "@"))
