"""What a step handler is given, and what it gives back. [pure]"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipelines.adapters.base import AdapterContext
from pipelines.definition import Definition, StepSpec
from pipelines.operators.base import OperatorContext
from pipelines.records import Batch, Record, deep_copy
from runs.engine.buffers import DEFAULT_SPILL_RECORDS, HeadBuffer, RecordBuffer, rebatch
from runs.engine.events import RecordFailed, RecordRetried, StepCounts
from runs.engine.streams import DEFAULT_STREAM_BYTES


def utc_now() -> datetime:
    """The run's default clock."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class PreviousStep:
    """How a step ended in an earlier part of the run. ``usable``: its outputs may feed successors
    (COMPLETED, a disabled pass-through, a continueOnError failure). A PAUSED step stays paused."""

    status: str
    usable: bool = False
    outputs: dict[str | None, RecordBuffer] = field(default_factory=dict)
    counts: StepCounts | None = None


@dataclass
class RunOptions:
    """How to run: everything the executor needs from outside, as plain values and callables."""

    dry_run: bool = False
    record_limit: int | None = None
    # Keep these steps' outputs after the run (True = every step), for previews and --show-output.
    keep_outputs: bool | frozenset[str] = False
    # Of a step's main output that no step reads and keep_outputs does not name, only the first N records are
    # held (a runs.engine.buffers.HeadBuffer) and returned in the result: the run's output sample.
    output_head: int = 0
    spill_records: int = DEFAULT_SPILL_RECORDS
    # Batches a streaming step holds for its consumer, in (estimated) bytes, before the producer waits
    # (or, while the consumer has not started, spills them): see runs.engine.streams.
    stream_memory_bytes: int = DEFAULT_STREAM_BYTES
    pipeline_code: str = ""
    run_id: Any = None
    http: Any = None
    storage: Any = None
    secret: Callable[[str], str] | None = None
    connection: Callable[[str], dict] | None = None
    now: Callable[[], datetime] = utc_now  # a module function, not a lambda: it pickles to a worker process
    heartbeat_seconds: float = 5.0
    # At most this many failed records are kept per step (all are counted).
    max_record_errors: int = 100_000
    # Wraps every step thread's body (the Django store closes the thread's DB connections after it).
    thread_wrapper: Callable[[Callable[[], Any]], Callable[[], Any]] | None = None
    # Steps that ended in an earlier part of this run (a resume after a gate): they do not run again.
    previous: dict[str, PreviousStep] = field(default_factory=dict)
    # A seeded run: ``seed_step`` takes ``seed_records`` as its whole input (a webhook body into a TRIGGER,
    # dead-letter records replayed into the step where they failed), and only that step and what depends
    # on it run; every other step is SKIPPED and contributes no records.
    seed_step: str | None = None
    seed_records: RecordBuffer | None = None
    # A pipelines.redaction.Redactor: every event's texts are scrubbed of the run's credentials before the
    # store sees them (the runs service gives one that learns the secrets and headers the run uses).
    redactor: Any = None
    # The durable boundary: saves a completed step's outputs ({branch: buffer}) where any worker can read
    # them, returning {branch or "_main": name}; called in the step's thread before the step counts as
    # COMPLETED. None: outputs live in memory only (a resumed run runs such steps again).
    persist: Callable[[str, dict], dict] | None = None
    # Draining: returns None, or the time (``time.time()``) by which the run must be handed back. Once it
    # answers, no step starts; steps still in flight at that time are interrupted and run again elsewhere.
    drain: Callable[[], float | None] | None = None
    # Worker processes for CPU-heavy TRANSFORM steps under parallel execution (runs.engine.processes):
    # "auto" uses them for inputs of at least ``process_min_records`` records, "off" never.
    processes: str = "auto"
    process_min_records: int = 50_000


class StepInput:
    """The records flowing into a step: its inputs' buffers, read in edge order."""

    def __init__(self, buffers: list[RecordBuffer]):
        self.buffers = buffers
        # Records handed to the step so far: its live records-in (read by the executor's main thread).
        self.consumed = 0

    def __len__(self) -> int:
        return sum(len(b) for b in self.buffers)

    def batches(self, size: int) -> Iterator[Batch]:
        if len(self.buffers) == 1:  # a stream passes a short batch on as it comes, not gathered
            batches = self.buffers[0].batches(size)
        else:
            batches = rebatch((batch for buf in self.buffers for batch in buf.batches(size)), size)
        for batch in batches:
            self.consumed += len(batch)
            yield batch

    def all_records(self) -> Batch:
        records = [r for b in self.buffers for r in b.records()]
        self.consumed += len(records)
        return records


@dataclass
class StepOutcome:
    outputs: dict[str | None, RecordBuffer]
    records_in: int = 0
    records_out: int = 0
    dropped: int = 0
    paused: bool = False
    # Why and how the step paused (a gate's approval type, timeout, preview); stored with the pause.
    pause_info: dict = field(default_factory=dict)


@dataclass
class StepContext:
    step: StepSpec
    definition: Definition
    options: RunOptions
    checkpoint: dict
    attempt: int = 1
    cancelled: threading.Event = field(default_factory=threading.Event)
    step_outputs: Callable[[str], Iterable[Record]] | None = None
    # {"extracted": records out of EXTRACT steps, "errors": record errors} of the steps ended so far.
    run_stats: Callable[[], dict] = lambda: {"extracted": 0, "errors": 0}
    errors: list[RecordFailed] = field(default_factory=list)
    attempts: list[RecordRetried] = field(default_factory=list)
    error_count: int = 0
    warnings: list[str] = field(default_factory=list)
    # The step's main output (new_output): its length is the step's live records-out. The executor sets it
    # beforehand to a runs.engine.streams.Stream when the step streams into its consumer.
    output: Any = None
    # Set by the executor when nothing reads the step's main output: how many of its records to hold.
    output_head: int | None = None

    @property
    def batch_size(self) -> int:
        throughput = self.step.extra.get("throughput") or {}
        return int(throughput.get("batchSize") or self.definition.batch_size)

    def new_buffer(self) -> RecordBuffer:
        return RecordBuffer(self.options.spill_records)

    def new_output(self) -> RecordBuffer:
        """The step's main output (the Stream the executor gave it, or a new buffer): the executor reports its
        length while the step runs."""
        if self.output is None:
            self.output = self.new_buffer() if self.output_head is None else HeadBuffer(self.output_head)
        return self.output

    def record_error(self, record: Record, message: str, attempts: int = 1, **details: Any) -> None:
        self.error_count += 1
        if len(self.errors) < self.options.max_record_errors:
            self.errors.append(RecordFailed(self.step.key, deep_copy(record), message, attempts, details))

    def record_attempt(self, attempt) -> None:
        """A failed attempt of a per-record retry (runs.engine.retry.Attempt), kept for the audit."""
        if len(self.attempts) < self.options.max_record_errors:
            self.attempts.append(RecordRetried(self.step.key, deep_copy(attempt.record), attempt.attempt,
                                               attempt.error, attempt.at))

    def warn(self, message: str) -> None:
        if len(self.warnings) < 1000:
            self.warnings.append(message)

    def adapter_context(self) -> AdapterContext:
        o = self.options
        return AdapterContext(
            step_key=self.step.key,
            pipeline_code=o.pipeline_code,
            run_id=o.run_id,
            dry_run=o.dry_run,
            batch_size=self.batch_size,
            checkpoint=self.checkpoint,
            record_limit=o.record_limit,
            http=o.http,
            storage=o.storage,
            secret=o.secret,
            connection=o.connection,
            cancelled=self.cancelled,
            now=o.now,
            warnings=self.warnings,
        )

    def operator_context(self, index: int) -> OperatorContext:
        o = self.options
        per_operator = self.checkpoint.setdefault("operators", {}).setdefault(str(index), {})
        return OperatorContext(
            step_key=self.step.key,
            op_index=index,
            pipeline_code=o.pipeline_code,
            run_id=o.run_id,
            dry_run=o.dry_run,
            checkpoint=per_operator,
            step_outputs=self.step_outputs,
            http=o.http,
            storage=o.storage,
            secret=o.secret,
            connection=o.connection,
            now=o.now,
            warnings=self.warnings,
            cancelled=self.cancelled,
        )


class StepHandler(ABC):
    """Runs one step type. Registered into ``pipelines.registry.step_types`` with its config schema."""

    # A handler that writes its main output through ``ctx.new_output()`` and appends to it batch by batch
    # may stream it into its consumer (runs.engine.stream_plan).
    streams_output = False

    def streams_input(self, step: StepSpec, definition: Definition, options: RunOptions) -> bool:
        """Whether this step may read its input while its producer still writes it: it reads batch by
        batch and has no effect outside the run before it ends (runs.engine.stream_plan)."""
        return False

    @abstractmethod
    def run(self, step: StepSpec, inputs: StepInput, ctx: StepContext) -> StepOutcome:
        """Consume ``inputs``; return the outputs (``None`` key = main output; ROUTE adds branches)."""
