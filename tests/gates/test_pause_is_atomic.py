"""No paused run without its gate request, whatever dies when: the pause and the request (and a TIMEOUT
gate's timer) commit together. A worker's death is simulated by an exception no handler of the worker
catches (it derives from BaseException, as SystemExit does), raised at each point between the writes."""

import pytest
from django_q.models import Schedule

from gates.models import GateRequest
from pipelines.services import save_definition
from runs import services as run_services
from runs.models import Run, RunStatus
from runs.signals import step_paused
from tests.gates.conftest import linear

pytestmark = pytest.mark.django_db(transaction=True)


class WorkerDied(BaseException):
    """The process is gone: nothing after this point runs, no handler sees it."""


def start(definition) -> Run:
    run = run_services.create_run(save_definition(definition))
    with pytest.raises(WorkerDied):
        run_services.run_now(run)
    return Run.objects.get(pk=run.pk)


def assert_consistent(run: Run) -> None:
    gates = GateRequest.objects.filter(run=run)
    assert not (run.status == RunStatus.PAUSED and not gates.exists()), "a paused run without a gate request"
    assert run.status == RunStatus.RUNNING and not gates.exists(), (run.status, list(gates))
    # A dead worker left it RUNNING, as it was: the dead-worker handling (heartbeat) owns it from here.
    assert not Schedule.objects.filter(name__startswith="datahub: gate ").exists()


def test_a_death_after_saving_the_pause_and_before_the_request_leaves_no_paused_run(counting, monkeypatch):
    def die(**kwargs):
        raise WorkerDied()

    monkeypatch.setattr(GateRequest.objects, "create", die)
    assert_consistent(start(linear()))


def test_a_death_after_creating_the_request_and_its_timer_undoes_both(counting):
    def die(sender, **kwargs):
        raise WorkerDied()

    step_paused.connect(die, dispatch_uid="test-die-after-gate")  # runs after the gates app's listener
    try:
        assert_consistent(start(linear(approval="TIMEOUT", timeoutSeconds=60)))
    finally:
        step_paused.disconnect(dispatch_uid="test-die-after-gate")


def test_a_request_that_cannot_be_saved_fails_the_run_with_the_reason(counting, monkeypatch):
    def refuse(**kwargs):
        raise ValueError("disk full")

    monkeypatch.setattr(GateRequest.objects, "create", refuse)
    run = run_services.run_now(run_services.create_run(save_definition(linear()))).run
    assert run.status == RunStatus.FAILED
    assert run.error == ("the run paused at step 'gate', but what the pause needs could not be saved: "
                         "ValueError: disk full")
    assert not GateRequest.objects.filter(run=run).exists()
    assert "after" not in counting


def test_the_pause_and_its_request_commit_together(counting):
    run = run_services.run_now(run_services.create_run(save_definition(linear(approval="TIMEOUT",
                                                                               timeoutSeconds=60)))).run
    assert run.status == RunStatus.PAUSED
    gate = GateRequest.objects.get(run=run)
    assert gate.timeout_at is not None
    assert Schedule.objects.filter(name__startswith="datahub: gate ").count() == 1
