"""Running a TRANSFORM step's operator list over batches of records. [pure]

The chain is compiled once per step: every operator's args are checked against its schema and its
factory is called, so a bad regex or a missing required arg fails before the first record. Consecutive
per-record operators are fused into one loop per record (the hot path of a million-row run).

What is guaranteed:
* Input records are never changed: a record is deep-copied when it enters the chain, so a step that
  shares its input with another branch cannot see this step's edits.
* A per-record failure keeps the record as it entered the failing segment (for the first segment, the
  step's input record itself), so the dead-letter list holds what can be replayed.
* ``failOnError`` on an operator turns its record failures into a failure of the whole step.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pipelines.errors import ConfigError, UnknownCode
from pipelines.operators.base import OperatorContext, OperatorSpec
from pipelines.records import Batch, Record, deep_copy
from pipelines.registry import Registry
from pipelines.registry import operators as operator_registry


@dataclass(frozen=True)
class RecordFailure:
    record: Record
    message: str
    op_index: int
    op: str
    retryable: bool = True
    # Index of the record in the batch given to ``apply`` when it failed before any batch operator
    # (then ``record`` is that input record itself, and it can be retried from its original value).
    position: int | None = None


@dataclass
class ChainResult:
    records: Batch
    failures: list[RecordFailure] = field(default_factory=list)
    dropped: int = 0
    # For a chain of per-record operators only: each output record's index in the input batch.
    positions: list[int] | None = None


class OperatorFailed(Exception):
    """A ``failOnError`` operator reported a record error, or a batch operator raised: the step fails."""

    def __init__(self, op_index: int, op: str, message: str):
        self.op_index = op_index
        self.op = op
        super().__init__(f"operator {op_index} ('{op}') failed: {message}")


@dataclass(frozen=True)
class _Compiled:
    index: int
    code: str
    spec: OperatorSpec
    args: dict
    ctx: OperatorContext
    fn: Callable[[Record], Any] | None
    fail_on_error: bool


def check_operator(item: Any, index: int, registry: Registry = operator_registry) -> list[tuple[str, str]]:
    """(field, message) problems of one ``{op, args}`` item, fields relative to the operators list."""
    where = f"operators[{index}]"
    if not isinstance(item, dict):
        return [(where, 'must be an object like {"op": "trim", "args": {...}}')]
    unknown = sorted(set(item) - {"op", "args"})
    problems = [(f"{where}.{k}", "unknown key; an operator item has only 'op' and 'args'") for k in unknown]
    code = item.get("op")
    if not isinstance(code, str) or not code:
        return problems + [(f"{where}.op", "is required (the operator code, e.g. 'trim')")]
    args = item.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return problems + [(f"{where}.args", "must be an object")]
    try:
        entry = registry.get(code)
    except UnknownCode as exc:
        return problems + [(f"{where}.op", exc.message)]
    for field_path, message in entry.config_problems(args):
        problems.append((f"{where}.args" + (f".{field_path}" if field_path else ""), message))
    return problems


class OperatorChain:
    def __init__(
        self,
        items: list[dict],
        *,
        context_for: Callable[[int], OperatorContext] | None = None,
        registry: Registry = operator_registry,
    ):
        if not isinstance(items, list):
            raise ConfigError("must be a list of {op, args} items", field="operators")
        context_for = context_for or (lambda i: OperatorContext(op_index=i))
        compiled: list[_Compiled] = []
        for index, item in enumerate(items):
            problems = check_operator(item, index, registry)
            if problems:
                field_path, message = problems[0]
                raise ConfigError(message, field=field_path)
            code = item["op"]
            spec: OperatorSpec = registry.get(code).impl
            args = dict(item.get("args") or {})
            ctx = context_for(index)
            fn = None
            if spec.per_record:
                try:
                    fn = spec.build(args, ctx)
                except ConfigError as exc:
                    raise ConfigError(
                        str(exc), field=f"operators[{index}].args" + (f".{exc.field}" if exc.field else "")
                    ) from None
            compiled.append(_Compiled(index, code, spec, args, ctx, fn, bool(args.get("failOnError", False))))
        self.operators = compiled
        self.needs_all_records = any(c.spec.needs_all_records for c in compiled)
        # Segments: runs of per-record operators, fused; batch operators stand alone.
        self._segments: list[list[_Compiled]] = []
        for c in compiled:
            if c.spec.per_record and self._segments and self._segments[-1][0].spec.per_record:
                self._segments[-1].append(c)
            else:
                self._segments.append([c])
        # Output positions can be tracked only while every operator maps one record to at most one.
        self.positional = all(c.spec.per_record for c in compiled)

    def apply(self, batch: Batch) -> ChainResult:
        result = ChainResult(records=batch)
        if self.positional:
            result.positions = []
        records = batch
        copied = False
        for n, segment in enumerate(self._segments):
            if segment[0].spec.per_record:
                records = self._run_records(segment, records, result, copy=not copied, first=n == 0)
            else:
                if not copied:
                    records = [deep_copy(r) for r in records]
                records = self._run_batch(segment[0], records, result)
            copied = True
        result.records = records
        return result

    def _run_records(
        self, segment: list[_Compiled], records: Batch, result: ChainResult, *, copy: bool, first: bool
    ) -> Batch:
        fns = [c.fn for c in segment]
        positions = result.positions if first and result.positions is not None else None
        threads = max(c.spec.concurrency for c in segment)

        def one(position: int, original: Record):
            """(record or None, failure or None) of one record through the segment."""
            record = deep_copy(original) if copy else original
            current = 0
            try:
                for current, fn in enumerate(fns):  # noqa: B007  (current names the failing operator)
                    record = fn(record)
                    if record is None:
                        return None, None
                return record, None
            except Exception as exc:  # one bad record must not fail its batch
                op = segment[current]
                message = str(exc) or type(exc).__name__
                if op.fail_on_error:
                    raise OperatorFailed(op.index, op.code, message) from exc
                return None, RecordFailure(original, message, op.index, op.code, getattr(exc, "retryable", True),
                                           position if first else None)

        if threads > 1 and len(records) > 1:
            # Output order is input order: map returns results in the order records were given.
            with ThreadPoolExecutor(max_workers=min(threads, len(records))) as pool:
                outcomes = list(pool.map(one, range(len(records)), records))
        else:
            outcomes = (one(position, original) for position, original in enumerate(records))
        out: Batch = []
        for position, (record, failure) in enumerate(outcomes):
            if failure is not None:
                result.failures.append(failure)
            elif record is None:
                result.dropped += 1
            else:
                out.append(record)
                if positions is not None:
                    positions.append(position)
        return out

    def _run_batch(self, op: _Compiled, records: Batch, result: ChainResult) -> Batch:
        try:
            out = self._call_batch(op, records)
        except OperatorFailed:
            if not op.spec.narrow_failures or len(records) == 0:
                raise
            return self._narrow(op, records, result)
        if len(out) < len(records):
            result.dropped += len(records) - len(out)
        return out

    def _call_batch(self, op: _Compiled, records: Batch) -> Batch:
        try:
            out = op.spec.apply(records, op.args, op.ctx)
        except Exception as exc:
            raise OperatorFailed(op.index, op.code, str(exc) or type(exc).__name__) from exc
        if not isinstance(out, list):
            raise OperatorFailed(op.index, op.code, "returned something that is not a list of records")
        return out

    def _narrow(self, op: _Compiled, records: Batch, result: ChainResult) -> Batch:
        """Find the records a failing batch operator chokes on by bisection; the rest go on.

        A batch of n records with k bad ones costs O(k log n) calls. A half that works is kept as the
        operator returned it, so the output keeps the input's order. Records are deep-copied before each
        call because a failing call may have changed them half way.
        """
        if len(records) == 1:
            try:
                return self._call_batch(op, [deep_copy(records[0])])
            except OperatorFailed as exc:
                message = str(exc.__cause__ or exc)
                result.failures.append(RecordFailure(records[0], message, op.index, op.code))
                return []
        middle = len(records) // 2
        out: Batch = []
        for half in (records[:middle], records[middle:]):
            try:
                got = self._call_batch(op, [deep_copy(r) for r in half])
            except OperatorFailed:
                got = self._narrow(op, half, result)
            else:
                if len(got) < len(half):
                    result.dropped += len(half) - len(got)
            out.extend(got)
        return out
