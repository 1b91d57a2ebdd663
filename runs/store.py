"""DjangoRunStore: the engine's only door to the database.

It turns the executor's events into rows. It is used from the executor's main thread only; the step
threads never touch it. Failed records are written in bulk (a step with 100,000 bad records costs a few
hundred INSERTs, not 100,000).

Checkpoints are saved when their step COMPLETES, except one that carries ``"_commit": "RUN_COMPLETED"``
(the ``cdc`` extractor's cursor): that one waits on the run (``Run.pending_checkpoints``, so it survives a
pause) and is saved, without the key, in the same transaction that marks the run COMPLETED, and only when
no step of the run FAILED. A run that fails, is cancelled or dies leaves the old checkpoint, so the next
run reads the same rows again: what the extractor emitted reached its loaders at least once.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from django.db import connections, transaction
from django.utils import timezone

from datahub_project import generations
from runs import hooks
from runs.engine.events import (
    Event,
    HookFired,
    RecordFailed,
    RecordRetried,
    RunFinished,
    RunStarted,
    StepCounts,
    StepFinished,
    StepInterrupted,
    StepProgress,
    StepRetrying,
    StepStarted,
)
from runs.engine.status import Handover
from runs.models import Checkpoint, RecordAttempt, RecordError, Run, RunStatus, StepRun, StepStatus
from runs.run_logs import RunLogger
from runs.tracing import RunTracer

log = logging.getLogger(__name__)

_FLUSH_EVERY = 500
_CANCEL_CHECK_SECONDS = 1.0
_BEAT_WHILE_WRITING_SECONDS = 2.0
# A checkpoint with this key and value is saved only when the run ends COMPLETED (see the module docstring;
# pipelines.adapters.cdc writes it).
DEFER_KEY, DEFER_UNTIL = "_commit", "RUN_COMPLETED"


class DjangoRunStore:
    def __init__(self, run: Run):
        self.run = run
        # The claim wrote a lease token on the run; every write that ends the run, and every heartbeat, is
        # conditional on it, so a worker that was silent too long and was replaced cannot write over the
        # new owner.
        self.lease = run.lease
        self._last_beat = time.monotonic()
        self._errors: list[RecordError] = []
        self._attempts: list[RecordAttempt] = []
        self._last_cancel_check = 0.0
        self._cancelled = False
        # LOG hook messages for steps still running; they join the step's warnings when it ends.
        self._hook_warnings: dict[str, list[str]] = {}
        # The run's log (runs.run_logs): lines from these same events, written with the failed records.
        self._log = RunLogger(run)
        # Spans of this execution when OpenTelemetry export is on (runs.tracing; a no-op otherwise).
        self._trace = RunTracer(run)

    def emit(self, event: Event) -> None:
        now = timezone.now()
        self._log.record(event, now)
        self._trace.record(event)
        if isinstance(event, (HookFired, RunFinished)):
            # These may reach past this run (a hook's own writes; a run's end starts its followers and
            # gates): the page cache then drops every run's pages.
            self._record(event, now)
            return
        # Every write below is filtered by this run: the page cache drops this run's pages and the lists,
        # not the pages of every other run (datahub_project.generations).
        with generations.writing_run(self.run.pk):
            self._record(event, now)

    def _record(self, event: Event, now) -> None:
        if isinstance(event, RunStarted):
            existing = set(StepRun.objects.filter(run=self.run).values_list("step_key", flat=True))
            StepRun.objects.bulk_create(
                StepRun(run=self.run, position=n, step_key=key)
                for n, key in enumerate(event.step_keys)
                if key not in existing
            )
        elif isinstance(event, StepStarted):
            # An attempt starts from no records (its row may show an earlier attempt's live counters).
            c = self.live_counts(event.step_key, StepCounts())
            StepRun.objects.filter(run=self.run, step_key=event.step_key).update(
                status=StepStatus.RUNNING, attempts=event.attempt, error="", records_in=c.records_in,
                records_out=c.records_out, records_error=c.errors, records_dropped=c.dropped,
                records_expected=None, records_per_second=None,
                **({"started_at": now} if event.attempt == 1 else {}),
            )
        elif isinstance(event, StepProgress):
            # Only onto the row of the attempt still running: never over a step's end or a newer attempt.
            c = self.live_counts(event.step_key, event.counts)
            StepRun.objects.filter(run=self.run, step_key=event.step_key, status=StepStatus.RUNNING,
                                   attempts=event.attempt).update(
                records_in=c.records_in, records_out=c.records_out, records_error=c.errors,
                records_expected=event.expected, records_per_second=event.rate,
            )
        elif isinstance(event, StepInterrupted):
            StepRun.objects.filter(run=self.run, step_key=event.step_key).update(
                status=StepStatus.PENDING, error=f"interrupted: {event.reason}")
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
                records_expected=None,
                records_per_second=None,
                finished_at=now,
                duration_ms=event.duration_ms,
                error=event.error or "",
                warnings=list(event.warnings) + self._hook_warnings.pop(event.step_key, []),
                outputs=event.outputs,
            )
            if event.checkpoint is not None and not self.run.dry_run:
                data = dict(event.checkpoint)
                if data.pop(DEFER_KEY, None) == DEFER_UNTIL:
                    self._defer_checkpoint(event.step_key, data)
                else:
                    self._save_checkpoint(event.step_key, data)
        elif isinstance(event, HookFired):
            hooks.dispatch(self, event)
        elif isinstance(event, RunFinished):
            self._flush_errors()
            self._run_finished(event, now)

    def live_counts(self, step_key: str, counts: StepCounts) -> StepCounts:
        """What a running step's row shows for ``counts`` of its attempt so far (a continuous run's store
        adds its earlier sub-runs')."""
        return counts

    def _run_finished(self, event: RunFinished, now) -> None:
        """Write the run's end, only while this worker still owns it (RUNNING): a worker that froze past
        the heartbeat timeout and wakes up after the reaper failed its run changes nothing. A pause is
        written by runs.services together with what the run needs to continue, in one transaction."""
        with transaction.atomic():
            owned = self.owned().select_for_update().exists()
            if not owned:
                log.warning("run %s was taken over (by another worker, or failed) before it ended as %s; its "
                            "end is not written", self.run.pk, event.status)
                return
            if event.status in (RunStatus.PAUSED, Handover.HANDED_BACK):  # written by runs.services with the run's state
                Run.objects.filter(pk=self.run.pk).update(heartbeat_at=now)
                return
            note = self.settle_checkpoints(event.status)
            Run.objects.filter(pk=self.run.pk).update(
                status=event.status,
                error="; ".join(e for e in (event.error, note) if e),
                finished_at=now,
                heartbeat_at=now,
            )

    def _save_checkpoint(self, step_key: str, data: dict) -> None:
        Checkpoint.objects.update_or_create(pipeline_id=self.run.pipeline_id, step_key=step_key,
                                            defaults={"data": data})

    def _defer_checkpoint(self, step_key: str, data: dict) -> None:
        pending = Run.objects.filter(pk=self.run.pk).values_list("pending_checkpoints", flat=True).first() or {}
        pending[step_key] = data
        Run.objects.filter(pk=self.run.pk).update(pending_checkpoints=pending)

    def settle_checkpoints(self, status: str) -> str:
        """Save the run's pending checkpoints if it ended COMPLETED with no FAILED step, else drop them (a
        PAUSED run keeps them). Returns a note for the run's error when they were held back."""
        if status == RunStatus.PAUSED:
            return ""
        pending = Run.objects.filter(pk=self.run.pk).values_list("pending_checkpoints", flat=True).first()
        if not pending:
            return ""
        Run.objects.filter(pk=self.run.pk).update(pending_checkpoints={})
        if status != RunStatus.COMPLETED:
            return ""
        failed = sorted(StepRun.objects.filter(run=self.run, status=StepStatus.FAILED)
                        .values_list("step_key", flat=True))
        if failed:
            return (f"checkpoint of step {', '.join(repr(k) for k in sorted(pending))} not advanced because step "
                    f"{', '.join(repr(k) for k in failed)} failed: the next run reads the same changes again")
        for step_key, data in pending.items():
            self._save_checkpoint(step_key, data)
        return ""

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
        self._log.flush()
        # Writing a step's 100,000 failed records takes the executor's thread a while: beat meanwhile, or a
        # slow database would make this worker look dead (DATAHUB_HEARTBEAT_TIMEOUT) and its run be taken over.
        now = time.monotonic()
        if now - self._last_beat >= _BEAT_WHILE_WRITING_SECONDS:
            self._last_beat = now
            self.heartbeat()

    def cancel_requested(self) -> bool:
        if self._cancelled:
            return True
        now = time.monotonic()
        if now - self._last_cancel_check >= _CANCEL_CHECK_SECONDS:
            self._last_cancel_check = now
            self._cancelled = Run.objects.filter(pk=self.run.pk, cancel_requested=True).exists()
        return self._cancelled

    def owned(self):
        """The run's row while this worker still owns it (empty otherwise)."""
        return Run.objects.filter(pk=self.run.pk, status=RunStatus.RUNNING, lease=self.lease)

    def heartbeat(self) -> bool:
        with generations.writing_run(self.run.pk):
            return bool(self.owned().update(heartbeat_at=timezone.now()))

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
