"""Rejecting a gate cancels the run with the reason; nothing after the gate runs, the held records go."""

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage

from gates import services
from gates.models import GateRequest, GateStatus
from runs.models import Run, RunStatus
from tests.gates.conftest import linear, paused, queued_tasks, resume_on_a_worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_cancels_the_run_with_the_reason_and_runs_nothing_after_the_gate(counting, approver):
    run = paused(linear())
    held = GateRequest.objects.get().held_file

    gate = services.reject(run, "gate", approver, "  prices are off by 100x  ")
    assert gate.status == GateStatus.REJECTED and gate.reason == "prices are off by 100x"
    assert gate.decided_by == approver and gate.decided_at is not None

    run = Run.objects.get(pk=run.pk)
    assert run.status == RunStatus.CANCELLED
    assert run.error == 'Gate step "gate" rejected by alice: prices are off by 100x'
    assert not default_storage.exists(held) and run.resume_state is None
    assert queued_tasks() == []
    assert resume_on_a_worker(run).status == RunStatus.CANCELLED  # a stray resume does nothing
    assert "after" not in counting
    assert run.step_runs.get(step_key="after").status == "CANCELLED"


def test_it_needs_a_reason_and_the_permission(counting, approver, bob):
    run = paused(linear())
    with pytest.raises(services.InvalidDecision):
        services.reject(run, "gate", approver, "   ")
    with pytest.raises(PermissionDenied):
        services.reject(run, "gate", bob, "no")
    with pytest.raises(PermissionDenied):
        services.approve(run, "gate", bob)
    assert GateRequest.objects.get().status == GateStatus.PENDING
    assert Run.objects.get(pk=run.pk).status == RunStatus.PAUSED


def test_it_closes_the_gate_of_a_run_cancelled_elsewhere(counting, approver):
    from runs import services as run_services

    run = paused(linear())
    run_services.cancel_run(run, reason="cancelled from the runs page")
    assert list(services.pending_gates(approver)) == []  # not listed as waiting any more
    with pytest.raises(services.GateConflict, match="CANCELLED"):
        services.approve(run, "gate", approver)
    gate = GateRequest.objects.get()
    assert gate.status == GateStatus.CANCELLED and "CANCELLED" in gate.reason
    assert queued_tasks() == []
