"""The MESSAGE trigger's tables (app ``runs``; imported by runs.models).

* ``Consumer``: one per MESSAGE trigger of a pipeline. What people want (``desired``), what the owning
  ``manage.py consume`` process reports (``state``, heartbeat, counters, lag, rate), and who owns it: a
  process takes a consumer with a conditional UPDATE (free, or its owner's heartbeat is stale), so two
  processes never run the same consumer's loops.
* ``MessageDelivery``: message key -> the run it seeded. The unique key is what makes a redelivered message
  (a consumer died before acknowledging) find its run instead of starting another.
* ``DeadLetter``: a message that will not become a run, with the reason (also published to the
  dead-letter queue or stream, for programs).
"""

from __future__ import annotations

from django.db import models

from pipelines.models import Pipeline


class ConsumerState(models.TextChoices):
    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    FAILING = "FAILING"  # the broker cannot be reached or the config is unusable; retried every few seconds


class Consumer(models.Model):
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="consumers")
    trigger_key = models.CharField(max_length=100)
    queue_type = models.CharField(max_length=20, blank=True, default="")
    queue_name = models.CharField(max_length=255, blank=True, default="")
    # RUNNING: a consume process should run it; STOPPED: nobody should. Set from the Queues page and the CLI.
    desired = models.CharField(max_length=12, choices=[("RUNNING", "RUNNING"), ("STOPPED", "STOPPED")],
                               default="RUNNING")
    state = models.CharField(max_length=12, choices=ConsumerState.choices, default=ConsumerState.STOPPED)
    owner = models.CharField(max_length=200, blank=True, default="")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    received = models.PositiveBigIntegerField(default=0)
    runs_started = models.PositiveBigIntegerField(default=0)
    acked = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveBigIntegerField(default=0)
    dead_letters = models.PositiveBigIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    lag = models.BigIntegerField(null=True, blank=True)
    rate = models.FloatField(default=0.0)  # messages received per second over the last minute
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pipeline__code", "trigger_key"]
        constraints = [models.UniqueConstraint(fields=["pipeline", "trigger_key"], name="consumer_unique_trigger")]

    def __str__(self) -> str:
        return f"{self.pipeline.code}/{self.trigger_key}"


class MessageDelivery(models.Model):
    consumer = models.ForeignKey(Consumer, on_delete=models.CASCADE, related_name="deliveries")
    key = models.CharField(max_length=255)
    # CASCADE: when retention deletes the run, its keys go too (a message redelivered after that is new).
    run = models.ForeignKey("runs.Run", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    # Runs started for this message: the first, then each retry (ackMode RUN_COMPLETED) or failed start.
    attempts = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["consumer", "key"], name="message_key_unique_per_consumer")]

    def __str__(self) -> str:
        return f"{self.consumer} {self.key} -> run {self.run_id}"


class DeadLetter(models.Model):
    consumer = models.ForeignKey(Consumer, on_delete=models.CASCADE, related_name="dead_letter_rows")
    key = models.CharField(max_length=255)
    body = models.TextField()  # as received (decoded leniently), cut at MAX_BODY characters
    reason = models.TextField()
    attempts = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    MAX_BODY = 64 * 1024

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.consumer} {self.key}: {self.reason[:60]}"
