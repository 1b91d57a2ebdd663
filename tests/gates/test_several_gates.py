"""Several gates in one pipeline, and gates in parallel branches: each needs its own decision, the other
branches go on, and the run stays PAUSED while any gate waits."""

import pytest

from gates import services
from gates.models import GateRequest, GateStatus
from runs.models import Run, RunStatus
from tests.gates.conftest import gate, load, paused, queued_tasks, resume_on_a_worker, src

pytestmark = pytest.mark.django_db(transaction=True)

PARALLEL = {"parallelExecution": {"enabled": True, "maxConcurrentSteps": 4}}


def statuses(run):
    return {s.step_key: s.status for s in Run.objects.get(pk=run.pk).step_runs.all()}


def test_it_stops_at_each_gate_of_a_chain_in_turn(counting, approver):
    d = {"code": "two-gates", "steps": [src(), load("before"), gate("first"), load("middle"), gate("second"),
                                        load("after")], "edges": []}
    run = paused(d)
    assert [g.step_key for g in services.pending_gates(approver)] == ["first"]

    services.approve(run, "first", approver)
    run = resume_on_a_worker(run)
    assert run.status == RunStatus.PAUSED
    assert [g.step_key for g in services.pending_gates(approver)] == ["second"]  # opened by the resume
    assert len(counting["middle"]) == 2 and "after" not in counting

    services.approve(run, "second", approver)
    run = resume_on_a_worker(run)
    assert run.status == RunStatus.COMPLETED, run.error
    assert [len(counting[k]) for k in ("before", "middle", "after")] == [2, 2, 2]  # each step wrote once
    assert set(GateRequest.objects.values_list("status", flat=True)) == {GateStatus.APPROVED}


def test_the_other_branch_completes_while_a_gate_waits(counting, approver):
    d = {"code": "branching", "context": PARALLEL, "steps": [
        src(), gate(), load("after"), src("side", [{"side": 1}]), load("side-out")],
        "edges": [{"from": "src", "to": "gate"}, {"from": "gate", "to": "after"},
                  {"from": "side", "to": "side-out"}]}
    run = paused(d)
    assert statuses(run) == {"src": "COMPLETED", "gate": "PAUSED", "after": "PENDING", "side": "COMPLETED",
                             "side-out": "COMPLETED"}
    assert counting["side-out"] == [{"side": 1}] and "after" not in counting

    services.approve(run, "gate", approver)
    run = resume_on_a_worker(run)
    assert run.status == RunStatus.COMPLETED, run.error
    assert len(counting["after"]) == 2 and counting["side-out"] == [{"side": 1}]  # the side ran once


def parallel_gates():
    return {"code": "parallel-gates", "context": PARALLEL, "steps": [
        src(), gate("left-gate"), load("left"), gate("right-gate"), load("right")],
        "edges": [{"from": "src", "to": "left-gate"}, {"from": "left-gate", "to": "left"},
                  {"from": "src", "to": "right-gate"}, {"from": "right-gate", "to": "right"}]}


def test_gates_in_parallel_branches_each_need_their_own_decision(counting, approver):
    run = paused(parallel_gates())
    assert sorted(g.step_key for g in services.pending_gates(approver)) == ["left-gate", "right-gate"]

    services.approve(run, "left-gate", approver)
    run = resume_on_a_worker(run)
    assert run.status == RunStatus.PAUSED  # the right gate still waits
    assert statuses(run)["left"] == "COMPLETED" and statuses(run)["right"] == "PENDING"
    assert [g.step_key for g in services.pending_gates(approver)] == ["right-gate"]

    services.approve(run, "right-gate", approver)
    run = resume_on_a_worker(run)
    assert run.status == RunStatus.COMPLETED, run.error
    assert len(counting["left"]) == len(counting["right"]) == 2


def test_both_parallel_gates_approved_before_a_worker_picks_the_run_up(counting, approver):
    run = paused(parallel_gates())
    services.approve(run, "left-gate", approver)
    services.approve(run, "right-gate", approver)
    assert queued_tasks() == [f"resume-{run.pk}", f"resume-{run.pk}"]
    from runs.tasks import resume_run

    assert resume_run(run.pk) == "COMPLETED"
    assert resume_run(run.pk) == "skipped"  # the second delivery finds nothing to resume
    assert len(counting["left"]) == len(counting["right"]) == 2


def test_rejecting_one_parallel_gate_cancels_the_run_and_closes_the_other(counting, approver):
    run = paused(parallel_gates())
    services.reject(run, "right-gate", approver, "right side is wrong")
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED
    left = GateRequest.objects.get(step_key="left-gate")
    assert left.status == GateStatus.CANCELLED and "right-gate" in left.reason
    with pytest.raises(services.GateConflict, match="closed without a decision"):
        services.approve(run, "left-gate", approver)
    assert "left" not in counting and "right" not in counting


def test_a_gate_can_be_decided_while_the_run_continues_after_another(counting, approver):
    from gates import tasks
    from runs import services as run_services

    d = parallel_gates()
    d["steps"][3]["config"] = {"approvalType": "TIMEOUT", "timeoutSeconds": 60}
    run = paused(d)
    services.approve(run, "left-gate", approver)
    assert run_services.claim_resume(run.pk)  # a worker has picked the run up and is running it

    services.approve(run, "right-gate", approver)  # decided now; applied when the run pauses again
    right = GateRequest.objects.get(step_key="right-gate")
    assert right.status == GateStatus.APPROVED
    assert tasks.auto_approve(right.pk) == "already approved"  # the timer has nothing left to do

    run = run_services.execute_claimed(Run.objects.get(pk=run.pk)).run  # the worker goes on
    assert run.status == RunStatus.PAUSED
    assert run.resume_state["steps"]["right-gate"]["status"] == "COMPLETED"
    assert resume_on_a_worker(run).status == RunStatus.COMPLETED
