"""Retention: old runs, their logs and record errors go; active runs and replayable errors stay."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from pipelines.services import save_definition
from runs import retention, services
from runs.models import HookDelivery, RecordAttempt, RecordError, Run, RunStatus, StepRun, WebhookDelivery
from tests.fixtures import simple_definition

pytestmark = pytest.mark.django_db


@pytest.fixture
def pipeline():
    return save_definition(simple_definition("kept"))


def a_run(pipeline, status, days_ago, **fields):
    run = services.create_run(pipeline, allow_concurrent=True)
    at = timezone.now() - timedelta(days=days_ago)
    ended = at if status in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED) else None
    Run.objects.filter(pk=run.pk).update(status=status, started_at=at, finished_at=ended, **fields)
    Run.objects.filter(pk=run.pk).update(created_at=at)
    StepRun.objects.create(run=run, position=0, step_key="src", status="COMPLETED")
    return Run.objects.get(pk=run.pk)


def a_record_error(run, days_ago):
    error = RecordError.objects.create(run=run, step_key="src", record={"sku": "x"}, message="bad")
    RecordError.objects.filter(pk=error.pk).update(created_at=timezone.now() - timedelta(days=days_ago))
    return error


def test_it_prunes_ended_runs_past_their_days_with_their_rows(pipeline, settings):
    settings.DATAHUB_KEEP_RUNS_DAYS = 30
    old = [a_run(pipeline, status, 31) for status in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)]
    recent = a_run(pipeline, RunStatus.COMPLETED, 29)
    HookDelivery.objects.create(run=old[0], stage="NOTIFICATION", action_type="EMAIL")
    RecordAttempt.objects.create(run=old[0], step_key="src", record={}, attempt=1, error="e",
                                 at=timezone.now() - timedelta(days=1))

    counts = retention.prune()

    assert counts["runs"] == 3
    assert list(Run.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not StepRun.objects.exclude(run=recent).exists()
    assert not HookDelivery.objects.exists() and not RecordAttempt.objects.exists()


def test_it_never_prunes_an_active_run(pipeline, settings):
    settings.DATAHUB_KEEP_RUNS_DAYS = 1
    settings.DATAHUB_KEEP_RECORD_ERRORS_DAYS = 1
    active = [a_run(pipeline, status, 400) for status in (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.PAUSED)]
    for run in active:
        a_record_error(run, 400)
    assert retention.prune()["runs"] == 0
    assert Run.objects.count() == 3 and RecordError.objects.count() == 3


def test_it_keeps_a_run_while_its_record_errors_are_kept(pipeline, settings):
    settings.DATAHUB_KEEP_RUNS_DAYS = 30
    settings.DATAHUB_KEEP_RECORD_ERRORS_DAYS = 90
    replayable = a_run(pipeline, RunStatus.COMPLETED, 60)
    a_record_error(replayable, 60)
    expired = a_run(pipeline, RunStatus.FAILED, 100)
    a_record_error(expired, 100)

    counts = retention.prune()

    assert counts == {**counts, "record_errors": 1, "runs": 1}
    assert list(Run.objects.values_list("pk", flat=True)) == [replayable.pk]
    assert RecordError.objects.filter(run=replayable).count() == 1


def test_it_prunes_old_record_errors_of_runs_kept_longer(pipeline, settings):
    settings.DATAHUB_KEEP_RUNS_DAYS = 365
    settings.DATAHUB_KEEP_RECORD_ERRORS_DAYS = 7
    run = a_run(pipeline, RunStatus.COMPLETED, 10)
    a_record_error(run, 10)
    fresh = a_record_error(run, 1)
    counts = retention.prune()
    assert counts["record_errors"] == 1 and counts["runs"] == 0
    assert list(RecordError.objects.values_list("pk", flat=True)) == [fresh.pk]


def test_it_keeps_everything_for_ever_with_zero_days(pipeline, settings):
    settings.DATAHUB_KEEP_RUNS_DAYS = 0
    settings.DATAHUB_KEEP_RECORD_ERRORS_DAYS = 0
    run = a_run(pipeline, RunStatus.COMPLETED, 3000)
    a_record_error(run, 3000)
    assert not any(retention.prune().values())
    assert Run.objects.count() == 1 and RecordError.objects.count() == 1


def test_it_deletes_the_files_a_pruned_run_had_saved(pipeline, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.DATAHUB_KEEP_RUNS_DAYS = 30
    name = default_storage.save("datahub/runs/1/gate/_main.ndjson", ContentFile(b'{"id": 1}\n'))
    state = {"version": 1, "steps": {"gate": {"status": "PAUSED", "usable": False, "outputs": {"_main": name}}}}
    a_run(pipeline, RunStatus.FAILED, 40, resume_state=state)
    kept_name = default_storage.save("datahub/runs/2/gate/_main.ndjson", ContentFile(b'{"id": 2}\n'))
    kept_state = {"version": 1, "steps": {"gate": {"status": "PAUSED", "outputs": {"_main": kept_name}}}}
    a_run(pipeline, RunStatus.PAUSED, 40, resume_state=kept_state)

    counts = retention.prune()

    assert counts["runs"] == 1 and counts["files"] == 1
    assert not default_storage.exists(name) and default_storage.exists(kept_name)


def test_it_deletes_in_chunks(pipeline, settings):
    settings.DATAHUB_KEEP_RUNS_DAYS = 30
    for _ in range(7):
        a_run(pipeline, RunStatus.COMPLETED, 45)
    assert retention.prune(chunk_size=3)["runs"] == 7
    assert not Run.objects.exists()


def test_it_prunes_old_task_results_and_webhook_keys(pipeline, settings):
    from django_q.models import Task

    settings.DATAHUB_KEEP_RUNS_DAYS = 30
    now = timezone.now()
    for n, days in enumerate((40, 1)):
        at = now - timedelta(days=days)
        Task.objects.create(id=f"task{n}", name=f"t{n}", func="runs.tasks.execute_run", started=at, stopped=at,
                            success=False)
        key = WebhookDelivery.objects.create(pipeline=pipeline, key=f"k{n}", body_hash="h")
        WebhookDelivery.objects.filter(pk=key.pk).update(created_at=at)
    counts = retention.prune()
    assert counts["task_results"] == 1 and counts["webhook_keys"] == 1
    assert list(Task.objects.values_list("id", flat=True)) == ["task1"]
    assert list(WebhookDelivery.objects.values_list("key", flat=True)) == ["k1"]


def test_the_command_counts_with_dry_run_then_prunes(pipeline, settings, capsys):
    settings.DATAHUB_KEEP_RUNS_DAYS = 30
    a_run(pipeline, RunStatus.COMPLETED, 31)
    call_command("prune_runs", "--dry-run")
    assert "would delete: 0 record errors, 0 record attempts, 1 runs" in capsys.readouterr().out
    assert Run.objects.count() == 1
    call_command("prune_runs", "--keep-runs-days", "60")
    assert Run.objects.count() == 1
    call_command("prune_runs")
    assert "deleted: 0 record errors, 0 record attempts, 1 runs" in capsys.readouterr().out
    assert not Run.objects.exists()


def test_migrate_creates_the_daily_retention_schedule():
    from django_q.models import Schedule

    schedule = Schedule.objects.get(name=retention.SCHEDULE)
    assert schedule.func == "runs.retention.prune_old_runs"
    assert schedule.schedule_type == Schedule.DAILY and schedule.repeats == -1


def test_the_schedule_task_runs_through_the_worker_code_path(pipeline, settings):
    from django_q.tasks import async_task, result

    settings.DATAHUB_KEEP_RUNS_DAYS = 30
    a_run(pipeline, RunStatus.COMPLETED, 31)
    task_id = async_task("runs.retention.prune_old_runs", sync=True)
    assert result(task_id)["runs"] == 1 and not Run.objects.exists()
