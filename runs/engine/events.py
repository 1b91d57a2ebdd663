"""What the executor tells its store while a run goes. [pure]

The executor never writes to a database: it emits these events and the store (in memory for tests,
:class:`runs.store.DjangoRunStore` in the service) records them. A run's state can be rebuilt from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines.records import Record
from runs.engine.status import Handover, RunStatus, StepStatus


@dataclass(frozen=True)
class RunStarted:
    step_keys: tuple[str, ...]


@dataclass(frozen=True)
class StepStarted:
    step_key: str
    attempt: int


@dataclass(frozen=True)
class StepRetrying:
    step_key: str
    attempt: int
    error: str
    delay_ms: int


@dataclass(frozen=True)
class StepCounts:
    records_in: int = 0
    records_out: int = 0
    errors: int = 0
    dropped: int = 0



@dataclass(frozen=True)
class StepFinished:
    """A step ended: status COMPLETED, FAILED, SKIPPED, CANCELLED or PAUSED."""

    step_key: str
    status: StepStatus
    counts: StepCounts = field(default_factory=StepCounts)
    duration_ms: int = 0
    attempts: int = 0
    error: str | None = None
    warnings: tuple[str, ...] = ()
    checkpoint: dict | None = None
    # Where its outputs were saved for a resume ({branch or "_main": name}; {} when nothing needs them),
    # None when they were not saved.
    outputs: dict | None = None


@dataclass(frozen=True)
class StepProgress:
    """A running step's counters so far, about once a second while it runs (so a long step does not look
    stuck): records read from its inputs, put into its main output, failed. ``elapsed_ms``: since this
    attempt started. ``expected``: the records it reads in all, when known (every input has ended), else
    None. A later StepFinished has the final counts."""

    step_key: str
    attempt: int
    counts: StepCounts
    elapsed_ms: int
    expected: int | None = None

    @property
    def rate(self) -> float | None:
        """Records per second of this attempt so far: those read, or for a step that read none (an extract)
        those put out; None for no time or no records."""
        done = self.counts.records_in or self.counts.records_out
        return done * 1000 / self.elapsed_ms if self.elapsed_ms > 0 and done else None


@dataclass(frozen=True)
class StepInterrupted:
    """A step in flight when its worker handed the run back: it runs again, from its start, on the next."""

    step_key: str
    reason: str


@dataclass(frozen=True)
class RecordFailed:
    step_key: str
    record: Record
    message: str
    attempts: int = 1
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordRetried:
    """One failed attempt of a record under per-record retry (the audit; the record may succeed later)."""

    step_key: str
    record: Record
    attempt: int
    error: str
    at: float


@dataclass(frozen=True)
class RunPaused:
    step_key: str
    records: int
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class HookFired:
    """A hook action that does not touch records (WEBHOOK, LOG, EMAIL, TRIGGER_PIPELINE) is due; the store
    carries it out. ``action`` is the action's config as written, ``payload`` what it is about: stage,
    pipelineCode, runId, stepKey, recordCount, and for WEBHOOK / TRIGGER_PIPELINE at step stages and
    ON_DEAD_LETTER the first ``maxRecords`` records."""

    stage: str
    step_key: str | None
    action: dict
    payload: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RunFinished:
    status: RunStatus | Handover
    error: str | None = None


Event = (RunStarted | StepStarted | StepRetrying | StepProgress | StepFinished | StepInterrupted | RecordFailed
         | RecordRetried | RunPaused | HookFired | RunFinished)
