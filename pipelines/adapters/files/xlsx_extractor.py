"""The ``xlsx`` extractor (openpyxl, read-only)."""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Iterator
from datetime import date, datetime, time
from typing import Any

from pipelines.adapters.files.extractor import HEADER_PROPS, FileExtractor, source_properties
from pipelines.adapters.files.sources import READ_CHUNK, CappedReader, Source
from pipelines.errors import ConfigError, StepError
from pipelines.filestores.limits import max_file_bytes
from pipelines.records import Batch, Record
from pipelines.registry import extractors

# --- xlsx -------------------------------------------------------------------------------------------------


@extractors.register(
    "xlsx",
    name="Excel workbook (XLSX)",
    category="file",
    builtin=True,
    description="Rows of one sheet of an XLSX workbook (from storage or a path in an allowed folder), read "
    "row by row in openpyxl's read-only mode.",
    schema={
        "type": "object",
        "properties": source_properties({}) | {
            "sheetName": {"type": ["string", "integer"],
                          "description": "The sheet: its name, or its zero-based index. Default: the first."},
            **HEADER_PROPS,
            "trim": {"type": "boolean", "default": False,
                     "description": "Strip spaces around header names and text values."},
        },
        "additionalProperties": False,
    },
)
class XlsxExtractor(FileExtractor):
    """Cell values keep their type (numbers, booleans); dates and times become ISO 8601 text; formulas give
    their last computed value. Empty rows are skipped; a cell under no header becomes colN when it is set."""

    kind = "xlsx"

    def read(self, key: str, source: Source | None) -> Iterator[Batch]:
        skip_top = self._header_skip()
        workbook = self._open(source)
        sheet = self._sheet(workbook)
        yield from self._emit(self._records(sheet, skip_top), source.identity)

    def _open(self, source: Source):
        from openpyxl import load_workbook

        raw = self._hold(source.open_raw())
        seekable = getattr(raw, "seekable", lambda: False)()
        if not seekable or source.size is None:
            spool = self._hold(tempfile.TemporaryFile())
            capped = io.BufferedReader(CappedReader(raw, max_file_bytes(), source.label))
            shutil.copyfileobj(capped, spool, READ_CHUNK)
            spool.seek(0)
            raw = spool
        try:
            workbook = load_workbook(raw, read_only=True, data_only=True)
        except Exception as exc:  # BadZipFile, InvalidFileException, KeyError for a missing part
            raise StepError(f"{source.label} is not a readable XLSX workbook: {type(exc).__name__}: {exc}",
                            retryable=False) from None
        self._closers.append(workbook.close)
        return workbook

    def _sheet(self, workbook):
        wanted = self.config.get("sheetName")
        names = workbook.sheetnames
        listed = ", ".join(f"'{n}'" for n in names)
        if wanted is None:
            return workbook[names[0]]
        if isinstance(wanted, str) and wanted in names:
            return workbook[wanted]
        if isinstance(wanted, int) or (isinstance(wanted, str) and wanted.strip().isdigit()):
            index = int(wanted)
            if 0 <= index < len(names):
                return workbook[names[index]]
            raise ConfigError(f"sheet index {index} is out of range: the workbook has {len(names)} sheets "
                              f"({listed})", field="sheetName")
        raise ConfigError(f"sheet '{wanted}' not found; the workbook has {listed}", field="sheetName")

    def _records(self, sheet, skip_top: int) -> Iterator[Record]:
        has_header = self.config.get("hasHeader", True)
        trim = bool(self.config.get("trim"))
        names: list[str | None] | None = None
        for number, row in enumerate(sheet.iter_rows(min_row=1, values_only=True), start=1):
            if number <= skip_top:
                continue
            values = [_cell(v, trim) for v in row]
            if all(v is None or v == "" for v in values):
                continue
            if names is None and has_header:
                names = self._header(values, number)
                continue
            if names is None:
                names = []
            record: Record = {}
            for i, value in enumerate(values):
                name = names[i] if i < len(names) else None
                if name is None:
                    if value is None:
                        continue
                    name = f"col{i + 1}"
                record[name] = value
            yield record

    def _header(self, values: list, number: int) -> list[str | None]:
        names: list[str | None] = []
        seen = set()
        for value in values:
            if value is None or str(value).strip() == "":
                names.append(None)
                continue
            name = str(value).strip() if self.config.get("trim") else str(value)
            if name in seen:
                raise StepError(f"row {number}: the header names '{name}' twice", retryable=False)
            seen.add(name)
            names.append(name)
        return names


def _cell(value: Any, trim: bool) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if trim and isinstance(value, str):
        return value.strip()
    return value


