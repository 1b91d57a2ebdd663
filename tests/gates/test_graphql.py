"""The GraphQL gate fields (written in datahub_project.schema) work through gates.services."""

import pytest
from rest_framework.authtoken.models import Token

from gates.models import GateRequest, GateStatus
from runs.models import Run, RunStatus
from tests.gates.conftest import linear, paused, queued_tasks

pytestmark = pytest.mark.django_db(transaction=True)

APPROVE = "mutation($run: ID!, $step: String!) { approveGate(runId: $run, stepKey: $step) { ok run { status } } }"
REJECT = ("mutation($run: ID!, $step: String!, $reason: String!) "
          "{ rejectGate(runId: $run, stepKey: $step, reason: $reason) { ok run { status } } }")
PENDING = "{ pendingGates { runId stepKey pipeline recordCount details } }"


def graphql(client, user, query, **variables):
    token = Token.objects.get_or_create(user=user)[0].key
    response = client.post("/graphql/", {"query": query, "variables": variables}, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Token {token}")
    return response.json()


def test_it_lists_approves_once_and_rejects_through_graphql(client, counting, approver, bob):
    run = paused(linear())
    listed = graphql(client, approver, PENDING)["data"]["pendingGates"]
    assert listed == [{"runId": str(run.pk), "stepKey": "gate", "pipeline": "gated", "recordCount": 2,
                       "details": listed[0]["details"]}]
    assert listed[0]["details"]["approvalType"] == "MANUAL"

    refused = graphql(client, bob, APPROVE, run=run.pk, step="gate")
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    done = graphql(client, approver, APPROVE, run=run.pk, step="gate")
    assert done["data"]["approveGate"]["ok"] is True
    again = graphql(client, approver, APPROVE, run=run.pk, step="gate")
    assert "already approved by alice" in again["errors"][0]["message"]
    assert queued_tasks() == [f"resume-{run.pk}"]


def test_it_rejects_through_graphql(client, counting, approver):
    run = paused(linear())
    done = graphql(client, approver, REJECT, run=run.pk, step="gate", reason="wrong file")
    assert done["data"]["rejectGate"] == {"ok": True, "run": {"status": "CANCELLED"}}
    assert GateRequest.objects.get().status == GateStatus.REJECTED
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED
    blank = graphql(client, approver, REJECT, run=run.pk, step="gate", reason=" ")
    assert "errors" in blank
