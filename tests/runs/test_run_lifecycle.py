import pytest
from django.utils import timezone
from django_q.tasks import async_task

from pipelines.services import save_definition
from runs import services
from runs.models import Checkpoint, RecordError, Run, RunStatus
from tests.fixtures import simple_definition

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_runs_through_the_worker_task_and_records_every_step():
    pipeline = save_definition(simple_definition())
    run = services.create_run(pipeline)
    async_task("runs.tasks.execute_run", run.pk, sync=True)  # the worker's code path, in-process
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    steps = {s.step_key: s for s in run.step_runs.all()}
    assert steps["clean"].records_in == 2 and steps["clean"].records_out == 2
    assert steps["out"].status == "COMPLETED" and steps["out"].duration_ms is not None
    assert run.finished_at is not None and run.heartbeat_at is not None


def test_it_executes_a_duplicate_delivery_once():
    from runs.tasks import execute_run

    run = services.create_run(save_definition(simple_definition()))
    assert execute_run(run.pk) == "COMPLETED"
    assert execute_run(run.pk) == "skipped"
    assert run.step_runs.count() == 3


def test_it_runs_the_revision_it_started_with():
    pipeline = save_definition(simple_definition(records=[{"sku": "old"}]))
    run = services.create_run(pipeline)
    save_definition(simple_definition(records=[{"sku": "new"}, {"sku": "newer"}]))
    outcome = services.run_now(run, keep_outputs=True)
    assert outcome.result.output("out") == [{"sku": "old"}]


def test_it_runs_a_chosen_revision():
    pipeline = save_definition(simple_definition(records=[{"sku": "r1"}]))
    save_definition(simple_definition(records=[{"sku": "r2"}]))
    run = services.create_run(pipeline, revision=1)
    assert services.run_now(run, keep_outputs=True).result.output("out") == [{"sku": "r1"}]


def test_it_allows_one_active_run_per_pipeline_unless_asked():
    pipeline = save_definition(simple_definition())
    services.create_run(pipeline)
    with pytest.raises(services.RunConflict, match="already has an active run"):
        services.create_run(pipeline)
    assert services.create_run(pipeline, allow_concurrent=True).status == RunStatus.PENDING
    assert services.create_run(pipeline, dry_run=True).status == RunStatus.PENDING


def test_it_stores_failed_records_in_the_dead_letter_list():
    d = simple_definition(records=[{"sku": "a"}, {"sku": None}])
    d["steps"].insert(2, {"key": "check", "type": "VALIDATE", "config": {"fields": {"sku": {"required": True}}}})
    run = services.create_run(save_definition(d))
    services.run_now(run)
    errors = list(RecordError.objects.filter(run=run))
    assert [(e.step_key, e.record, e.message, e.dead_letter) for e in errors] == [
        ("check", {"sku": None}, "sku is required", True)
    ]
    assert run.step_runs.get(step_key="check").records_error == 1


def test_it_fails_a_run_whose_definition_no_longer_parses():
    pipeline = save_definition(simple_definition())
    run = services.create_run(pipeline)
    bad = dict(run.revision.definition, steps=[{"key": "x", "type": "EXTRACT", "adapterCode": "gone", "config": {}}])
    type(run.revision).objects.filter(pk=run.revision.pk).update(definition=bad)
    outcome = services.run_now(run)
    assert outcome.run.status == RunStatus.FAILED
    assert "unknown extractor 'gone'" in outcome.run.error


def test_it_cancels_a_pending_run_at_once():
    run = services.create_run(save_definition(simple_definition()))
    run = services.cancel_run(run)
    assert run.status == RunStatus.CANCELLED
    assert services.run_now(run).result is None  # nothing left to claim


def test_it_takes_back_a_run_whose_worker_went_silent_and_leaves_the_others():
    run = services.create_run(save_definition(simple_definition()))
    assert services.claim(run.pk)
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timezone.timedelta(minutes=10))
    fresh = services.create_run(save_definition(simple_definition(code="other")))
    services.claim(fresh.pk)
    assert services.reap_stale_runs(max_silence_seconds=60) == 1
    run.refresh_from_db()
    fresh.refresh_from_db()
    assert run.status == RunStatus.PENDING and run.resumes == 1 and run.worker == ""
    assert fresh.status == RunStatus.RUNNING


def test_it_keeps_checkpoints_between_runs_but_not_from_dry_runs():
    d = {"code": "delta", "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": [{"id": 1, "v": "a"}]}},
        {"key": "changed", "type": "TRANSFORM", "config": {"operators": [{"op": "deltaFilter", "args": {"idPath": "id"}}]}},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
    ]}
    pipeline = save_definition(d)
    dry = services.run_now(services.create_run(pipeline, dry_run=True), keep_outputs=True)
    assert dry.result.output("out") == [{"id": 1, "v": "a"}]
    assert not Checkpoint.objects.exists()
    first = services.run_now(services.create_run(pipeline), keep_outputs=True)
    assert first.result.output("out") == [{"id": 1, "v": "a"}]
    second = services.run_now(services.create_run(pipeline), keep_outputs=True)
    assert second.result.output("out") == []
    assert Checkpoint.objects.get(pipeline=pipeline, step_key="changed").data


def test_it_replays_dead_letter_records_from_the_step_where_they_failed():
    d = simple_definition(records=[{"sku": "a"}, {"sku": None}])
    d["steps"].insert(2, {"key": "check", "type": "VALIDATE", "config": {"fields": {"sku": {"required": True}}}})
    pipeline = save_definition(d)
    run = services.create_run(pipeline)
    services.run_now(run)
    error = RecordError.objects.get(run=run)
    # Somebody fixes the record in place (here: the stored payload), then replays it.
    RecordError.objects.filter(pk=error.pk).update(record={"sku": " fixed "})
    replay = services.replay_record_errors(run, "check")
    outcome = services.run_now(replay, keep_outputs=True)
    assert outcome.run.status == "COMPLETED"
    assert outcome.result.output("out") == [{"sku": " fixed "}]  # starts at check: clean did not run again
    status = {s.step_key: s.status for s in outcome.run.step_runs.all()}
    assert status == {"src": "SKIPPED", "clean": "SKIPPED", "check": "COMPLETED", "out": "COMPLETED"}
    with pytest.raises(services.RunConflict, match="no dead-letter records"):
        services.replay_record_errors(run, "check")
