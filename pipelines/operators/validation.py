"""Validation operators (2): validateRequired, validateFormat. [pure]

Both annotate instead of dropping, as in the plugin: each failure appends ``{field, message, rule}`` to the
list at ``errorField`` (default ``_validationErrors``); a record that passes gets no such field. Drop or route
the flagged records with ``when`` (``{field: "_validationErrors", cmp: "exists"}``) or a VALIDATE step.
"""

from __future__ import annotations

from typing import Any

from pipelines import js
from pipelines.errors import ConfigError
from pipelines.operators.base import record_operator
from pipelines.operators.json_ops import compile_path, compile_paths
from pipelines.records import MISSING, Path

DEFAULT_ERROR_FIELD = "_validationErrors"


_WHITESPACE_SET = frozenset(js.WHITESPACE)


def is_blank(value: Any) -> bool:
    """Missing, null, a blank string, ``[]`` or ``{}``: what ``validateRequired`` flags."""
    if value is None or value is MISSING:
        return True
    t = type(value)
    if t is str:
        # Most values start with a visible character: no need to strip them.
        return not value or (value[0] in _WHITESPACE_SET and not value.strip(js.WHITESPACE))
    if t is list or t is dict:
        return not value
    return False


def _add_errors(record: dict, error_path: Path, errors: list[dict]) -> None:
    existing = error_path.get(record)
    if type(existing) is list:
        existing.extend(errors)
    else:
        error_path.set(record, errors)


_ERROR_FIELD = {
    "type": "string",
    "minLength": 1,
    "default": DEFAULT_ERROR_FIELD,
    "description": "Path of the list the errors are appended to.",
}


@record_operator(
    "validateRequired",
    name="Validate required",
    category="validation",
    description="Flag records whose listed fields are missing, null, blank, [] or {} (the record is kept).",
    schema={
        "type": "object",
        "properties": {
            "fields": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "description": "Paths of the fields that must have a value.",
            },
            "errorField": _ERROR_FIELD,
        },
        "required": ["fields"],
        "additionalProperties": False,
    },
)
def build_validate_required(args: dict, ctx: Any):
    paths = compile_paths(args, "fields")
    error_path = compile_path(args, "errorField", default=DEFAULT_ERROR_FIELD)
    checks = [
        (p.get, {"field": p.text, "message": f"Field '{p.text}' is required", "rule": "required"})
        for p in paths
    ]

    def validate_required(record: dict) -> dict:
        errors = None
        for get, error in checks:
            if is_blank(get(record)):
                if errors is None:
                    errors = []
                errors.append(dict(error))
        if errors:
            _add_errors(record, error_path, errors)
        return record

    return validate_required


@record_operator(
    "validateFormat",
    name="Validate format",
    category="validation",
    description="Flag records whose field does not match a regular expression; empty values are skipped.",
    schema={
        "type": "object",
        "properties": {
            "field": {"type": "string", "minLength": 1, "description": "Path of the field to check."},
            "pattern": {
                "type": "string",
                "minLength": 1,
                "description": (
                    "Regular expression in JavaScript syntax, searched anywhere in the value (anchor it with ^...$ "
                    "to match the whole value). Patterns prone to catastrophic backtracking are refused."
                ),
            },
            "errorField": _ERROR_FIELD,
            "errorMessage": {
                "type": "string",
                "description": "Message of the error (default: \"Field '<field>' does not match required format\").",
            },
        },
        "required": ["field", "pattern"],
        "additionalProperties": False,
    },
)
def build_validate_format(args: dict, ctx: Any):
    p = compile_path(args, "field")
    pattern = args.get("pattern")
    # The plugin reports a bad pattern on every record; it cannot work, so it is refused before the run.
    try:
        search = js.regex(pattern).search
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"pattern {pattern!r} cannot be used: {exc}", field="pattern") from None
    error_path = compile_path(args, "errorField", default=DEFAULT_ERROR_FIELD)
    custom = args.get("errorMessage") or None
    not_string = custom or f"Field '{p.text}' must be a string for format validation"
    mismatch = custom or f"Field '{p.text}' does not match required format"
    get = p.get
    field = p.text

    def validate_format(record: dict) -> dict:
        value = get(record)
        if is_blank(value):
            return record
        if type(value) is not str:
            _add_errors(record, error_path, [{"field": field, "message": not_string, "rule": "format"}])
        elif search(value) is None:
            _add_errors(record, error_path, [{"field": field, "message": mismatch, "rule": "format"}])
        return record

    return validate_format
