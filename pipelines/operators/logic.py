"""Logic operators (4): when, ifThenElse, switch, deltaFilter. [pure]

Conditions and their 19 comparators live in :mod:`pipelines.conditions` (ROUTE uses them too).

Differences from the plugin, on purpose:

* ``when`` without ``action`` keeps the matching records (the plugin drops them; its own DSL defaults to keep).
* ``switch`` compares a list or object case with a list or object value by content (JavaScript by reference).
* ``deltaFilter`` hashes with BLAKE2b instead of a 32-bit string hash (no collisions in practice, so a changed
  record is never taken for an unchanged one), and does not change its checkpoint in a dry run.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson

from pipelines import js
from pipelines.conditions import (
    CONDITION_SCHEMA,
    compile_condition,
    compile_conditions,
    strict_equal,
)
from pipelines.errors import ConfigError
from pipelines.operators.base import OperatorContext, batch_operator, record_operator
from pipelines.operators.json_ops import compile_path, compile_paths, single_key
from pipelines.records import MISSING, Batch, deep_copy

_PATH = {"type": "string", "minLength": 1}
_SCALARS = (str, int, float, bool, type(None))


def _writer(value: Any):
    """``value`` as it should be written to each record: copied when it is a list or object."""
    if type(value) in _SCALARS or value is MISSING:
        return lambda: value
    return lambda: deep_copy(value)


@record_operator(
    "when",
    name="Filter (when)",
    category="logic",
    description="Keep (or drop) the records that match every condition.",
    schema={
        "type": "object",
        "properties": {
            "conditions": {
                "type": "array",
                "items": CONDITION_SCHEMA,
                "description": 'Conditions that must all hold, e.g. [{"field": "price", "cmp": "gt", "value": 0}].',
            },
            "action": {
                "type": "string",
                "enum": ["keep", "drop"],
                "default": "keep",
                "description": (
                    "keep: pass only matching records; drop: remove matching records. Defaults to keep, as the "
                    "plugin's DSL does (the plugin's runtime drops when action is omitted; we never drop silently)."
                ),
            },
        },
        "required": ["conditions"],
        "additionalProperties": False,
    },
)
def build_when(args: dict, ctx: Any):
    test = compile_conditions(args.get("conditions"), field="conditions")
    action = args.get("action") or "keep"
    if action not in ("keep", "drop"):
        raise ConfigError(f"'action' must be keep or drop, got {action!r}", field="action")
    if action == "keep":
        return lambda record: record if test(record) else None
    return lambda record: None if test(record) else record


@record_operator(
    "ifThenElse",
    name="If / then / else",
    category="logic",
    description="Set a field to one value when a condition holds and to another when it does not.",
    schema={
        "type": "object",
        "properties": {
            "condition": CONDITION_SCHEMA,
            "thenValue": {
                "description": "Value written when the condition holds (when omitted, nothing is written)."
            },
            "elseValue": {"description": "Value written otherwise; null when omitted."},
            "target": {**_PATH, "description": "Path of the field to write."},
        },
        "required": ["condition", "target"],
        "additionalProperties": False,
    },
)
def build_if_then_else(args: dict, ctx: Any):
    test = compile_condition(args.get("condition"), field="condition")
    target = compile_path(args, "target")
    put = target.set
    then_raw, else_raw = args.get("thenValue", MISSING), args.get("elseValue")
    key = single_key(target)
    if key is not None and type(then_raw) in _SCALARS and type(else_raw) in _SCALARS:

        def if_then_else_scalar(record: dict) -> dict:
            record[key] = then_raw if test(record) else else_raw
            return record

        return if_then_else_scalar
    then_value = _writer(then_raw)
    else_value = _writer(else_raw)

    def if_then_else(record: dict) -> dict:
        put(record, then_value() if test(record) else else_value())
        return record

    return if_then_else


@record_operator(
    "switch",
    name="Switch",
    category="logic",
    description="Set a field from the first case whose value equals the source field, or from default.",
    schema={
        "type": "object",
        "properties": {
            "source": {**_PATH, "description": "Path of the field to compare with each case's value."},
            "cases": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "value": {"description": "Value to compare with the source field."},
                        "result": {"description": "Value written when this case matches."},
                    },
                    "required": ["value", "result"],
                    "additionalProperties": False,
                },
                "description": (
                    "[{value, result}, ...]; the first match wins. Values of the same type compare strictly; "
                    'otherwise as text, as in the plugin (1 matches "1", true matches "true").'
                ),
            },
            "default": {"description": "Value written when no case matches; null when omitted."},
            "target": {**_PATH, "description": "Path of the field to write."},
        },
        "required": ["source", "cases", "target"],
        "additionalProperties": False,
    },
)
def build_switch(args: dict, ctx: Any):
    get = compile_path(args, "source").get
    put = compile_path(args, "target").set
    cases = args.get("cases")
    if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
        raise ConfigError("'cases' must be a list of {value, result} objects", field="cases")
    default = _writer(args.get("default"))
    results = [_writer(c.get("result")) for c in cases]
    values = [c.get("value") for c in cases]
    null_case = next((i for i, v in enumerate(values) if v is None), None)
    # For a scalar source the plugin's loose equality is "same text" (String(a) === String(b)) against every
    # non-null case, so a table finds the first matching case in one lookup.
    by_text: dict[str, int] = {}
    for i, v in enumerate(values):
        if v is not None:
            by_text.setdefault(js.string(v), i)

    def pick(value: Any) -> int | None:
        if value is None or value is MISSING:
            return null_case
        t = type(value)
        if t is str:
            return by_text.get(value)
        if t is not list and t is not dict:
            return by_text.get(js.string(value))
        text = None
        for i, case in enumerate(values):
            tc = type(case)
            if tc is list or tc is dict:
                if strict_equal(value, case):
                    return i
            elif case is not None:
                if text is None:
                    text = js.string(value)
                if js.string(case) == text:
                    return i
        return None

    def switch(record: dict) -> dict:
        i = pick(get(record))
        put(record, default() if i is None else results[i]())
        return record

    target_key = single_key(compile_path(args, "target"))
    raw_results = [c.get("result") for c in cases]
    raw_default = args.get("default")
    if target_key is None or not all(type(v) in _SCALARS for v in [*raw_results, raw_default]):
        return switch
    # Scalar results into a top-level field: a string source is one dict lookup.
    by_text_result = {text: raw_results[i] for text, i in by_text.items()}

    def switch_scalar(record: dict) -> dict:
        value = get(record)
        if type(value) is str:
            record[target_key] = by_text_result.get(value, raw_default)
        else:
            i = pick(value)
            record[target_key] = raw_default if i is None else raw_results[i]
        return record

    return switch_scalar


# ---------------------------------------------------------------------------------------------------------
# deltaFilter
# ---------------------------------------------------------------------------------------------------------

_HASH_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
CHECKPOINT_VERSION = 1


def record_hash(data: Any) -> str:
    """A stable digest of JSON data: key order does not matter, every other difference does."""
    try:
        text = orjson.dumps(data, option=_HASH_OPTIONS)
    except TypeError:  # integers beyond 64 bits
        text = json.dumps(
            data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
        ).encode()
    return hashlib.blake2b(text, digest_size=16).hexdigest()


@batch_operator(
    "deltaFilter",
    name="Delta filter",
    category="logic",
    description="Pass only records that are new or changed since the last successful run, by id.",
    needs_all_records=True,
    schema={
        "type": "object",
        "properties": {
            "idPath": {**_PATH, "description": "Path of the record id; records without an id always pass."},
            "includePaths": {
                "type": "array",
                "items": _PATH,
                "description": "Compare only these fields (default: the whole record).",
            },
            "excludePaths": {
                "type": "array",
                "items": _PATH,
                "description": "Ignore these fields when comparing (used when includePaths is not given).",
            },
        },
        "required": ["idPath"],
        "additionalProperties": False,
    },
)
def delta_filter(records: Batch, args: dict, ctx: OperatorContext) -> Batch:
    """Compare each record's hash with the one stored for its id by the previous successful run.

    The stored hashes are *replaced* by this run's (ids absent from this run are forgotten, as in the
    plugin). It runs over the whole step input at once (``needs_all_records``) so that "this run" is every
    record of the run, not one batch of it.
    """
    id_get = compile_path(args, "idPath").get
    include = compile_paths(args, "includePaths") if args.get("includePaths") else []
    exclude = compile_paths(args, "excludePaths") if args.get("excludePaths") and not include else []
    previous = ctx.checkpoint.get("hashes")
    if not isinstance(previous, dict):
        previous = {}
    current: dict[str, str] = {}
    out: Batch = []
    for record in records:
        rid = id_get(record)
        if rid is None or rid is MISSING:
            out.append(record)
            continue
        if include:
            data: Any = {}
            for p in include:
                value = p.get(record)
                if value is not MISSING:
                    p.set(data, value)
        elif exclude:
            data = deep_copy(record)
            for p in exclude:
                p.delete(data)
        else:
            data = record
        key = rid if type(rid) is str else js.string(rid)
        digest = record_hash(data)
        current[key] = digest
        if previous.get(key) != digest:
            out.append(record)
    if not ctx.dry_run:
        ctx.checkpoint.clear()
        ctx.checkpoint.update({"version": CHECKPOINT_VERSION, "hashes": current})
    return out
