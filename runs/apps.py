from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from runs import (
            file_triggers,
            notifications,
            schedules,
            signals,  # noqa: F401  (connects post_migrate: the reaper schedule)
        )
        from runs.model_events import capture, dispatch
        from runs.pipeline_followers import follow

        signals.run_ended.connect(notifications.on_run_ended, dispatch_uid="datahub-notifications")
        # What follows a pipeline's current revision is synced after every save of it (a new revision, enabled
        # or disabled) and after migrate: SCHEDULE triggers' schedules, FILE triggers' polls, EVENT triggers'
        # subscriptions (these cascade with the pipeline; the schedules do not).
        follow("schedules", schedules.sync_pipeline, on_deleted=schedules.SCHEDULES.remove)
        follow("files", file_triggers.sync_pipeline, on_deleted=file_triggers.SCHEDULES.remove)
        follow("events", dispatch.sync_pipeline, on_migrated=dispatch.after_migrate)
        signals.run_ended.connect(schedules.on_run_ended, dispatch_uid="datahub-schedule-catch-up")
        # A file's run that ends moves the cursor.
        signals.run_ended.connect(file_triggers.on_run_ended, dispatch_uid="datahub-file-cursor")
        # Every model's changes pass the capture, which keeps only those of models in DATAHUB_EVENT_MODELS that a
        # subscription wants.
        post_save.connect(capture.on_save, dispatch_uid="datahub-events-capture-save")
        post_delete.connect(capture.on_delete, dispatch_uid="datahub-events-capture-delete")
        signals.run_ended.connect(dispatch.on_run_ended, dispatch_uid="datahub-events-run-ended")
