"""The gate REST API: the waiting list, approve and reject, with token or session auth."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from gates.models import GateRequest, GateStatus
from runs.models import Run, RunStatus
from tests.conftest import PASSWORD
from tests.gates.conftest import linear, paused, queued_tasks

pytestmark = pytest.mark.django_db(transaction=True)


def api_as(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def test_it_answers_401_without_credentials(counting):
    run = paused(linear())
    client = api_as()
    assert client.get("/api/gates/").status_code == 401
    assert client.post(f"/api/gates/{run.pk}/gate/approve/").status_code == 401
    assert client.post(f"/api/gates/{run.pk}/gate/reject/", {"reason": "x"}, format="json").status_code == 401


def test_it_answers_403_without_permission_whether_or_not_the_gate_exists(counting, charlie, bob):
    run = paused(linear())
    assert api_as(charlie).get("/api/gates/").status_code == 403
    viewer = api_as(bob)
    assert viewer.get("/api/gates/").status_code == 200
    for url in (f"/api/gates/{run.pk}/gate/approve/", f"/api/gates/{run.pk}/nope/approve/"):
        response = viewer.post(url)
        assert response.status_code == 403 and "gates.approve_gate" in response.json()["detail"]
    assert viewer.post(f"/api/gates/{run.pk}/gate/reject/", {"reason": "x"}, format="json").status_code == 403
    assert GateRequest.objects.get().status == GateStatus.PENDING


def test_it_lists_the_waiting_gates(counting, approver):
    run = paused(linear())
    body = api_as(approver).get("/api/gates/").json()
    assert body["count"] == 1
    [item] = body["results"]
    assert item["runId"] == run.pk and item["stepKey"] == "gate" and item["pipeline"] == "gated"
    assert item["status"] == "PENDING" and item["recordCount"] == 2 and item["approvalType"] == "MANUAL"
    assert item["reviewUrl"].endswith(f"/gates/{run.pk}/gate/")
    detail = api_as(approver).get(f"/api/gates/{run.pk}/gate/").json()
    assert detail["preview"] == [{"sku": "A-1", "price": 10}, {"sku": "B-2", "price": 20}]


def test_it_approves_once_and_answers_409_with_who_decided(counting, approver):
    run = paused(linear())
    client = api_as(approver)
    first = client.post(f"/api/gates/{run.pk}/gate/approve/")
    assert first.status_code == 200, first.content
    assert first.json()["status"] == "APPROVED" and first.json()["decidedBy"] == "alice"
    second = client.post(f"/api/gates/{run.pk}/gate/approve/")
    assert second.status_code == 409
    assert "already approved by alice" in second.json()["detail"]
    assert second.json()["gate"]["decidedBy"] == "alice"
    assert client.post(f"/api/gates/{run.pk}/gate/reject/", {"reason": "late"}, format="json").status_code == 409
    assert queued_tasks() == [f"resume-{run.pk}"]


def test_it_answers_404_for_an_unknown_gate(counting, approver):
    run = paused(linear())
    client = api_as(approver)
    assert client.post(f"/api/gates/{run.pk}/nope/approve/").status_code == 404
    assert client.post(f"/api/gates/{run.pk + 9}/gate/approve/").status_code == 404
    assert client.post(f"/api/gates/{2**70}/gate/approve/").status_code == 404
    assert client.get(f"/api/gates/{run.pk}/after/").status_code == 404


def test_it_rejects_with_a_reason_and_cancels_the_run(counting, approver):
    run = paused(linear())
    client = api_as(approver)
    missing = client.post(f"/api/gates/{run.pk}/gate/reject/", {}, format="json")
    assert missing.status_code == 400 and missing.json()["problems"][0]["field"] == "reason"
    blank = client.post(f"/api/gates/{run.pk}/gate/reject/", {"reason": " "}, format="json")
    assert blank.status_code == 400
    done = client.post(f"/api/gates/{run.pk}/gate/reject/", {"reason": "stale prices"}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "REJECTED"
    run = Run.objects.get(pk=run.pk)
    assert run.status == RunStatus.CANCELLED
    assert run.error == 'Gate step "gate" rejected by alice: stale prices'


def test_it_needs_the_csrf_token_with_session_auth(counting, approver):
    run = paused(linear())
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="alice", password=PASSWORD)
    assert client.post(f"/api/gates/{run.pk}/gate/approve/").status_code == 403
    assert GateRequest.objects.get().status == GateStatus.PENDING
    client.get(f"/gates/{run.pk}/gate/")
    response = client.post(f"/api/gates/{run.pk}/gate/approve/", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    assert response.status_code == 200
