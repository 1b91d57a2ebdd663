"""Forms of the pipeline pages.

Most of a step's form is not written by hand: it is generated from the JSON schema of the step type, the
adapter or the operator (:func:`schema_fields`), so a custom operator or adapter gets a form the moment it
is registered. A field's HTML ``name`` is its path inside the step ("config.operators.0.args.path"), the
same path a validation :class:`~pipelines.errors.Problem` names, so a problem lands next to the field
that caused it.

What a person typed is never lost: reading a form (:func:`read_schema`) gives back a best-effort value in
which text that could not be read (``abc`` in a number field, broken JSON) is kept as :class:`Raw`, and the
form is rebuilt from that value.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

from django import forms

from pipelines import registry, svg
from pipelines.definition import ADAPTER_REQUIRED, CONTEXT_SCHEMA, STEP_TYPES
from pipelines.errors import Problem
from pipelines.models import code_validator

try:  # the condition schema is pipelines' own; keep the forms working if it ever moves
    from pipelines.conditions import CONDITION_SCHEMA
except ImportError:  # pragma: no cover
    CONDITION_SCHEMA = {"type": "object"}

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING", "__bool__": lambda self: False})()

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
EXTRA = "__extra__"
ITEM_MARK = "__item"


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


def read_typed(text: str, as_type: str, path: str, errors: _Errors) -> Any:
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


class _Errors(dict):
    def add(self, name: str, message: str) -> None:
        self.setdefault(name, []).append(message)


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


# --- reading fields back from a POST --------------------------------------------------------------------

def _indices(post, prefix: str) -> list[int]:
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    found = set()
    for key in post.keys():
        m = pattern.match(key)
        if m:
            found.add(int(m.group(1)))
    return sorted(found)


def read_schema(schema: dict, post, prefix: str, errors: _Errors, *, skip: tuple[str, ...] = ()) -> dict:
    """The object a form generated by :func:`schema_fields` describes; unreadable text kept as Raw."""
    out: dict[str, Any] = {}
    props = schema.get("properties") or {}
    for name, prop in props.items():
        if name in skip:
            continue
        value = read_field(name, prop if isinstance(prop, dict) else {}, post,
                           f"{prefix}.{name}" if prefix else name, errors)
        if value is not MISSING:
            out[name] = value
    extra_name = f"{prefix}.{EXTRA}" if prefix else EXTRA
    text = post.get(extra_name, "")
    if text.strip():
        try:
            extra = json.loads(text)
        except json.JSONDecodeError as exc:
            errors.add(extra_name, json_error(exc))
            out[EXTRA] = Raw(text)
        else:
            if isinstance(extra, dict):
                for k, v in extra.items():
                    out.setdefault(k, v)
            else:
                errors.add(extra_name, "must be a JSON object: {\"name\": value, ...}")
                out[EXTRA] = Raw(text)
    return out


def read_field(name: str, prop: dict, post, path: str, errors: _Errors) -> Any:
    kind = kind_of(name, prop)
    if kind == "checkbox":
        checked = post.get(path) in ("1", "on", "true")
        orig = post.get(f"{path}.__orig", "")
        default = prop.get("default") is True
        if checked == (orig == "true") and orig:
            return checked  # untouched and written out before: keep it written out
        if checked == default:
            return MISSING  # the default: leave it out
        return checked
    if kind == "object":
        value = read_schema(prop, post, path, errors)
        return value if value else MISSING
    if kind == "list":
        schema = item_schema(name, prop)
        return [read_schema(schema, post, f"{path}.{n}", errors) for n in _indices(post, path)] or MISSING
    if kind == "map":
        return _read_map(prop, post, path, errors)
    text = post.get(path, "")
    if kind in ("text", "textarea", "select"):
        return text if text != "" else MISSING
    if not text.strip():
        return MISSING
    if kind == "integer":
        try:
            return int(text.strip())
        except ValueError:
            errors.add(path, "enter a whole number")
            return Raw(text)
    if kind == "number":
        try:
            number = float(text.strip())
        except ValueError:
            errors.add(path, "enter a number")
            return Raw(text)
        return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
    if kind == "lines":
        return [line.strip() for line in text.splitlines() if line.strip()]
    if kind == "any":
        return read_typed(text, post.get(f"{path}.__as", ""), path, errors)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        errors.add(path, json_error(exc))
        return Raw(text)


def _read_map(prop: dict, post, path: str, errors: _Errors) -> Any:
    strings = isinstance(prop.get("additionalProperties"), dict) and \
        prop["additionalProperties"].get("type") == "string"
    pattern = re.compile(re.escape(path) + r"\.k\.(\d+)$")
    rows = sorted(int(m.group(1)) for m in (pattern.match(k) for k in post.keys()) if m)
    out: dict[str, Any] = {}
    typed: list[tuple[str, str]] = []
    bad = False
    for n in rows:
        key = post.get(f"{path}.k.{n}", "").strip()
        text = post.get(f"{path}.v.{n}", "")
        if not key and not text.strip():
            continue
        typed.append((key, text))
        if not key:
            errors.add(path, f"row {len(typed)}: a name is required")
            bad = True
            continue
        if key in out:
            errors.add(path, f"'{key}' is given twice")
            bad = True
            continue
        out[key] = text if strings else loads_any(text)
    if bad:
        return typed  # shown back row by row; never saved
    return out if out else MISSING


def read_operators(post, path: str, errors: _Errors) -> list:
    items = []
    for n in _indices(post, path):
        code = post.get(f"{path}.{n}.op", "")
        item: dict[str, Any] = {"op": code}
        if code in registry.operators:
            item["args"] = read_schema(registry.operators.get(code).schema, post, f"{path}.{n}.args", errors)
        else:
            item["args"] = read_schema({"type": "object"}, post, f"{path}.{n}.args", errors)
        items.append(item)
    return items


def strip_missing(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_missing(v) for k, v in value.items() if v is not MISSING}
    if isinstance(value, list):
        return [strip_missing(v) for v in value]
    return value


def has_raw(value: Any) -> bool:
    if isinstance(value, Raw):
        return True
    if isinstance(value, dict):
        return any(has_raw(v) for v in value.values())
    if isinstance(value, list):
        return any(has_raw(v) for v in value)
    return False


# --- problems next to their fields --------------------------------------------------------------------

_INDEX = re.compile(r"\[(\d+)\]")
_REQUIRED = re.compile(r"^'([^']+)' is required$")


def problem_path(problem: Problem) -> tuple[str, str]:
    """(field path in form names, message) for a problem; 'x is required' points at x itself."""
    path = _INDEX.sub(r".\1", problem.field or "").strip(".")
    m = _REQUIRED.match(problem.message)
    if m:
        path = f"{path}.{m.group(1)}" if path else m.group(1)
        return path, "is required"
    return path, problem.message


def walk(fields: list[Field]):
    for f in fields:
        yield f
        yield from walk(f.children)
        for item in f.items:
            yield item
            yield from walk(item.fields)


def attach(fields: list[Field], errors: dict[str, list[str]]) -> list[str]:
    """Put each error on the field with its name, or the nearest enclosing one; return the rest."""
    index = {x.name: x for x in walk(fields)}
    rest = []
    for name, messages in errors.items():
        path = name
        target = None
        while path:
            target = index.get(path)
            if target is not None:
                break
            path = path.rpartition(".")[0]
        if target is None:
            rest.extend(messages)
        else:
            for message in messages:
                if message not in target.errors:
                    target.errors.append(message)
    return rest


# --- the step form ----------------------------------------------------------------------------------

META_SCHEMA = {
    "type": "object",
    "properties": {
        "key": {"type": "string", "description": "Unique in the pipeline: letters, digits, '-', '_' and '.'."},
        "name": {"type": "string", "description": "A label for people; the key is used when empty."},
    },
}
ADVANCED_SCHEMA = {
    "type": "object",
    "properties": {
        "disabled": {"type": "boolean", "description": "Skip this step; its input passes through unchanged."},
        "continueOnError": {"type": "boolean",
                            "description": "If the step fails, the run goes on; successors get no records from it."},
        "retries": {"type": "integer", "minimum": 0, "maximum": 100, "default": 0,
                    "description": "How many times a failed step is tried again."},
        "retryDelayMs": {"type": "integer", "minimum": 0, "default": 0, "description": "Wait between tries."},
        "timeoutMs": {"type": "integer", "minimum": 1,
                      "description": "An attempt that takes longer fails. Empty: no limit."},
    },
}


def adapter_registry(step_type: str):
    if step_type == "TRANSFORM":
        return registry.operators
    return registry.ADAPTER_REGISTRY_BY_STEP_TYPE.get(step_type)


def config_schema(step_type: str, adapter_code: str | None) -> dict:
    reg = adapter_registry(step_type)
    if reg is not None and adapter_code:
        return dict(reg.get(adapter_code).schema) if adapter_code in reg else {"type": "object"}
    if step_type in registry.step_types:
        return dict(registry.step_types.get(step_type).schema)
    return {"type": "object"}


def adapter_choices(step_type: str) -> list:
    reg = adapter_registry(step_type)
    if reg is None:
        return []
    groups: dict[str, list] = {}
    for entry in reg:
        groups.setdefault(entry.category.title(), []).append((entry.code, entry.name if entry.name != entry.code
                                                              else entry.code))
    return sorted(groups.items())


@dataclass
class StepForm:
    """The form of one step: what it shows, and the step it read back from a POST."""

    step: dict
    is_new: bool = False
    original_key: str | None = None
    errors: list[str] = field(default_factory=list)
    field_errors: dict[str, list[str]] = field(default_factory=dict)
    saved: bool = False
    open: bool = False

    def __post_init__(self):
        self.original_key = self.original_key or self.step.get("key")
        self._build()

    @property
    def type(self) -> str:
        return self.step.get("type", "")

    @property
    def adapter_code(self) -> str | None:
        code = self.step.get("adapterCode")
        return code if isinstance(code, str) and code else None

    @property
    def entry(self):
        reg = adapter_registry(self.type)
        if reg is not None and self.adapter_code in reg:
            return reg.get(self.adapter_code)
        if self.type in registry.step_types and not self.adapter_code:
            return registry.step_types.get(self.type)
        return None

    @property
    def operator_chain(self) -> bool:
        return self.type == "TRANSFORM" and not self.adapter_code

    def _build(self) -> None:
        step = self.step
        self.meta = schema_fields(META_SCHEMA, step, "", extras=False)
        self.adapter: Field | None = None
        if self.type in ADAPTER_REQUIRED or (self.type == "TRANSFORM" and self.adapter_code):
            choices = adapter_choices(self.type)
            code = self.adapter_code or ""
            known = {c for _, group in choices for c, _ in group}
            if code and code not in known:
                choices = [("Unknown", [(code, f"{code} (not installed)")]), *choices]
            if self.type == "TRANSFORM":
                choices = [("", [("", "— operator chain —")]), *choices]
            self.adapter = Field(name="adapterCode", label="Adapter" if self.type != "TRANSFORM" else "Operator",
                                 kind="select", value=code, required=self.type != "TRANSFORM", choices=choices,
                                 grouped=True, refresh=True)
            if self.entry is not None:
                self.adapter.help = self.entry.description
        config = step.get("config", {})
        schema = config_schema(self.type, self.adapter_code)
        if self.operator_chain:
            self.operators: Field | None = operator_fields((config or {}).get("operators", []), "config.operators")
            self.config = schema_fields(schema, config, "config", skip=("operators",))
        else:
            self.operators = None
            self.config = schema_fields(schema, config, "config")
        self.advanced = schema_fields(ADVANCED_SCHEMA, step, "", extras=False)
        groups = [self.meta, [self.adapter] if self.adapter else [], [self.operators] if self.operators else [],
                  self.config, self.advanced]
        self.all_fields = [f for g in groups for f in g]
        rest = attach(self.all_fields, self.field_errors)
        self.errors = [*self.errors, *rest]
        self.advanced_open = any(f.all_errors for f in self.advanced) or any(
            step.get(k) for k in ("disabled", "continueOnError", "retries", "retryDelayMs", "timeoutMs"))

    @property
    def has_errors(self) -> bool:
        return bool(self.errors or any(f.all_errors for f in self.all_fields))

    @property
    def html_id(self) -> str:
        return "new-step" if self.is_new else "step-" + re.sub(r"[^A-Za-z0-9_-]", "-", self.original_key or "")


def read_step(post, step_type: str) -> tuple[dict, _Errors]:
    """The step a step form describes (best effort, Raw where unreadable) and the errors of reading it."""
    errors = _Errors()
    step: dict[str, Any] = {"type": step_type}
    step.update(read_schema(META_SCHEMA, post, "", errors))
    adapter = post.get("adapterCode", "")
    if adapter:
        step["adapterCode"] = adapter
    if step_type == "TRANSFORM" and not adapter:
        config = read_schema(config_schema(step_type, None), post, "config", errors, skip=("operators",))
        config = {"operators": read_operators(post, "config.operators", errors), **config}
    else:
        config = read_schema(config_schema(step_type, adapter or None), post, "config", errors)
    step["config"] = config
    step.update(read_schema(ADVANCED_SCHEMA, post, "", errors))
    step.pop(EXTRA, None)
    return step, errors


def step_problems(problems: list[Problem], key: str | None) -> tuple[dict[str, list[str]], list[str]]:
    """Split problems into those at a field of step ``key`` and the rest (other steps, edges, the whole)."""
    fields: dict[str, list[str]] = {}
    rest: list[str] = []
    for p in problems:
        if p.step == key or (p.step is None and (p.field or "").startswith(("steps[", "key"))):
            path, message = problem_path(p)
            if re.match(r"^steps\.\d+\.?", path):
                path = re.sub(r"^steps\.\d+\.?", "", path)
            if path in ("", "edges"):
                rest.append(message if path == "" else f"{message}")
            else:
                fields.setdefault(path, []).append(message)
        else:
            rest.append(str(p))
    return fields, rest


def new_step(step_type: str, *, adapter: str | None = None, op: str | None = None, key: str) -> dict:
    step: dict[str, Any] = {"key": key, "type": step_type, "config": {}}
    if step_type == "TRANSFORM":
        step["config"] = {"operators": [{"op": op, "args": {}}] if op else []}
    elif adapter:
        step["adapterCode"] = adapter
    if step_type == "ROUTE":
        step["config"] = {"branches": [{"name": ""}]}
    return step


# --- the palette ----------------------------------------------------------------------------------

@dataclass
class PaletteItem:
    label: str
    description: str
    type: str
    adapter: str = ""
    op: str = ""
    code: str = ""


@dataclass
class PaletteGroup:
    title: str
    type: str
    description: str
    sections: list[tuple[str, list[PaletteItem]]]
    empty: str = ""
    colour: str = "#64748b"


def palette(query: str = "") -> list[PaletteGroup]:
    """Everything a step can be, from the registries: step types, and per type its adapters or operators."""
    q = query.strip().lower()

    def hit(*texts: str) -> bool:
        return not q or any(q in (t or "").lower() for t in texts)

    order = {t: n for n, t in enumerate(STEP_TYPES)}
    groups = []
    for entry in sorted(registry.step_types, key=lambda e: (order.get(e.code, 99), e.code)):
        t = entry.code
        reg = registry.ADAPTER_REGISTRY_BY_STEP_TYPE.get(t)
        sections: list[tuple[str, list[PaletteItem]]] = []
        if t == "TRANSFORM":
            chain = PaletteItem("Operator chain", "An empty list of operators to fill in.", t)
            if hit(chain.label, t):
                sections.append(("", [chain]))
            by_cat: dict[str, list[PaletteItem]] = {}
            for op in registry.operators:
                if hit(op.code, op.name, op.category, op.description, t):
                    by_cat.setdefault(op.category.title(), []).append(
                        PaletteItem(op.name, op.description, t, op=op.code, code=op.code))
            sections.extend(sorted(by_cat.items()))
        elif reg is not None:
            by_cat = {}
            for adapter in reg:
                if hit(adapter.code, adapter.name, adapter.category, adapter.description, t):
                    by_cat.setdefault(adapter.category.title(), []).append(
                        PaletteItem(adapter.name, adapter.description, t, adapter=adapter.code, code=adapter.code))
            sections.extend(sorted(by_cat.items()))
        elif hit(t, entry.name, entry.description):
            sections.append(("", [PaletteItem(entry.name, entry.description, t, code=t)]))
        empty = ""
        if reg is not None and t != "TRANSFORM" and len(reg) == 0:
            empty = f"No {reg.kind}s are installed."
        if sections or (empty and not q):
            groups.append(PaletteGroup(entry.name, t, entry.description, sections, empty,
                                       svg.TYPE_COLOURS.get(t, "#64748b")))
    return groups


# --- the settings form -------------------------------------------------------------------------------

def _with_defaults(schema: dict, defaults: dict) -> dict:
    """A copy of ``schema`` with ``default`` set where the engine has one the schema does not state."""
    out = copy.deepcopy(schema)
    for dotted, value in defaults.items():
        node = out
        for part in dotted.split("."):
            node = node["properties"][part]
        node.setdefault("default", value)
    return out


# The engine's defaults (pipelines.definition.Definition), shown as placeholders and select labels.
SETTINGS_CONTEXT_SCHEMA = _with_defaults({
    **CONTEXT_SCHEMA,
    "properties": {k: v for k, v in CONTEXT_SCHEMA["properties"].items() if k != "allowConcurrentRuns"},
}, {"parallelExecution.maxConcurrentSteps": 4, "parallelExecution.errorPolicy": "FAIL_FAST",
    "throughput.batchSize": 1000})
PARALLEL_HELP = {
    "enabled": "Run steps that do not depend on each other at the same time.",
    "maxConcurrentSteps": "At most this many steps run at once (1 to 16).",
    "errorPolicy": "FAIL_FAST stops at the first failure; CONTINUE runs every step not downstream of a "
                   "failure; BEST_EFFORT runs a step when any of its inputs succeeded.",
}


@dataclass
class SettingsForm:
    name: str
    description: str
    context: dict
    allow_concurrent_runs: bool = False
    field_errors: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    saved: bool = False

    def __post_init__(self):
        self.fields = schema_fields(
            {"properties": {"name": {"type": "string"}, "description": {"type": "string"}}},
            {"name": self.name, "description": self.description}, "", extras=False)
        self.context_fields = schema_fields(SETTINGS_CONTEXT_SCHEMA, self.context, "context")
        for f in walk(self.context_fields):
            if isinstance(f, Field) and f.name.startswith("context.parallelExecution."):
                f.help = PARALLEL_HELP.get(f.name.rpartition(".")[2], f.help)
                if f.name.endswith(".enabled"):
                    f.switch = True
                    f.label = "Parallel execution"
            if isinstance(f, Field) and f.name == "context.parallelExecution":
                f.open = True
        rest = attach(self.fields + self.context_fields, self.field_errors)
        self.errors = [*self.errors, *rest]

    @property
    def parallel_on(self) -> bool:
        p = self.context.get("parallelExecution") if isinstance(self.context, dict) else None
        return bool(isinstance(p, dict) and p.get("enabled") is True)


def read_settings(post) -> tuple[dict, _Errors]:
    errors = _Errors()
    values = read_schema({"properties": {"name": {"type": "string"}, "description": {"type": "string"}}},
                         post, "", errors)
    context = read_schema(SETTINGS_CONTEXT_SCHEMA, post, "context", errors)
    return {"name": values.get("name", ""), "description": values.get("description", ""),
            "context": context, "allow_concurrent_runs": post.get("allow_concurrent_runs") in ("1", "on")}, errors


def settings_problems(problems: list[Problem]) -> tuple[dict[str, list[str]], list[str]]:
    fields: dict[str, list[str]] = {}
    rest: list[str] = []
    for p in problems:
        path, message = problem_path(p)
        if p.step is None and (path.startswith("context") or path in ("name", "description")):
            fields.setdefault(path, []).append(message)
        else:
            rest.append(str(p))
    return fields, rest


# --- plain Django forms ------------------------------------------------------------------------------

def _check_code(value: str) -> str:
    code_validator(value)
    return value


def start_choices() -> list[tuple[str, str]]:
    """What a new pipeline can start with: any step that is valid with an empty config."""
    choices = [("TRIGGER", "Manual trigger")] if "TRIGGER" in registry.step_types else []
    for entry in registry.extractors:
        if not entry.schema.get("required"):
            choices.append((f"EXTRACT:{entry.code}", f"Extract · {entry.name}"))
    return choices


class PipelineCreateForm(forms.Form):
    code = forms.CharField(max_length=100, validators=[_check_code],
                           help_text="Lower-case letters, digits, '-' and '_'. Used in URLs and the CLI.")
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    start = forms.ChoiceField(label="First step", choices=(),
                              help_text="You add the other steps in the editor.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["start"].choices = start_choices()

    def clean_code(self):
        from pipelines.models import Pipeline

        code = self.cleaned_data["code"]
        if Pipeline.objects.filter(code=code).exists():
            raise forms.ValidationError(f"a pipeline with the code '{code}' exists already")
        return code


class DuplicateForm(forms.Form):
    code = forms.CharField(max_length=100, validators=[_check_code], label="New code")
    name = forms.CharField(max_length=200, label="New name")

    def clean_code(self):
        from pipelines.models import Pipeline

        code = self.cleaned_data["code"]
        if Pipeline.objects.filter(code=code).exists():
            raise forms.ValidationError(f"a pipeline with the code '{code}' exists already")
        return code


IMPORT_MAX_BYTES = 1024 * 1024


class ImportForm(forms.Form):
    file = forms.FileField(label="Definition file (.json)",
                           help_text=f"A pipeline definition exported from Datahub or the plugin; at most "
                           f"{IMPORT_MAX_BYTES // 1024} KiB.")
    code = forms.CharField(max_length=100, required=False, validators=[_check_code], label="Code",
                           help_text="Leave empty to use the code in the file.")
    replace = forms.BooleanField(required=False, label="Replace the pipeline with this code if it exists",
                                 help_text="Its current definition stays in the revision history.")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > IMPORT_MAX_BYTES:
            raise forms.ValidationError(
                f"the file is {upload.size // 1024} KiB; at most {IMPORT_MAX_BYTES // 1024} KiB is accepted")
        raw = upload.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise forms.ValidationError(f"the file is not UTF-8 text (byte {exc.start + 1})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"the file is {json_error(exc)}") from None
        if not isinstance(data, dict):
            raise forms.ValidationError("the file must hold one JSON object: a pipeline definition")
        return data


PREVIEW_MAX = 1000


class PreviewForm(forms.Form):
    limit = forms.IntegerField(min_value=1, max_value=PREVIEW_MAX, initial=10, label="First N records",
                               help_text=f"The extract steps read at most this many records (1 to {PREVIEW_MAX}).")
