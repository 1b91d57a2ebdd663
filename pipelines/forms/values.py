"""What a person types into a generated form field, read as a value and shown back. [no Django]

What a person typed is never lost: text that cannot be read as what the field needs (``abc`` in a number
field, broken JSON) is kept as :class:`Raw` and shown again as typed, with its problem beside it.
:data:`MISSING` marks a field left empty, which stays out of the definition (so an untouched default is
not written out).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING", "__bool__": lambda self: False})()

EXTRA = "__extra__"


@dataclass
class Raw:
    """Text a person typed that could not be read as what the field needs; shown back as typed (with the
    value type chosen beside it, for a field that takes several)."""

    text: str
    as_type: str = ""


# A field whose schema allows several JSON types gets a type select beside its input ("<name>.__as"), so
# "42" can be the text 42 or the number 42 on purpose. "auto" (an empty field's choice, and forms without
# the select): text that reads as JSON is JSON (loads_any), anything else is text.
VALUE_TYPES = [("", "auto"), ("text", "text"), ("number", "number"), ("boolean", "true/false"), ("json", "JSON")]


def value_type(value: Any) -> str:
    if isinstance(value, Raw):
        return value.as_type
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None or isinstance(value, dict | list):
        return "json"
    return "text"


def read_typed(text: str, as_type: str, path: str, errors: Errors) -> Any:
    """A value typed into a field with a type select, read as the type chosen (every refusal at ``path``)."""
    stripped = text.strip()
    if as_type == "text":
        return text
    if as_type == "number":
        try:
            number = float(stripped)
        except ValueError:
            errors.add(path, "enter a number")
            return Raw(text, as_type)
        return int(number) if number.is_integer() and not any(c in stripped.lower() for c in ".e") else number
    if as_type == "boolean":
        if stripped.lower() in ("true", "false"):
            return stripped.lower() == "true"
        errors.add(path, "enter true or false")
        return Raw(text, as_type)
    if as_type == "json":
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as exc:
            errors.add(path, json_error(exc))
            return Raw(text, as_type)
    return loads_any(text)


class Errors(dict):
    """Messages by field name (a field's HTML name, its path in the step)."""

    def add(self, name: str, message: str) -> None:
        self.setdefault(name, []).append(message)


def loads_any(text: str) -> Any:
    """A value typed into a free field: JSON when it reads as JSON (numbers, true, [..], {..}), else text."""
    stripped = text.strip()
    if not stripped:
        return ""
    try:
        return json.loads(stripped)
    except ValueError:
        return text


def dumps_any(value: Any) -> str:
    """The inverse of :func:`loads_any`: a string that would read as something else is shown quoted."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, str):
        return value if loads_any(value) == value else json.dumps(value)
    return json.dumps(value, ensure_ascii=False)


def json_text(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if value is MISSING or value is None:
        return ""
    return json.dumps(value, indent=2, ensure_ascii=False, default=lambda v: v.text if isinstance(v, Raw) else str(v))


def json_error(exc: json.JSONDecodeError) -> str:
    return f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
