"""Messages into runs: the MESSAGE trigger's only door to the database.

``take_batch`` turns a batch of decoded messages into at most one run, idempotently: inside one
transaction it looks up each message key, starts a run seeded with the records of the messages it has
not seen, and stores key -> run. Only after that transaction commits may the caller acknowledge the
messages, so a consumer that dies at any point loses nothing: before the commit the messages come back
and are new; after it they come back and find their run (no second run starts). Two consumers racing
with the same message both try to insert its key; the unique constraint fails one of them, whose
transaction (and run) rolls back, and its messages come back to find the winner's run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from pipelines.models import Pipeline
from runs import services
from runs.consumers.models import Consumer, DeadLetter, MessageDelivery
from runs.models import Run, RunStatus

RETRYABLE_RUN_STATUSES = (RunStatus.FAILED, RunStatus.CANCELLED)


@dataclass
class Intake:
    run_id: int | None = None  # the run this batch started, if it started one
    runs: dict[str, int] = field(default_factory=dict)  # every message key -> the run it is in
    exhausted: dict[str, tuple[str, int]] = field(default_factory=dict)  # key -> (reason, attempts): dead letters


def run_failure(run: Run) -> str:
    return f"run {run.pk} ended {run.status}" + (f": {run.error[:500]}" if run.error else "")


def take_batch(consumer: Consumer, messages: list[tuple[str, list[dict]]], *, max_retries: int,
               retry_failed_runs: bool) -> Intake:
    """One run for the messages of the batch not yet in a run (``retry_failed_runs``: nor in a run that
    failed, up to ``max_retries`` retries); returns where every message is. Raises what create_run raises
    (nothing is written then)."""
    intake = Intake()
    keys = [key for key, _ in messages]
    with transaction.atomic():
        # Locked without a join: PostgreSQL refuses FOR UPDATE on the nullable side of one.
        known = {d.key: d for d in MessageDelivery.objects.select_for_update().filter(consumer=consumer, key__in=keys)}
        runs = run_statuses(d.run_id for d in known.values() if d.run_id is not None)
        seeds: list[dict] = []
        fresh: list[str] = []
        retried: list[MessageDelivery] = []
        for key, records in messages:
            if key in fresh or any(d.key == key for d in retried):
                continue  # the same message twice in one batch (published twice with one id): one copy
            delivery = known.get(key)
            run = runs.get(delivery.run_id) if delivery is not None else None
            if delivery is None:
                fresh.append(key)
            elif retry_failed_runs and run is not None and run.status in RETRYABLE_RUN_STATUSES:
                if delivery.attempts > max_retries:
                    reason = (f"{run_failure(run)}; gave up after {delivery.attempts} runs "
                              f"(maxRetries {max_retries})")
                    intake.exhausted[key] = (reason, delivery.attempts)
                    continue
                retried.append(delivery)
            else:
                # Its run exists (active, completed, or failed while only its creation counts): nothing new.
                intake.runs[key] = delivery.run_id
                continue
            seeds.extend(records)
        if fresh or retried:
            pipeline = Pipeline.objects.get(pk=consumer.pipeline_id)
            run = services.create_run(pipeline, trigger="message", seed_step=consumer.trigger_key,
                                      seed_records=seeds, allow_concurrent=True)
            MessageDelivery.objects.bulk_create([MessageDelivery(consumer=consumer, key=k, run=run) for k in fresh])
            MessageDelivery.objects.filter(pk__in=[d.pk for d in retried]).update(run=run, attempts=F("attempts") + 1)
            Consumer.objects.filter(pk=consumer.pk).update(runs_started=F("runs_started") + 1)
            intake.run_id = run.pk
            intake.runs.update({k: run.pk for k in fresh})
            intake.runs.update({d.key: run.pk for d in retried})
            transaction.on_commit(lambda: services.enqueue(run.pk))
    return intake


def run_statuses(run_ids) -> dict[int, Run]:
    return {r.pk: r for r in Run.objects.filter(pk__in=set(run_ids)).only("id", "status", "error")}


def attempts_of(consumer: Consumer, keys) -> dict[str, int]:
    return dict(MessageDelivery.objects.filter(consumer=consumer, key__in=list(keys)).values_list("key", "attempts"))


def _storable(text: str) -> str:
    """PostgreSQL text cannot hold NUL; a dead letter shows it as \\x00."""
    return text.replace("\x00", "\\x00")


def record_dead_letter(consumer: Consumer, key: str, body: bytes, reason: str, attempts: int = 1) -> None:
    text = _storable(body.decode("utf-8", errors="replace"))[:DeadLetter.MAX_BODY]
    with transaction.atomic():
        DeadLetter.objects.create(consumer=consumer, key=_storable(key)[:255], body=text, reason=_storable(reason),
                                  attempts=attempts)
        Consumer.objects.filter(pk=consumer.pk).update(dead_letters=F("dead_letters") + 1)


def count(consumer: Consumer, *, last_error: str | None = None, **increments: int) -> None:
    """Add to the consumer's counters (received, acked, errors) and set ``last_error`` when given."""
    values: dict = {name: F(name) + n for name, n in increments.items() if n}
    if last_error is not None:
        values["last_error"] = f"{timezone.now():%Y-%m-%d %H:%M:%S} UTC: {last_error}"[:2000]
    if values:
        Consumer.objects.filter(pk=consumer.pk).update(**values)
