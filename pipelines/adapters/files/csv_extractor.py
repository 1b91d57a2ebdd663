"""The ``csv`` extractor (and TSV)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from itertools import islice, repeat
from typing import Any

from pipelines.adapters.files.extractor import (
    ENCODING_PROP,
    HEADER_PROPS,
    ON_BAD_ROW_PROP,
    FileExtractor,
    source_properties,
)
from pipelines.adapters.files.sources import Source
from pipelines.errors import ConfigError, StepError
from pipelines.records import Batch, Record, deep_copy
from pipelines.registry import extractors

# --- csv --------------------------------------------------------------------------------------------------


def _delimiter(value: Any, field: str = "delimiter") -> str:
    if value in ("tab", "\\t", "TAB"):
        return "\t"
    if not isinstance(value, str) or len(value) != 1:
        raise ConfigError(f"delimiter must be one character (or 'tab'), got {value!r}", field=field)
    if value in "\r\n":
        raise ConfigError("delimiter cannot be a line break", field=field)
    return value


@extractors.register(
    "csv",
    name="CSV / TSV file",
    category="file",
    builtin=True,
    description="Rows of a CSV or TSV file (inline, from storage, or a path in an allowed folder), streamed.",
    schema={
        "type": "object",
        "properties": source_properties({
            "csvText": {"type": "string", "description": "The CSV text itself."},
            "rows": {"type": "array", "items": {"type": ["object", "array"]},
                     "description": "Inline rows: objects, or arrays (the first one the header when hasHeader)."},
        }) | {
            "delimiter": {"type": "string", "default": ",", "pattern": "^(?:.|tab|\\\\t)$",
                          "description": "Field separator: one character, or 'tab' for TSV (a .tsv file "
                          "defaults to tab)."},
            "quoteChar": {"type": "string", "default": "\"", "maxLength": 1,
                          "description": "Quote character; an empty string turns quoting off."},
            **HEADER_PROPS,
            "trim": {"type": "boolean", "default": False,
                     "description": "Strip spaces around header names and values."},
            "encoding": ENCODING_PROP,
            "onBadRow": ON_BAD_ROW_PROP,
        },
        "additionalProperties": False,
    },
)
class CsvExtractor(FileExtractor):
    """Values stay strings, as in the file; convert them with operators (toNumber, ...)."""

    kind = "csv"

    def read(self, key: str, source: Source | None) -> Iterator[Batch]:
        delimiter, quote = self._dialect(source)
        skip_top = self._header_skip()
        if key == "rows":
            yield from self._emit(self._inline_rows(self.config["rows"], skip_top), "inline:rows")
            return
        encoding = self._encoding()
        text = self._hold(source.open_text(encoding))
        reader = csv.reader(text, delimiter=delimiter, strict=True, skipinitialspace=bool(self.config.get("trim")),
                            **({"quotechar": quote} if quote else {"quoting": csv.QUOTE_NONE}))
        rows = CsvRows(self, reader, skip_top, source.label, encoding)
        yield from self._emit_taken(rows.take, source.identity)

    def _dialect(self, source: Source | None) -> tuple[str, str]:
        if "delimiter" in self.config:
            delimiter = _delimiter(self.config["delimiter"])
        elif source is not None and source.name.lower().endswith((".tsv", ".tab")):
            delimiter = "\t"
        else:
            delimiter = ","
        quote = self.config.get("quoteChar", '"')
        if quote is None:
            quote = ""
        if not isinstance(quote, str) or len(quote) > 1:
            raise ConfigError("quoteChar must be one character, or empty for no quoting", field="quoteChar")
        if quote and quote == delimiter:
            raise ConfigError("quoteChar and delimiter must differ", field="quoteChar")
        if quote in ("\r", "\n"):
            raise ConfigError("quoteChar cannot be a line break", field="quoteChar")
        return delimiter, quote

    def _header(self, row: list[str], where: str, label: str) -> list[str]:
        names = []
        seen = set()
        for i, cell in enumerate(row):
            name = cell.strip() if self.config.get("trim") else cell
            if not name.strip():
                name = f"col{i + 1}"
            if name in seen:
                raise StepError(f"{where}: the header names '{name}' twice ({label})", retryable=False)
            seen.add(name)
            names.append(name)
        return names

    def _inline_rows(self, rows: Any, skip_top: int) -> Iterator[Record]:
        if not isinstance(rows, list):
            raise ConfigError("rows must be a list", field="rows")
        if all(isinstance(r, dict) for r in rows):
            for r in rows[skip_top:]:
                yield deep_copy(r)
            return
        if not all(isinstance(r, list) for r in rows):
            raise ConfigError("rows must be all objects or all arrays", field="rows")
        rows = rows[skip_top:]
        if self.config.get("hasHeader", True):
            if not rows:
                return
            header = self._header([str(c) if c is not None else "" for c in rows[0]], "rows[0]", "inline rows")
            body = rows[1:]
            start = skip_top + 1
        else:
            width = len(rows[0]) if rows else 0
            header = [f"col{i + 1}" for i in range(width)]
            body = rows
            start = skip_top
        for i, row in enumerate(body):
            if len(row) != len(header):
                self._bad_row(f"rows[{start + i}]", f"expected {len(header)} fields, got {len(row)}", "inline rows")
                continue
            yield dict(zip(header, deep_copy(row), strict=True))


def _lines_spanned(row: list[str]) -> int:
    """How many lines of the file a parsed row took: one, plus each line break kept inside a quoted value
    (the file is read with universal newlines left alone, so \\r\\n, \\r and \\n each end one line)."""
    return 1 + sum(cell.count("\n") + cell.count("\r") - cell.count("\r\n") for cell in row)


# Rows parsed before they become records. Parsed rows are lists the garbage collector tracks: a thousand of
# them alive at once would be promoted and scanned again (0.25 s more per million rows beside Django's
# objects); at this size they are gone before the next collection.
ROWS_AT_ONCE = 128


class CsvRows:
    """A CSV reader's records, ``take(n)`` at a time (:meth:`FileExtractor._emit_taken`).

    The rows above and at the header are read one by one. After it, rows are read a slice at a time with
    ``islice`` and, when every row of the slice has the header's width (no blank line, no bad row: the usual
    case), made into records in one C-level pass, with no Python code per row. A slice holding a blank line or
    a bad row goes through :meth:`_checked` row by row; the line a bad row is on is counted from the reader's
    line at the start of the slice, as ``csv.reader`` counts lines."""

    def __init__(self, extractor: CsvExtractor, reader, skip_top: int, label: str, encoding: str):
        self.extractor = extractor
        self.reader = reader
        self.skip_top = skip_top
        self.label = label
        self.encoding = encoding
        self.trim = bool(extractor.config.get("trim"))
        self.names: list[str] | None = None
        self.started = False
        self.ended = False
        self.first: list[Record] = []  # a file without header: its first row is already a record

    def take(self, n: int) -> list[Record]:
        if not self.started:
            self.started = True
            self.ended = not self._header()
        out, self.first = self.first, []
        reader = self.reader
        while len(out) < n and not self.ended:
            want = min(n - len(out), ROWS_AT_ONCE)
            line = reader.line_num
            rows: list[list[str]] = []
            error = None
            try:
                rows.extend(islice(reader, want))  # on an error, the rows before it stay in the list
            except csv.Error as exc:
                error = (reader.line_num, str(exc))
            except UnicodeDecodeError as exc:
                raise self._not_text(exc) from None
            if rows:
                out.extend(self._records(rows, line))
            if error is not None:
                self.extractor._bad_row(f"line {error[0]}", error[1], self.label)
            elif len(rows) < want:
                self.ended = True
        return out

    def _records(self, rows: list[list[str]], line: int) -> list[Record]:
        names = self.names
        if set(map(len, rows)) == {len(names)}:
            if self.trim:
                rows = [list(map(str.strip, row)) for row in rows]
            return list(map(dict, map(zip, repeat(names), rows)))
        return self._checked(rows, line)

    def _checked(self, rows: list[list[str]], line: int) -> list[Record]:
        """Row by row: blank lines left out, bad rows reported at their line (``line``: the reader's line
        before the first of ``rows``)."""
        names, trim = self.names, self.trim
        out = []
        for row in rows:
            line += _lines_spanned(row)
            if not row:  # a blank line
                continue
            if len(row) != len(names):
                self.extractor._bad_row(f"line {line}", f"expected {len(names)} fields, got {len(row)}", self.label)
                continue
            out.append(dict(zip(names, map(str.strip, row) if trim else row, strict=True)))
        return out

    def _header(self) -> bool:
        """Reads up to the header (or, without one, the first row); False when the file ends before it."""
        extractor, reader = self.extractor, self.reader
        rows_seen = 0
        first = True
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return False
            except csv.Error as exc:
                extractor._bad_row(f"line {reader.line_num}", str(exc), self.label)
                continue
            except UnicodeDecodeError as exc:
                raise self._not_text(exc) from None
            if first and row:
                row[0] = row[0].lstrip("\ufeff")
                first = False
            if not row:  # a blank line
                continue
            rows_seen += 1
            if rows_seen <= self.skip_top:
                continue
            if extractor.config.get("hasHeader", True):
                self.names = extractor._header(row, f"line {reader.line_num}", self.label)
                return True
            self.names = [f"col{i + 1}" for i in range(len(row))]
            self.first = self._checked([row], reader.line_num)  # of the header's width: never a bad row
            return True

    def _not_text(self, exc: UnicodeDecodeError) -> StepError:
        return StepError(f"{self.label} is not valid {self.encoding} text after line {self.reader.line_num}: "
                         f"{exc.reason}", retryable=False)
