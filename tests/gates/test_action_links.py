"""One-click Approve and Reject links in gate emails: signed, bound to the gate request, the run, the step
and the addressee, expiring, single-use; GET only shows a confirmation; the POST decides; no login
needed only when DATAHUB_GATE_LINKS_WITHOUT_LOGIN allows it."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.core import mail, signing
from django.test import Client

from gates import action_links
from gates.models import GateRequest, GateStatus
from runs.models import Run, RunStatus
from tests.gates.conftest import deliver_notices, linear, paused, resume_on_a_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def approver_ops(django_user_model):
    """The addressee: a user whose email the gate notifies, who may approve gates."""
    user = django_user_model.objects.create_user(username="opal", password="x", email="ops@example.com")
    user.user_permissions.add(Permission.objects.get(content_type__app_label="gates", codename="approve_gate"))
    return user


@pytest.fixture
def links(settings, counting, approver_ops):
    """A paused gate that emailed ops@example.com; its two links as paths."""
    settings.DATAHUB_BASE_URL = "https://datahub.example.com"
    run = paused(linear(notifyEmail=["ops@example.com", "lead@example.com"]))
    deliver_notices()
    message = next(m for m in mail.outbox if m.to == ["ops@example.com"])
    found = dict(re.findall(r"(Approve|Reject) in one click: +https://datahub\.example\.com(\S+)", message.body))
    html = message.alternatives[0][0]
    assert f'href="https://datahub.example.com{found["Approve"]}"' in html
    return run, found["Approve"], found["Reject"]


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_each_addressee_gets_links_of_their_own(links):
    run, approve, reject = links
    other = next(m for m in mail.outbox if m.to == ["lead@example.com"])
    assert approve not in other.body and reject not in other.body
    assert action_links.read_token(approve.split("/")[3]).addressee == "ops@example.com"


def test_get_only_confirms_and_the_post_approves(links, approver_ops, counting):
    run, approve, _ = links
    client = logged_in(approver_ops)
    page = client.get(approve)
    assert page.status_code == 200 and 'id="confirm"' in page.content.decode()
    assert "no-store" in page["Cache-Control"]
    assert GateRequest.objects.get().status == GateStatus.PENDING  # GET changed nothing
    done = client.post(approve)
    assert "Approved: run" in done.content.decode()
    gate = GateRequest.objects.get()
    assert gate.status == GateStatus.APPROVED and gate.decided_by == approver_ops
    assert resume_on_a_worker(run).status == RunStatus.COMPLETED
    # single use: the same link (and the other one) only says what happened
    again = client.post(approve).content.decode()
    assert 'id="act-decided"' in again and "approved by opal" in again.lower()
    assert GateRequest.objects.get().decided_at == gate.decided_at


def test_reject_asks_for_a_reason(links, approver_ops):
    run, _, reject = links
    client = logged_in(approver_ops)
    page = client.post(reject, {"reason": " "}).content.decode()
    assert "a rejection needs a reason" in page and GateRequest.objects.get().status == GateStatus.PENDING
    page = client.post(reject, {"reason": "prices look wrong"}).content.decode()
    assert "Rejected: run" in page
    assert GateRequest.objects.get().status == GateStatus.REJECTED
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED


def test_without_login_it_goes_to_the_login_page_unless_allowed(links, settings, approver_ops):
    run, approve, _ = links
    response = Client().get(approve)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")
    assert Client().post(approve).status_code == 302
    assert GateRequest.objects.get().status == GateStatus.PENDING
    settings.DATAHUB_GATE_LINKS_WITHOUT_LOGIN = True
    anonymous = Client(enforce_csrf_checks=True)
    page = anonymous.get(approve)
    assert page.status_code == 200 and "as opal" in page.content.decode()
    assert anonymous.post(approve).status_code == 403  # CSRF applies without a login too
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    done = anonymous.post(approve, {"csrfmiddlewaretoken": token})
    assert "Approved" in done.content.decode()
    assert GateRequest.objects.get().decided_by == approver_ops


def test_it_is_bound_to_the_addressee(links, alice, settings):
    run, approve, _ = links
    alice.user_permissions.add(Permission.objects.get(content_type__app_label="gates", codename="approve_gate"))
    response = logged_in(alice).post(approve)
    assert response.status_code == 403 and "this link was sent to ops@example.com" in response.content.decode()
    # lead@example.com is no Datahub user: their link decides nothing, even without login allowed
    settings.DATAHUB_GATE_LINKS_WITHOUT_LOGIN = True
    lead = next(m for m in mail.outbox if m.to == ["lead@example.com"])
    lead_approve = re.search(r"Approve in one click: +https://datahub\.example\.com(\S+)", lead.body).group(1)
    response = Client().post(lead_approve)
    assert response.status_code == 403 and "no single Datahub user" in response.content.decode()
    assert GateRequest.objects.get().status == GateStatus.PENDING


def test_it_needs_the_permission(links, approver_ops):
    run, approve, _ = links
    approver_ops.user_permissions.clear()
    response = logged_in(type(approver_ops).objects.get(pk=approver_ops.pk)).post(approve)
    assert response.status_code == 403 and "may not approve or reject gates" in response.content.decode()
    assert GateRequest.objects.get().status == GateStatus.PENDING


def test_a_changed_or_expired_or_foreign_token_is_refused(links, approver_ops, settings):
    run, approve, _ = links
    client = logged_in(approver_ops)
    token = approve.split("/")[3]
    tampered = client.post(f"/gates/act/{token[:-2]}xx/")
    assert tampered.status_code == 403 and "not valid" in tampered.content.decode()
    gate = GateRequest.objects.get()
    # a validly signed token for the same gate id but another step is refused
    forged = signing.dumps({"g": gate.pk, "r": run.pk, "s": "other", "a": "approve", "to": "ops@example.com"},
                           salt=action_links.SALT, compress=True)
    assert "no longer exists" in client.post(f"/gates/act/{forged}/").content.decode()
    settings.DATAHUB_GATE_LINK_MAX_AGE = -1  # every link is older than that
    expired = client.post(approve)
    assert expired.status_code == 403 and "expired" in expired.content.decode()
    assert GateRequest.objects.get().status == GateStatus.PENDING


def test_the_addressee_must_be_allowed_the_pipeline(links, approver_ops, bob):
    run, approve, _ = links
    run.pipeline.owners.add(bob)  # now bob's pipeline alone (pipelines.access)
    client = logged_in(approver_ops)
    page = client.get(approve)
    assert page.status_code == 403 and "may not use pipeline" in page.content.decode()
    assert "A-1" not in page.content.decode()  # no preview of records either
    assert client.post(approve).status_code == 403
    assert GateRequest.objects.get().status == GateStatus.PENDING
