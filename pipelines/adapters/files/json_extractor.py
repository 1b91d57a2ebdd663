"""The ``json`` extractor (a JSON document or NDJSON)."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import IO, Any

import orjson

from pipelines.adapters.files.extractor import (
    ENCODING_PROP,
    JSON_TYPES,
    ON_BAD_ROW_PROP,
    FileExtractor,
    source_properties,
)
from pipelines.adapters.files.sources import Source
from pipelines.errors import ConfigError, StepError
from pipelines.records import MISSING, Batch, PathError, Record
from pipelines.records import path as field_path
from pipelines.registry import extractors

# --- json / ndjson ----------------------------------------------------------------------------------------


@extractors.register(
    "json",
    name="JSON / NDJSON file",
    category="file",
    builtin=True,
    description="Records from a JSON document (at itemsPath) or an NDJSON file (one object a line, streamed).",
    schema={
        "type": "object",
        "properties": source_properties({
            "jsonText": {"type": "string", "description": "The JSON (or NDJSON) text itself."},
        }) | {
            "itemsPath": {"type": "string", "minLength": 1,
                          "description": "Dotted path to the records inside the document (data.items); without "
                          "it the document is the list of records (an object is one record)."},
            "format": {"enum": ["JSON", "NDJSON"],
                       "description": "JSON (one document) or NDJSON (one object a line); default: NDJSON for a "
                       ".ndjson or .jsonl file, JSON otherwise."},
            "encoding": ENCODING_PROP,
            "onBadRow": ON_BAD_ROW_PROP,
        },
        "additionalProperties": False,
    },
)
class JsonExtractor(FileExtractor):
    kind = "json"

    def read(self, key: str, source: Source | None) -> Iterator[Batch]:
        fmt = self.config.get("format")
        if fmt is None:
            fmt = "NDJSON" if source.name.lower().endswith((".ndjson", ".jsonl")) else "JSON"
        items_path = self.config.get("itemsPath")
        if items_path is not None:
            if fmt == "NDJSON":
                raise ConfigError("itemsPath does not apply to NDJSON (each line is a record)", field="itemsPath")
            try:
                compiled = field_path(items_path)
            except PathError as exc:
                raise ConfigError(str(exc), field="itemsPath") from None
        else:
            compiled = None
        encoding = self._encoding()
        if fmt == "NDJSON":
            text = self._hold(source.open_text(encoding))
            yield from self._emit(self._lines(text, source.label, encoding), source.identity)
            return
        document = self._load(source, encoding)
        items = document if compiled is None else compiled.get(document)
        if items is MISSING:
            raise ConfigError(f"itemsPath '{items_path}' is not in the document", field="itemsPath")
        if isinstance(items, dict):
            items = [items]
        elif not isinstance(items, list):
            where = f"itemsPath '{items_path}'" if items_path else "the document"
            raise ConfigError(f"{where} holds {JSON_TYPES.get(type(items), 'a value')}, not a list of objects",
                              field="itemsPath")
        yield from self._emit(self._items(items, items_path or "", source.label), source.identity)

    def _load(self, source: Source, encoding: str) -> Any:
        if source.text is not None:
            data: bytes | str = source.text
        else:
            stream = self._hold(source.open_binary())
            data = stream.read()
            stream.close()
            if codecs.lookup(encoding).name == "utf-8":
                data = data.removeprefix(codecs.BOM_UTF8)
            else:
                try:
                    data = data.decode(encoding).lstrip("\ufeff")
                except UnicodeDecodeError as exc:
                    raise StepError(f"{source.label} is not valid {encoding} text: {exc.reason}",
                                    retryable=False) from None
        if isinstance(data, str):
            data = data.lstrip("\ufeff")
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise StepError(f"invalid JSON in {source.label}: line {exc.lineno}, column {exc.colno}: {exc.msg}",
                            retryable=False) from None

    def _items(self, items: list, where: str, label: str) -> Iterator[Record]:
        for i, item in enumerate(items):
            if isinstance(item, dict):
                yield item
            else:
                self._bad_row(f"{where or 'items'}[{i}]", f"expected an object, got {JSON_TYPES.get(type(item))}",
                              label)

    def _lines(self, text: IO[str], label: str, encoding: str) -> Iterator[Record]:
        number = 0
        while True:
            try:
                line = text.readline()
            except UnicodeDecodeError as exc:
                raise StepError(f"{label} is not valid {encoding} text after line {number}: {exc.reason}",
                                retryable=False) from None
            if not line:
                return
            number += 1
            if number == 1:
                line = line.lstrip("\ufeff")
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                self._bad_row(f"line {number}", f"invalid JSON: {exc.msg} (column {exc.colno})", label)
                continue
            if not isinstance(value, dict):
                self._bad_row(f"line {number}", f"expected an object, got {JSON_TYPES.get(type(value))}", label)
                continue
            yield value


