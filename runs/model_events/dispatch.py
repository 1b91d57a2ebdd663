"""Turning outbox events into runs: debounced, batched, and each event in exactly one run.

A subscription's pending events (``run`` not set) become one run, seeded into its EVENT trigger with one
record per event, when the batch is due: no new event for ``debounceMs``, or ``maxWaitMs`` since its
first event, or ``maxEvents`` waiting (then the first ``maxEvents`` go, the rest make the next run).

Exactly once: :func:`dispatch` locks the subscription row, creates the run and sets ``run`` on the
batch's events in one transaction, and the marking is a conditional UPDATE (``run IS NULL``) whose row
count must match, or everything rolls back. A worker dying anywhere before the commit leaves the events
pending for the next pickup; a second pickup of the same events marks nothing and starts nothing.

Who calls it: the first event of a quiet subscription queues :func:`wake` (a django-q2 task) after its
transaction commits. The task dispatches, and sleeps while the batch is due within
:data:`SLEEP_LIMIT` seconds; longer waits, and anything a dead worker left, are picked up by
:func:`sweep`, scheduled every minute. A pipeline that allows no concurrent runs and has one active keeps
its events pending; they go when that run ends (``run_ended``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from pipelines.errors import DatahubError
from pipelines.models import Pipeline
from runs import services
from runs.engine.triggers import trigger_problems
from runs.model_events.config import EventSettings
from runs.model_events.models import EventSubscription, OutboxEvent
from runs.pipeline_followers import current_definition

log = logging.getLogger(__name__)

WAKE_FUNC = "runs.model_events.dispatch.wake"
SWEEP_NAME = "datahub: start runs for model events"
SLEEP_LIMIT = 30  # seconds a wake task waits for a batch before leaving it to the sweep
TASK_LIMIT = 300  # seconds a wake task keeps going before leaving the rest to the sweep


class MarkingRace(Exception):
    """Some of the batch's events were taken by another dispatcher meanwhile; this one rolls back."""


@dataclass
class Outcome:
    run_ids: list[int] = field(default_factory=list)
    wait: float | None = None  # seconds until the next batch is due; None: nothing left to wait for
    note: str = ""


# --- subscriptions follow their pipeline ------------------------------------------------------------


def specs_of(definition: dict) -> list[tuple[str, EventSettings]]:
    """The enabled EVENT triggers of a definition that can be subscribed (the others are logged)."""
    specs = []
    for step in definition.get("steps") or []:
        if not isinstance(step, dict) or step.get("type") != "TRIGGER" or step.get("disabled"):
            continue
        config = step.get("config") or {}
        if str(config.get("type", "")).upper() != "EVENT":
            continue
        problems = trigger_problems(config)
        if problems:
            log.warning("EVENT trigger '%s' is not subscribed: %s: %s", step.get("key"), *problems[0])
            continue
        specs.append((step["key"], EventSettings.of(config)))
    return specs


def sync_pipeline(pipeline_id: int) -> None:
    """Make the pipeline's subscriptions match its current revision (none when it is disabled). A kept
    subscription keeps its pending events; a removed one drops them (nobody wants them any more)."""
    with transaction.atomic():
        _, definition = current_definition(pipeline_id)
        specs = specs_of(definition) if definition is not None else []
        for key, spec in specs:
            EventSubscription.objects.update_or_create(pipeline_id=pipeline_id, trigger_key=key, defaults={
                "model_labels": list(spec.models), "operations": list(spec.operations), "debounce_ms": spec.debounce_ms,
                "max_wait_ms": spec.max_wait_ms, "max_events": spec.max_events})
        EventSubscription.objects.filter(pipeline_id=pipeline_id).exclude(trigger_key__in=[k for k, _ in specs]).delete()


def after_migrate() -> None:
    """Every pipeline's subscriptions synced, and the sweep scheduled."""
    from django_q.models import Schedule

    for pk in Pipeline.objects.values_list("pk", flat=True):
        sync_pipeline(pk)
    Schedule.objects.update_or_create(name=SWEEP_NAME, defaults={
        "func": "runs.model_events.dispatch.sweep", "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1})


# --- from events to runs --------------------------------------------------------------------------------


def _record(event: OutboxEvent) -> dict:
    record = {"model": event.model, "pk": event.object_pk, "operation": event.operation, "eventId": event.pk,
              "occurredAt": event.created_at.isoformat()}
    if event.changed_fields:
        record["fields"] = event.changed_fields
    return record


def _mark(events: list[OutboxEvent], run) -> None:
    """Done: the events belong to ``run``. Only events still pending are taken."""
    taken = OutboxEvent.objects.filter(pk__in=[e.pk for e in events], run__isnull=True).update(run=run)
    if taken != len(events):
        raise MarkingRace(f"{len(events) - taken} of {len(events)} events were taken meanwhile")


def dispatch(subscription_id: int, *, now: datetime | None = None) -> Outcome:
    """Start the subscription's next batch if it is due (one transaction); say how long until it is."""
    now = now or timezone.now()
    pipeline_id = EventSubscription.objects.filter(pk=subscription_id).values_list("pipeline_id", flat=True).first()
    if pipeline_id is None:
        return Outcome(note="no such subscription")
    with transaction.atomic():
        # Row locks, pipeline first as sync_pipeline takes them: dispatchers of one subscription take turns
        # (SQLite: its write lock does), and a pipeline being saved or disabled is not started meanwhile.
        pipeline = Pipeline.objects.select_for_update().filter(pk=pipeline_id).first()
        sub = EventSubscription.objects.select_for_update().filter(pk=subscription_id).first()
        if pipeline is None or sub is None:
            return Outcome(note="no such subscription")
        if not pipeline.enabled:  # its subscriptions go (with their events) when the disabling commits
            return Outcome(note=f"pipeline '{pipeline.code}' is disabled")
        pending = OutboxEvent.objects.filter(subscription=sub, run__isnull=True)
        seen = pending.aggregate(n=Count("pk"), first=Min("created_at"), last=Max("created_at"))
        if not seen["n"]:
            EventSubscription.objects.filter(pk=sub.pk).update(wake_queued=False)
            return Outcome(note="nothing pending")
        due_at = min(seen["last"] + timedelta(milliseconds=sub.debounce_ms),
                     seen["first"] + timedelta(milliseconds=sub.max_wait_ms))
        if seen["n"] < sub.max_events and now < due_at:
            return Outcome(wait=(due_at - now).total_seconds(), note=f"{seen['n']} event(s) waiting")
        batch = list(pending.order_by("pk")[: sub.max_events])
        try:
            run = services.create_run(pipeline, trigger="event", seed_step=sub.trigger_key,
                                      seed_records=[_record(e) for e in batch])
        except DatahubError as exc:
            # Busy (one active run at a time) or changed meanwhile: the events wait for the run's end.
            EventSubscription.objects.filter(pk=sub.pk).update(wake_queued=False)
            log.info("EVENT trigger %s/%s: %s event(s) wait: %s", pipeline.code, sub.trigger_key, seen["n"], exc)
            return Outcome(note=f"waiting: {exc}")
        _mark(batch, run)
        more = seen["n"] > len(batch)
        if not more:  # the caller stops here: the next event must queue a task again
            EventSubscription.objects.filter(pk=sub.pk).update(wake_queued=False)
        transaction.on_commit(lambda: services.enqueue(run.pk))
    return Outcome([run.pk], 0.0 if more else None, f"run {run.pk} with {len(batch)} event(s)")


def enqueue_wake(subscription_id: int) -> None:
    from django_q.tasks import async_task

    async_task(WAKE_FUNC, subscription_id, task_name=f"events-{subscription_id}-{time.time_ns()}", group="events")


def wake(subscription_id: int) -> str:
    """django-q2 task: dispatch the subscription's batches as they fall due, while they are near."""
    deadline = time.monotonic() + TASK_LIMIT
    started = []
    while True:
        outcome = dispatch(subscription_id)
        started += outcome.run_ids
        if outcome.wait is None:
            return f"started {started or 'no runs'}; {outcome.note}"
        if outcome.wait > SLEEP_LIMIT or time.monotonic() + outcome.wait > deadline:
            return f"started {started or 'no runs'}; the sweep takes the rest ({outcome.note})"
        time.sleep(outcome.wait)


def sweep() -> int:
    """Every minute: dispatch what is due and was not dispatched (long waits, a dead worker's leftovers)."""
    started = 0
    busy = EventSubscription.objects.filter(wake_queued=True).values_list("pk", flat=True)
    pending = OutboxEvent.objects.filter(run__isnull=True).values_list("subscription_id", flat=True)
    for pk in sorted(set(busy) | set(pending)):
        while True:
            outcome = dispatch(pk)
            started += len(outcome.run_ids)
            if outcome.wait != 0.0:
                break
    return started


def on_run_ended(sender, run, **kwargs) -> None:
    """``run_ended`` receiver: events that waited for this run's end may go now."""
    for pk in EventSubscription.objects.filter(pipeline_id=run.pipeline_id).values_list("pk", flat=True):
        if not OutboxEvent.objects.filter(subscription_id=pk, run__isnull=True).exists():
            continue
        if EventSubscription.objects.filter(pk=pk, wake_queued=False).update(wake_queued=True):
            transaction.on_commit(lambda pk=pk: enqueue_wake(pk))

