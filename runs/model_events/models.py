"""The EVENT trigger's tables (app ``runs``; imported by runs.models).

* ``EventSubscription``: one per enabled EVENT trigger of an enabled pipeline, kept in step with the
  pipeline when it is saved (:func:`runs.model_events.dispatch.sync_pipeline`). The capture reads them
  inside the writing transaction to know who wants an event.
* ``OutboxEvent``: one change of one object for one subscription, written in the transaction that made
  the change. ``run`` is set in the transaction that creates the run it seeds: an event is done exactly
  when its run exists, and never belongs to two runs.
"""

from __future__ import annotations

from django.db import models

from pipelines.models import Pipeline


class EventSubscription(models.Model):
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="+")
    trigger_key = models.CharField(max_length=100)
    model_labels = models.JSONField(default=list, help_text="Lower-case app_label.model labels.")
    operations = models.JSONField(default=list)
    debounce_ms = models.PositiveIntegerField(default=2000)
    max_wait_ms = models.PositiveIntegerField(default=60_000)
    max_events = models.PositiveIntegerField(default=1000)
    # True while a dispatch task is queued or waiting for this subscription's batch, so that a burst of
    # events queues one task, not one per event. Set by the capture, cleared by the task when it stops.
    wake_queued = models.BooleanField(default=False)

    class Meta:
        ordering = ["pipeline", "trigger_key"]
        constraints = [models.UniqueConstraint(fields=["pipeline", "trigger_key"], name="event_subscription_unique")]

    def __str__(self) -> str:
        return f"{self.pipeline.code}/{self.trigger_key}: {', '.join(self.model_labels)}"


class OutboxEvent(models.Model):
    subscription = models.ForeignKey(EventSubscription, on_delete=models.CASCADE, related_name="events")
    model = models.CharField(max_length=200)
    object_pk = models.JSONField()
    operation = models.CharField(max_length=10)
    changed_fields = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)
    # CASCADE: an event leaves with its run (retention), never turning pending again.
    run = models.ForeignKey("runs.Run", null=True, blank=True, on_delete=models.CASCADE, related_name="+")

    class Meta:
        ordering = ["pk"]
        indexes = [models.Index(fields=["subscription", "run"], name="outbox_pending")]

    def __str__(self) -> str:
        return f"{self.model} {self.object_pk} {self.operation}"
