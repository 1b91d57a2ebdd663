"""The schema-to-form engine, building side: the fields of a form generated from a JSON schema and a value.

Most of a step's form is not written by hand: it is generated from the JSON schema of the step type, the
adapter or the operator (:func:`schema_fields`), so a custom operator or adapter gets a form the moment it
is registered. A field's HTML ``name`` is its path inside the step ("config.operators.0.args.path"), the
same path a validation :class:`~pipelines.errors.Problem` names, so a problem lands next to the field
that caused it (:mod:`pipelines.forms.problems`), and :mod:`pipelines.forms.reading` reads the same names
back. The widget each property gets is decided in one place, :func:`kind_of`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pipelines import registry
from pipelines.conditions import CONDITION_SCHEMA
from pipelines.forms.values import EXTRA, MISSING, VALUE_TYPES, Raw, dumps_any, json_text, value_type

# String fields that hold more than a line: scripts, templates, inline file contents.
LONG_TEXT = {"code", "template", "css", "csvText", "jsonText", "xmlText", "body", "html", "query", "sql",
             "description"}
# Lists of objects whose items have no schema of their own but are conditions.
CONDITION_LISTS = {"when", "conditions"}
LABELS = {
    "adapterCode": "Adapter",
    "continueOnError": "Continue on error",
    "maxConcurrentSteps": "Max concurrent steps",
    "errorPolicy": "Error policy",
    "retryPerRecord": "Per-record retry",
    "maxRetries": "Max retries",
    "retryableErrors": "Retryable errors (one pattern per line)",
    "parallelExecution": "Parallel execution",
    "op": "Operator",
    "cmp": "Comparison",
    "when": "Conditions",
}


def label_of(name: str, prop: dict | None = None) -> str:
    if prop and prop.get("title"):
        return str(prop["title"])
    if name in LABELS:
        return LABELS[name]
    unit = ""
    for suffix, text in (("Ms", " (ms)"), ("Sec", " (s)"), ("Rps", " (per second)"), ("Percent", " (%)")):
        if name.endswith(suffix) and len(name) > len(suffix):
            name, unit = name[: -len(suffix)], text
            break
    words = re.sub(r"(?<=[a-z0-9])([A-Z])", r" \1", name).replace("_", " ").split()
    text = " ".join(w if w.isupper() and len(w) > 1 else w.lower() for w in words)
    return (text[:1].upper() + text[1:] + unit) if text else name


def _types(prop: dict) -> list[str]:
    t = prop.get("type")
    if isinstance(t, list):
        return [str(x) for x in t]
    return [t] if isinstance(t, str) else []


# The condition form: 'operator' is only another spelling of 'cmp'; a condition that uses it keeps it
# (shown under "Other settings"), new ones get 'cmp'.
CONDITION_FORM_SCHEMA = {**CONDITION_SCHEMA, "properties": {
    k: v for k, v in (CONDITION_SCHEMA.get("properties") or {}).items() if k != "operator"}}
ITEM_LABELS = {"when": "condition", "conditions": "condition", "branches": "branch", "rules": "rule",
               "cases": "case", "operators": "operator"}


def item_schema(name: str, prop: dict) -> dict:
    items = prop.get("items") if isinstance(prop.get("items"), dict) else {}
    if name in CONDITION_LISTS and not items.get("properties"):
        return CONDITION_FORM_SCHEMA
    return items


def kind_of(name: str, prop: dict) -> str:
    """Which widget a schema property gets."""
    if prop.get("x-widget"):
        return str(prop["x-widget"])
    if "enum" in prop:
        return "select"
    types = _types(prop)
    if types == ["string"]:
        return "textarea" if name in LONG_TEXT or prop.get("format") == "textarea" else "text"
    if types == ["integer"]:
        return "integer"
    if types == ["number"]:
        return "number"
    if types == ["boolean"]:
        return "checkbox"
    if types == ["array"]:
        items = item_schema(name, prop)
        if items.get("type") == "string" and "enum" not in items:
            return "lines"
        if items.get("properties"):
            return "list"
        return "json"
    if types == ["object"]:
        if prop.get("properties"):
            return "object"
        additional = prop.get("additionalProperties", True)
        if additional is False or (isinstance(additional, dict) and additional.get("type") == "object"):
            return "json"
        return "map"
    if not types or ("object" not in types and set(types) <= {"string", "number", "integer", "boolean",
                                                               "null", "array"}):
        return "any"
    return "json"


@dataclass
class Field:
    """One form field, or a group of them (``object``, ``list``, ``operators``)."""

    name: str
    label: str
    kind: str
    value: Any = ""
    required: bool = False
    help: str = ""
    placeholder: str = ""
    choices: list = field(default_factory=list)  # [(value, label)] or [(group, [(value, label)])]
    grouped: bool = False
    errors: list[str] = field(default_factory=list)
    children: list[Field] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    rows: list[tuple[str, str, int]] = field(default_factory=list)
    add_choices: list = field(default_factory=list)
    open: bool = False
    item_label: str = "item"
    orig: str = ""
    refresh: bool = False  # changing it re-renders the form (an operator or adapter select)
    as_type: str = ""  # kind "any": the JSON type the value is read as
    switch: bool = False

    @property
    def all_errors(self) -> list[str]:
        out = list(self.errors)
        for c in self.children:
            out.extend(c.all_errors)
        for i in self.items:
            out.extend(i.errors)
            for c in i.fields:
                out.extend(c.all_errors)
        return out

    @property
    def html_id(self) -> str:
        return "f-" + re.sub(r"[^A-Za-z0-9_-]", "-", self.name)


@dataclass
class Item:
    """One entry of a list field: an operator, a ROUTE branch, a condition."""

    name: str
    index: int
    title: str
    fields: list[Field]
    errors: list[str] = field(default_factory=list)
    first: bool = False
    last: bool = False


# --- building fields from a schema and a value --------------------------------------------------------

def _display(kind: str, value: Any, prop: dict) -> Any:
    if isinstance(value, Raw):
        return value.text
    if value is MISSING or value is None:
        return False if kind == "checkbox" else ""
    if kind == "checkbox":
        return bool(value)
    if kind in ("text", "textarea", "select"):
        return value if isinstance(value, str) else json.dumps(value)
    if kind in ("integer", "number"):
        return str(value)
    if kind == "lines":
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return "\n".join(value)
        return json.dumps(value)
    if kind == "any":
        if isinstance(value, Raw):
            return value.text
        if isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False)
    return json_text(value)


def _placeholder(kind: str, prop: dict) -> str:
    if "examples" in prop and prop["examples"]:
        return str(prop["examples"][0])
    if "default" in prop and kind not in ("checkbox", "select"):
        default = prop["default"]
        if default in ("", [], {}):
            return ""
        return f"default: {default if isinstance(default, str) else json.dumps(default)}"
    return {"json": "JSON"}.get(kind, "")


def schema_fields(schema: dict, value: Any, prefix: str, *, skip: tuple[str, ...] = (),
                  extras: bool = True) -> list[Field]:
    """The fields for an object ``schema`` holding ``value``; names are ``prefix.<property>``."""
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    value = value if isinstance(value, dict) else {}
    fields = [
        build_field(name, prop if isinstance(prop, dict) else {}, value.get(name, MISSING),
                    f"{prefix}.{name}" if prefix else name, required=name in required)
        for name, prop in props.items() if name not in skip
        # A property the schema marks deprecated (another name for one shown) gets a field only when used.
        and not (isinstance(prop, dict) and prop.get("deprecated") and value.get(name, MISSING) is MISSING)
    ]
    extra = {k: v for k, v in value.items() if k not in props and k not in skip}
    raw_extra = value.get(EXTRA)
    if isinstance(raw_extra, Raw):
        extra_value: Any = raw_extra
    else:
        extra_value = {k: v for k, v in extra.items() if k != EXTRA}
    free = schema.get("additionalProperties", True) is not False
    if extras and (extra_value or (free and not props)):
        fields.append(Field(
            name=f"{prefix}.{EXTRA}" if prefix else EXTRA,
            label="Other settings (JSON)" if props else "Settings (JSON)",
            kind="json",
            value=json_text(extra_value) if extra_value else "",
            placeholder='{"name": "value"}',
            help="Settings this form has no field for, as a JSON object.",
            open=bool(extra_value),
        ))
    return fields


def build_field(name: str, prop: dict, value: Any, path: str, *, required: bool = False) -> Field:
    kind = kind_of(name, prop)
    f = Field(name=path, label=label_of(name, prop), kind=kind, required=required,
              help=str(prop.get("description", "")), placeholder=_placeholder(kind, prop))
    if kind == "select":
        default = prop.get("default")
        blank = f"— default ({default}) —" if default is not None else "—"
        f.choices = ([] if required else [("", blank)]) + [(str(v), str(v)) for v in prop["enum"]]
        f.value = _display(kind, value, prop)
    elif kind == "checkbox":
        f.value = _display(kind, prop.get("default", False) if value is MISSING else value, prop)
        # What the definition said, so an untouched box reads back as it was (absent stays absent).
        f.orig = "" if value is MISSING or not isinstance(value, bool) else ("true" if value else "false")
    elif kind == "object":
        f.children = schema_fields(prop, value, path)
        f.open = value is not MISSING
    elif kind == "map":
        f.rows = _map_rows(value, prop)
    elif kind == "list":
        f.items = _list_items(name, prop, value, path)
        f.placeholder = ""
        f.item_label = ITEM_LABELS.get(name, "item")
    else:
        f.value = _display(kind, value, prop)
        if kind == "any":
            f.as_type = value_type(value) if value is not MISSING else ""
            f.choices = VALUE_TYPES
    return f


def _map_rows(value: Any, prop: dict) -> list[tuple[str, str, int]]:
    strings = isinstance(prop.get("additionalProperties"), dict) and \
        prop["additionalProperties"].get("type") == "string"
    rows: list[tuple[str, str, int]] = []
    if isinstance(value, Raw):
        value = {}
    if isinstance(value, list):  # rows kept as typed after an error
        rows = [(k, v, n) for n, (k, v) in enumerate(value)]
    elif isinstance(value, dict):
        for n, (k, v) in enumerate(value.items()):
            shown = v if strings and isinstance(v, str) else dumps_any(v)
            rows.append((str(k), shown, n))
    rows.append(("", "", len(rows)))
    return rows


def _list_items(name: str, prop: dict, value: Any, path: str) -> list[Item]:
    schema = item_schema(name, prop)
    items = value if isinstance(value, list) else []
    out = []
    for n, item in enumerate(items):
        title = ""
        if isinstance(item, dict):
            title = str(item.get("name") or item.get("field") or "")
        out.append(Item(name=f"{path}.{n}", index=n, title=title or f"#{n + 1}",
                        fields=schema_fields(schema, item, f"{path}.{n}")))
    _mark_ends(out)
    return out


def _mark_ends(items: list[Item]) -> None:
    for n, item in enumerate(items):
        item.first = n == 0
        item.last = n == len(items) - 1


def operator_choices() -> list:
    """The operator select: operators grouped by category, custom ones included."""
    groups: dict[str, list] = {}
    for entry in registry.operators:
        groups.setdefault(entry.category, []).append((entry.code, f"{entry.name}" if entry.name != entry.code
                                                      else entry.code))
    return [(cat.title(), items) for cat, items in sorted(groups.items())]


def operator_fields(value: Any, path: str) -> Field:
    """A TRANSFORM step's operator list: each item an operator select and that operator's args form."""
    f = Field(name=path, label="Operators", kind="operators", grouped=True, add_choices=operator_choices(),
              help="Applied in order to every record.")
    items = value if isinstance(value, list) else []
    for n, item in enumerate(items):
        item = item if isinstance(item, dict) else {}
        code = item.get("op")
        code_text = code.text if isinstance(code, Raw) else (code if isinstance(code, str) else "")
        op = Field(name=f"{path}.{n}.op", label="Operator", kind="select", value=code_text, required=True,
                   choices=operator_choices(), grouped=True, refresh=True)
        description = ""
        if code_text in registry.operators:
            entry = registry.operators.get(code_text)
            description = entry.description
            args = schema_fields(entry.schema, item.get("args", {}), f"{path}.{n}.args")
        else:
            op.choices = [("", "— choose —"), *op.choices] if not code_text else \
                [(code_text, f"{code_text} (unknown)"), *op.choices]
            args = [Field(name=f"{path}.{n}.args.{EXTRA}", label="Arguments (JSON)", kind="json",
                          value=json_text(item.get("args") or {}))]
        op.help = description
        f.items.append(Item(name=f"{path}.{n}", index=n, title=code_text or "operator", fields=[op, *args]))
    _mark_ends(f.items)
    return f
