"""Reading definition files for the CLI: clear errors with the file, line and column."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines.errors import DefinitionError, Problem

MAX_DEFINITION_BYTES = 5 * 1024 * 1024


def read_definition_file(filename: str) -> Any:
    path = Path(filename)
    if not path.is_file():
        raise DefinitionError(Problem(f"{filename}: no such file"))
    if path.stat().st_size > MAX_DEFINITION_BYTES:
        raise DefinitionError(Problem(f"{filename}: larger than {MAX_DEFINITION_BYTES // (1024 * 1024)} MiB"))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DefinitionError(Problem(f"{filename}: not UTF-8 text")) from None
    except json.JSONDecodeError as exc:
        raise DefinitionError(Problem(f"{filename}, line {exc.lineno}, column {exc.colno}: {exc.msg}")) from None
    # The plugin's examples wrap the definition with metadata; accept that form too.
    if isinstance(data, dict) and "definition" in data and "steps" not in data:
        data = data["definition"]
    return data
