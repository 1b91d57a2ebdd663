from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_migrate, post_save

        from pipelines.models import Pipeline, PipelineRevision
        from runs import (
            file_triggers,
            notifications,
            schedules,
            signals,  # noqa: F401  (connects post_migrate: the reaper schedule)
        )

        signals.run_ended.connect(notifications.on_run_ended, dispatch_uid="datahub-notifications")
        signals.run_ended.connect(schedules.on_run_ended, dispatch_uid="datahub-schedule-catch-up")
        # Schedules follow their pipeline: saved, re-pointed at a new revision, enabled or disabled, deleted.
        post_save.connect(schedules.on_pipeline_saved, sender=Pipeline, dispatch_uid="datahub-schedules-pipeline")
        post_save.connect(schedules.on_pipeline_saved, sender=PipelineRevision,
                          dispatch_uid="datahub-schedules-revision")
        post_delete.connect(schedules.on_pipeline_deleted, sender=Pipeline, dispatch_uid="datahub-schedules-delete")
        post_migrate.connect(schedules.on_migrated, dispatch_uid="datahub-schedules-migrate")
        # FILE triggers: their poll schedules follow the pipeline too; a file's run that ends moves the cursor.
        signals.run_ended.connect(file_triggers.on_run_ended, dispatch_uid="datahub-file-cursor")
        post_save.connect(file_triggers.on_pipeline_saved, sender=Pipeline, dispatch_uid="datahub-files-pipeline")
        post_save.connect(file_triggers.on_pipeline_saved, sender=PipelineRevision,
                          dispatch_uid="datahub-files-revision")
        post_delete.connect(file_triggers.on_pipeline_deleted, sender=Pipeline, dispatch_uid="datahub-files-delete")
        post_migrate.connect(file_triggers.on_migrated, dispatch_uid="datahub-files-migrate")
        # EVENT triggers: subscriptions follow their pipeline; every model's changes pass the capture, which
        # keeps only those of models in DATAHUB_EVENT_MODELS that a subscription wants.
        from runs.model_events import capture, dispatch

        post_save.connect(dispatch.on_pipeline_saved, sender=Pipeline, dispatch_uid="datahub-events-pipeline")
        post_save.connect(dispatch.on_pipeline_saved, sender=PipelineRevision, dispatch_uid="datahub-events-revision")
        post_migrate.connect(dispatch.on_migrated, dispatch_uid="datahub-events-migrate")
        post_save.connect(capture.on_save, dispatch_uid="datahub-events-capture-save")
        post_delete.connect(capture.on_delete, dispatch_uid="datahub-events-capture-delete")
        signals.run_ended.connect(dispatch.on_run_ended, dispatch_uid="datahub-events-run-ended")
