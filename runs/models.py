"""Runs of pipelines: the run, one StepRun per step, failed records, and checkpoints.

A run is claimed by its worker with a conditional UPDATE (PENDING -> RUNNING, with a new ``lease``), so a
task delivered twice executes once; while it runs the worker writes ``heartbeat_at``, and a sweep takes
back the runs whose worker went silent (PENDING again, resumed elsewhere; FAILED past the resume limit).
``RunEvent`` rows tell that story on the run page and in the APIs.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from pipelines.models import Pipeline, PipelineRevision
from runs.engine import status as engine_status

# The statuses are the engine's (runs.engine.status, plain Python), as Django choices: written once.
RunStatus = models.TextChoices("RunStatus", [(s.name, s.value) for s in engine_status.RunStatus])
StepStatus = models.TextChoices("StepStatus", [(s.name, s.value) for s in engine_status.StepStatus])

ACTIVE_STATUSES = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.PAUSED)
ENDED_STATUSES = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)


# What lists of runs leave out: JSON only a run's own page or its worker reads (a paused run's executor
# state, a seeded run's records: megabytes at worst) and the revision's definition. Reading them back
# (PostgreSQL parses jsonb into Python) is what made lists of runs slow under load.
LIST_DEFERRED = ("seed_records", "resume_state", "pending_releases", "pending_checkpoints", "progress",
                 "revision__definition", "pipeline__context", "pipeline__extra")


# What lists of runs read of the related rows (the run's own columns but its JSON are read too): building
# the whole pipeline, revision and user of each row was a third of a list's ORM time. A list that shows
# another related field must add it here (tests/ops/test_query_counts.py fails on a query per row).
LIST_RELATED_FIELDS = ("pipeline__code", "pipeline__name", "revision__number", "triggered_by__username")


class RunQuerySet(models.QuerySet):
    def for_listing(self) -> RunQuerySet:
        """Runs as lists show them: the run without its JSON columns (:data:`LIST_DEFERRED`), with the
        pipeline's code and name, the revision's number and the starter's user name in the same query."""
        own = [f.name for f in Run._meta.concrete_fields if not isinstance(f, models.JSONField)]
        return self.select_related("pipeline", "revision", "triggered_by").only(*own, *LIST_RELATED_FIELDS)


class Run(models.Model):
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="runs")
    revision = models.ForeignKey(PipelineRevision, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=12, choices=RunStatus.choices, default=RunStatus.PENDING, db_index=True)
    dry_run = models.BooleanField(default=False)
    record_limit = models.PositiveIntegerField(null=True, blank=True)
    trigger = models.CharField(max_length=20, default="manual")
    triggered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, default="")
    # A new token at every claim: the owner's writes (heartbeat, hand-back, end) are conditional on it, so
    # a worker that was silent too long and was replaced (even by a claim in the same process) writes nothing.
    lease = models.CharField(max_length=32, blank=True, default="")
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True, default="")
    # A seeded run starts at seed_step with these records as its input (a webhook body, a replay).
    seed_step = models.CharField(max_length=100, blank=True, default="")
    seed_records = models.JSONField(null=True, blank=True)
    replay_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays")
    # The run whose TRIGGER_PIPELINE hook started this one: a chain of parents is how loops are refused.
    parent_run = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="child_runs")
    # What a PAUSED run needs to continue on any worker (see runs.resume).
    resume_state = models.JSONField(null=True, blank=True)
    # Paused steps released while the run was still running; applied when it pauses again.
    pending_releases = models.JSONField(default=list, blank=True)
    # Checkpoints saved only if the run ends COMPLETED ({step key: data}; see runs.store).
    pending_checkpoints = models.JSONField(default=dict, blank=True)
    # A continuous run's progress (runs.cdc): {step, mode, batches, records, polls, lastCursor, lagSeconds, ...}.
    progress = models.JSONField(null=True, blank=True)
    # How many times the run was taken back from a worker that disappeared and queued again (runs.recovery);
    # past DATAHUB_MAX_RESUMES it is failed instead. A graceful hand-back (a worker draining) does not count.
    resumes = models.PositiveIntegerField(default=0)
    # The first records of each final output, bounded (runs.output_sample): what the run put out, shown on
    # its page and in the REST detail. Null until a part of the run has ended.
    output_sample = models.JSONField(null=True, blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["pipeline", "status"])]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.pipeline.code} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        if not self.started_at:
            return None
        end = self.finished_at
        if end is None:
            from django.utils import timezone

            end = timezone.now()
        return (end - self.started_at).total_seconds()


class StepRun(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="step_runs")
    position = models.PositiveIntegerField()
    step_key = models.CharField(max_length=100)
    status = models.CharField(max_length=12, choices=StepStatus.choices, default=StepStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    records_in = models.PositiveBigIntegerField(default=0)
    records_out = models.PositiveBigIntegerField(default=0)
    records_error = models.PositiveBigIntegerField(default=0)
    records_dropped = models.PositiveBigIntegerField(default=0)
    # While the step runs the counters above move (runs.engine StepProgress, about once a second); these say
    # how fast and how far: the records it reads in all when known (every input ended), and its records per
    # second (of its attempt so far; at its end, of the whole step).
    records_expected = models.PositiveBigIntegerField(null=True, blank=True)
    records_per_second = models.FloatField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveBigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    warnings = models.JSONField(default=list, blank=True)
    # Where the step's outputs were saved when it completed ({branch or "_main": storage name}), so a run
    # resumed on another worker reads them instead of running the step again; {} when no later step needs
    # them; null when they were not saved (durability off, or the step did not complete).
    outputs = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "step_key"], name="steprun_unique_per_run")]

    def __str__(self) -> str:
        return f"{self.step_key} ({self.status})"

    @property
    def eta_seconds(self) -> float | None:
        """Seconds until a RUNNING step has read all its input, at its rate so far; None when the total or
        the rate is not known."""
        if self.status != StepStatus.RUNNING or self.records_expected is None or not self.records_per_second:
            return None
        return max(0, self.records_expected - self.records_in) / self.records_per_second


class RunEventKind(models.TextChoices):
    STARTED = "STARTED", "started"
    RESUMED = "RESUMED", "resumed"
    HANDED_BACK = "HANDED_BACK", "handed back"
    WORKER_LOST = "WORKER_LOST", "worker lost"
    GAVE_UP = "GAVE_UP", "given up"


class RunEvent(models.Model):
    """The run's history across workers: who took it, who handed it back or disappeared, and why."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=12, choices=RunEventKind.choices)
    worker = models.CharField(max_length=200, blank=True, default="")
    # A new token at every claim: the owner's writes (heartbeat, hand-back, end) are conditional on it, so
    # a worker that was silent too long and was replaced (even by a claim in the same process) writes nothing.
    lease = models.CharField(max_length=32, blank=True, default="")
    detail = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["run", "at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.worker}"


class RecordError(models.Model):
    """A record that failed at a step: the dead-letter list, replayable later."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="record_errors")
    step_key = models.CharField(max_length=100, db_index=True)
    record = models.JSONField()
    message = models.TextField()
    attempts = models.PositiveIntegerField(default=1)
    details = models.JSONField(default=dict, blank=True)
    dead_letter = models.BooleanField(default=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "id"]

    def __str__(self) -> str:
        return f"{self.step_key}: {self.message[:60]}"


class RecordAttempt(models.Model):
    """One failed attempt of a record under per-record retry: the audit shown on the run page."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="record_attempts")
    step_key = models.CharField(max_length=100)
    record = models.JSONField()
    attempt = models.PositiveIntegerField()
    error = models.TextField()
    at = models.DateTimeField()

    class Meta:
        ordering = ["run", "id"]

    def __str__(self) -> str:
        return f"{self.step_key} attempt {self.attempt}: {self.error[:60]}"


class Checkpoint(models.Model):
    """State a step keeps between runs (an incremental cursor, deltaFilter hashes)."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="checkpoints")
    step_key = models.CharField(max_length=100)
    data = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pipeline", "step_key"]
        constraints = [models.UniqueConstraint(fields=["pipeline", "step_key"], name="checkpoint_unique_per_step")]

    def __str__(self) -> str:
        return f"{self.pipeline.code}/{self.step_key}"


class WebhookDelivery(models.Model):
    """An inbound webhook call that carried an idempotency key. The same key with the same body finds
    this run again instead of starting another; the same key with another body is refused. The unique
    constraint settles two deliveries racing with one key: the second one's transaction fails."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="webhook_deliveries")
    key = models.CharField(max_length=200)
    body_hash = models.CharField(max_length=64)
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["pipeline", "key"], name="webhook_key_unique_per_pipeline")]

    def __str__(self) -> str:
        return f"{self.pipeline.code} key {self.key}"


class WebhookRateCount(models.Model):
    """Deliveries to one webhook trigger from one client in one fixed window (runs.webhook_rate). In the
    database so that every web process counts into the same row; the unique constraint lets two processes
    opening a window at once end up with one row."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="+")
    trigger_key = models.CharField(max_length=100)
    client = models.CharField(max_length=100)
    window = models.BigIntegerField(help_text="Seconds since the epoch // the window length.")
    count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["pipeline", "trigger_key", "client", "window"],
                                               name="webhook_rate_one_row_per_window")]

    def __str__(self) -> str:
        return f"{self.trigger_key} {self.client} #{self.window}: {self.count}"


class HookStatus(models.TextChoices):
    PENDING = "PENDING"
    SENDING = "SENDING"
    RETRYING = "RETRYING"
    SENT = "SENT"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


class HookDelivery(models.Model):
    """One side effect a run asked for: a hook's WEBHOOK, EMAIL or TRIGGER_PIPELINE action, or a
    notification. Tasks take its id; ``attempts`` is claimed with a conditional UPDATE so a task delivered
    twice sends once. A failure is kept here (and in the step's warnings), never on the run's status."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="hook_deliveries")
    stage = models.CharField(max_length=40)
    step_key = models.CharField(max_length=100, blank=True, default="")
    action_type = models.CharField(max_length=20)
    name = models.CharField(max_length=200, blank=True, default="")
    action = models.JSONField(default=dict)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=HookStatus.choices, default=HookStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    detail = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run", "id"]

    def __str__(self) -> str:
        return f"{self.stage} {self.action_type} ({self.status})"


class ScheduleState(models.Model):
    """What a SCHEDULE trigger has handled: every occurrence up to ``handled_until`` is done (run, skipped
    or dropped by the missed-run policy). Moving it forward with a conditional UPDATE makes each
    occurrence fire once, however many scheduler ticks arrive. ``backlog``: catch-up runs still owed under
    policy ALL, started one at a time. ``spec`` is the schedule it was computed for; ``anchor`` where an
    interval counts from."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="schedule_states")
    trigger_key = models.CharField(max_length=100)
    spec = models.JSONField(default=dict)
    anchor = models.DateTimeField()
    handled_until = models.DateTimeField()
    backlog = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pipeline", "trigger_key"]
        constraints = [models.UniqueConstraint(fields=["pipeline", "trigger_key"], name="schedule_state_unique")]

    def __str__(self) -> str:
        return f"{self.pipeline.code}/{self.trigger_key} until {self.handled_until:%Y-%m-%d %H:%M}"


class SeenFileStatus(models.TextChoices):
    RUNNING = "RUNNING"  # a run was started for this version of the file and has not succeeded yet
    DONE = "DONE"  # its run succeeded: the cursor moved past it
    FAILED = "FAILED"  # given up: maxAttempts runs failed, or its run was cancelled
    REFUSED = "REFUSED"  # never run: larger than DATAHUB_MAX_FILE_BYTES


class SeenFile(models.Model):
    """A FILE trigger's cursor: one row per version of a file (path + size and mtime, or its checksum).

    The row is created in the same transaction as the file's run, and the unique constraint makes a second
    run for the same version impossible, whoever polls at the same time. It becomes DONE only when that run
    succeeds (runs.file_triggers.on_run_ended, or the next poll if the worker died before it could say so);
    a failed run leaves it RUNNING and the next poll starts another, up to maxAttempts. A changed file is a
    new version: a new row, a new run."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="seen_files")
    trigger_key = models.CharField(max_length=100)
    path = models.CharField(max_length=500)
    fingerprint = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    modified_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=SeenFileStatus.choices, default=SeenFileStatus.RUNNING)
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pipeline", "trigger_key", "path", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["pipeline", "trigger_key", "path", "fingerprint"],
                                               name="seen_file_version_unique")]

    def __str__(self) -> str:
        return f"{self.pipeline.code}/{self.trigger_key}: {self.path} ({self.status})"


# The MESSAGE trigger's tables live beside their code; imported here so Django finds them in the app.
from runs.consumers.models import Consumer, DeadLetter, MessageDelivery  # noqa: E402, F401

# The EVENT trigger's tables, likewise.
from runs.model_events.models import EventSubscription, OutboxEvent  # noqa: E402, F401


class RunLog(models.Model):
    """One structured line of a run's log (runs.run_logs writes them; retention deletes old ones)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="log_lines")
    step_key = models.CharField(max_length=100, blank=True, default="")
    level = models.CharField(max_length=8)  # ERROR, WARNING, INFO, DEBUG
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["level", "created_at"], name="runlog_level_time")]

    def __str__(self) -> str:
        return f"{self.created_at:%H:%M:%S} {self.level} {self.step_key} {self.message[:80]}"
