"""Retention: how long runs, their logs and their failed records are kept.

A daily django-q2 schedule (created after ``migrate``) and ``manage.py prune_runs`` call :func:`prune`:

* record errors and record attempts older than ``DATAHUB_KEEP_RECORD_ERRORS_DAYS`` (90) are deleted, and
  the MESSAGE consumers' dead letters of that age (the copies in the dead-letter queues are the broker's);
* runs that ended (COMPLETED, FAILED, CANCELLED) more than ``DATAHUB_KEEP_RUNS_DAYS`` (30) days ago are
  deleted with their step runs, hook deliveries and gate requests, and the files a paused run had saved.
  A run that still holds record errors is kept until they expire, so its failed records stay replayable;
* run log lines (runs.run_logs) older than ``DATAHUB_KEEP_RUN_LOGS_DAYS`` (14) are deleted, whatever
  their run's state (a run deleted takes its lines with it);
* django-q2 task results (the workers' log of what they ran) and webhook idempotency keys older than
  ``DATAHUB_KEEP_RUNS_DAYS`` are deleted;
* audit events older than ``DATAHUB_KEEP_AUDIT_DAYS`` (365) are deleted.

A run that is PENDING, RUNNING or PAUSED is never deleted, nor are its records, however old. 0 days keeps
that kind for ever. Everything is deleted in chunks of a few hundred rows, one short transaction each, so
pruning a large backlog never holds long locks on the tables the workers write.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from types import SimpleNamespace

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.db.models.functions import Coalesce
from django.db.models.signals import post_migrate
from django.dispatch import receiver
from django.utils import timezone

from audit.models import AuditEvent
from pipelines import hub_settings
from runs.models import ENDED_STATUSES, DeadLetter, RecordAttempt, RecordError, Run, RunLog, WebhookDelivery

log = logging.getLogger(__name__)

SCHEDULE = "datahub: prune old runs"
CHUNK_SIZE = 500


def prune(*, keep_runs_days: int | None = None, keep_record_errors_days: int | None = None,
          now=None, chunk_size: int = CHUNK_SIZE, dry_run: bool = False) -> dict[str, int]:
    """Delete what is past its retention; returns how many of each were deleted (or would be)."""
    now = now or timezone.now()
    # The settings page may have changed them (pipelines.hub_settings; the environment wins).
    keep_runs = hub_settings.value("keepRunsDays") if keep_runs_days is None else keep_runs_days
    keep_errors = (hub_settings.value("keepRecordErrorsDays") if keep_record_errors_days is None
                   else keep_record_errors_days)
    counts = {"record_errors": 0, "record_attempts": 0, "runs": 0, "files": 0, "task_results": 0,
              "webhook_keys": 0, "dead_letters": 0, "audit_events": 0, "log_lines": 0}
    prune_ = _count if dry_run else _delete_in_chunks

    keep_logs = hub_settings.value("keepRunLogsDays")
    if keep_logs:
        counts["log_lines"] = prune_(RunLog.objects.filter(created_at__lt=now - timedelta(days=keep_logs)),
                                     chunk_size)

    if keep_errors:
        cutoff = now - timedelta(days=keep_errors)
        counts["record_errors"] = prune_(
            RecordError.objects.filter(created_at__lt=cutoff, run__status__in=ENDED_STATUSES), chunk_size)
        counts["record_attempts"] = prune_(
            RecordAttempt.objects.filter(at__lt=cutoff, run__status__in=ENDED_STATUSES), chunk_size)
        counts["dead_letters"] = prune_(DeadLetter.objects.filter(created_at__lt=cutoff), chunk_size)

    if keep_runs:
        cutoff = now - timedelta(days=keep_runs)
        old_runs = (Run.objects.filter(status__in=ENDED_STATUSES)
                    .annotate(ended=Coalesce("finished_at", "created_at")).filter(ended__lt=cutoff)
                    .exclude(Exists(RecordError.objects.filter(run=OuterRef("pk")))))
        if dry_run:
            counts["runs"] = old_runs.count()
        else:
            counts["runs"], counts["files"] = _delete_runs(old_runs, chunk_size)
        from django_q.models import Task

        counts["task_results"] = prune_(Task.objects.filter(stopped__lt=cutoff), chunk_size)
        counts["webhook_keys"] = prune_(WebhookDelivery.objects.filter(created_at__lt=cutoff), chunk_size)

    keep_audit = getattr(settings, "DATAHUB_KEEP_AUDIT_DAYS", 365)
    if keep_audit:
        counts["audit_events"] = prune_(AuditEvent.objects.filter(at__lt=now - timedelta(days=keep_audit)),
                                        chunk_size)

    if not dry_run and any(counts.values()):
        log.info("retention: deleted %s", ", ".join(f"{n} {kind}" for kind, n in counts.items() if n))
    return counts


def _count(queryset, chunk_size: int) -> int:
    return queryset.count()


def _delete_in_chunks(queryset, chunk_size: int) -> int:
    model = queryset.model
    deleted = 0
    while True:
        ids = list(queryset.values_list("pk", flat=True)[:chunk_size])
        if not ids:
            return deleted
        model.objects.filter(pk__in=ids).delete()
        deleted += len(ids)


def _delete_runs(queryset, chunk_size: int) -> tuple[int, int]:
    from runs import resume

    deleted = files = 0
    while True:
        chunk = list(queryset.values_list("pk", "resume_state")[:chunk_size])
        if not chunk:
            return deleted, files
        ids = [pk for pk, _ in chunk]
        # The status is checked again in the DELETE itself: a run that is active by now is left alone.
        _, per_model = Run.objects.filter(pk__in=ids, status__in=ENDED_STATUSES).delete()
        deleted += per_model.get(Run._meta.label, 0)
        # Files after rows: a crash in between leaves files without a run (harmless), never a run whose
        # files are gone.
        for _, state in chunk:
            if state:
                files += sum(len(e.get("outputs", {})) for e in state.get("steps", {}).values())
                resume.delete_files(SimpleNamespace(resume_state=state))


def prune_old_runs() -> dict[str, int]:
    """The retention schedule's task."""
    return prune()


@receiver(post_migrate)
def ensure_retention_schedule(sender, **kwargs) -> None:
    if getattr(sender, "name", "") != "runs":
        return
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=SCHEDULE,
        defaults={"func": "runs.retention.prune_old_runs", "schedule_type": Schedule.DAILY, "repeats": -1},
    )
