"""The statuses of runs and steps, written once. [pure]

The engine stays free of Django, so the enums live here and ``runs.models`` builds its ``TextChoices`` from
them (``tests/engine/test_status.py`` holds the two equal). They are ``StrEnum``: a member equals its
value, so events, stores and rows that hold the plain string compare equal to the member.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RunStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class Handover(StrEnum):
    """How an execution may end besides a run status: the run goes on elsewhere (the worker drains), or
    another worker took it over (this one was silent too long). The run's row keeps its status."""

    HANDED_BACK = "HANDED_BACK"
    LOST = "LOST"


class StepStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"

    @property
    def ended(self) -> bool:
        """Whether the step is over for good in this run (a PAUSED step is not: it holds its successors)."""
        return self in _ENDED_STEPS


_ENDED_STEPS = frozenset({StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED})
ENDED_STEP_STATUSES = tuple(sorted(_ENDED_STEPS))


class SkipCause(StrEnum):
    """Why a step ended SKIPPED without running."""

    UPSTREAM = "UPSTREAM"  # an input did not complete
    AFTER_FAILURE = "AFTER_FAILURE"  # FAIL_FAST: another step failed before this one started
    NOT_SEEDED = "NOT_SEEDED"  # a seeded run starts below this step
    DISABLED = "DISABLED"  # ``disabled``: its input passed through unchanged


@dataclass(frozen=True)
class Skip:
    """A structured skip reason: the cause and the step it names (the failed input, the seed step, ...)."""

    cause: SkipCause
    step: str | None = None

    @property
    def message(self) -> str:
        """What the run page and the APIs say about it (stable texts: users and tests read them)."""
        if self.cause is SkipCause.UPSTREAM:
            return f"skipped: upstream step '{self.step}' did not complete"
        if self.cause is SkipCause.AFTER_FAILURE:
            return f"not run: step '{self.step}' failed"
        if self.cause is SkipCause.NOT_SEEDED:
            return f"not part of this run (it starts at step '{self.step}')"
        return "disabled: input passed through"
