"""Records as a table for people: the review page, the email. [pure]

Columns are the records' top-level fields in the order they first appear (at most ``MAX_COLUMNS``; the
rest are counted, not shown). Nested values are shown as compact JSON, long values are cut. The texts are
plain strings: templates escape them.
"""

from __future__ import annotations

import json
from typing import Any

MAX_COLUMNS = 12
MAX_CELL = 120


def columns_of(records: list, limit: int = MAX_COLUMNS) -> tuple[list[str], int]:
    """(the columns shown, how many more fields there are)."""
    seen: dict[str, None] = {}
    for record in records:
        for key in record if isinstance(record, dict) else ("value",):
            seen.setdefault(str(key), None)
    names = list(seen)
    return names[:limit], max(0, len(names) - limit)


def cell(value: Any, missing: bool = False) -> tuple[str, bool]:
    """(text, is_null): None and missing fields are shown greyed."""
    if missing:
        return "", True
    if value is None:
        return "null", True
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    return (text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"), False


def table(records: list, limit: int = MAX_COLUMNS) -> dict:
    columns, hidden = columns_of(records, limit)
    rows = []
    for record in records:
        data = record if isinstance(record, dict) else {"value": record}
        rows.append([cell(data.get(c), missing=c not in data) for c in columns])
    return {"columns": columns, "rows": rows, "hidden_columns": hidden}


def text_table(records: list, limit: int = 8, width: int = 24) -> str:
    """A fixed-width table for the plain-text email."""
    t = table(records, limit)
    if not t["columns"]:
        return "(no records)"

    def fit(text: str) -> str:
        text = text.replace("\n", " ").replace("\r", " ")
        return (text if len(text) <= width else text[: width - 1] + "…").ljust(width)

    lines = [" | ".join(fit(c) for c in t["columns"]).rstrip()]
    lines.append("-+-".join("-" * width for _ in t["columns"]))
    for row in t["rows"]:
        lines.append(" | ".join(fit(text) for text, _ in row).rstrip())
    if t["hidden_columns"]:
        lines.append(f"(and {t['hidden_columns']} more fields)")
    return "\n".join(lines)
