"""The review page: who may look, who may decide, what it shows (escaped), and deciding from it."""

import pytest
from django.urls import reverse

from gates.models import GateRequest, GateStatus
from runs.models import Run, RunStatus
from tests.conftest import PASSWORD
from tests.gates.conftest import linear, paused, queued_tasks

pytestmark = pytest.mark.django_db(transaction=True)


def review_url(run, key="gate"):
    return reverse("gates:review", args=[run.pk, key])


def test_it_sends_anonymous_visitors_to_the_login_page(client, counting):
    run = paused(linear())
    for url in (reverse("gates:list"), review_url(run)):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    response = client.post(reverse("gates:approve", args=[run.pk, "gate"]))
    assert response.status_code == 302 and GateRequest.objects.get().status == GateStatus.PENDING


def test_it_refuses_people_without_permission(client, counting, charlie):
    run = paused(linear())
    client.force_login(charlie)
    assert client.get(reverse("gates:list")).status_code == 403
    assert client.get(review_url(run)).status_code == 403
    assert client.post(reverse("gates:approve", args=[run.pk, "gate"])).status_code == 403


def test_it_lets_viewers_look_but_not_decide(client, counting, bob):
    run = paused(linear())
    client.force_login(bob)
    page = client.get(review_url(run))
    assert page.status_code == 200
    assert b"Can approve or reject gates" in page.content and b'id="approve"' not in page.content
    listing = client.get(reverse("gates:list")).content.decode()
    assert f"#{run.pk}" in listing and "Pipeline gated" in listing
    assert client.post(reverse("gates:approve", args=[run.pk, "gate"])).status_code == 403
    assert client.post(reverse("gates:reject", args=[run.pk, "gate"]), {"reason": "no"}).status_code == 403
    assert GateRequest.objects.get().status == GateStatus.PENDING


def test_it_answers_404_for_a_gate_that_does_not_exist(client, counting, approver):
    run = paused(linear())
    client.force_login(approver)
    assert client.get(review_url(run, "nope")).status_code == 404
    assert client.get(reverse("gates:review", args=[run.pk + 100, "gate"])).status_code == 404
    assert client.get(f"/gates/{2**70}/gate/").status_code == 404
    assert client.post(reverse("gates:approve", args=[run.pk, "after"])).status_code == 404


def test_it_shows_the_held_records_escaped(client, counting, approver):
    run = paused(linear(records=[{"sku": "<script>alert(1)</script>", "note": "<b>bold</b>"}]))
    client.force_login(approver)
    html = client.get(review_url(run)).content.decode()
    assert "<script>alert(1)</script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert 'id="approve"' in html and 'id="reject"' in html


def test_it_pages_through_every_held_record(client, counting, approver):
    run = paused(linear(records=[{"n": i} for i in range(60)], previewCount=5))
    client.force_login(approver)
    first = client.get(review_url(run)).content.decode()
    assert "Page 1 of 3" in first and "60 records" in first
    third = client.get(review_url(run) + "?page=3", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="gate-records")
    body = third.content.decode()
    assert body.lstrip().startswith('<div id="gate-records">') and "<html" not in body
    assert ">59<" in body and ">50<" in body and ">49<" not in body  # records n=50..59, rows 51..60
    assert "Page 3 of 3" in body


def test_it_approves_from_the_page_with_htmx_and_shows_who_decided(client, counting, approver):
    run = paused(linear())
    client.force_login(approver)
    response = client.post(reverse("gates:approve", args=[run.pk, "gate"]), HTTP_HX_REQUEST="true",
                           HTTP_HX_TARGET="gate-decision")
    body = response.content.decode()
    assert response.status_code == 200 and 'id="gate-decision"' in body and "<html" not in body
    assert "Approved" in body and "alice" in body and 'id="approve"' not in body
    assert queued_tasks() == [f"resume-{run.pk}"]
    again = client.post(reverse("gates:approve", args=[run.pk, "gate"]), HTTP_HX_REQUEST="true",
                        HTTP_HX_TARGET="gate-decision").content.decode()
    assert "already approved by alice" in again
    assert queued_tasks() == [f"resume-{run.pk}"]  # the run continues once


def test_it_rejects_only_with_a_reason(client, counting, approver):
    run = paused(linear())
    client.force_login(approver)
    url = reverse("gates:reject", args=[run.pk, "gate"])
    empty = client.post(url, {"reason": "  "})
    assert empty.status_code == 400 and b"a rejection needs a reason" in empty.content
    assert Run.objects.get(pk=run.pk).status == RunStatus.PAUSED
    done = client.post(url, {"reason": "prices look <wrong>"})
    assert done.status_code == 302 and done["Location"] == review_url(run)
    page = client.get(done["Location"]).content.decode()
    assert "Rejected" in page and "prices look &lt;wrong&gt;" in page
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED


def test_it_checks_the_csrf_token_of_a_decision(counting, approver):
    from django.test import Client

    run = paused(linear())
    browser = Client(enforce_csrf_checks=True)
    assert browser.login(username="alice", password=PASSWORD)
    url = reverse("gates:approve", args=[run.pk, "gate"])
    assert browser.post(url).status_code == 403
    assert GateRequest.objects.get().status == GateStatus.PENDING
    browser.get(review_url(run))
    token = browser.cookies["csrftoken"].value
    assert browser.post(url, HTTP_X_CSRFTOKEN=token).status_code == 302
    assert GateRequest.objects.get().status == GateStatus.APPROVED
