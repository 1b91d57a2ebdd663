"""Field rules of VALIDATE steps, compiled once per step. [pure]

Rules come as ``fields: {path: rule}`` or ``rules: [{field, ...rule}]``. A rule has any of: ``required``,
``type`` (string, number, integer, boolean, object, array), ``min``/``max`` (numbers), ``minLength``/
``maxLength`` (strings and lists), ``pattern`` (a regex a string must match), ``enum`` (allowed values),
``format`` (email, url, uuid, date), and ``message`` to replace the generated text. A value that is
missing or null is checked only by ``required``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pipelines.errors import ConfigError
from pipelines.records import MISSING, Record, path

_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}
_FORMATS = {
    "email": re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    "url": re.compile(r"^https?://[^\s/$.?#].[^\s]*$", re.I),
    "uuid": re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I),
    "date": re.compile(r"^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$"),
}
_RULE_KEYS = {"field", "required", "type", "min", "max", "minLength", "maxLength", "pattern", "enum", "format",
              "message"}


def compile_rules(config: dict) -> Callable[[Record], list[str]]:
    """A function giving the problems of one record (empty list = valid)."""
    rules: list[tuple[str, dict]] = []
    fields = config.get("fields") or {}
    if not isinstance(fields, dict):
        raise ConfigError("must be an object of field path -> rule", field="fields")
    for name, rule in fields.items():
        rules.append((name, rule if isinstance(rule, dict) else {"required": bool(rule)}))
    listed = config.get("rules") or []
    if not isinstance(listed, list):
        raise ConfigError("must be a list of rules", field="rules")
    for i, rule in enumerate(listed):
        if not isinstance(rule, dict) or not isinstance(rule.get("field"), str):
            raise ConfigError("each rule needs a `field`", field=f"rules.{i}")
        rules.append((rule["field"], rule))
    if not rules:
        raise ConfigError("a VALIDATE step needs `fields` or `rules`", field="fields")
    checks = [_compile(name, rule) for name, rule in rules]

    def check(record: Record) -> list[str]:
        problems: list[str] = []
        for c in checks:
            c(record, problems)
        return problems

    return check


def _compile(name: str, rule: dict) -> Callable[[Record, list[str]], None]:
    where = f"fields.{name}"
    unknown = sorted(set(rule) - _RULE_KEYS)
    if unknown:
        raise ConfigError(f"unknown rule key(s) {', '.join(unknown)}; known: {', '.join(sorted(_RULE_KEYS))}",
                          field=where)
    p = path(name)
    tests: list[tuple[Callable[[Any], bool], str]] = []
    kind = rule.get("type")
    if kind is not None:
        if kind not in _TYPES:
            raise ConfigError(f"type must be one of {', '.join(_TYPES)}", field=f"{where}.type")
        tests.append((_TYPES[kind], f"must be of type {kind}"))
    if "min" in rule:
        lo = rule["min"]
        tests.append((lambda v: not _TYPES["number"](v) or v >= lo, f"must be at least {lo}"))
    if "max" in rule:
        hi = rule["max"]
        tests.append((lambda v: not _TYPES["number"](v) or v <= hi, f"must be at most {hi}"))
    if "minLength" in rule:
        n = rule["minLength"]
        tests.append((lambda v: not isinstance(v, str | list) or len(v) >= n, f"must have at least {n} characters"))
    if "maxLength" in rule:
        n = rule["maxLength"]
        tests.append((lambda v: not isinstance(v, str | list) or len(v) <= n, f"must have at most {n} characters"))
    if "pattern" in rule:
        try:
            rx = re.compile(rule["pattern"])
        except (re.error, TypeError) as exc:
            raise ConfigError(f"invalid pattern: {exc}", field=f"{where}.pattern") from None
        tests.append((lambda v: isinstance(v, str) and rx.search(v) is not None, "does not match the pattern"))
    if "enum" in rule:
        allowed = rule["enum"]
        if not isinstance(allowed, list):
            raise ConfigError("enum must be a list", field=f"{where}.enum")
        tests.append((lambda v: v in allowed, f"must be one of {', '.join(map(str, allowed))}"))
    if "format" in rule:
        fmt = _FORMATS.get(rule["format"])
        if fmt is None:
            raise ConfigError(f"format must be one of {', '.join(_FORMATS)}", field=f"{where}.format")
        tests.append((lambda v: isinstance(v, str) and fmt.match(v) is not None, f"is not a valid {rule['format']}"))
    required = bool(rule.get("required", False))
    custom = rule.get("message")

    def run(record: Record, problems: list[str]) -> None:
        value = p.get(record)
        if value is MISSING or value is None or value == "":
            if required:
                problems.append(custom or f"{name} is required")
            return
        for test, message in tests:
            if not test(value):
                problems.append(custom or f"{name} {message}")

    return run
