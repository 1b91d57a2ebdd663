"""``multiJoin``: the record join (the plugin's ``join`` is the string operator and keeps that name). [pure]

Behaviour follows the plugin's ``join.operator.ts`` and its spec (research §6.1):

* Keys match only when both are the same kind of scalar: strings, finite numbers, booleans (``1`` ≠ ``"1"``
  ≠ ``true``; ``1`` = ``1.0`` as in JSON). null, missing, objects and arrays never match; ``""`` is a key.
* One output row per matching (left, right) pair: left order outer, right-data order inner.
* A merged row is the left record plus, for each right field name (``select``, or the union of all right
  records' top-level keys), ``prefix + name`` = the right value, or null where that right record lacks it.
  A prefix gets ``_`` appended when missing. Without a prefix the right fields overwrite same-named left
  fields.
* LEFT/FULL keep unmatched left rows with every right field null; RIGHT/FULL append the unmatched right
  rows after all left rows, in right-data order, with every left field name (union over the batch) null.
* ``maxOutputRecords`` (1..100000, default 10000) is a ceiling, not a truncation: the join fails before
  the row that would exceed it.

Our additions (the plugin dropped ``rightDataPath`` as inert; we make it work):

* ``rightDataPath: "$.steps.<stepKey>.output"`` reads another step's output through
  ``ctx.step_outputs``; the operator spec's ``references`` names that step so the graph runs it first.
  Exactly one of ``rightData`` / ``rightDataPath``. The 10,000-row cap applies to inline ``rightData``
  only (it bounds the size of a definition); a step's output is bounded by the output ceiling.
* ``leftKey`` / ``rightKey`` may each be a list of paths (a composite key; both lists the same length,
  every part must be a valid scalar for the row to match).

Cost: O(left + right + output) with a hash index of the right side; the only nested loop is the real
one-to-many output. Config errors carry the plugin's messages; the schema stays loose on those fields so
these checks, not the schema, report them.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pipelines.errors import ConfigError, StepError
from pipelines.operators.base import OperatorContext, batch_operator
from pipelines.records import Batch, Path, PathError, Record, deep_copy, path

JOIN_TYPES = ("INNER", "LEFT", "RIGHT", "FULL")
MAX_RIGHT_RECORDS = 10_000
DEFAULT_MAX_OUTPUT_RECORDS = 10_000
MAX_OUTPUT_RECORDS = 100_000
STEP_OUTPUT_REF = re.compile(r"^\$\.steps\.([A-Za-z0-9][A-Za-z0-9_.-]{0,99})\.output$")


def scalar_key(value: Any) -> tuple | None:
    """A hashable, type-strict key for a JSON scalar, or None for what never matches.

    Strings, booleans and finite numbers only. ``True`` and ``1`` are different keys (Python's bool is an
    int, so the type tag is what keeps them apart); ``1`` and ``1.0`` are the same number, as in JSON.
    """
    t = type(value)
    if t is str:
        return ("s", value)
    if t is bool:
        return ("b", value)
    if t is int:
        return ("n", value)
    if t is float:
        return ("n", value) if math.isfinite(value) else None
    return None


def composite_key(record: Any, paths: tuple[Path, ...]) -> tuple | None:
    if len(paths) == 1:
        return scalar_key(paths[0].get(record))
    parts = []
    for p in paths:
        k = scalar_key(p.get(record))
        if k is None:
            return None
        parts.append(k)
    return tuple(parts)


def _key_paths(value: Any, name: str) -> tuple[Path, ...]:
    texts = value if isinstance(value, list) else [value]
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise ConfigError(
            f"multiJoin {name} must be a non-empty string (a field path) or a non-empty list of them",
            field=name,
        )
    try:
        return tuple(path(t.strip()) for t in texts)
    except PathError as exc:
        raise ConfigError(f"multiJoin {name}: {exc}", field=name) from None


def step_reference(args: dict) -> str | None:
    """The step key named by ``rightDataPath``, or None without one. ConfigError when it is malformed."""
    ref = args.get("rightDataPath")
    if ref is None:
        return None
    match = STEP_OUTPUT_REF.match(ref.strip()) if isinstance(ref, str) else None
    if not match:
        raise ConfigError(
            f"multiJoin rightDataPath must look like '$.steps.<stepKey>.output', got {ref!r}",
            field="rightDataPath",
        )
    return match.group(1)


def _references(args: dict) -> list[str]:
    try:
        key = step_reference(args)
    except ConfigError:
        return []  # reported by the operator's own check when it runs
    return [key] if key else []


def _max_output(args: dict) -> int:
    value = args.get("maxOutputRecords", DEFAULT_MAX_OUTPUT_RECORDS)
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and float(value).is_integer()
        and 1 <= value <= MAX_OUTPUT_RECORDS
    )
    if not ok:
        raise ConfigError(
            f"multiJoin maxOutputRecords must be an integer between 1 and {MAX_OUTPUT_RECORDS}",
            field="maxOutputRecords",
        )
    return int(value)


def _right_rows(args: dict, ctx: OperatorContext) -> list[Record]:
    has_inline = "rightData" in args and args["rightData"] is not None
    ref = step_reference(args)
    if has_inline and ref is not None:
        raise ConfigError(
            "multiJoin takes either rightData or rightDataPath, not both", field="rightDataPath"
        )
    if ref is not None:
        if ctx.step_outputs is None:
            raise ConfigError(
                "multiJoin rightDataPath reads another step's output, which is not available here",
                field="rightDataPath",
            )
        try:
            rows = ctx.step_outputs(ref)
        except KeyError:
            raise ConfigError(
                f"multiJoin rightDataPath: step '{ref}' has no output here (is it a step of this pipeline?)",
                field="rightDataPath",
            ) from None
        if not isinstance(rows, list):
            rows = list(rows)
        label = f"step '{ref}' output"
    else:
        rows = args.get("rightData")
        if not isinstance(rows, list):
            raise ConfigError(
                "multiJoin rightData must be an array of objects (or give rightDataPath: "
                "'$.steps.<stepKey>.output')",
                field="rightData",
            )
        if len(rows) > MAX_RIGHT_RECORDS:
            raise ConfigError(
                f"multiJoin rightData exceeds the maximum of {MAX_RIGHT_RECORDS} records "
                f"(got {len(rows)}); use rightDataPath to join another step's output",
                field="rightData",
            )
        label = "rightData"
    for i, row in enumerate(rows):
        if type(row) is not dict:
            if label == "rightData":
                raise ConfigError(f"multiJoin rightData[{i}] must be an object", field=f"rightData.{i}")
            raise StepError(f"multiJoin {label}[{i}] must be an object")
    return rows


def _prefix(args: dict) -> str:
    prefix = args.get("prefix")
    if prefix is None or prefix == "":
        return ""
    if not isinstance(prefix, str):
        raise ConfigError("multiJoin prefix must be a string", field="prefix")
    return prefix if prefix.endswith("_") else prefix + "_"


def _select(args: dict) -> list[str] | None:
    select = args.get("select")
    if select is None:
        return None
    if not isinstance(select, list) or not all(isinstance(s, str) and s for s in select):
        raise ConfigError("multiJoin select must be an array of field names", field="select")
    return select or None  # an empty selection means every right field


def _union_keys(rows: list[Record]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for k in row:
            if k not in seen:
                seen[k] = None
    return list(seen)


@batch_operator(
    "multiJoin",
    name="Join records",
    category="aggregation",
    description="Join each record with matching rows of an inline dataset or another step's output by key.",
    pure=False,
    needs_all_records=True,
    references=_references,
    schema={
        "type": "object",
        "properties": {
            "leftKey": {
                "type": ["string", "array"],
                "items": {"type": "string"},
                "description": "Field path of the join key in each input record, or a list of paths "
                "for a composite key.",
            },
            "rightKey": {
                "type": ["string", "array"],
                "items": {"type": "string"},
                "description": "Field path of the join key in each right-side row, or a list of paths "
                "(as many as leftKey).",
            },
            "rightData": {
                "type": "array",
                "description": "The right-side rows (objects), inline; at most 10000. "
                "Use this or rightDataPath.",
            },
            "rightDataPath": {
                "type": "string",
                "description": "Join against another step's output instead: '$.steps.<stepKey>.output'. "
                "That step then runs before this one.",
            },
            "type": {
                "type": "string",
                "default": "LEFT",
                "examples": list(JOIN_TYPES),
                "description": "INNER (matches only), LEFT (every input record), RIGHT (every right row) "
                "or FULL (both).",
            },
            "prefix": {
                "type": "string",
                "description": "Prefix for the right fields written onto the record ('_' is appended if "
                "missing); without one, right fields overwrite same-named fields.",
            },
            "select": {
                "type": "array",
                "description": "Right field names to copy (top-level names); empty or absent = all.",
            },
            "maxOutputRecords": {
                "type": "number",
                "default": DEFAULT_MAX_OUTPUT_RECORDS,
                "description": "Fail instead of producing more than this many records "
                f"(an integer from 1 to {MAX_OUTPUT_RECORDS}).",
            },
        },
        "additionalProperties": False,
    },
)
def multi_join(records: Batch, args: dict, ctx: OperatorContext) -> Batch:
    left_paths = _key_paths(args.get("leftKey"), "leftKey")
    right_paths = _key_paths(args.get("rightKey"), "rightKey")
    if len(left_paths) != len(right_paths):
        raise ConfigError(
            "multiJoin leftKey and rightKey must have the same number of paths", field="rightKey"
        )
    join_type = args.get("type", "LEFT")
    if join_type is None:
        join_type = "LEFT"
    if join_type not in JOIN_TYPES:
        raise ConfigError("multiJoin type must be INNER, LEFT, RIGHT, or FULL", field="type")
    select = _select(args)
    limit = _max_output(args)
    prefix = _prefix(args)
    right = _right_rows(args, ctx)

    right_fields = select if select is not None else _union_keys(right)
    targets = [(prefix + name, name) for name in right_fields]
    index: dict[tuple, list[int]] = {}
    for i, row in enumerate(right):
        key = composite_key(row, right_paths)
        if key is not None:
            index.setdefault(key, []).append(i)

    keep_left = join_type in ("LEFT", "FULL")
    keep_right = join_type in ("RIGHT", "FULL")
    # Taken before any merge writes right fields onto the left records.
    left_fields = _union_keys(records) if keep_right else []
    matched = bytearray(len(right)) if keep_right else None
    out: Batch = []

    def emit(record: Record) -> None:
        if len(out) >= limit:
            raise StepError(f"multiJoin output exceeds maxOutputRecords ({limit})")
        out.append(record)

    for left in records:
        key = composite_key(left, left_paths)
        hits = index.get(key) if key is not None else None
        if hits:
            last = len(hits) - 1
            for n, i in enumerate(hits):
                row = right[i]
                # The left record is ours (the chain copied it); only extra pairs need a copy.
                merged = left if n == last else deep_copy(left)
                for target, name in targets:
                    merged[target] = deep_copy(row.get(name))
                emit(merged)
                if matched is not None:
                    matched[i] = 1
        elif keep_left:
            for target, _name in targets:
                left[target] = None
            emit(left)

    if keep_right:
        for i, row in enumerate(right):
            if matched[i]:
                continue
            record = dict.fromkeys(left_fields)
            for target, name in targets:
                record[target] = deep_copy(row.get(name))
            emit(record)
    return out
