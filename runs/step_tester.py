"""The step tester: one step of a draft run on a few records, to see what it does to them. [pure]

:func:`try_step` runs one TRANSFORM, VALIDATE, ENRICH or ROUTE step of a definition (the editor passes
the person's draft) on records pasted by the person (:func:`parse_records`) or on a *sample*: what the
steps before it give, made by running them as a dry run with a record limit, as Preview does. It returns
the input, the output per branch, the dead letters with their messages, and what happened to each input
record (fields added, removed and changed).

What is guaranteed:

* **Nothing is written, nothing is sent on.** The sample is a dry run (writers write nothing, operators
  store no files and move no checkpoint, extractors move no offset) through an in-memory store (no run
  row, no hook carried out). Steps that write or wait, LOAD, EXPORT, FEED, SINK and GATE, and any step
  type not known to be free of side effects (a plugin's), do not run at all: their input is passed on as
  their output, and a note names each of them. Hooks do not run. The tested step itself must be one of
  :data:`TESTABLE`; any other is refused with a message naming it.
* **Bounded.** Every extract reads at most ``limits.records`` records, at most that many go into the
  step, and the whole test stops after ``limits.seconds`` (the steps are told to stop; a step that does
  not listen is left to end in its own thread, whose result is thrown away).
* **The run's own code.** The step is run by the engine's pieces the handlers use (the operator chain,
  the VALIDATE rules, the ROUTE branches), with the run's messages, once (no retries).
* Outbound requests go through the ``http`` client of the options given (the SSRF guard in the app).

Matching outputs to inputs: VALIDATE and ROUTE pass records on unchanged; a TRANSFORM or ENRICH chain
of record-wise operators says which input each output came from (``ChainResult.positions``). A chain
that combines records (aggregate, deduplicateRecords, multiJoin, ...) has no such mapping: the result
then shows input and output side by side without per-record differences, and says why.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pipelines import graph
from pipelines.definition import Definition, EdgeSpec, StepSpec, parse
from pipelines.errors import ConfigError, DatahubError, DefinitionError
from pipelines.operators.chain import OperatorChain, OperatorFailed
from pipelines.records import Record, deep_copy
from runs.engine.context import RunOptions, StepContext
from runs.engine.events import RecordFailed
from runs.engine.executor import execute
from runs.engine.handlers import enrich_items, operator_items, route_branches, routed
from runs.engine.store import InMemoryStore
from runs.engine.validate import compile_rules

# The step types the tester runs: they compute from their input and write nothing.
TESTABLE = ("TRANSFORM", "VALIDATE", "ENRICH", "ROUTE")
# The step types that run to make a sample (as a dry run); every other type passes its input through.
SAMPLE_RUNS = frozenset({"TRIGGER", "EXTRACT", *TESTABLE})


@dataclass(frozen=True)
class Limits:
    records: int = 100
    seconds: float = 10.0
    paste_chars: int = 200_000
    # Tests running at once in this process, those left behind by the time limit included: a step that
    # does not listen when told to stop keeps its thread, so threads stay bounded however often one asks.
    concurrent: int = 4


class _Slots:
    """How many tester threads are alive in this process."""

    def __init__(self):
        self._lock = threading.Lock()
        self.taken = 0

    def take(self, limit: int) -> None:
        with self._lock:
            if self.taken >= limit:
                raise CannotTest(f"the tester is busy ({self.taken} tests still running); try again in a moment")
            self.taken += 1

    def give_back(self) -> None:
        with self._lock:
            self.taken -= 1


_SLOTS = _Slots()


class CannotTest(DatahubError):
    """Why the tester cannot test (a step it does not run, records it cannot read, a sample that failed)."""


@dataclass(frozen=True)
class Change:
    """One difference between a record going in and what came out: ``kind`` added, removed or changed."""

    path: str
    kind: str
    before: Any = None
    after: Any = None


@dataclass
class Row:
    """One input record and what became of it."""

    index: int
    record: Record
    # "changed", "unchanged", "split" (several outputs), "dropped", "failed", "passed" (VALIDATE), "routed".
    fate: str
    outputs: list[Record] = field(default_factory=list)
    changes: list[list[Change]] = field(default_factory=list)  # one list per output
    error: str | None = None
    branches: list[str] = field(default_factory=list)


@dataclass
class Result:
    step_key: str
    step_type: str
    source: str  # "sample" or "pasted"
    input: list[Record]
    # The step's outputs: "output" is its main output; a ROUTE step adds one entry per branch and default.
    outputs: dict[str, list[Record]]
    errors: list[tuple[Record, str]]
    # Per input record, or None when the outputs cannot be matched to the inputs (``unmatched`` says why).
    rows: list[Row] | None
    unmatched: str = ""
    error: str | None = None  # the step failed (a bad config, FAIL_FAST, an operator with failOnError)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    duration_ms: int = 0


# --- pasted records ---------------------------------------------------------------------------------------

def parse_records(text: str, limits: Limits = Limits()) -> list[Record]:
    """Records typed or pasted: a JSON array of objects, one object, or one object per line (NDJSON).
    A CannotTest names the line and column of invalid JSON, or the record that is not an object."""
    if len(text) > limits.paste_chars:
        raise CannotTest(f"at most {limits.paste_chars:,} characters can be pasted ({len(text):,} given)")
    stripped = text.strip()
    if not stripped:
        raise CannotTest('paste at least one record, e.g. [{"sku": "A1", "price": 10}]')
    try:
        value = json.loads(text)
        records = value if isinstance(value, list) else [value]
        lines = None
    except json.JSONDecodeError as exc:
        if stripped.startswith("[") or exc.msg != "Extra data":
            raise CannotTest(_where(exc)) from None
        records, lines = _lines(text)
    for n, record in enumerate(records):
        if not isinstance(record, dict):
            where = f"line {lines[n]}" if lines else f"record {n + 1}"
            raise CannotTest(f"{where}: a record is a JSON object like {{\"sku\": \"A1\"}}, "
                             f"not {_kind(record)}")
    if len(records) > limits.records:
        raise CannotTest(f"at most {limits.records} records can be tested at once ({len(records)} given)")
    return records


def _lines(text: str) -> tuple[list, list[int]]:
    """One JSON value per non-empty line; positions in errors are those of the whole text."""
    records, lines = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise CannotTest(f"line {number}, column {exc.colno}: {exc.msg} (one record per line)") from None
        lines.append(number)
    return records, lines


def _where(exc: json.JSONDecodeError) -> str:
    return f"line {exc.lineno}, column {exc.colno}: {exc.msg}"


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__


# --- the test ------------------------------------------------------------------------------------------------

def try_step(definition: dict | Definition, key: str, *, records: list[Record] | None = None,
              options: RunOptions | None = None, limits: Limits = Limits()) -> Result:
    """Run step ``key`` of ``definition`` on ``records``, or on a sample from the steps before it when
    ``records`` is None. ``options`` carries what the steps need from outside (http, secret, connection,
    storage); the tester makes it a dry run with its limits. CannotTest when it cannot test."""
    parsed = definition if isinstance(definition, Definition) else _parse(definition)
    try:
        step = parsed.step(key)
    except KeyError:
        raise CannotTest(f"there is no step '{key}'") from None
    if step.type not in TESTABLE:
        raise CannotTest(f"step '{key}' is a {step.type} step: the tester runs only {', '.join(TESTABLE[:-1])} "
                         f"and {TESTABLE[-1]} steps, which compute from their input and write nothing")
    base = options or RunOptions()
    options = dataclasses.replace(base, dry_run=True, record_limit=limits.records, keep_outputs=False,
                                  persist=None, drain=None, previous={}, seed_step=None, seed_records=None,
                                  spill_records=max(base.spill_records, 10 * limits.records))
    stop = threading.Event()
    deadline = time.monotonic() + limits.seconds
    box: dict[str, Any] = {}

    def work():
        try:
            notes: list[str] = []
            if records is None:
                given = _sample(parsed, step, options, limits, stop, deadline, notes)
            else:
                given = records
            box["result"] = _run(parsed, step, given, options, stop, notes, "sample" if records is None else "pasted")
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc
        finally:
            _SLOTS.give_back()

    _SLOTS.take(limits.concurrent)
    started = time.monotonic()
    body = options.thread_wrapper(work) if options.thread_wrapper else work
    thread = threading.Thread(target=body, name=f"datahub-tester-{key}", daemon=True)
    thread.start()
    thread.join(limits.seconds)
    if thread.is_alive():
        stop.set()
        thread.join(1.0)  # a step that listens ends now; one that does not is left behind, its result unused
        if thread.is_alive() or "result" not in box:
            raise CannotTest(f"step '{key}' took longer than the tester's {limits.seconds:g} s and was stopped; "
                             "test fewer records, or use Preview")
    if "error" in box:
        raise box["error"]
    result: Result = box["result"]
    result.duration_ms = int((time.monotonic() - started) * 1000)
    if options.redactor is not None:  # a server may echo a credential in an error body
        result.errors = [(r, options.redactor.scrub(m)) for r, m in result.errors]
        result.error = options.redactor.scrub(result.error) if result.error else None
        result.warnings = [options.redactor.scrub(w) for w in result.warnings]
    return result


def _parse(data: dict) -> Definition:
    try:
        return parse(data)
    except DefinitionError as exc:
        raise CannotTest("the pipeline has problems: " + "; ".join(
            f"{p.step + ': ' if p.step else ''}{p.field + ': ' if p.field else ''}{p.message}"
            for p in exc.problems)) from None


# --- the sample ------------------------------------------------------------------------------------------------

def _sample(d: Definition, step: StepSpec, options: RunOptions, limits: Limits, stop: threading.Event,
            deadline: float, notes: list[str]) -> list[Record]:
    """What the steps before ``step`` give it: they run as a dry run with the record limit; the step itself
    is disabled there, so the executor passes on exactly its input (its edges, branches and order)."""
    inputs = graph.inputs(d)
    upstream: set[str] = set()
    todo = [i.source for i in inputs[step.key]]
    while todo:
        key = todo.pop()
        if key not in upstream:
            upstream.add(key)
            todo.extend(i.source for i in inputs[key])
    if not any(not i.dependency_only for i in inputs[step.key]):
        raise CannotTest(f"step '{step.key}' has no step before it to take a sample from; paste records instead")
    steps = []
    for s in d.steps:
        if s.key == step.key:
            steps.append(dataclasses.replace(s, disabled=True))
        elif s.key in upstream:
            runs = s.type in SAMPLE_RUNS and not s.disabled
            if not runs and not s.disabled:
                notes.append(f"step '{s.key}' ({s.type}) did not run: the tester never writes, sends or waits; "
                             "its input is passed on as its output")
            steps.append(dataclasses.replace(s, disabled=not runs, retries=0))
    kept = {s.key for s in steps}
    # With edges, every input of a kept step (data or dependency) becomes an explicit edge between kept
    # steps; without, the kept steps are the chain's first steps, in order.
    edges = tuple(_edges_between(d, inputs, kept)) if d.graph_mode else ()
    sub = dataclasses.replace(d, steps=tuple(steps), edges=edges, extra={})
    store = _DeadlineStore(stop, deadline)
    result = execute(sub, store, dataclasses.replace(options, keep_outputs=frozenset({step.key})))
    try:
        finished = store.finished()
        failed = [(k, e.error) for k, e in finished.items() if e.status == "FAILED"]
        if failed:
            raise CannotTest(f"the sample could not be made: step '{failed[0][0]}' failed: {failed[0][1]}")
        if result.status == "CANCELLED":
            raise CannotTest(f"the sample took longer than the tester's {limits.seconds:g} s; paste records instead")
        sample = result.output(step.key)
    finally:
        result.close()
    set_aside: dict[str, int] = {}
    for event in store.events:
        if isinstance(event, RecordFailed):
            set_aside[event.step_key] = set_aside.get(event.step_key, 0) + 1
    for k, e in finished.items():
        notes.extend(f"step '{k}': {w}" for w in e.warnings if not w.startswith("dry run:"))
        if set_aside.get(k):
            notes.append(f"step '{k}' set {set_aside[k]} record(s) aside as dead letters; they are not in the sample")
    if len(sample) > limits.records:
        notes.append(f"the steps before it gave {len(sample)} records; the first {limits.records} are tested")
        sample = sample[: limits.records]
    if not sample:
        notes.append("the steps before it gave no records; paste records to test it")
    return sample


def _edges_between(d: Definition, inputs: dict, kept: set[str]):
    for target in (s.key for s in d.steps if s.key in kept):
        for i in inputs[target]:
            if i.source in kept:
                yield EdgeSpec(i.source, target, i.branch, i.dependency_only)


class _DeadlineStore(InMemoryStore):
    """Keeps the run's events in memory and asks the executor to stop at the deadline."""

    def __init__(self, stop: threading.Event, deadline: float):
        super().__init__()
        self.stop = stop
        self.deadline = deadline

    def cancel_requested(self) -> bool:
        return self.stop.is_set() or time.monotonic() >= self.deadline


# --- running the step -------------------------------------------------------------------------------------------

def _run(d: Definition, step: StepSpec, records: list[Record], options: RunOptions, stop: threading.Event,
         notes: list[str], source: str) -> Result:
    if step.disabled:
        notes.append(f"step '{step.key}' is disabled in the pipeline (a run passes its input through); "
                     "the tester runs it anyway")
    ctx = StepContext(step=step, definition=d, options=options, checkpoint={}, cancelled=stop)
    given = [deep_copy(r) for r in records]  # the step may change the records it is given
    result = Result(step.key, step.type, source, records, {}, [], None, notes=notes, warnings=ctx.warnings)
    try:
        if step.type in ("TRANSFORM", "ENRICH"):
            _chain(step, given, ctx, result)
        elif step.type == "VALIDATE":
            _validate(step, given, result)
        else:
            _route(step, given, result)
    except ConfigError as exc:
        result.error = f"{exc.field}: {exc}" if exc.field else str(exc)
    except OperatorFailed as exc:
        result.error = str(exc)
    return result


def _chain(step: StepSpec, records: list[Record], ctx: StepContext, result: Result) -> None:
    items = operator_items(step) if step.type == "TRANSFORM" else enrich_items(step)
    chain = OperatorChain(items, context_for=ctx.operator_context)
    out: list[Record] = []
    failures: list[tuple[int | None, Record, str]] = []
    positions: list[int] | None = []
    size = ctx.batch_size
    batches = [records] if chain.needs_all_records else [records[i:i + size] for i in range(0, len(records), size)]
    offset = 0
    for batch in batches:
        applied = chain.apply(batch)
        for f in applied.failures:
            where = None if f.position is None else offset + f.position
            failures.append((where, f.record, f"{f.op} (operator {f.op_index + 1}): {f.message}"))
        out.extend(applied.records)
        if positions is not None and applied.positions is not None:
            positions.extend(offset + p for p in applied.positions)
        else:
            positions = None
        offset += len(batch)
    if chain.finishes:  # rows a streaming operator holds until the input ends: no input stands behind them
        tail = chain.finish()
        out.extend(tail.records)
        failures.extend((None, f.record, f"{f.op} (operator {f.op_index + 1}): {f.message}") for f in tail.failures)
        if tail.records:
            positions = None
    result.outputs["output"] = out
    result.errors = [(r, m) for _, r, m in failures]
    if positions is None or any(p is None for p, _, _ in failures):
        ops = [str(i.get("op")) for i in items if isinstance(i, dict)]
        result.unmatched = (f"the operators ({', '.join(ops)}) combine records, so an output record has no one "
                            "input record to compare with")
        return
    rows = [Row(n, r, "dropped") for n, r in enumerate(result.input)]
    for position, record in zip(positions, out, strict=True):
        rows[position].outputs.append(record)
    for position, _, message in failures:
        rows[position].fate, rows[position].error = "failed", message
    for row in rows:
        row.changes = [diff(row.record, o) for o in row.outputs]
        if row.fate == "failed":
            continue
        if len(row.outputs) > 1:
            row.fate = "split"
        elif row.outputs:
            row.fate = "changed" if row.changes[0] else "unchanged"
    result.rows = rows


def _validate(step: StepSpec, records: list[Record], result: Result) -> None:
    check = compile_rules(step.config)
    fail_fast = step.config.get("errorHandlingMode", "ACCUMULATE") == "FAIL_FAST"
    valid, rows = [], []
    for n, record in enumerate(records):
        problems = check(record)
        if problems:
            message = "; ".join(problems)
            result.errors.append((record, message))
            rows.append(Row(n, result.input[n], "failed", error=message))
            if fail_fast and result.error is None:
                result.error = f"record {n + 1} is invalid: {message} (errorHandlingMode FAIL_FAST)"
        else:
            valid.append(record)
            rows.append(Row(n, result.input[n], "passed", outputs=[record], changes=[[]]))
    # FAIL_FAST: the run fails the step at the first invalid record and passes nothing on.
    result.outputs["output"] = [] if result.error else valid
    result.rows = rows


def _route(step: StepSpec, records: list[Record], result: Result) -> None:
    branches = route_branches(step)
    result.outputs = {"output": records, **{name: [] for name, _ in branches}, "default": []}
    rows = []
    for n, record in enumerate(records):
        names = routed(branches, record)
        for name in names:
            result.outputs[name].append(record)
        rows.append(Row(n, result.input[n], "routed", outputs=[record], changes=[[]], branches=names))
    result.rows = rows


# --- differences ------------------------------------------------------------------------------------------------

def diff(before: Any, after: Any, prefix: str = "") -> list[Change]:
    """Fields added, removed and changed from ``before`` to ``after``, nested objects by dotted path
    (``address.city``); lists and other values are compared whole."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return [] if _same(before, after) else [Change(prefix or "(record)", "changed", before, after)]
    changes = []
    for name, value in before.items():
        path = f"{prefix}{name}"
        if name not in after:
            changes.append(Change(path, "removed", before=value))
        elif isinstance(value, dict) and isinstance(after[name], dict):
            changes.extend(diff(value, after[name], path + "."))
        elif not _same(value, after[name]):
            changes.append(Change(path, "changed", value, after[name]))
    changes.extend(Change(f"{prefix}{name}", "added", after=value) for name, value in after.items() if name not in before)
    return changes


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values, at any depth: 1 is not true, 1 is 1.0 (one number type), "1" is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    return type(a) is type(b) and a == b
