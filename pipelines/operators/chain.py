"""Running a TRANSFORM step's operator list over batches of records. [pure]

The chain is compiled once per step: every operator's args are checked against its schema and its
factory is called, so a bad regex or a missing required arg fails before the first record. Consecutive
per-record operators (and custom operators, called one record at a time) are fused into one loop per
record (the hot path of a million-row run): for per-record operators it is code compiled per segment
(:class:`_FusedLoop`) that calls them in a row, or writes their statements in place where an operator
has an inline form (:func:`pipelines.operators.base.inline`: set, rename, trim, case changes, split, slugify,
concat, toNumber and the numeric operators on plain keys), with no per-record dispatch through a list of
functions and no per-operator bookkeeping.

What is guaranteed:
* Input records are never changed: a record is copied when it enters the chain, so a step that shares
  its input with another branch cannot see this step's edits. The copy is deep (:func:`copy_record`)
  unless every operator of the run of per-record operators it enters is declared to change only the
  record's top level (:func:`pipelines.operators.base.top_level_only`); then ``dict.copy()`` is enough,
  and records so copied are copied deeply before a batch operator that follows.
* While every operator so far is *record-wise* (per-record operators, custom operators, batch operators
  with ``each`` such as httpLookup), each output and each failure knows the input record it came from:
  a failure keeps that record exactly as it entered the step, so the dead-letter list holds what can be
  replayed, and per-record retry can run it through the whole chain again.
* After an operator that combines records (aggregate, deduplicateRecords, multiJoin, deltaFilter,
  expand) there is no such input record: a later failure keeps the record as it entered the failing
  operators. Per-record retry is refused for such chains (:func:`whole_batch_operators`).
* An operator is given each record once per pass: failures are never located by calling it again.
* ``failOnError`` on an operator turns its record failures into a failure of the whole step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pipelines.errors import ConfigError, UnknownCode
from pipelines.operators.base import OperatorContext, OperatorSpec
from pipelines.records import MISSING, Batch, Record, deep_copy
from pipelines.registry import Registry
from pipelines.registry import operators as operator_registry


@dataclass(frozen=True)
class RecordFailure:
    record: Record
    message: str
    op_index: int
    op: str
    retryable: bool = True
    # Index of the record in the batch given to ``apply`` when every operator before the failing one is
    # record-wise (then ``record`` is that input record itself, and it can be retried from it).
    position: int | None = None


@dataclass
class ChainResult:
    records: Batch
    failures: list[RecordFailure] = field(default_factory=list)
    dropped: int = 0
    # For a chain of record-wise operators only: each output record's index in the input batch (an input
    # that became several records gives its index to each of them). A ``range`` while no record was lost.
    positions: Sequence[int] | None = None


class OperatorFailed(Exception):
    """A ``failOnError`` operator reported a record error, or a whole-batch operator raised: the step
    fails."""

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
    # Per-record operators: record -> record | None. Custom operators: record -> list of records.
    fn: Callable[[Record], Any] | None
    fail_on_error: bool
    expands: bool = False


# What one record became in a fused segment, besides a record (a dict) or None (dropped).
class _Many(list):
    """Several records out of one."""


@dataclass(frozen=True)
class _Failed:
    op: _Compiled
    error: BaseException


def _one_record_at_a_time(op_apply: Callable, args: dict, ctx: OperatorContext) -> Callable[[Record], list]:
    def call(record: Record) -> list:
        out = op_apply([record], args, ctx)
        if type(out) is not list:
            raise TypeError("returned something that is not a list of records")
        return out

    return call


class _FusedLoop:
    """A loop over records calling a segment's operators in a row, compiled once per segment: no
    per-record dispatch through a list of functions. An operator whose function carries an ``inline``
    form (:func:`pipelines.operators.base.inline`) has its statements written into the loop instead of
    being called. Which operator raised is read from the traceback's line number, so the hot path keeps
    no per-operator bookkeeping.

    ``run(records) -> (out, lost)``: ``lost`` lists ``(index, None)`` for a record an operator dropped
    and ``(index, exception)`` for one that failed; every other record is in ``out``, in order. ``copy``
    copies each record before the first operator: ``DEEP`` (:func:`copy_record`) or ``SHALLOW``
    (``dict.copy()``, for operators declared :func:`~pipelines.operators.base.top_level_only`)."""

    def __init__(self, fns: list[Callable], copy: str | None, *, inline: bool = True):
        params: dict[str, Any] = {"copy_record": copy_record, "MISSING": MISSING}
        body: list[str] = []
        self._operator_at_line: dict[int, int] = {}
        first_line = 8  # the line of the first operator's code, after the seven lines of the header below
        for k, fn in enumerate(fns):
            form = getattr(fn, "inline", None) if inline else None
            if form is None:
                params[f"f{k}"] = fn
                code = [f"r = f{k}(r)", "if r is None:", "    lost.append((i, None))", "    continue"]
            else:
                source, names = form
                for name, value in names.items():
                    params[f"o{k}_{name}"] = value
                code = source.format(**{name: f"o{k}_{name}" for name in names}).splitlines()
            for line in code:
                self._operator_at_line[first_line + len(body)] = k
                body.append("            " + line)
        lines = [f"def make({', '.join(params)}):",
                 "  def run(records):",
                 "    out = []",
                 "    append = out.append",
                 "    lost = []",
                 "    for i, r in enumerate(records):",
                 "        try:"]
        if copy is SHALLOW:
            # A record that is not a dict (operators fail on it) is copied as before, to fail the same way.
            lines.append("            r = r.copy() if type(r) is dict else copy_record(r)")
        elif copy is DEEP:
            lines.append("            r = copy_record(r)")
        if copy is not None:
            self._operator_at_line = {n + 1: k for n, k in self._operator_at_line.items()}
        lines += body
        lines += ["        except Exception as exc:  # one bad record must not fail its batch",
                  "            lost.append((i, exc))",
                  "            continue",
                  "        append(r)",
                  "    return out, lost",
                  "  return run"]
        self.source = "\n".join(lines)
        namespace: dict[str, Any] = {}
        exec(compile(self.source, f"<fused chain of {len(fns)}>", "exec"), namespace)  # noqa: S102  (our template)
        self.run = namespace["make"](**params)

    def operator_at(self, error: BaseException) -> int:
        """Index in the segment of the operator whose code raised ``error``."""
        tb = error.__traceback__  # its first entry is the fused loop's frame, where it was caught
        return self._operator_at_line.get(tb.tb_lineno, 0) if tb is not None else 0


def copy_record(record: Record) -> Record:
    """A deep copy of a record; a flat one (the common case) is copied at C speed."""
    if type(record) is dict:
        copied = record.copy()
        if _SCALARS.issuperset(map(type, copied.values())):
            return copied
    return deep_copy(record)


_SCALARS = frozenset({str, int, float, bool, type(None)})

# How the records a chain holds were copied from its input: not yet (they are the input's records), their
# top level only (nested lists and dicts are still the input's), or deeply (nothing is shared).
SHALLOW, DEEP = "shallow", "deep"


def whole_batch_operators(items: list, registry: Registry = operator_registry) -> list[tuple[int, str]]:
    """(index, code) of the operators in ``items`` whose outputs cannot be traced to one input record."""
    found = []
    for index, item in enumerate(items if isinstance(items, list) else []):
        code = item.get("op") if isinstance(item, dict) else None
        if isinstance(code, str) and code in registry and not registry.get(code).impl.record_wise:
            found.append((index, code))
    return found


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
        inline: bool = True,
    ):
        # ``inline=False`` calls every operator's function even where it has an inline form (tests
        # compare the two).
        self.inline = inline
        self._fused: dict[tuple[int, bool], _FusedLoop] = {}
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
            expands = False
            if spec.per_record:
                try:
                    fn = spec.build(args, ctx)
                except ConfigError as exc:
                    raise ConfigError(
                        str(exc), field=f"operators[{index}].args" + (f".{exc.field}" if exc.field else "")
                    ) from None
            elif spec.record_wise and spec.each is None:
                fn, expands = _one_record_at_a_time(spec.apply, args, ctx), True
            compiled.append(_Compiled(index, code, spec, args, ctx, fn, bool(args.get("failOnError", False)),
                                      expands))
        self.operators = compiled
        self.needs_all_records = any(c.spec.needs_all_records for c in compiled)
        # Segments: runs of operators called record by record, fused; batch operators stand alone.
        self._segments: list[list[_Compiled]] = []
        for c in compiled:
            if c.fn is not None and self._segments and self._segments[-1][0].fn is not None:
                self._segments[-1].append(c)
            else:
                self._segments.append([c])
        # How a segment of per-record operators copies the records it is given (when it must copy them).
        self._copy_modes = {id(s): SHALLOW if self._fused_alone(s) and all(
            getattr(c.fn, "top_level_only", False) for c in s) else DEEP for s in self._segments}
        self.record_wise = all(c.spec.record_wise for c in compiled)

    def apply(self, batch: Batch) -> ChainResult:
        result = ChainResult(records=batch)
        records = batch
        # Each current record's index in ``batch`` (a range while no record was lost); None once an operator
        # has combined records.
        positions: Sequence[int] | None = range(len(batch))
        copied: str | None = None  # how ``records`` were copied from ``batch``: None (they are its records), SHALLOW, DEEP
        for segment in self._segments:
            op = segment[0]
            if op.fn is not None:
                # Once records are combined there is no input record to fall back on: a fused segment
                # then copies its records on entry, so that a failure keeps each as it entered. (Only a
                # batch operator, which leaves its records copied deeply, separates two such segments.)
                copy = self._copy_modes[id(segment)] if positions is None or copied is None else None
                records, positions = self._run_records(segment, records, positions, batch, result, copy=copy)
                copied = copied or copy
            else:
                if copied is not DEEP and not op.spec.copies_records:
                    records = [copy_record(r) for r in records]
                if op.spec.each is not None:
                    records, positions = self._run_each(op, records, positions, batch, result)
                else:
                    records = self._run_batch(op, records, result)
                    positions = None
                copied = DEEP
        result.records = records
        result.positions = positions
        return result

    def finish(self) -> ChainResult:
        """What the chain still holds when the step's input has ended: each streaming batch operator's
        ``finish`` records (multiJoin's unmatched right rows), run through the operators after it."""
        result = ChainResult(records=[])
        records: Batch = []
        for segment in self._segments:
            op = segment[0]
            if records:  # rows made by an earlier finish: no input record stands behind them
                if op.fn is not None:
                    records, _ = self._run_records(segment, records, None, records, result,
                                                   copy=self._copy_modes[id(segment)])
                elif op.spec.each is not None:
                    records, _ = self._run_each(op, records, None, records, result)
                else:
                    records = self._run_batch(op, records, result)
            if op.spec.finish is not None:
                try:
                    tail = op.spec.finish(op.args, op.ctx)
                except Exception as exc:
                    raise OperatorFailed(op.index, op.code, str(exc) or type(exc).__name__) from exc
                records = records + tail
        result.records = records
        return result

    @property
    def finishes(self) -> bool:
        """Whether :meth:`finish` can return records (a streaming batch operator is in the chain)."""
        return any(c.spec.finish is not None for c in self.operators)

    def apply_all(self, batch: Batch) -> ChainResult:
        """The whole input as one batch: :meth:`apply` then :meth:`finish`, as one result."""
        result = self.apply(batch)
        if self.finishes:
            tail = self.finish()
            result.records = result.records + tail.records
            result.failures.extend(tail.failures)
            result.dropped += tail.dropped
            result.positions = None
        return result

    def _failure(self, op: _Compiled, error: BaseException, record: Record, position: int | None) -> RecordFailure:
        message = str(error) or type(error).__name__
        if op.fail_on_error:
            raise OperatorFailed(op.index, op.code, message) from error
        return RecordFailure(record, message, op.index, op.code, getattr(error, "retryable", True), position)

    @staticmethod
    def _fused_alone(segment: list[_Compiled]) -> bool:
        """Whether the segment runs as one compiled loop (no threads, no operator making several records)."""
        return all(c.spec.concurrency <= 1 and not c.expands for c in segment)

    def _run_records(self, segment: list[_Compiled], records: Batch, positions: Sequence[int] | None, batch: Batch,
                     result: ChainResult, *, copy: str | None) -> tuple[Batch, Sequence[int] | None]:
        """``copy``: how records are copied before the first operator (None: not at all; the compiled
        loop alone copies SHALLOW, every other path copies DEEP)."""
        if self._fused_alone(segment):
            return self._run_fused(segment, records, positions, batch, result, copy=copy)
        threads = max(c.spec.concurrency for c in segment)
        if any(c.expands for c in segment):
            steps = [(c.fn, c.expands) for c in segment]

            def one(original: Record):
                """A record, None, _Many or _Failed: what ``original`` became through the segment."""
                current = [copy_record(original) if copy else original]
                index = 0
                try:
                    for index, (fn, expands) in enumerate(steps):  # noqa: B007  (index names the failing operator)
                        following = []
                        for record in current:
                            if expands:
                                following.extend(fn(record))
                            else:
                                record = fn(record)
                                if record is not None:
                                    following.append(record)
                        current = following
                        if not current:
                            return None
                except Exception as exc:  # one bad record must not fail its batch
                    return _Failed(segment[index], exc)
                return current[0] if len(current) == 1 else _Many(current)
        else:
            fns = [c.fn for c in segment]

            def one(original: Record):
                record = copy_record(original) if copy else original
                index = 0
                try:
                    for index, fn in enumerate(fns):  # noqa: B007  (index names the failing operator)
                        record = fn(record)
                        if record is None:
                            return None
                except Exception as exc:  # one bad record must not fail its batch
                    return _Failed(segment[index], exc)
                return record

        if threads > 1 and len(records) > 1:
            # Output order is input order: map returns results in the order records were given.
            with ThreadPoolExecutor(max_workers=min(threads, len(records))) as pool:
                outcomes = pool.map(one, records)
        else:
            outcomes = map(one, records)
        out: Batch = []
        out_positions: list[int] | None = [] if positions is not None else None
        for i, outcome in enumerate(outcomes):
            kind = type(outcome)
            if kind is _Failed:
                position = positions[i] if positions is not None else None
                original = batch[position] if position is not None else records[i]
                result.failures.append(self._failure(outcome.op, outcome.error, original, position))
            elif outcome is None:
                result.dropped += 1
            elif kind is _Many:
                out.extend(outcome)
                if out_positions is not None:
                    out_positions.extend([positions[i]] * len(outcome))
            else:
                out.append(outcome)
                if out_positions is not None:
                    out_positions.append(positions[i])
        return out, out_positions

    def _run_fused(self, segment: list[_Compiled], records: Batch, positions: Sequence[int] | None, batch: Batch,
                   result: ChainResult, *, copy: str | None) -> tuple[Batch, Sequence[int] | None]:
        """The hot path: one compiled loop calls the segment's operators in a row on each record."""
        fused = self._fused.get((id(segment), copy))
        if fused is None:
            fused = self._fused[(id(segment), copy)] = _FusedLoop([c.fn for c in segment], copy,
                                                                  inline=self.inline)
        out, lost = fused.run(records)
        if not lost:
            return out, positions
        gone = set()
        for i, error in lost:
            gone.add(i)
            if error is None:
                result.dropped += 1
                continue
            position = positions[i] if positions is not None else None
            original = batch[position] if position is not None else records[i]
            result.failures.append(self._failure(segment[fused.operator_at(error)], error, original, position))
        if positions is not None:
            positions = [p for i, p in enumerate(positions) if i not in gone]
        return out, positions

    def _fused_loop_source(self, index: int = 0) -> str:
        """The source of segment ``index``'s compiled loop (for tests and for reading)."""
        segment = self._segments[index]
        return _FusedLoop([c.fn for c in segment], self._copy_modes[id(segment)], inline=self.inline).source

    def _run_each(self, op: _Compiled, records: Batch, positions: list[int] | None, batch: Batch,
                  result: ChainResult) -> tuple[Batch, list[int] | None]:
        try:
            outcomes = op.spec.each(records, op.args, op.ctx)
        except Exception as exc:
            raise OperatorFailed(op.index, op.code, str(exc) or type(exc).__name__) from exc
        if not isinstance(outcomes, list) or len(outcomes) != len(records):
            raise OperatorFailed(op.index, op.code, "did not return one outcome per record")
        out: Batch = []
        out_positions: list[int] | None = [] if positions is not None else None
        for i, outcome in enumerate(outcomes):
            if isinstance(outcome, BaseException):
                position = positions[i] if positions is not None else None
                original = batch[position] if position is not None else records[i]
                result.failures.append(self._failure(op, outcome, original, position))
            elif outcome is None:
                result.dropped += 1
            else:
                out.append(outcome)
                if out_positions is not None:
                    out_positions.append(positions[i])
        return out, out_positions

    def _run_batch(self, op: _Compiled, records: Batch, result: ChainResult) -> Batch:
        try:
            out = op.spec.apply(records, op.args, op.ctx)
        except Exception as exc:
            raise OperatorFailed(op.index, op.code, str(exc) or type(exc).__name__) from exc
        if not isinstance(out, list):
            raise OperatorFailed(op.index, op.code, "returned something that is not a list of records")
        if len(out) < len(records):
            result.dropped += len(records) - len(out)
        return out
