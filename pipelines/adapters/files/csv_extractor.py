"""The ``csv`` extractor (and TSV)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
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
        yield from self._emit(self._records(reader, skip_top, source.label, encoding), source.identity)

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

    def _records(self, reader, skip_top: int, label: str, encoding: str) -> Iterator[Record]:
        has_header = self.config.get("hasHeader", True)
        trim = bool(self.config.get("trim"))
        names: list[str] | None = None
        rows_seen = 0
        first = True
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                self._bad_row(f"line {reader.line_num}", str(exc), label)
                continue
            except UnicodeDecodeError as exc:
                raise StepError(f"{label} is not valid {encoding} text after line {reader.line_num}: "
                                f"{exc.reason}", retryable=False) from None
            if first and row:
                row[0] = row[0].lstrip("\ufeff")
                first = False
            if not row:  # a blank line
                continue
            rows_seen += 1
            if rows_seen <= skip_top:
                continue
            if names is None:
                if has_header:
                    names = self._header(row, f"line {reader.line_num}", label)
                    continue
                names = [f"col{i + 1}" for i in range(len(row))]
            if len(row) != len(names):
                self._bad_row(f"line {reader.line_num}", f"expected {len(names)} fields, got {len(row)}", label)
                continue
            if trim:
                row = [cell.strip() for cell in row]
            yield dict(zip(names, row, strict=True))

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


