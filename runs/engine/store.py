"""The executor's only door to the outside: a store that records events and answers a few questions.
[pure]

:class:`InMemoryStore` is the whole contract in a few lines; tests run pipelines through it, and
:class:`runs.store.DjangoRunStore` does the same against the database.
"""

from __future__ import annotations

import threading
from typing import Protocol

from runs.engine.events import Event, RecordFailed, StepFinished


class RunStore(Protocol):
    def emit(self, event: Event) -> None:
        """Record one event. Called from the executor's main thread only, in order."""

    def cancel_requested(self) -> bool:
        """True once somebody asked to cancel this run."""

    def heartbeat(self) -> None:
        """Called every few seconds while the run is alive (the reaper reads it)."""

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
        if isinstance(event, StepFinished) and event.checkpoint is not None and event.status == "COMPLETED":
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
