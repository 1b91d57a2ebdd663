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
* ``maxOutputRecords`` (1..100000, as the plugin bounds it) is a ceiling, not a truncation: the join fails
  when its output would exceed it.

Our additions (the plugin dropped ``rightDataPath`` as inert; we make it work):

* ``rightDataPath: "$.steps.<stepKey>.output"`` reads another step's output through
  ``ctx.step_outputs``; the operator spec's ``references`` names that step so the graph runs it first.
  Exactly one of ``rightData`` / ``rightDataPath``. The 10,000-row cap applies to inline ``rightData``
  only (it bounds the size of a definition).
* ``leftKey`` / ``rightKey`` may each be a list of paths (a composite key; both lists the same length,
  every part must be a valid scalar for the row to match).
* Joins of millions: the output has no default ceiling (the plugin's is 10,000). The right side is hashed
  once per step; the left side streams through batch by batch (the step does not gather its input), and
  the output goes on batch by batch too, so memory holds the hashed right side plus one batch. RIGHT and
  FULL emit the never-matched right rows when the input ends (the operator's ``finish``). The hashed right
  side is bounded by ``memoryBudgetMb`` (default and maximum: the setting ``DATAHUB_JOIN_MEMORY_MB``).
* Every config error, the budget included, is found when the definition is validated (saved), not when
  the join runs after its extracts; only what depends on the data (a right row that is not an object, a
  right side over its budget, an output over ``maxOutputRecords``) fails the step at run time.

Cost: O(left + right + output) with a hash index of the right side; the only nested loop is the real
one-to-many output. Config errors carry the plugin's messages; the schema stays loose on those fields so
these checks, not the schema, report them.

Why one module of this size: it is one operator (multiJoin): key functions, config problems, the memory limit
and the join itself are its parts and are tested together.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Iterable
from itertools import chain, compress, islice, repeat
from operator import is_not, itemgetter, or_
from typing import Any

from pipelines.errors import ConfigError, StepError
from pipelines.operators.base import OperatorContext, batch_operator
from pipelines.records import Batch, Path, PathError, Record, deep_copy, path

JOIN_TYPES = ("INNER", "LEFT", "RIGHT", "FULL")
MAX_RIGHT_RECORDS = 10_000
MAX_OUTPUT_RECORDS = 100_000  # the plugin's bound on maxOutputRecords (an optional ceiling)
DEFAULT_MEMORY_MB = 512  # without the setting DATAHUB_JOIN_MEMORY_MB
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


def memory_limit_mb() -> int:
    """The most a join's hashed right side may hold, in MiB: setting ``DATAHUB_JOIN_MEMORY_MB``."""
    try:
        from django.conf import settings
    except ImportError:  # pragma: no cover - Django is a dependency, but the engine does not need it
        return DEFAULT_MEMORY_MB
    if not settings.configured:
        return DEFAULT_MEMORY_MB
    return int(getattr(settings, "DATAHUB_JOIN_MEMORY_MB", DEFAULT_MEMORY_MB))


def _memory_budget(args: dict) -> int:
    """The right side's budget in bytes: ``memoryBudgetMb``, at most (and by default) the setting."""
    limit = memory_limit_mb()
    value = args.get("memoryBudgetMb")
    if value is None:
        return limit * 2**20
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) \
        and float(value).is_integer() and 1 <= value <= limit
    if not ok:
        raise ConfigError(
            f"multiJoin memoryBudgetMb must be an integer from 1 to {limit} (this server's limit, setting "
            f"DATAHUB_JOIN_MEMORY_MB), got {value!r}",
            field="memoryBudgetMb",
        )
    return int(value) * 2**20


def _max_output(args: dict) -> int | None:
    value = args.get("maxOutputRecords")
    if value is None:
        return None
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


def _check_right_source(args: dict) -> str | None:
    """The referenced step key (None for inline rows); ConfigError for a bad combination or inline rows."""
    has_inline = "rightData" in args and args["rightData"] is not None
    ref = step_reference(args)
    if has_inline and ref is not None:
        raise ConfigError(
            "multiJoin takes either rightData or rightDataPath, not both", field="rightDataPath"
        )
    if ref is None:
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
        for i, row in enumerate(rows):
            if type(row) is not dict:
                raise ConfigError(f"multiJoin rightData[{i}] must be an object", field=f"rightData.{i}")
    return ref


def _right_rows(args: dict, ctx: OperatorContext) -> Callable[[], Iterable[Record]]:
    """``read() -> the right side's rows``, which may be called twice (the field names, then the rows). A
    step's output is read as it is stored (from its spill file, batch by batch), never as one list, so the
    memory budget bounds what the join holds; its rows are checked as they are hashed."""
    ref = _check_right_source(args)
    if ref is None:
        rows = args["rightData"]
        return lambda: rows
    if ctx.step_outputs is None:
        raise ConfigError(
            "multiJoin rightDataPath reads another step's output, which is not available here",
            field="rightDataPath",
        )

    def read() -> Iterable[Record]:
        try:
            return ctx.step_outputs(ref)
        except KeyError:
            raise ConfigError(
                f"multiJoin rightDataPath: step '{ref}' has no output here (is it a step of this pipeline?)",
                field="rightDataPath",
            ) from None

    return read


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


def _join_type(args: dict) -> str:
    join_type = args.get("type", "LEFT")
    if join_type is None:
        return "LEFT"
    if join_type not in JOIN_TYPES:
        raise ConfigError("multiJoin type must be INNER, LEFT, RIGHT, or FULL", field="type")
    return join_type


def _both_key_paths(args: dict) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    left_paths = _key_paths(args.get("leftKey"), "leftKey")
    right_paths = _key_paths(args.get("rightKey"), "rightKey")
    if len(left_paths) != len(right_paths):
        raise ConfigError(
            "multiJoin leftKey and rightKey must have the same number of paths", field="rightKey"
        )
    return left_paths, right_paths


def config_problems(args: dict) -> list[tuple[str, str]]:
    """Every config error of a multiJoin, found when the definition is validated (before any step runs)."""
    problems = []
    for check in (_both_key_paths, _join_type, _select, _max_output, _memory_budget, _prefix, _check_right_source):
        try:
            check(args)
        except ConfigError as exc:
            problems.append((exc.field or "", str(exc)))
    return problems


def key_function(paths: tuple[Path, ...]) -> Callable[[Any], Any]:
    """``record -> key`` (None: never matches). A string key is the string itself: it can never equal the
    tagged tuples of the other scalar kinds, and it saves a tuple per record on the common path."""
    if len(paths) > 1:
        return lambda record: composite_key(record, paths)
    get = paths[0].get

    def key(record: Any) -> Any:
        value = get(record)
        return value if type(value) is str else scalar_key(value)

    return key


_CONTAINERS = frozenset({dict, list})
_TEXT_OR_NULL = frozenset({str, type(None)})


def _picker(names: list[str]) -> Callable[[list[dict]], Iterable[tuple]]:
    """``rows -> each row's values of names`` (None for a missing one): ``itemgetter`` over the rows, in C,
    unless one of them lacks a name."""
    if not names:
        return lambda rows: repeat((), len(rows))
    get_all = itemgetter(*names)

    def pick(rows: list[dict]) -> Iterable[tuple]:
        try:
            values = list(map(get_all, rows))
        except KeyError:
            return [tuple(map(row.get, names)) for row in rows]
        return zip(values) if len(names) == 1 else values

    return pick


def keys_of(records: list[dict], paths: tuple[Path, ...], key: Callable[[Any], Any]) -> list:
    """Every record's key (``key_function``); a top-level path is read in C."""
    name = paths[0]._single if len(paths) == 1 else None
    if name is None:
        return list(map(key, records))
    keys = list(map(dict.get, records, repeat(name)))
    if not _TEXT_OR_NULL.issuperset(map(type, keys)):
        keys = [k if type(k) is str or k is None else scalar_key(k) for k in keys]
    return keys


def _deep_bytes(value: Any) -> int:
    """About what a nested JSON value holds: its containers and their scalars, by ``sys.getsizeof``."""
    t = type(value)
    if t is dict:
        return sys.getsizeof(value) + sum(_deep_bytes(v) for v in value.values())
    if t is list:
        return sys.getsizeof(value) + sum(_deep_bytes(v) for v in value)
    return sys.getsizeof(value)


class _Join:
    """One step's join: the right side hashed once, then every left batch joined against it.

    Lives in the operator context's ``state`` for one attempt of the step. Right fields are projected once
    per right row into ready ``{prefix + name: value}`` dicts, so an output row costs one ``dict.update``.
    """

    def __init__(self, args: dict, ctx: OperatorContext):
        left_paths, right_paths = _both_key_paths(args)
        self.join_type = _join_type(args)
        select = _select(args)
        self.limit = _max_output(args)
        budget = _memory_budget(args)
        prefix = _prefix(args)
        read = _right_rows(args, ctx)
        label = "rightData" if args.get("rightData") is not None else f"step '{step_reference(args)}' output"
        fields: list[str] = list(_union_keys(read())) if select is None else select
        names = [(prefix + name, name) for name in fields]
        # key -> its first right row (projected); key -> the further rows of a key that repeats.
        self.index: dict[Any, dict] = {}
        self.more: dict[Any, list[dict]] = {}
        # Right rows in right-data order and their keys, as two lists (a pair per row would add 100,000
        # objects for the garbage collector to walk): RIGHT/FULL emit the never-matched ones at the end.
        self.keep_right = self.join_type in ("RIGHT", "FULL")
        self.right: list[dict] = []
        self.right_keys: list[Any] = []
        self.nested = False
        targets = [target for target, _name in names]
        pick = _picker([name for _target, name in names])
        right_key = key_function(right_paths)
        index, more, keep_right, right_rows = self.index, self.more, self.keep_right, self.right
        rows = iter(read())
        used = start = 0
        # A thousand rows at a time, so that most of the work (and the budget check) runs in C.
        while chunk := list(islice(rows, 1000)):
            if not all(map(dict.__instancecheck__, chunk)):
                bad = next(i for i, row in enumerate(chunk) if type(row) is not dict)
                raise StepError(f"multiJoin {label}[{start + bad}] must be an object")
            projected = list(map(dict, map(zip, repeat(targets), pick(chunk))))
            values = list(chain.from_iterable(map(dict.values, projected)))
            # The dicts, their values, and a slot in the index and the row list each (about 120 bytes).
            used += sum(map(sys.getsizeof, projected)) + 120 * len(chunk)
            if _CONTAINERS.isdisjoint(map(type, values)):
                used += sum(map(sys.getsizeof, values))
            else:
                self.nested = True  # a nested right value: every use then gets its own copy
                used += sum(map(_deep_bytes, values))
            if used > budget:
                raise StepError(
                    f"multiJoin: the right side ({label}) needs more than its memory budget of "
                    f"{budget // 2**20} MiB (about {used // 2**20} MiB after {start + len(chunk)} rows); "
                    f"raise memoryBudgetMb (at most {memory_limit_mb()}, setting DATAHUB_JOIN_MEMORY_MB) or "
                    f"join a smaller output",
                )
            keys = keys_of(chunk, right_paths, right_key)
            for key, row in zip(keys, projected, strict=True):
                if key in index:
                    more.setdefault(key, []).append(row)
                elif key is not None:
                    index[key] = row
            if keep_right:
                right_rows.extend(projected)
                self.right_keys.extend(keys)
            start += len(chunk)
        self.null_row = dict.fromkeys(target for target, _name in names)
        self.left_paths = left_paths
        self.left_key = key_function(left_paths)
        self.keep_left = self.join_type in ("LEFT", "FULL")
        self.matched: set = set()
        self.left_fields: dict[str, None] = {}
        self.known_left: frozenset[str] = frozenset()
        self.emitted = 0

    def join(self, records: Batch) -> Batch:
        if self.keep_right:
            self._note_left_fields(records)
        # The input records are never changed, and no output row shares a dict or list with them or with
        # another row (the chain skips its entry copy for this operator): each output row is a new dict,
        # deep-copied only when a joined record or the right side has a nested value. Unmatched rows of
        # INNER/RIGHT are never copied at all.
        if self.nested or not self.null_row:
            out = self._join_each(records, deep=self.nested)
        else:
            out = self._join_flat(records)
        self._count(len(out))
        return out

    def _join_flat(self, records: Batch) -> Batch:
        """Flat records: the whole batch in a few C-level passes (``map``, ``compress``, ``dict | dict``);
        Python code runs per record only for a composite or nested key, or to place the further rows of
        a key that repeats on the right."""
        keys = keys_of(records, self.left_paths, self.left_key)
        lookup, null_row = self.index.get, self.null_row
        if self.keep_left:
            lefts = records
            hits = list(map(lookup, keys, repeat(null_row)))
            if self.keep_right:
                self.matched.update(compress(keys, map(is_not, hits, repeat(null_row))))
        else:
            hits = list(map(lookup, keys))  # None for a null key: None is never a key of the index
            lefts = list(compress(records, hits))  # right rows are never empty dicts, so always true
            keys = list(compress(keys, hits))
            hits = list(filter(None, hits))
            if self.keep_right:
                self.matched.update(keys)
        if not _CONTAINERS.isdisjoint(map(type, chain.from_iterable(map(dict.values, lefts)))):
            return self._join_each(records, deep=True)  # a nested left value: each row gets its own copy
        out = list(map(or_, lefts, hits))
        more = self.more
        if more and not more.keys().isdisjoint(keys):
            # A key with several right rows: its further rows go right after its first, from the back so
            # that the positions still to come do not move.
            for i in reversed([i for i, k in enumerate(keys) if k in more]):
                out[i + 1:i + 1] = [lefts[i] | row for row in more[keys[i]]]
        return out

    def _join_each(self, records: Batch, deep: bool) -> Batch:
        """Record by record: nested values that each output row needs its own copy of (or no right field)."""
        out: Batch = []
        append = out.append
        lookup, more = self.index.get, self.more
        keep_left, null_row = self.keep_left, self.null_row
        mark = self.matched.add if self.keep_right else None
        left_key = self.left_key
        for left in records:
            key = left_key(left)
            first = lookup(key)  # None never is a key of the index
            if first is None:
                if not keep_left:
                    continue
                rows = (null_row,)
            else:
                if mark is not None:
                    mark(key)
                rows = (first, *more[key]) if key in more else (first,)
            for projected in rows:
                merged = dict(left)
                merged.update(projected)
                append(deep_copy(merged) if deep else merged)
        return out

    def _note_left_fields(self, records: Batch) -> None:
        """The left field names (first-seen order) for the rows only the right side makes. A batch whose
        names are all known already costs one C-level pass over its keys."""
        if self.known_left.issuperset(chain.from_iterable(records)):
            return
        self.left_fields.update(dict.fromkeys(chain.from_iterable(records)))
        self.known_left = frozenset(self.left_fields)

    def finish(self) -> Batch:
        """RIGHT/FULL: the right rows no left record matched, in right-data order, left fields null."""
        if not self.keep_right:
            return []
        blank = dict.fromkeys(self.left_fields)
        matched, nested = self.matched, self.nested
        out = [
            {**blank, **(deep_copy(projected) if nested else projected)}
            for key, projected in zip(self.right_keys, self.right, strict=True)
            if key is None or key not in matched
        ]
        self._count(len(out))
        return out

    def _count(self, n: int) -> None:
        self.emitted += n
        if self.limit is not None and self.emitted > self.limit:
            raise StepError(f"multiJoin output exceeds maxOutputRecords ({self.limit})")


def _union_keys(rows: Iterable) -> dict[str, None]:
    """Every key of the (dict) rows, in first-seen order, a thousand rows per C-level pass."""
    rows = iter(rows)
    keys: dict[str, None] = {}
    while chunk := list(islice(rows, 1000)):
        if not all(map(dict.__instancecheck__, chunk)):
            chunk = [row for row in chunk if type(row) is dict]
        keys.update(dict.fromkeys(chain.from_iterable(chunk)))
    return keys


def _state(args: dict, ctx: OperatorContext) -> _Join:
    join = ctx.state.get("multiJoin")
    if join is None:
        join = ctx.state["multiJoin"] = _Join(args, ctx)
    return join


def finish_join(args: dict, ctx: OperatorContext) -> Batch:
    return _state(args, ctx).finish()


@batch_operator(
    "multiJoin",
    name="Join records",
    category="aggregation",
    description="Join each record with matching rows of an inline dataset or another step's output by key.",
    pure=False,
    copies_records=True,
    references=_references,
    finish=finish_join,
    config_check=config_problems,
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
                "description": "Fail instead of producing more than this many records "
                f"(an integer from 1 to {MAX_OUTPUT_RECORDS}); absent: no ceiling.",
            },
            "memoryBudgetMb": {
                "type": "number",
                "description": "The most the hashed right side may hold, in MiB; default and maximum: the "
                "server's limit (setting DATAHUB_JOIN_MEMORY_MB). The left side and the output stream, so "
                "they take no budget.",
            },
        },
        "additionalProperties": False,
    },
)
def multi_join(records: Batch, args: dict, ctx: OperatorContext) -> Batch:
    return _state(args, ctx).join(records)
