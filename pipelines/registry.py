"""The one place every pluggable thing is registered: operators, adapters and step types. [pure]

A registry maps a code (``trim``, ``httpApi``, ``GATE``) to an :class:`Entry`: its name, category,
description, the JSON schema of its config and the implementation. Entries are checked when they are
registered (a broken schema or a clashing code fails at import time, not in a run), and the editor
palette, ``/api/adapters/`` and the definition validator are all built from these tables.

What fills them is listed in :mod:`pipelines.plugins`.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from pipelines.errors import UnknownCode


class RegistrationError(ValueError):
    """A plugin tried to register something broken or clashing."""

@dataclass(frozen=True)
class Entry:
    kind: str
    code: str
    name: str
    category: str
    description: str
    schema: Mapping[str, Any]
    impl: Any
    builtin: bool = False
    meta: Mapping[str, Any] = field(default_factory=dict)

    def config_problems(self, config: Any) -> list[tuple[str, str]]:
        """(field path, message) for every way ``config`` breaks this entry's schema, nearest first; then
        what the entry's own ``config_check`` finds (checks a schema cannot express), when the schema holds."""
        problems = schema_problems(self.schema, config)
        check = self.meta.get("config_check")
        if check is not None and not problems:
            problems = check(config)
        return problems

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "code": self.code,
            "name": self.name,
            "category": self.category,
            "description": self.description,
            "schema": dict(self.schema),
            "builtin": self.builtin,
            **{k: v for k, v in self.meta.items() if isinstance(v, str | int | float | bool | type(None))},
        }

_VALIDATORS: dict[int, jsonschema.protocols.Validator] = {}

def _validator(schema: Mapping[str, Any]):
    key = id(schema)
    v = _VALIDATORS.get(key)
    if v is None:
        v = jsonschema.Draft202012Validator(schema)
        _VALIDATORS[key] = v
    return v

def schema_problems(schema: Mapping[str, Any], value: Any) -> list[tuple[str, str]]:
    problems = []
    for error in sorted(_validator(schema).iter_errors(value), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in error.absolute_path)
        problems.append((where, _friendly(error)))
    return problems

def _friendly(error: jsonschema.ValidationError) -> str:
    """jsonschema's messages quote whole values; shorten the common ones and suggest names."""
    if error.validator == "additionalProperties":
        known = list(error.schema.get("properties", {}))
        extras = sorted(set(error.instance) - set(known)) if isinstance(error.instance, dict) else []
        parts = []
        for name in extras:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            parts.append(f"unknown field '{name}'" + (f"; did you mean '{close[0]}'?" if close else ""))
        if parts:
            return "; ".join(parts)
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    if error.validator == "type":
        return f"must be of type {error.validator_value}, got {type(error.instance).__name__}"
    if error.validator == "enum":
        return f"must be one of {', '.join(map(str, error.validator_value))}, got {error.instance!r}"
    return error.message

class Registry:
    """Code → Entry, for one kind of plugin."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(
        self,
        code: str,
        impl: Any = None,
        *,
        name: str | None = None,
        category: str = "general",
        description: str = "",
        schema: Mapping[str, Any] | None = None,
        replace: bool = False,
        builtin: bool = False,
        **meta: Any,
    ) -> Any:
        """Register ``impl`` under ``code``; without ``impl``, return a decorator.

        Refuses a code that is already taken unless ``replace=True`` is asked for explicitly, and a
        schema that is not a valid JSON schema.
        """

        def add(obj: Any) -> Any:
            self.add(
                Entry(
                    kind=self.kind,
                    code=code,
                    name=name or code,
                    category=category,
                    description=description or _own_doc(obj),
                    schema=schema if schema is not None else {"type": "object"},
                    impl=obj,
                    builtin=builtin,
                    meta=meta,
                ),
                replace=replace,
            )
            return obj

        return add if impl is None else add(impl)

    def add(self, entry: Entry, *, replace: bool = False) -> None:
        if not isinstance(entry.code, str) or not entry.code.strip():
            raise RegistrationError(f"a {self.kind} needs a non-empty string code")
        existing = self._entries.get(entry.code)
        if existing is not None and not replace:
            what = "built-in" if existing.builtin else "registered"
            raise RegistrationError(
                f"{self.kind} code '{entry.code}' is already {what}; pass replace=True to replace it"
            )
        try:
            jsonschema.Draft202012Validator.check_schema(entry.schema)
        except jsonschema.SchemaError as exc:
            raise RegistrationError(
                f"{self.kind} '{entry.code}' has an invalid JSON schema: {exc.message}"
            ) from None
        if entry.schema.get("type", "object") != "object":
            raise RegistrationError(f"{self.kind} '{entry.code}' schema must describe an object")
        self._entries[entry.code] = entry

    def get(self, code: str) -> Entry:
        try:
            return self._entries[code]
        except (KeyError, TypeError):
            raise UnknownCode(self.kind, str(code), sorted(self._entries)) from None

    def __contains__(self, code: object) -> bool:
        return code in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self._entries.values(), key=lambda e: (e.category, e.code)))

    def __len__(self) -> int:
        return len(self._entries)

    def codes(self) -> list[str]:
        return sorted(self._entries)

    def snapshot(self) -> dict[str, Entry]:
        return dict(self._entries)

    def restore(self, snapshot: dict[str, Entry]) -> None:
        self._entries = dict(snapshot)

operators = Registry("operator")
extractors = Registry("extractor")
loaders = Registry("loader")
exporters = Registry("exporter")
feeds = Registry("feed")
sinks = Registry("sink")
step_types = Registry("step type")
# Python functions a pipeline's SCRIPT hooks call by name: fn(records, context, args) -> records.
scripts = Registry("script")

ALL: dict[str, Registry] = {
    "operator": operators,
    "extractor": extractors,
    "loader": loaders,
    "exporter": exporters,
    "feed": feeds,
    "sink": sinks,
    "step type": step_types,
    "script": scripts,
}

# Which registry an adapterCode is looked up in, by step type. TRANSFORM's adapterCode names one operator.
ADAPTER_REGISTRY_BY_STEP_TYPE: dict[str, Registry] = {
    "EXTRACT": extractors,
    "LOAD": loaders,
    "EXPORT": exporters,
    "FEED": feeds,
    "SINK": sinks,
    "TRANSFORM": operators,
}

def snapshot_all() -> dict[str, dict[str, Entry]]:
    return {kind: reg.snapshot() for kind, reg in ALL.items()}

def restore_all(snap: dict[str, dict[str, Entry]]) -> None:
    for kind, reg in ALL.items():
        reg.restore(snap[kind])


def _own_doc(obj: Any) -> str:
    """The first line of the docstring a class or function wrote for itself. An instance (an operator's
    OperatorSpec, a functools.partial) has only its class's, which says nothing about this entry."""
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else obj.__doc__ if inspect.isfunction(obj) else None
    return (doc or "").strip().split("\n")[0]

