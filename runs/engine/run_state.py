"""The executor's run, as data: the plan it reads and the state it changes. [pure]

:class:`Plan` is what never changes during a run (the definition's steps, their order, edges and error
policy); :class:`RunState` is what the run changes, with one :class:`StepState` per step (status, attempt,
counts, outputs, why it was skipped) and the :class:`Attempt` of each step in flight. Only the executor's
main thread writes them (runs.engine.executor, which holds the algorithm); step threads read what the
fields below say they may. :class:`RunResult` is what a run hands back.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import Enum

from pipelines import graph, hooks
from pipelines.definition import Definition, StepSpec
from runs.engine.buffers import RecordBuffer
from runs.engine.context import StepContext, StepInput
from runs.engine.events import StepCounts, StepFinished
from runs.engine.status import Handover, RunStatus, Skip, StepStatus

NO_COUNTS = StepCounts()


@dataclass
class RunResult:
    status: RunStatus | Handover
    error: str | None
    steps: dict[str, StepFinished]
    outputs: dict[str, dict[str | None, RecordBuffer]] = field(default_factory=dict)
    # Every step's status at the end (also those that ended in an earlier part of the run), and which
    # steps' outputs may feed successors: what a resume needs besides the outputs.
    statuses: dict[str, StepStatus] = field(default_factory=dict)
    usable: frozenset[str] = frozenset()
    counts: dict[str, StepCounts] = field(default_factory=dict)
    # Steps that paused in this part of the run, with what they said about it.
    pauses: dict[str, dict] = field(default_factory=dict)
    # Steps whose outputs were saved by ``RunOptions.persist`` ({key: {branch or "_main": name}}).
    saved: dict[str, dict] = field(default_factory=dict)

    def output(self, key: str, branch: str | None = None) -> list:
        bufs = self.outputs.get(key) or {}
        buf = bufs.get(branch)
        return buf.to_list() if buf is not None else []

    def close(self) -> None:
        for bufs in self.outputs.values():
            for buf in bufs.values():
                buf.close()


# --- the plan: what never changes during a run ------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The definition as the scheduler reads it: steps, their order, edges and error policy."""

    definition: Definition
    order: tuple[str, ...]
    position: dict[str, int]
    specs: dict[str, StepSpec]
    inputs: dict[str, list[graph.Input]]
    successors: dict[str, list[str]]
    max_in_flight: int
    policy: str  # FAIL_FAST, CONTINUE or BEST_EFFORT
    hooks: hooks.Hooks
    # Steps whose outputs another step reads (as data or through step_outputs): only these are saved.
    read_by_others: frozenset[str]

    @classmethod
    def of(cls, definition: Definition) -> Plan:
        inputs = graph.inputs(definition)
        parallel = definition.parallel
        in_parallel = parallel.enabled and definition.graph_mode
        order = tuple(s.key for s in definition.steps)
        return cls(
            definition=definition,
            order=order,
            position={k: n for n, k in enumerate(order)},
            specs={s.key: s for s in definition.steps},
            inputs=inputs,
            successors=graph.successors(definition),
            max_in_flight=parallel.max_concurrent_steps if in_parallel else 1,
            policy=parallel.error_policy if in_parallel else "FAIL_FAST",
            hooks=hooks.parse(definition.extra.get("hooks")),
            read_by_others=frozenset(i.source for ins in inputs.values() for i in ins),
        )


# --- the state: what the run changes ----------------------------------------------------------------


@dataclass
class StepState:
    """One step's state in this execution. Written by the main thread only; step threads may read
    ``outputs`` and ``counts`` of steps that have ended (``step_outputs``, ``run_stats``)."""

    status: StepStatus = StepStatus.PENDING
    attempt: int = 0  # the number of its latest attempt (0: never started)
    started: float | None = None  # time.monotonic() of its first attempt
    # Its outputs may feed successors: COMPLETED, disabled, or failed with continueOnError.
    usable: bool = False
    # {branch: buffer} once it ended (None before, and after every successor read them and they closed).
    outputs: dict[str | None, RecordBuffer] | None = None
    consumers_left: int = 0  # successors that have not read its outputs yet
    counts: StepCounts | None = None  # set when it ends (or ended in an earlier part of the run)
    skip: Skip | None = None
    finished: StepFinished | None = None  # how it ended in this part of the run
    saved: dict | None = None  # where ``RunOptions.persist`` saved its outputs ({branch or "_main": name})
    pause: dict | None = None  # what it said when it paused in this part of the run


@dataclass
class Attempt:
    key: str
    number: int
    started: float
    deadline: float | None
    ctx: StepContext
    # What the step reads (replaced by the step's thread with the scripted copy when BEFORE_ scripts ran).
    input: StepInput
    saved: dict | None = None  # set by the step's thread once its outputs are saved
    progress_at: float = 0.0  # when its counters were last reported (or it started)
    reported: StepCounts = NO_COUNTS

    def live_counts(self) -> StepCounts:
        """The counters so far, read from the step's thread's objects (ints: no lock needed)."""
        out = self.ctx.output
        return StepCounts(self.input.consumed, len(out) if out is not None else 0, self.ctx.error_count)


@dataclass
class RunState:
    steps: dict[str, StepState]
    in_flight: dict[str, Attempt] = field(default_factory=dict)
    retry_at: dict[str, tuple[float, int]] = field(default_factory=dict)  # {key: (when, attempt number)}
    # PENDING steps to look at again: one of their inputs ended since (see _settle_skips).
    candidates: set[str] = field(default_factory=set)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (step, message), in order
    stop_starting: bool = False
    cancelled: threading.Event = field(default_factory=threading.Event)
    handing_back: bool = False
    lost: bool = False
    last_heartbeat: float = 0.0


class Readiness(Enum):
    """What a PENDING step may do now (or a :class:`Skip`: it never runs)."""

    WAIT = "wait"
    RUN = "run"
