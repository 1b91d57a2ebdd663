"""The executor's only door to the outside: a store that records events and answers a few questions.
[pure]

:class:`InMemoryStore` is the whole contract in a few lines; tests run pipelines through it, and
:class:`runs.store.DjangoRunStore` does the same against the database.
"""

from __future__ import annotations

import threading
from dataclasses import fields, replace
from typing import Protocol

from pipelines.redaction import Redactor
from runs.engine.events import Event, HookFired, RecordFailed, StepFinished
from runs.engine.status import StepStatus


class RunStore(Protocol):
    def emit(self, event: Event) -> None:
        """Record one event. Called from the executor's main thread only, in order."""

    def cancel_requested(self) -> bool:
        """True once somebody asked to cancel this run."""

    def heartbeat(self) -> bool | None:
        """Called every few seconds while the run is alive (the reaper reads it). False: another worker
        owns the run now; the executor stops at once."""

    def load_checkpoint(self, step_key: str) -> dict:
        """The step's saved checkpoint (a copy the step may change), {} when none."""


class InMemoryStore:
    def __init__(self, checkpoints: dict[str, dict] | None = None):
        self.events: list[Event] = []
        self.checkpoints: dict[str, dict] = checkpoints or {}
        self.cancel = threading.Event()
        self.heartbeats = 0

    def emit(self, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, StepFinished) and event.checkpoint is not None and event.status == StepStatus.COMPLETED:
            self.checkpoints[event.step_key] = event.checkpoint

    def cancel_requested(self) -> bool:
        return self.cancel.is_set()

    def heartbeat(self) -> None:
        self.heartbeats += 1

    def load_checkpoint(self, step_key: str) -> dict:
        import copy

        return copy.deepcopy(self.checkpoints.get(step_key, {}))

    # Conveniences for tests.
    def finished(self) -> dict[str, StepFinished]:
        return {e.step_key: e for e in self.events if isinstance(e, StepFinished)}

    def record_errors(self) -> list[RecordFailed]:
        return [e for e in self.events if isinstance(e, RecordFailed)]


# Event fields that are data or config, not messages: kept as they are (a dead letter must replay as it was).
_NOT_MESSAGES = frozenset({"record", "checkpoint", "action", "step_key", "step_keys", "counts"})


class RedactingStore:
    """A store in front of another that scrubs the run's credentials out of every event's texts (errors,
    warnings, details, hook payloads but their records) before the other store sees them: the one place
    through which what a run says reaches the database, its pages and its APIs (pipelines.redaction)."""

    def __init__(self, store: RunStore, redactor: Redactor):
        self.store = store
        self.redactor = redactor

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    def emit(self, event: Event) -> None:
        if self.redactor.active:
            event = self._scrubbed(event)
        self.store.emit(event)

    def _scrubbed(self, event: Event) -> Event:
        scrub = self.redactor.scrub_value
        changes = {}
        for f in fields(event):
            if f.name in _NOT_MESSAGES:
                continue
            value = getattr(event, f.name)
            if isinstance(event, HookFired) and f.name == "payload":
                scrubbed = {k: v if k == "records" else scrub(v) for k, v in value.items()}
            else:
                scrubbed = scrub(value)
            if scrubbed != value:
                changes[f.name] = scrubbed
        return replace(event, **changes) if changes else event

