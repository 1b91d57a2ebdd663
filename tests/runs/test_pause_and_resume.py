import pytest
from django.core.files.storage import default_storage
from django_q.tasks import async_task

from pipelines.services import save_definition
from runs import services
from runs.models import Run, RunStatus
from tests.engine.test_pause_resume import DEFINITION, Hold

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hold(settings, tmp_path):
    from pipelines import registry

    settings.MEDIA_ROOT = str(tmp_path)
    snap = registry.snapshot_all()
    registry.step_types.register("GATE", Hold(), schema={"type": "object"}, replace=True)
    yield
    registry.restore_all(snap)


def paused_run():
    pipeline = save_definition({**DEFINITION, "code": "held"})
    run = services.create_run(pipeline)
    outcome = services.run_now(run)
    assert outcome.run.status == RunStatus.PAUSED, outcome.run.error
    return outcome.run


def test_it_saves_what_a_paused_run_needs_and_resumes_on_any_worker(hold):
    run = paused_run()
    state = run.resume_state["steps"]
    assert state["gate"]["status"] == "PAUSED"
    held_file = state["gate"]["outputs"]["_main"]
    assert default_storage.exists(held_file)
    src_started = run.step_runs.get(step_key="src").started_at

    services.release_paused_step(run, "gate")
    async_task("runs.tasks.resume_run", run.pk, sync=True)  # the worker's code path

    run = Run.objects.get(pk=run.pk)
    assert run.status == RunStatus.COMPLETED, run.error
    steps = {s.step_key: s for s in run.step_runs.all()}
    assert steps["after"].status == "COMPLETED" and steps["after"].records_in == 2
    assert steps["gate"].status == "COMPLETED"
    assert steps["src"].started_at == src_started and steps["src"].attempts == 1  # not run again
    assert run.resume_state is None and not default_storage.exists(held_file)


def test_it_refuses_to_release_a_step_that_is_not_paused(hold):
    run = paused_run()
    with pytest.raises(services.RunConflict, match="not waiting at step 'after'"):
        services.release_paused_step(run, "after")
    services.release_paused_step(run, "gate")
    with pytest.raises(services.RunConflict, match="not waiting at step 'gate'"):
        services.release_paused_step(run, "gate")


def test_it_resumes_once_when_the_resume_is_delivered_twice(hold):
    from runs.tasks import resume_run

    run = paused_run()
    services.release_paused_step(run, "gate")
    assert resume_run(run.pk) == "COMPLETED"
    assert resume_run(run.pk) == "skipped"


def test_it_cancels_a_paused_run_and_drops_what_it_held(hold):
    run = paused_run()
    held_file = run.resume_state["steps"]["gate"]["outputs"]["_main"]
    run = services.cancel_run(run, reason='Gate step "gate" rejected by alice: wrong prices')
    assert run.status == RunStatus.CANCELLED and "wrong prices" in run.error
    assert not default_storage.exists(held_file)
    assert run.step_runs.get(step_key="after").status == "CANCELLED"
    assert services.resume_now(run).result is None


def test_it_applies_a_release_that_arrives_while_the_run_is_still_running(hold):
    from runs.models import StepRun

    d = {**DEFINITION, "code": "two-gates",
         "steps": [*DEFINITION["steps"], {"key": "gate2", "type": "GATE", "config": {}},
                   {"key": "after2", "type": "SINK", "adapterCode": "records", "config": {}}],
         "edges": [*DEFINITION["edges"], {"from": "side", "to": "gate2"}, {"from": "gate2", "to": "after2"}]}
    run = services.run_now(services.create_run(save_definition(d))).run
    assert run.status == RunStatus.PAUSED
    services.release_paused_step(run, "gate")
    assert services.claim_resume(run.pk)  # a worker picked the run up: it is RUNNING again
    # Somebody approves the second gate while the run still runs after the first one.
    services.release_paused_step(run, "gate2")
    assert Run.objects.get(pk=run.pk).pending_releases == ["gate2"]
    with pytest.raises(services.RunConflict, match="released already"):
        services.release_paused_step(run, "gate2")

    run = services.execute_claimed(Run.objects.get(pk=run.pk)).run
    assert run.status == RunStatus.PAUSED  # paused once more, with gate2 released on the spot
    assert run.pending_releases == [] and run.resume_state["steps"]["gate2"]["status"] == "COMPLETED"
    assert StepRun.objects.get(run=run, step_key="gate2").status == "COMPLETED"

    run = services.resume_now(run).run
    assert run.status == RunStatus.COMPLETED
    assert StepRun.objects.get(run=run, step_key="after2").records_in == 1


def test_it_does_not_let_a_worker_that_woke_up_late_overwrite_the_reaper(hold):
    run = services.create_run(save_definition({**DEFINITION, "code": "late"}))
    assert services.claim(run.pk)
    run = Run.objects.get(pk=run.pk)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED, error="the worker stopped responding")
    services.execute_claimed(run)  # the frozen worker finally runs to its end
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.error == "the worker stopped responding"


def test_it_queues_a_release_that_arrives_while_the_run_waits_handed_back(hold):
    """A stopping worker handed the run back (PENDING) with gate2 still paused in its state: approving gate2
    then is queued, as while RUNNING, and applied when the next worker reaches the pause (it was refused)."""
    from runs.models import StepRun

    d = {**DEFINITION, "code": "two-gates-handed-back",
         "steps": [*DEFINITION["steps"], {"key": "gate2", "type": "GATE", "config": {}},
                   {"key": "after2", "type": "SINK", "adapterCode": "records", "config": {}}],
         "edges": [*DEFINITION["edges"], {"from": "side", "to": "gate2"}, {"from": "gate2", "to": "after2"}]}
    run = services.run_now(services.create_run(save_definition(d))).run
    services.release_paused_step(run, "gate")
    assert services.claim_resume(run.pk)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.PENDING, worker="")  # what _hand_back writes
    services.release_paused_step(run, "gate2")
    assert Run.objects.get(pk=run.pk).pending_releases == ["gate2"]

    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)  # the next worker's claim
    run = services.execute_claimed(Run.objects.get(pk=run.pk)).run
    assert run.status == RunStatus.PAUSED and run.pending_releases == []
    assert StepRun.objects.get(run=run, step_key="gate2").status == "COMPLETED"
    assert services.resume_now(run).run.status == RunStatus.COMPLETED
