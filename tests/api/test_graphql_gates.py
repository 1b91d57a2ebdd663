"""GraphQL's gate fields: pendingGates, approveGate(runId, stepKey), rejectGate(runId, stepKey, reason),
speaking for gates.services; and what they answer while no gates app provides them."""

import pytest
from django.contrib.auth.models import Permission

from gates.models import GateRequest, GateStatus
from pipelines.services import save_definition
from runs import services
from runs.models import RunStatus
from tests.api.conftest import client_for, codes, gql

APPROVE = "mutation($runId: ID!, $stepKey: String!) { approveGate(runId: $runId, stepKey: $stepKey) { ok run { id status } } }"
REJECT = """mutation($runId: ID!, $stepKey: String!, $reason: String!) {
  rejectGate(runId: $runId, stepKey: $stepKey, reason: $reason) { ok run { id status error } }
}"""
PENDING = "{ pendingGates { runId stepKey pipeline recordCount details } }"


@pytest.fixture
def paused_run(db, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    pipeline = save_definition({"code": "gated", "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": [{"sku": "A"}, {"sku": "B"}]}},
        {"key": "gate", "type": "GATE", "config": {"approvalType": "MANUAL"}},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
    ]})
    run = services.run_now(services.create_run(pipeline)).run
    assert run.status == RunStatus.PAUSED, run.error
    return run


@pytest.fixture
def as_approver(alice):
    alice.user_permissions.add(Permission.objects.get(content_type__app_label="gates", codename="approve_gate"))
    return client_for(alice)


def test_it_lists_pending_gates(paused_run, as_bob):
    _, body = gql(as_bob, PENDING)
    [gate] = body["data"]["pendingGates"]
    assert gate["runId"] == str(paused_run.pk) and gate["stepKey"] == "gate" and gate["pipeline"] == "gated"
    assert gate["recordCount"] == 2 and gate["details"]["approvalType"] == "MANUAL"


def test_it_approves_a_gate(paused_run, as_approver, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        _, body = gql(as_approver, APPROVE, {"runId": paused_run.pk, "stepKey": "gate"})
    assert body["data"]["approveGate"]["ok"] is True, body
    assert GateRequest.objects.get(run=paused_run).status == GateStatus.APPROVED
    assert len(queued) == 1  # the run continues on a worker
    _, again = gql(as_approver, APPROVE, {"runId": paused_run.pk, "stepKey": "gate"})
    assert codes(again) == ["CONFLICT"] and "already approved by alice" in again["errors"][0]["message"]


def test_it_rejects_a_gate_with_a_reason(paused_run, as_approver):
    _, empty = gql(as_approver, REJECT, {"runId": paused_run.pk, "stepKey": "gate", "reason": " "})
    assert codes(empty) == ["BAD_INPUT"]
    _, body = gql(as_approver, REJECT, {"runId": paused_run.pk, "stepKey": "gate", "reason": "prices wrong"})
    run = body["data"]["rejectGate"]["run"]
    assert run["status"] == "CANCELLED" and "prices wrong" in run["error"]


def test_it_answers_not_found_for_an_unknown_gate_or_run(paused_run, as_approver):
    _, step = gql(as_approver, APPROVE, {"runId": paused_run.pk, "stepKey": "nope"})
    assert codes(step) == ["NOT_FOUND"]
    _, run = gql(as_approver, APPROVE, {"runId": "987654", "stepKey": "gate"})
    assert codes(run) == ["NOT_FOUND"]


def test_it_refuses_a_decision_without_the_approve_permission(paused_run, as_charlie, anonymous):
    for run_id in (paused_run.pk, 987654):  # the same answer whether or not the run exists
        _, body = gql(as_charlie, APPROVE, {"runId": run_id, "stepKey": "gate"})
        assert codes(body) == ["FORBIDDEN"] and "gates.approve_gate" in body["errors"][0]["message"]
    _, reject = gql(as_charlie, REJECT, {"runId": paused_run.pk, "stepKey": "gate", "reason": "no"})
    assert codes(reject) == ["FORBIDDEN"]
    _, pending = gql(as_charlie, PENDING)
    assert codes(pending) == ["FORBIDDEN"]
    status, _ = gql(anonymous, APPROVE, {"runId": paused_run.pk, "stepKey": "gate"})
    assert status == 401
    assert GateRequest.objects.get(run=paused_run).status == GateStatus.PENDING


