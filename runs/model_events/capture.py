"""Writing model changes into the outbox, inside the transaction that makes them.

``post_save`` and ``post_delete`` receivers for every model (connected once in RunsConfig.ready); a model
not allowed by ``DATAHUB_EVENT_MODELS`` costs one set lookup. For an allowed one, the subscriptions are
read and one :class:`~runs.model_events.models.OutboxEvent` row is written per subscription that wants
the operation, on the same database connection: inside ``transaction.atomic()`` (or ATOMIC_REQUESTS) the
rows commit or roll back with the change. A delete is always inside Django's own transaction. A save in
autocommit mode is its own one-statement transaction, and the event follows it as a second statement: a
process dying between the two loses that event (wrap such saves in ``atomic()`` to close the gap).

Not seen, because Django sends no signals for them: ``QuerySet.update()``, ``bulk_create()`` /
``bulk_update()``, raw SQL, and fixture loading (``raw`` saves are skipped on purpose).
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from runs.model_events import dispatch
from runs.model_events.config import allowed
from runs.model_events.models import EventSubscription, OutboxEvent


def on_save(sender, instance, created, raw=False, using=None, update_fields=None, **kwargs) -> None:
    if not raw:
        capture(sender, instance, "created" if created else "updated", using,
                sorted(update_fields) if update_fields else None)


def on_delete(sender, instance, using=None, **kwargs) -> None:
    capture(sender, instance, "deleted", using, None)


def _json_pk(pk):
    return pk if isinstance(pk, int | str) else str(pk)


def capture(sender, instance, operation: str, using: str | None, changed_fields: list | None) -> None:
    label = sender._meta.concrete_model._meta.label_lower
    if not allowed(label, getattr(settings, "DATAHUB_EVENT_MODELS", None)):
        return
    subscriptions = [s for s in EventSubscription.objects.using(using)
                     if label in s.model_labels and operation in s.operations]
    if not subscriptions:
        return
    now = timezone.now()
    OutboxEvent.objects.using(using).bulk_create([
        OutboxEvent(subscription=s, model=sender._meta.concrete_model._meta.label, object_pk=_json_pk(instance.pk),
                    operation=operation, changed_fields=changed_fields, created_at=now)
        for s in subscriptions
    ])
    for s in subscriptions:
        # Only the first event of a quiet subscription queues a task; the task takes every event after it.
        if EventSubscription.objects.using(using).filter(pk=s.pk, wake_queued=False).update(wake_queued=True):
            transaction.on_commit(lambda pk=s.pk: dispatch.enqueue_wake(pk), using=using)
