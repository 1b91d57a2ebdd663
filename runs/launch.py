"""Creating runs and handing them to a worker: the bottom of runs' service layer.

A run is created PENDING (one active run per pipeline unless concurrency is allowed) and queued as a
django-q2 task once the transaction commits. This module depends on the models only, so what must start or
queue a run while a run executes (a TRIGGER_PIPELINE hook in :mod:`runs.hooks`, a continuous CDC run handing
itself back in :mod:`runs.cdc`) imports it without importing the execution in :mod:`runs.services`, which
re-exports these names as the app's one door for pages, the API, the CLI and tasks.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from pipelines.errors import DatahubError
from pipelines.models import Pipeline, PipelineRevision
from pipelines.services import get_revision
from runs.models import ACTIVE_STATUSES, Run


class RunConflict(DatahubError):
    """Another run of the pipeline is active and the pipeline does not allow concurrent runs."""


@transaction.atomic
def create_run(
    pipeline: Pipeline,
    *,
    user=None,
    revision: PipelineRevision | int | None = None,
    dry_run: bool = False,
    record_limit: int | None = None,
    trigger: str = "manual",
    allow_concurrent: bool | None = None,
    seed_step: str = "",
    seed_records: list | None = None,
    replay_of: Run | None = None,
) -> Run:
    """A PENDING run of ``revision`` (default: the current one). One active run per pipeline unless
    the pipeline (or the caller) allows more; the pipeline row is locked so two starts cannot both pass."""
    pipeline = Pipeline.objects.select_for_update().get(pk=pipeline.pk)
    if not isinstance(revision, PipelineRevision):
        revision = get_revision(pipeline, revision)
    concurrent = pipeline.allow_concurrent_runs if allow_concurrent is None else allow_concurrent
    if not concurrent and not dry_run:
        active = pipeline.runs.filter(status__in=ACTIVE_STATUSES, dry_run=False).first()
        if active is not None:
            raise RunConflict(
                f"pipeline '{pipeline.code}' already has an active run ({active.pk}, {active.status}); "
                "wait for it, cancel it, or allow concurrent runs"
            )
    if seed_step and seed_step not in {s.get("key") for s in revision.definition.get("steps", [])}:
        raise RunConflict(f"revision {revision.number} of '{pipeline.code}' has no step '{seed_step}'")
    return Run.objects.create(
        pipeline=pipeline, revision=revision, dry_run=dry_run, record_limit=record_limit, trigger=trigger,
        triggered_by=user if getattr(user, "is_authenticated", False) else None,
        seed_step=seed_step, seed_records=seed_records, replay_of=replay_of,
    )


def seed_for_trigger(definition: dict, trigger_key: str) -> str:
    """The step a run started by ``trigger_key`` is seeded at: the trigger itself when the pipeline has
    several enabled triggers, so that only what that trigger reaches runs; "" (the whole pipeline) when it
    is the only one."""
    triggers = [s.get("key") for s in definition.get("steps") or []
                if isinstance(s, dict) and s.get("type") == "TRIGGER" and not s.get("disabled")]
    return trigger_key if len(triggers) > 1 and trigger_key in triggers else ""


def replay_record_errors(run: Run, step_key: str, error_ids: list[int] | None = None, *, user=None) -> Run:
    """A new run of the same revision that feeds the failed records of ``step_key`` back into that step
    (and runs what follows it). The replayed errors are marked, so a record is not replayed twice by
    accident; if it fails again, the new run records it again."""
    errors = run.record_errors.filter(step_key=step_key, dead_letter=True, replayed_at__isnull=True)
    if error_ids is not None:
        errors = errors.filter(pk__in=error_ids)
    errors = list(errors.order_by("pk"))
    if not errors:
        raise RunConflict(f"run {run.pk} has no dead-letter records at step '{step_key}' left to replay")
    with transaction.atomic():
        replay = create_run(run.pipeline, user=user, revision=run.revision, trigger="replay", seed_step=step_key,
                            seed_records=[e.record for e in errors], replay_of=run, allow_concurrent=True)
        run.record_errors.filter(pk__in=[e.pk for e in errors]).update(replayed_at=timezone.now())
        transaction.on_commit(lambda: enqueue(replay.pk))
    return replay


def start_run(pipeline: Pipeline, **kwargs) -> Run:
    """Create a run and hand it to a worker once the transaction commits."""
    run = create_run(pipeline, **kwargs)
    transaction.on_commit(lambda: enqueue(run.pk))
    return run


def enqueue(run_id: int) -> None:
    async_task("runs.tasks.execute_run", run_id, task_name=f"run-{run_id}", group="runs")
