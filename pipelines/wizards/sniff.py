"""What an uploaded file is and what is in it: format, first records, columns with guessed types. [pure]

The first records are read by the same extractor (csv, json, xlsx) and the same config the created
pipeline will use, with a record limit: what the preview shows is what the run will read, and a file the
extractor would refuse is refused here, with the extractor's message (``line 3: ...``).

Types are guessed from the sample, never enforced: a column whose every non-empty value parses as a whole
number is ``integer``, and so on (:data:`TYPES`); one odd value makes it ``string``. Dates are recognized
in ISO form and in the common day-first and month-first forms, so the mapping can convert them.
"""

from __future__ import annotations

import csv
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipelines.errors import DatahubError

# What the wizards accept, by file extension: the extractor code and the format's own name.
FORMATS: dict[str, str] = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv",
    ".json": "json", ".ndjson": "json", ".jsonl": "json",
    ".xlsx": "xlsx",
}
TYPES = ("string", "integer", "number", "boolean", "date", "datetime", "object", "array", "empty")
PREVIEW_ROWS = 10
SAMPLE_ROWS = 200
TRUE_WORDS = {"true", "yes", "y", "1", "on", "t"}
FALSE_WORDS = {"false", "no", "n", "0", "off", "f"}


class SniffError(DatahubError):
    """The file cannot be imported; ``field`` is the wizard field to show it at."""

    def __init__(self, message: str, *, field: str = "file"):
        self.field = field
        super().__init__(message)


@dataclass
class Column:
    name: str
    type: str
    examples: list[str] = field(default_factory=list)
    date_format: str | None = None  # for a date column not in ISO form: its dateParse format


@dataclass
class Preview:
    adapter: str  # csv, json, xlsx
    options: dict  # the extractor options found (delimiter, ...), without the source itself
    columns: list[Column]
    rows: list[dict]  # the first PREVIEW_ROWS records, values cut to 200 characters
    sampled: int  # records the types were guessed from
    warnings: list[str] = field(default_factory=list)

    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def as_dict(self) -> dict:
        return {"adapter": self.adapter, "options": self.options, "sampled": self.sampled, "rows": self.rows,
                "warnings": self.warnings,
                "columns": [{"name": c.name, "type": c.type, "examples": c.examples, "dateFormat": c.date_format}
                            for c in self.columns]}

    @classmethod
    def from_dict(cls, data: dict) -> Preview:
        return cls(adapter=data["adapter"], options=dict(data.get("options") or {}), rows=list(data["rows"]),
                   sampled=int(data.get("sampled") or 0), warnings=list(data.get("warnings") or []),
                   columns=[Column(c["name"], c["type"], list(c.get("examples") or []), c.get("dateFormat"))
                            for c in data["columns"]])


def format_of(filename: str, head: bytes) -> str:
    """The extractor for a file, from its extension and its first bytes; SniffError when it is none of
    CSV, JSON or XLSX, is empty, or its bytes contradict its extension (a renamed binary)."""
    name = (filename or "").strip()
    ext = name[name.rfind("."):].lower() if "." in name else ""
    kind = FORMATS.get(ext)
    if kind is None:
        raise SniffError(f"'{name or '?'}' is not a file the wizard can read: use a .csv, .tsv, .json, .ndjson "
                         "or .xlsx file")
    if not head or not head.strip(b" \t\r\n\xef\xbb\xbf"):
        raise SniffError(f"'{name}' is empty")
    if kind == "xlsx":
        if not head.startswith(b"PK"):
            raise SniffError(f"'{name}' is not an Excel workbook (.xlsx files are zip archives; this one is not)")
    elif head.startswith(b"PK\x03\x04") or b"\x00" in head[:4096]:
        raise SniffError(f"'{name}' looks like a binary file, not {kind.upper()} text")
    return kind


def check_xlsx(path_or_stream: Any, name: str) -> None:
    """Refuse a .xlsx that is not a readable zip with a workbook inside (before openpyxl says it worse)."""
    try:
        with zipfile.ZipFile(path_or_stream) as archive:
            if "xl/workbook.xml" not in archive.namelist():
                raise SniffError(f"'{name}' is a zip archive but not an Excel workbook (no xl/workbook.xml)")
    except zipfile.BadZipFile:
        raise SniffError(f"'{name}' is not a readable Excel workbook (the zip archive is damaged)") from None


def csv_options(text: str, filename: str = "") -> dict:
    """The delimiter of a CSV sample (',' ';' tab '|'), as the csv extractor's config."""
    if filename.lower().endswith(".tsv"):
        return {"delimiter": "tab"}
    first_lines = "\n".join(text.splitlines()[:20])
    try:
        found = csv.Sniffer().sniff(first_lines, delimiters=",;\t|").delimiter
    except csv.Error:
        counts = {d: first_lines.split("\n", 1)[0].count(d) for d in ",;\t|"}
        found = max(counts, key=counts.get) if any(counts.values()) else ","
    return {"delimiter": "tab" if found == "\t" else found}


def read_sample(extractor_cls: type, config: dict, ctx: Any, *, limit: int = SAMPLE_ROWS) -> list[dict]:
    """Up to ``limit`` records read by the extractor itself (its errors become SniffError)."""
    ctx.record_limit = limit
    ctx.batch_size = limit
    reader = extractor_cls(config, ctx)
    records: list[dict] = []
    try:
        for batch in reader.batches():
            records.extend(batch)
            if len(records) >= limit:
                break
    except DatahubError as exc:
        field = getattr(exc, "field", None)
        raise SniffError(str(exc), field="file" if field in (None, "fileId", "path", "csvText") else field) from None
    finally:
        reader.close()
    return records[:limit]


def preview_of(adapter: str, options: dict, records: list[dict], warnings: Iterable[str] = ()) -> Preview:
    """Columns (in first-seen order, with guessed types) and the first rows of ``records``."""
    if not records:
        raise SniffError("the file has no records (it is empty, or has a header and no rows)")
    names: list[str] = []
    seen: set[str] = set()
    for record in records:
        for key in record:
            if key not in seen:
                seen.add(key)
                names.append(key)
    columns = []
    for name in names:
        values = [r.get(name) for r in records]
        kind, date_format = guess_type(values)
        examples = [_short(v) for v in values if v not in (None, "")][:3]
        columns.append(Column(name, kind, examples, date_format))
    rows = [{k: _short(v) for k, v in r.items()} for r in records[:PREVIEW_ROWS]]
    return Preview(adapter, dict(options), columns, rows, len(records), list(warnings))


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 200:
        return value[:199] + "…"
    if isinstance(value, dict | list):
        import json

        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 200 else text[:199] + "…"
    return value


_INT = re.compile(r"^[+-]?\d+$")
_NUM = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
_DMY = re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4})$")


def guess_type(values: Iterable[Any]) -> tuple[str, str | None]:
    """The narrowest type every non-empty value fits, and for a non-ISO date its dateParse format
    (``DD/MM/YYYY``, ``MM/DD/YYYY``, ``DD.MM.YYYY``)."""
    present = [v for v in values if v is not None and v != ""]
    if not present:
        return "empty", None
    if all(isinstance(v, bool) for v in present):
        return "boolean", None
    if all(isinstance(v, dict) for v in present):
        return "object", None
    if all(isinstance(v, list) for v in present):
        return "array", None
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "integer", None
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "number", None
    if not all(isinstance(v, str) for v in present):
        return "string", None
    texts = [v.strip() for v in present]
    if all(_INT.match(t) for t in texts) and not any(len(t.lstrip("+-")) > 1 and t.lstrip("+-")[0] == "0"
                                                    for t in texts):
        return "integer", None  # leading zeros (zip codes, article numbers) stay text
    if all(_NUM.match(t) for t in texts) and not any(_INT.match(t) and t.lstrip("+-")[:1] == "0"
                                                    and len(t.lstrip("+-")) > 1 for t in texts):
        return "number", None
    lowered = {t.lower() for t in texts}
    if lowered <= TRUE_WORDS | FALSE_WORDS and lowered - {"0", "1"}:
        return "boolean", None
    if all(_ISO_DATE.match(t) for t in texts):
        return "date", None
    if all(_ISO_DATETIME.match(t) for t in texts):
        return "datetime", None
    matches = [_DMY.match(t) for t in texts]
    if all(matches):
        separators = {m.group(2) for m in matches}
        if len(separators) == 1:
            sep = separators.pop()
            firsts = [int(m.group(1)) for m in matches]
            seconds = [int(m.group(3)) for m in matches]
            if all(1 <= s <= 12 for s in seconds) and all(1 <= f <= 31 for f in firsts) and \
                    (sep == "." or any(f > 12 for f in firsts) or not all(f <= 12 for f in firsts)):
                return "date", f"DD{sep}MM{sep}YYYY"
            if all(1 <= f <= 12 for f in firsts) and all(1 <= s <= 31 for s in seconds) and any(s > 12 for s in seconds):
                return "date", f"MM{sep}DD{sep}YYYY"
            if all(1 <= f <= 31 for f in firsts) and all(1 <= s <= 12 for s in seconds):
                return "date", f"DD{sep}MM{sep}YYYY"  # ambiguous (every day <= 12): day first, as most of the world
    return "string", None
