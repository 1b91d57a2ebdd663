"""The notices a waiting gate sends: a webhook to a real local HTTP server and an email with an HTML and a
text part. A notice that fails is retried, recorded on the gate, and never fails the run or the gate."""

import json
import socket

import pytest
from django.core import mail
from werkzeug import Response

from gates import notifications, services
from gates.models import GateRequest, GateStatus
from runs.models import Run, RunStatus
from tests.gates.conftest import linear, paused, resume_on_a_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def notices(settings, monkeypatch):
    settings.DATAHUB_HTTP_ALLOW = ["127.0.0.1"]
    settings.DATAHUB_BASE_URL = "https://datahub.example.com"
    monkeypatch.setattr(notifications, "WEBHOOK_RETRY_DELAYS", (0.0, 0.0))


def test_it_posts_the_webhook_with_the_run_the_counts_the_preview_and_the_link(httpserver, notices, counting):
    httpserver.expect_request("/hooks/gate", method="POST").respond_with_json({"ok": True})
    run = paused(linear(notifyWebhook=httpserver.url_for("/hooks/gate"), previewCount=1))

    [(request, _)] = httpserver.log
    assert request.headers["Content-Type"] == "application/json" and request.headers["X-Datahub-Event"] == "gate.waiting"
    body = json.loads(request.data)
    gate = GateRequest.objects.get()
    assert body == {
        "event": "gate.waiting",
        "run": run.pk,
        "runUrl": f"https://datahub.example.com/runs/{run.pk}/",
        "pipeline": "gated",
        "pipelineName": "Pipeline gated",
        "step": "gate",
        "approvalType": "MANUAL",
        "createdAt": gate.created_at.isoformat(),
        "timeoutAt": None,
        "counts": {"records": 2, "extracted": 2, "errors": 0, "errorRatePercent": 0.0},
        "preview": [{"sku": "A-1", "price": 10}],
        "reviewUrl": f"https://datahub.example.com/gates/{run.pk}/gate/",
    }
    assert gate.webhook_attempts == 1 and gate.webhook_status == 200 and gate.webhook_sent_at and not gate.webhook_error


def test_a_failing_webhook_is_retried_recorded_and_does_not_fail_the_run(httpserver, notices, counting, approver):
    httpserver.expect_request("/hooks/gate").respond_with_response(Response("down", status=503))
    run = paused(linear(notifyWebhook=httpserver.url_for("/hooks/gate")))

    assert len(httpserver.log) == 3  # tried three times
    gate = GateRequest.objects.get()
    assert gate.status == GateStatus.PENDING and Run.objects.get(pk=run.pk).status == RunStatus.PAUSED
    assert gate.webhook_attempts == 3 and gate.webhook_status == 503 and "503" in gate.webhook_error
    assert gate.webhook_sent_at is None
    services.approve(run, "gate", approver)  # the gate works all the same
    assert resume_on_a_worker(run).status == RunStatus.COMPLETED


def test_a_refused_webhook_is_not_retried(httpserver, notices, counting):
    httpserver.expect_request("/hooks/gate").respond_with_response(Response("no", status=404))
    paused(linear(notifyWebhook=httpserver.url_for("/hooks/gate")))
    gate = GateRequest.objects.get()
    assert len(httpserver.log) == 1 and gate.webhook_attempts == 1 and gate.webhook_status == 404


def test_an_unreachable_or_forbidden_webhook_is_recorded(settings, notices, counting):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = paused(linear(code="unreachable", notifyWebhook=f"http://127.0.0.1:{port}/hook"))
    gate = GateRequest.objects.get(run=run)
    assert gate.webhook_attempts == 3 and gate.webhook_error and gate.webhook_status is None

    settings.DATAHUB_HTTP_ALLOW = []  # loopback is not allowed any more: read when the notice is sent
    run = paused(linear(code="forbidden", notifyWebhook=f"http://127.0.0.1:{port}/hook"))
    gate = GateRequest.objects.get(run=run)
    assert gate.webhook_attempts == 1 and "127.0.0.1" in gate.webhook_error


def test_it_emails_an_html_and_a_text_part_with_the_preview_escaped(notices, counting):
    records = [{"sku": "<script>alert(1)</script>", "name": "Tom & Jerry"}, {"sku": "B-2", "name": None}]
    run = paused(linear(records=records, notifyEmail=["ops@example.com", "lead@example.com"]))

    # one email per address, each with its own one-click links (tests/gates/test_action_links.py)
    assert [m.to for m in mail.outbox] == [["ops@example.com"], ["lead@example.com"]]
    message = mail.outbox[0]
    assert message.subject == f'[Datahub] Gate "gate" of Pipeline gated waits for approval (run {run.pk})'
    link = f"https://datahub.example.com/gates/{run.pk}/gate/"
    assert link in message.body and "<script>alert(1)</scrip" in message.body  # plain text, not HTML
    assert "Tom & Jerry" in message.body
    assert "Records held:   2" in message.body
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    assert f'href="{link}"' in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Tom &amp; Jerry" in html
    assert GateRequest.objects.get().email_sent_at is not None


def test_it_emails_one_address_given_as_a_string(notices, counting):
    paused(linear(notifyEmail="ops@example.com"))
    assert mail.outbox[0].to == ["ops@example.com"]


def test_a_failing_email_is_recorded_and_does_not_fail_the_run(settings, notices, counting, approver):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    run = paused(linear(notifyEmail="ops@example.com"))
    gate = GateRequest.objects.get()
    assert gate.email_sent_at is None and "Connection" in gate.email_error
    services.approve(run, "gate", approver)
    assert resume_on_a_worker(run).status == RunStatus.COMPLETED
