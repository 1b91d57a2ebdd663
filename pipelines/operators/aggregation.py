"""Aggregation operators: aggregate, count, unique, deduplicateRecords, flatten, first, last, expand. [pure]

``multiJoin``, the ninth of the category, lives in :mod:`pipelines.operators.join`.

Where we differ from the plugin (research §2.8):

* ``aggregate.groupBy`` works (the plugin declares it and ignores it): a path or a list of paths; the
  aggregate is computed per group and written onto each record of its group. Records whose group value
  is missing or null form one group together, like SQL's ``GROUP BY``. ``aggregate`` waits for every
  batch of the step (``needs_all_records``), so its value covers the whole input, not one batch.
* ``deduplicateRecords.key`` may also be a list of paths (a composite key).
* ``count`` of a string counts characters (code points); JavaScript counts UTF-16 units, so an emoji
  counts 1 here and 2 in the plugin.
* Integral results of ``aggregate`` are written as integers (``avg`` of 10, 20, 30 is ``20``), as the
  plugin's JSON output shows them.
"""

from __future__ import annotations

import math
from typing import Any

from pipelines import js
from pipelines.errors import ConfigError, StepError
from pipelines.operators._common import field_path
from pipelines.operators.base import OperatorContext, batch_operator, record_operator
from pipelines.operators.join import composite_key, scalar_key
from pipelines.records import MISSING, Batch, Path, PathError, Record, deep_copy, path

CATEGORY = "aggregation"
AGGREGATE_OPS = ("count", "sum", "avg", "min", "max", "first", "last")
DEDUPLICATE_STRATEGIES = ("FIRST", "LAST", "LOWEST", "HIGHEST")


def _is_number(value: Any) -> bool:
    t = type(value)
    return t is int or (t is float and math.isfinite(value))





def canonical(value: Any) -> Any:
    """A hashable stand-in for a JSON value, equal exactly when the JSON texts are (``1`` = ``1.0``)."""
    t = type(value)
    if t is dict:
        return ("o", tuple((k, canonical(v)) for k, v in value.items()))
    if t is list:
        return ("a", tuple(canonical(v) for v in value))
    if t is bool:
        return ("b", value)
    if t is int or t is float:
        return ("n", value)
    if t is str:
        return ("s", value)
    return ("z", None)


# -- aggregate -----------------------------------------------------------------------------------


def compute_aggregate(op: str, values: list) -> Any:
    if not values:
        return 0 if op == "count" else None
    if op == "count":
        return len(values)
    # Plain left-to-right sums, as the plugin's reduce (fsum would round differently in the last digit).
    if op == "sum":
        return js.normal_number(sum(values))
    if op == "avg":
        return js.normal_number(sum(values) / len(values))
    if op == "min":
        return js.normal_number(min(values))
    if op == "max":
        return js.normal_number(max(values))
    if op == "first":
        return js.normal_number(values[0])
    if op == "last":
        return js.normal_number(values[-1])
    raise ConfigError(f"unknown aggregate op '{op}'", field="op")


def _group_paths(value: Any) -> tuple[Path, ...]:
    if value is None or value == "" or value == []:
        return ()
    texts = value if isinstance(value, list) else [value]
    if not all(isinstance(t, str) and t.strip() for t in texts):
        raise ConfigError("must be a field path or a list of field paths", field="groupBy")
    try:
        return tuple(path(t) for t in texts)
    except PathError as exc:
        raise ConfigError(str(exc), field="groupBy") from None


def _group_key(record: Record, paths: tuple[Path, ...]) -> Any:
    parts = []
    for p in paths:
        v = p.get(record)
        parts.append(canonical(None if v is MISSING else v))
    return tuple(parts)


@batch_operator(
    "aggregate",
    name="Aggregate",
    category=CATEGORY,
    description="Compute count, sum, avg, min or max over all records (or per group) and write it on each.",
    needs_all_records=True,
    schema={
        "type": "object",
        "properties": {
            "op": {
                "type": "string",
                "enum": list(AGGREGATE_OPS),
                "description": "The aggregate: count (records), sum, avg, min, max (numbers only), or the "
                "first / last number.",
            },
            "source": {
                "type": "string",
                "description": "Field path of the number to aggregate (not for count).",
            },
            "target": {
                "type": "string",
                "description": "Field path written on every record with the result.",
            },
            "groupBy": {
                "type": ["string", "array"],
                "items": {"type": "string"},
                "description": "Field path(s) to group by; the aggregate is computed per group. "
                "Empty = the whole input.",
            },
        },
        "required": ["op", "target"],
        "additionalProperties": False,
    },
)
def aggregate(records: Batch, args: dict, ctx: OperatorContext) -> Batch:
    op = args.get("op")
    if op not in AGGREGATE_OPS:
        raise ConfigError(f"must be one of {', '.join(AGGREGATE_OPS)}", field="op")
    target = field_path(args, "target")
    source = field_path(args, "source", required=op != "count")
    groups = _group_paths(args.get("groupBy"))

    def values_of(batch) -> list:
        if op == "count":
            return [1] * len(batch)
        return [v for v in (source.get(r) for r in batch) if _is_number(v)]

    if not groups:
        result = compute_aggregate(op, values_of(records))
        for record in records:
            target.set(record, result)  # a number or None: nothing to copy
        return records

    members: dict[Any, list[Record]] = {}
    for record in records:
        members.setdefault(_group_key(record, groups), []).append(record)
    for batch in members.values():
        result = compute_aggregate(op, values_of(batch))
        for record in batch:
            target.set(record, result)
    return records


# -- per-record array operators ------------------------------------------------------------------

_SOURCE_TARGET = {
    "source": {"type": "string", "description": "Field path of the array (or string) to read."},
    "target": {"type": "string", "description": "Field path to write the result to."},
}


@record_operator(
    "count",
    name="Count",
    category=CATEGORY,
    description="Write the length of an array or string field (anything else counts 0).",
    schema={
        "type": "object",
        "properties": dict(_SOURCE_TARGET),
        "required": ["source", "target"],
        "additionalProperties": False,
    },
)
def count(args: dict, ctx: OperatorContext):
    source, target = field_path(args, "source"), field_path(args, "target")

    def fn(record: Record) -> Record:
        value = source.get(record)
        target.set(record, len(value) if type(value) in (list, str) else 0)
        return record

    return fn


@record_operator(
    "unique",
    name="Unique values",
    category=CATEGORY,
    description="Remove duplicate values from an array field, keeping the first of each.",
    schema={
        "type": "object",
        "properties": {
            "source": {"type": "string", "description": "Field path of the array."},
            "target": {"type": "string", "description": "Field path for the result; defaults to source."},
            "by": {
                "type": "string",
                "description": "For arrays of objects: the key (path) that makes two objects the same. "
                "Non-object items are always kept.",
            },
        },
        "required": ["source"],
        "additionalProperties": False,
    },
)
def unique(args: dict, ctx: OperatorContext):
    source = field_path(args, "source")
    target = field_path(args, "target", required=False) or source
    by = field_path(args, "by", required=False)

    def fn(record: Record) -> Record:
        value = source.get(record)
        if type(value) is not list:
            return record
        seen: set = set()
        kept = []
        for item in value:
            if by is None:
                key = canonical(item)
            elif type(item) is not dict:
                kept.append(item)
                continue
            else:
                v = by.get(item)
                # As the plugin's Set: scalars by value (missing = null), objects/arrays never equal.
                v = None if v is MISSING else v
                key = scalar_key(v) or (("z", None) if v is None else ("id", id(v)))
            if key in seen:
                continue
            seen.add(key)
            kept.append(item)
        target.set(record, kept)
        return record

    return fn


def flatten_list(items: list, depth: int) -> list:
    """Flatten ``items`` ``depth`` levels (iteratively: a deep array must not hit the recursion limit)."""
    out: list = []
    stack: list[tuple[list, int, int]] = [(items, 0, depth)]
    while stack:
        current, index, level = stack.pop()
        while index < len(current):
            item = current[index]
            index += 1
            if type(item) is list and level >= 1:
                stack.append((current, index, level))
                current, index, level = item, 0, level - 1
                continue
            out.append(item)
    return out


@record_operator(
    "flatten",
    name="Flatten array",
    category=CATEGORY,
    description="Flatten a nested array field by the given depth.",
    schema={
        "type": "object",
        "properties": {
            "source": {"type": "string", "description": "Field path of the nested array."},
            "target": {"type": "string", "description": "Field path for the result; defaults to source."},
            "depth": {
                "type": "integer",
                "minimum": 0,
                "default": 1,
                "description": "How many levels to flatten.",
            },
        },
        "required": ["source"],
        "additionalProperties": False,
    },
)
def flatten(args: dict, ctx: OperatorContext):
    source = field_path(args, "source")
    target = field_path(args, "target", required=False) or source
    depth = args.get("depth", 1)
    depth = 1 if depth is None else depth

    def fn(record: Record) -> Record:
        value = source.get(record)
        if type(value) is list:
            target.set(record, flatten_list(value, depth))
        return record

    return fn


def _pick(name: str, index: int, title: str):
    @record_operator(
        name,
        name=title,
        category=CATEGORY,
        description=f"Write the {name} element of an array field (null when empty or not an array).",
        schema={
            "type": "object",
            "properties": {
                "source": {"type": "string", "description": "Field path of the array."},
                "target": {"type": "string", "description": "Field path to write the element to."},
            },
            "required": ["source", "target"],
            "additionalProperties": False,
        },
    )
    def build(args: dict, ctx: OperatorContext):
        source, target = field_path(args, "source"), field_path(args, "target")

        def fn(record: Record) -> Record:
            value = source.get(record)
            target.set(record, value[index] if type(value) is list and value else None)
            return record

        return fn

    return build


first = _pick("first", 0, "First element")
last = _pick("last", -1, "Last element")


# -- deduplicateRecords --------------------------------------------------------------------------


def _dedup_key_paths(value: Any) -> tuple[Path, ...]:
    texts = value if isinstance(value, list) else [value]
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise ConfigError("deduplicateRecords key is required (a field path or a list of them)", field="key")
    try:
        return tuple(path(t.strip()) for t in texts)
    except PathError as exc:
        raise ConfigError(f"deduplicateRecords key: {exc}", field="key") from None


def _priority(record: Record, priority: Path) -> float:
    value = priority.get(record)
    if not _is_number(value):
        raise StepError(
            f"deduplicateRecords priority values must be finite numbers (got {value!r} at '{priority.text}')"
        )
    return value


@batch_operator(
    "deduplicateRecords",
    name="Deduplicate records",
    category=CATEGORY,
    description="Keep one record per key: the first, the last, or the lowest or highest priority.",
    pure=False,
    needs_all_records=True,
    schema={
        "type": "object",
        "properties": {
            "key": {
                "type": ["string", "array"],
                "items": {"type": "string"},
                "description": "Field path of the key (or a list of paths for a composite key). Keys are "
                "type-strict scalars: 1 and '1' differ; null, missing and object keys are never merged.",
            },
            "keep": {
                "type": "string",
                "enum": list(DEDUPLICATE_STRATEGIES),
                "default": "FIRST",
                "description": "Which record of a key to keep. LOWEST / HIGHEST compare the priority field.",
            },
            "priority": {
                "type": "string",
                "description": "Field path of a numeric priority; required for LOWEST and HIGHEST.",
            },
        },
        "additionalProperties": False,
    },
)
def deduplicate_records(records: Batch, args: dict, ctx: OperatorContext) -> Batch:
    keys = _dedup_key_paths(args.get("key"))
    keep = args.get("keep") or "FIRST"
    if keep not in DEDUPLICATE_STRATEGIES:
        raise ConfigError(f"Unsupported deduplicateRecords strategy: {keep}", field="keep")
    priority: Path | None = None
    if keep in ("LOWEST", "HIGHEST"):
        # The plugin finds this only when it meets the first duplicate; a config error is found up front.
        priority = field_path(args, "priority", required=False)
        if priority is None:
            raise ConfigError(f"deduplicateRecords priority is required for {keep}", field="priority")

    selected: Batch = []
    slot_of: dict[Any, int] = {}
    for record in records:
        key = composite_key(record, keys)
        if key is None:
            selected.append(record)  # invalid keys stay distinct
            continue
        slot = slot_of.get(key)
        if slot is None:
            slot_of[key] = len(selected)
            selected.append(record)
        elif keep == "LAST":
            selected[slot] = record
        elif priority is not None:
            current = _priority(selected[slot], priority)
            candidate = _priority(record, priority)
            if (candidate < current) if keep == "LOWEST" else (candidate > current):
                selected[slot] = record
    return selected


# -- expand --------------------------------------------------------------------------------------


@batch_operator(
    "expand",
    name="Expand array",
    category=CATEGORY,
    description="Turn each element of an array field into its own record, optionally with parent fields.",
    pure=False,
    schema={
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "Field path of the array to expand (e.g. 'variants')."},
            "mergeParent": {
                "type": "boolean",
                "default": False,
                "description": "Copy the whole parent (minus the array) into each new record, with the "
                "element's keys merged on top (a non-object element goes to '_item'). A record whose array "
                "is empty or missing is kept as is.",
            },
            "parentFields": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Without mergeParent: parent fields to add to each element, as "
                "{targetField: parentPath}. Without either, a record whose array is empty disappears.",
            },
        },
        "required": ["path"],
        "additionalProperties": False,
    },
)
def expand(records: Batch, args: dict, ctx: OperatorContext) -> Batch:
    array_path = field_path(args, "path")
    merge_parent = bool(args.get("mergeParent", False))
    parent_fields: list[tuple[Path, Path]] = []
    for target_text, source_text in (args.get("parentFields") or {}).items():
        try:
            parent_fields.append((path(target_text), path(source_text)))
        except (PathError, TypeError) as exc:
            raise ConfigError(str(exc), field=f"parentFields.{target_text}") from None

    out: Batch = []
    for record in records:
        items = array_path.get(record)
        if type(items) is not list or not items:
            if merge_parent:
                out.append(record)
            continue
        if merge_parent:
            # The record and its elements are ours (the chain copied the batch): each element is used
            # once, so only the parent needs a copy per element.
            array_path.delete(record)
            for n, item in enumerate(items):
                new = record if n == len(items) - 1 else deep_copy(record)
                if type(item) is dict:
                    new.update(item)
                else:
                    new["_item"] = item
                out.append(new)
            continue
        for item in items:
            new = item if type(item) is dict else {"_item": item}
            for target, source in parent_fields:
                value = source.get(record)
                if value is not MISSING:
                    target.set(new, deep_copy(value))
            out.append(new)
    return out
