"""Continuous CDC runs: one long run that polls a table and pushes every batch through the pipeline.

A pipeline whose ``cdc`` EXTRACT step has ``mode: CONTINUOUS`` runs here instead of once through the
executor (:func:`continuous_step` decides; dry runs, previews with a record limit, seeded and resumed runs
run once as usual). The loop, until the run is cancelled:

1. Peek: the extractor polls with a record limit of 1 (a cheap ``LIMIT 1``). Nothing changed: the poll's
   statistics and observations are saved into the checkpoint (its cursor is unchanged, so nothing can be
   skipped by saving it), the progress is updated and the loop sleeps ``pollIntervalMs``.
2. Something changed: the whole pipeline executes as a sub-run of this run (the same StepRuns, record
   errors and hooks; counts add up). Its cdc step reads one batch from the committed cursor and leaves
   the new cursor pending; the sub-run's end commits it only if every step succeeded (runs.store).
3. A sub-run that fails ends the run FAILED, with the cursor still before the batch; the next run reads
   it again (at least once). A cancel stops the loop between polls, or the sub-run in flight (whose batch
   is then read again by the next run).

When the poll found a full batch the next one follows at once; otherwise after ``pollIntervalMs``.
``Run.progress`` shows polls, batches, changes, the cursor and the lag; the cdc step's first warning line
says the same on the run page.

A django-q2 task may not outlive ``Q_CLUSTER["timeout"]``: before that (``DATAHUB_CONTINUOUS_RUN_SECONDS``,
default 80 % of it) the run hands itself over: it goes back to PENDING and is queued again, and a worker
continues it from the committed checkpoint with its counts and start time kept. It does the same when its
worker drains (``manage.py worker`` stopping: between polls, or at once when the batch in flight is
interrupted) and when its worker disappears (the reaper takes it back): the batch that was not committed
is read again, so no change is lost (at least once; upserts make it exactly once in the target).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from pipelines.adapters import cdc as cdc_adapter
from pipelines.definition import Definition, StepSpec
from pipelines.errors import ConfigError, DatahubError, StepError
from pipelines.registry import extractors
from runs import drain
from runs.engine.context import RunOptions, StepContext
from runs.engine.events import Event, RunFinished, StepCounts, StepFinished
from runs.engine.executor import RunResult, execute
from runs.engine.status import Handover
from runs.launch import enqueue
from runs.models import Run, RunEvent, RunEventKind, RunStatus, StepRun
from runs.store import DjangoRunStore

log = logging.getLogger(__name__)

PROGRESS_PREFIX = "continuous CDC: "
# A peek that fails with a retryable error (the database restarting) is tried again after pollIntervalMs,
# this many times in a row at least (or the step's ``retries``), before the run fails.
PEEK_ATTEMPTS = 3
HEARTBEAT_SECONDS = 5.0


def continuous_step(definition: Definition) -> StepSpec | None:
    """The pipeline's continuous cdc step, or None. Two of them cannot share one run."""
    steps = [s for s in definition.steps if s.type == "EXTRACT" and s.adapter_code == "cdc" and not s.disabled
             and cdc_adapter.is_continuous(s.config)]
    if len(steps) > 1:
        raise ConfigError(f"steps {', '.join(repr(s.key) for s in steps)} are both continuous cdc steps; a "
                          "pipeline may have one")
    return steps[0] if steps else None


def step_for(run: Run, definition: Definition) -> StepSpec | None:
    """The continuous cdc step when ``run`` should run continuously (not a dry run, preview, replay or
    resumed gate)."""
    if run.dry_run or run.record_limit is not None or run.seed_step or run.resume_state:
        return None
    return continuous_step(definition)


def budget_seconds() -> float:
    explicit = getattr(settings, "DATAHUB_CONTINUOUS_RUN_SECONDS", None)
    if explicit:
        return float(explicit)
    return 0.8 * float(settings.Q_CLUSTER.get("timeout") or 3600)


class ContinuousStore(DjangoRunStore):
    """DjangoRunStore for the sub-runs of one continuous run: a sub-run's end commits or drops its
    pending checkpoint but does not end the run; step counts add up over sub-runs."""

    def __init__(self, run: Run, step_key: str):
        super().__init__(run)
        self.step_key = step_key
        self.totals: dict[str, StepCounts] = {
            s.step_key: StepCounts(s.records_in, s.records_out, s.records_error, s.records_dropped)
            for s in StepRun.objects.filter(run=run)
        }
        self.sub_status: str | None = None
        self.sub_error: str = ""

    def emit(self, event: Event) -> None:
        if isinstance(event, StepFinished):
            total = self.live_counts(event.step_key, event.counts)
            self.totals[event.step_key] = total
            event = dataclasses.replace(event, counts=total)
        super().emit(event)

    def live_counts(self, step_key: str, counts: StepCounts) -> StepCounts:
        before = self.totals.get(step_key, StepCounts())
        return StepCounts(before.records_in + counts.records_in, before.records_out + counts.records_out,
                          before.errors + counts.errors, before.dropped + counts.dropped)

    def _run_finished(self, event: RunFinished, now) -> None:
        # The end of one sub-run: settle its checkpoint; the run goes on.
        note = self.settle_checkpoints(event.status)
        self.sub_status = event.status
        self.sub_error = "; ".join(e for e in (event.error, note) if e)
        if note:
            self.sub_status = RunStatus.FAILED
        Run.objects.filter(pk=self.run.pk).update(heartbeat_at=now)

    def finish(self, status: str, error: str = "") -> None:
        """The end of the run itself."""
        DjangoRunStore._run_finished(self, RunFinished(status, error or None), timezone.now())


def run_continuous(run: Run, definition: Definition, step: StepSpec, options: RunOptions) -> RunResult | None:
    """Poll and push batches until cancelled, a sub-run fails, or the time budget is spent."""
    store = ContinuousStore(run, step.key)
    progress = dict(run.progress or {})
    if progress.get("startedAt"):  # a handed-over run keeps its start
        Run.objects.filter(pk=run.pk).update(started_at=datetime.fromisoformat(progress["startedAt"]))
    else:
        progress = {"mode": "CONTINUOUS", "step": step.key, "startedAt": (run.started_at or timezone.now()).isoformat(),
                    "polls": 0, "batches": 0, "records": 0}
    interval = cdc_adapter.poll_interval_ms(step.config) / 1000
    deadline = time.monotonic() + budget_seconds()
    result: RunResult | None = None
    status, error = RunStatus.CANCELLED, "cancelled by request"
    failures = 0
    try:
        while True:
            if store.cancel_requested():
                break
            if not store.heartbeat():
                log.warning("continuous run %s: another worker has taken it over; stopping", run.pk)
                return result
            if drain.draining():
                _hand_over(run, progress, why="the worker was stopping")
                return result
            try:
                found, peeked = _peek(step, store, options, definition)
                failures = 0
            except StepError as exc:
                failures += 1
                if not exc.retryable or failures >= max(PEEK_ATTEMPTS, step.retries):
                    raise
                progress["lastError"] = str(exc)
                _show(run, store, step.key, progress)
                _sleep(interval, store)
                continue
            progress.pop("lastError", None)
            if not found:
                # Nothing to emit. The cursor may still have moved past rows that are not wanted (soft
                # deletes without includeDeletes): saving it skips nothing, and more may follow at once.
                store._save_checkpoint(step.key, peeked)
                progress["polls"] += 1
                _show(run, store, step.key, progress)
                backlog = bool((peeked.get("poll") or {}).get("backlog"))
            else:
                if result is not None:
                    _close(result)
                result = execute(definition, store, options)
                if result.status is Handover.LOST:
                    return result
                if result.status is Handover.HANDED_BACK:
                    _hand_over(run, progress, why="the worker was stopping (the batch in flight is read again)")
                    return result
                if result.status == RunStatus.CANCELLED or store.cancel_requested():
                    break
                if store.sub_status != RunStatus.COMPLETED:
                    status = RunStatus.FAILED
                    error = f"batch {progress['batches'] + 1} failed: {store.sub_error or result.error or 'unknown'}"
                    if result.status == RunStatus.PAUSED:
                        error = ("a continuous CDC run cannot pause at a gate (it would hold every later batch); "
                                 "remove the gate or use mode ONE_SHOT")
                    break
                counts = result.counts.get(step.key)
                progress["polls"] += 1
                progress["batches"] += 1
                progress["records"] += counts.records_out if counts else 0
                _show(run, store, step.key, progress)
                backlog = bool((_committed(store, step.key).get("poll") or {}).get("backlog"))
            if time.monotonic() >= deadline:
                _hand_over(run, progress, why="")
                return result
            if not backlog:
                _sleep(interval, store)
    except DatahubError as exc:
        status, error = RunStatus.FAILED, f"polling step '{step.key}' failed: {exc}"
    except Exception as exc:  # the run must never stay RUNNING because of a bug
        log.exception("continuous run %s crashed", run.pk)
        status, error = RunStatus.FAILED, f"internal error: {type(exc).__name__}: {exc}"
    store.finish(status, error)
    return result


def _peek(step: StepSpec, store: ContinuousStore, options: RunOptions, definition: Definition):
    """(whether a change is waiting, the checkpoint after the peek). The peek reads at most one row."""
    checkpoint = store.load_checkpoint(step.key)
    ctx = StepContext(step=step, definition=definition, options=dataclasses.replace(options, record_limit=1),
                      checkpoint=checkpoint)
    adapter_ctx = ctx.adapter_context()
    extractor = extractors.get("cdc").impl(dict(step.config), adapter_ctx)
    found = False
    try:
        for batch in extractor.batches():
            if batch:
                found = True
                break
    finally:
        extractor.close()
    if found:
        return True, None
    data = dict(checkpoint)
    data.pop(cdc_adapter.COMMIT_KEY, None)
    return False, data


def _committed(store: ContinuousStore, step_key: str) -> dict:
    return store.load_checkpoint(step_key)


def _show(run: Run, store: ContinuousStore, step_key: str, progress: dict) -> None:
    """Write the progress on the run and as the first warning line of the cdc step (the run page)."""
    saved = _committed(store, step_key)
    poll = saved.get("poll") or {}
    cursor = saved.get("cursor") or {}
    progress.update(
        lastPollAt=poll.get("at"), lagSeconds=poll.get("lagSeconds"), heldBackBy=poll.get("heldBackBy"),
        backlog=bool(poll.get("backlog")),
        lastCursor=({"tracking": cursor["tracking"].get("value"), "key": [k.get("value") for k in cursor["key"]]}
                    if cursor.get("tracking") else None),
    )
    lag = progress.get("lagSeconds")
    line = (f"{PROGRESS_PREFIX}{progress['batches']} batches, {progress['records']} changes in {progress['polls']} "
            f"polls; lag {'?' if lag is None else f'{lag:.1f}'} s"
            + (f" (held back by {progress['heldBackBy']})" if progress.get("heldBackBy") else "")
            + (f"; cursor {progress['lastCursor']['tracking']} / {progress['lastCursor']['key']}"
               if progress.get("lastCursor") else ""))
    # One transaction: whoever reads the run's progress also finds the step's line saying the same.
    with transaction.atomic():
        Run.objects.filter(pk=run.pk).update(progress=progress, heartbeat_at=timezone.now())
        row = StepRun.objects.filter(run=run, step_key=step_key).first()
        if row is not None:
            rest = [w for w in (row.warnings or []) if not str(w).startswith(PROGRESS_PREFIX)]
            StepRun.objects.filter(pk=row.pk).update(warnings=[line, *rest])


def _sleep(seconds: float, store: ContinuousStore) -> None:
    """Wait for the next poll, noticing a cancel within a quarter second and beating the heart meanwhile."""
    end = time.monotonic() + seconds
    beat = time.monotonic() + HEARTBEAT_SECONDS
    while True:
        now = time.monotonic()
        left = end - now
        if left <= 0 or store.cancel_requested():
            return
        if now >= beat:
            store.heartbeat()
            beat = now + HEARTBEAT_SECONDS
        time.sleep(min(left, 0.25))


def _close(result: RunResult) -> None:
    for outputs in result.outputs.values():
        for buf in {id(b): b for b in outputs.values()}.values():
            buf.close()


def _hand_over(run: Run, progress: dict, why: str) -> None:
    """Give the run back to the queue (before the task timeout, or because the worker drains): PENDING,
    queued again, continued by a worker from the committed checkpoint. A cancel in between finds it PENDING
    and cancels it at once."""
    with transaction.atomic():
        moved = Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING, cancel_requested=False,
                                   lease=run.lease).update(
            status=RunStatus.PENDING, progress=progress, heartbeat_at=timezone.now(), worker="")
        if moved:
            if why:
                RunEvent.objects.create(run=run, kind=RunEventKind.HANDED_BACK, worker=run.worker,
                                        detail=f"{why}; queued again to continue from the committed checkpoint")
            transaction.on_commit(lambda: enqueue(run.pk))
    if not moved:
        DjangoRunStore(run).emit(RunFinished(RunStatus.CANCELLED, "cancelled by request"))

