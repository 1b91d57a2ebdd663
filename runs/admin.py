from django.contrib import admin

from runs.models import Checkpoint, RecordError, Run, SeenFile, StepRun


class StepRunInline(admin.TabularInline):
    model = StepRun
    extra = 0
    can_delete = False
    readonly_fields = ("position", "step_key", "status", "attempts", "records_in", "records_out", "records_error",
                       "records_dropped", "duration_ms", "error")
    fields = readonly_fields


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("id", "pipeline", "status", "dry_run", "trigger", "created_at", "finished_at")
    list_filter = ("status", "dry_run", "trigger")
    search_fields = ("pipeline__code", "error")
    readonly_fields = ("pipeline", "revision", "triggered_by", "created_at", "started_at", "finished_at",
                       "heartbeat_at", "worker")
    inlines = [StepRunInline]


@admin.register(RecordError)
class RecordErrorAdmin(admin.ModelAdmin):
    list_display = ("id", "run", "step_key", "message", "attempts", "dead_letter", "created_at")
    list_filter = ("dead_letter", "step_key")
    search_fields = ("message",)


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    list_display = ("pipeline", "step_key", "updated_at")


@admin.register(SeenFile)
class SeenFileAdmin(admin.ModelAdmin):
    """A FILE trigger's cursor, to look at (and, to run a file again, to delete a row of)."""

    list_display = ("pipeline", "trigger_key", "path", "size", "modified_at", "status", "attempts", "run", "updated_at")
    list_filter = ("status", "trigger_key")
    search_fields = ("pipeline__code", "path", "error")
    readonly_fields = ("pipeline", "trigger_key", "path", "fingerprint", "size", "modified_at", "status", "run",
                       "attempts", "error", "created_at", "updated_at")
