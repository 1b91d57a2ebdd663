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
