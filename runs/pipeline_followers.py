"""State that follows a pipeline's current revision: SCHEDULE and FILE triggers' schedules, EVENT subscriptions.

Each kind keeps rows outside the definition and has a ``sync_pipeline(pipeline_id)`` that makes them match the
current revision's enabled triggers of an enabled pipeline (and removes them otherwise). :func:`follow` connects
such a sync to every moment the revision may change; :func:`current_definition` is how a sync reads it, under
the pipeline's row lock; :class:`TriggerSchedules` is the one django-q2 ``Schedule`` per (pipeline, trigger)
that SCHEDULE and FILE triggers both keep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.db.models.signals import post_delete, post_migrate, post_save

from pipelines.models import Pipeline, PipelineRevision


def follow(name: str, sync: Callable[[int], object], *, on_deleted: Callable[[int], object] | None = None,
           on_migrated: Callable[[], object] | None = None) -> None:
    """Run ``sync(pipeline_id)`` after every committed save of a pipeline or one of its revisions, and, after
    ``migrate`` of the runs app, ``on_migrated()`` (default: sync every pipeline). ``on_deleted(pipeline_id)``
    runs when a pipeline is deleted (rows that cascade with it need none)."""

    def saved(sender, instance, **kwargs) -> None:
        pipeline_id = instance.pipeline_id if isinstance(instance, PipelineRevision) else instance.pk
        # After the commit: save_definition points the pipeline at its new revision last.
        transaction.on_commit(lambda: sync(pipeline_id))

    def migrated(sender, **kwargs) -> None:
        if getattr(sender, "name", "") != "runs":
            return
        if on_migrated is not None:
            on_migrated()
        else:
            for pk in Pipeline.objects.values_list("pk", flat=True):
                sync(pk)

    # weak=False: these receivers are closures that nothing else holds.
    post_save.connect(saved, sender=Pipeline, weak=False, dispatch_uid=f"datahub-{name}-pipeline")
    post_save.connect(saved, sender=PipelineRevision, weak=False, dispatch_uid=f"datahub-{name}-revision")
    post_migrate.connect(migrated, weak=False, dispatch_uid=f"datahub-{name}-migrate")
    if on_deleted is not None:
        post_delete.connect(lambda sender, instance, **kw: on_deleted(instance.pk), sender=Pipeline, weak=False,
                            dispatch_uid=f"datahub-{name}-delete")


def current_definition(pipeline_id: int) -> tuple[Pipeline | None, dict | None]:
    """The pipeline, locked for the rest of the transaction, and the definition its triggers follow: its current
    revision's, or None when it is disabled or has none. Call it inside ``transaction.atomic()``; the lock
    serializes two saves of one pipeline syncing at once."""
    # No select_related: PostgreSQL cannot lock the nullable side of the outer join it needs.
    pipeline = Pipeline.objects.select_for_update().filter(pk=pipeline_id).first()
    if pipeline is None or not pipeline.enabled or pipeline.current_revision is None:
        return pipeline, None
    return pipeline, pipeline.current_revision.definition


@dataclass(frozen=True)
class TriggerSchedules:
    """The django-q2 schedules calling ``func(pipeline_id, trigger_key)``, one per trigger of a pipeline."""

    func: str

    def args(self, pipeline_id: int, key: str) -> str:
        return repr((pipeline_id, key))

    def of(self, pipeline_id: int):
        from django_q.models import Schedule

        return Schedule.objects.filter(func=self.func, args__startswith=f"({pipeline_id}, ")

    def reconcile(self, pipeline_id: int, wanted: dict[str, dict]) -> dict[str, tuple[object, bool]]:
        """Make the pipeline's schedules exactly ``wanted`` ({trigger key: Schedule fields}): create the missing,
        change those whose fields differ, delete the rest. Returns each key's schedule and whether it is new."""
        from django_q.models import Schedule

        existing = {s.args: s for s in self.of(pipeline_id)}
        kept = {}
        for key, fields in wanted.items():
            schedule = existing.pop(self.args(pipeline_id, key), None)
            if schedule is None:
                kept[key] = (Schedule.objects.create(func=self.func, args=self.args(pipeline_id, key), **fields), True)
                continue
            if any(getattr(schedule, k) != v for k, v in fields.items()):
                Schedule.objects.filter(pk=schedule.pk).update(**fields)
            kept[key] = (schedule, False)
        for schedule in existing.values():
            schedule.delete()
        return kept

    def remove(self, pipeline_id: int) -> None:
        self.of(pipeline_id).delete()
