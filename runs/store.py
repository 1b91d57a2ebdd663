"""DjangoRunStore: the engine's only door to the database.

It turns the executor's events into rows. It is used from the executor's main thread only; the step
threads never touch it. Failed records are written in bulk (a step with 100,000 bad records costs a few
hundred INSERTs, not 100,000).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from django.db import connections
from django.utils import timezone

from runs.engine.events import (
    Event,
    HookFired,
    RecordFailed,
    RecordRetried,
    RunFinished,
    RunStarted,
    StepFinished,
    StepRetrying,
    StepStarted,
)
from runs.models import Checkpoint, RecordAttempt, RecordError, Run, StepRun, StepStatus

_FLUSH_EVERY = 500
_CANCEL_CHECK_SECONDS = 1.0


class DjangoRunStore:
    def __init__(self, run: Run):
        self.run = run
        self._errors: list[RecordError] = []
        self._attempts: list[RecordAttempt] = []
        self._last_cancel_check = 0.0
        self._cancelled = False
        # LOG hook messages for steps still running; they join the step's warnings when it ends.
        self._hook_warnings: dict[str, list[str]] = {}

    def emit(self, event: Event) -> None:
        now = timezone.now()
        if isinstance(event, RunStarted):
            existing = set(StepRun.objects.filter(run=self.run).values_list("step_key", flat=True))
            StepRun.objects.bulk_create(
                StepRun(run=self.run, position=n, step_key=key)
                for n, key in enumerate(event.step_keys)
                if key not in existing
            )
        elif isinstance(event, StepStarted):
            StepRun.objects.filter(run=self.run, step_key=event.step_key).update(
                status=StepStatus.RUNNING, attempts=event.attempt, error="",
                **({"started_at": now} if event.attempt == 1 else {}),
            )
        elif isinstance(event, StepRetrying):
            StepRun.objects.filter(run=self.run, step_key=event.step_key).update(
                status=StepStatus.PENDING,
                error=f"attempt {event.attempt} failed, retrying in {event.delay_ms} ms: {event.error}",
            )
        elif isinstance(event, RecordFailed):
            self._errors.append(
                RecordError(run=self.run, step_key=event.step_key, record=event.record, message=event.message[:5000],
                            attempts=event.attempts, details=event.details)
            )
            if len(self._errors) >= _FLUSH_EVERY:
                self._flush_errors()
        elif isinstance(event, RecordRetried):
            self._attempts.append(
                RecordAttempt(run=self.run, step_key=event.step_key, record=event.record, attempt=event.attempt,
                              error=event.error[:5000], at=datetime.fromtimestamp(event.at, tz=UTC))
            )
            if len(self._attempts) >= _FLUSH_EVERY:
                self._flush_errors()
        elif isinstance(event, StepFinished):
            self._flush_errors()
            c = event.counts
            StepRun.objects.filter(run=self.run, step_key=event.step_key).update(
                status=event.status,
                attempts=event.attempts,
                records_in=c.records_in,
                records_out=c.records_out,
                records_error=c.errors,
                records_dropped=c.dropped,
                finished_at=now,
                duration_ms=event.duration_ms,
                error=event.error or "",
                warnings=list(event.warnings) + self._hook_warnings.pop(event.step_key, []),
            )
            if event.checkpoint is not None and not self.run.dry_run:
                Checkpoint.objects.update_or_create(
                    pipeline_id=self.run.pipeline_id, step_key=event.step_key, defaults={"data": event.checkpoint}
                )
        elif isinstance(event, HookFired):
            from runs import hooks

            hooks.dispatch(self, event)
        elif isinstance(event, RunFinished):
            self._flush_errors()
            Run.objects.filter(pk=self.run.pk).update(
                status=event.status,
                error=event.error or "",
                finished_at=None if event.status == "PAUSED" else now,
                heartbeat_at=now,
            )

    def add_step_warning(self, step_key: str, message: str) -> None:
        """A warning for a step that has not ended yet (hooks fire before the step's end is written)."""
        pending = self._hook_warnings.setdefault(step_key, [])
        if len(pending) < 1000:
            pending.append(message)

    def _flush_errors(self) -> None:
        if self._errors:
            RecordError.objects.bulk_create(self._errors, batch_size=_FLUSH_EVERY)
            self._errors = []
        if self._attempts:
            RecordAttempt.objects.bulk_create(self._attempts, batch_size=_FLUSH_EVERY)
            self._attempts = []

    def cancel_requested(self) -> bool:
        if self._cancelled:
            return True
        now = time.monotonic()
        if now - self._last_cancel_check >= _CANCEL_CHECK_SECONDS:
            self._last_cancel_check = now
            self._cancelled = Run.objects.filter(pk=self.run.pk, cancel_requested=True).exists()
        return self._cancelled

    def heartbeat(self) -> None:
        Run.objects.filter(pk=self.run.pk).update(heartbeat_at=timezone.now())

    def load_checkpoint(self, step_key: str) -> dict:
        row = Checkpoint.objects.filter(pipeline_id=self.run.pipeline_id, step_key=step_key).first()
        return dict(row.data) if row else {}


def close_connections_after(body):
    """Step threads may use the ORM (a model extractor); their connections close when the step ends."""

    def run():
        try:
            body()
        finally:
            connections.close_all()

    return run
