"""Records shown on the pages: as a table of escaped cell texts (previews, the step tester, a run's output
records) or as pretty JSON (failed records). The templates escape; these only shape and bound the text."""

from __future__ import annotations

import json
from typing import Any


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def _cell(value: Any) -> tuple[str, bool]:
    if value is None:
        return "null", True
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return (text if len(text) <= 300 else text[:299] + "…"), False


def record_table(records: list, limit: int = 200, columns: list | None = None) -> dict:
    """Columns (``columns`` first when given, then every other top-level field in first-seen order) and rows
    of cell texts; the template escapes."""
    columns = [c for c in columns or [] if isinstance(c, str)][:40]
    for r in records[:limit]:
        if isinstance(r, dict):
            for k in r:
                if k not in columns and len(columns) < 40:
                    columns.append(k)
    rows = []
    for r in records[:limit]:
        r = r if isinstance(r, dict) else {"value": r}
        rows.append([_cell(r.get(c)) if c in r else ("", True) for c in columns])
    return {"columns": columns, "rows": rows, "total": len(records), "shown": min(len(records), limit)}
