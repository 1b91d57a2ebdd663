"""The notices a waiting gate sends: a webhook to a real local HTTP server and an email with an HTML and a
text part. They are the run's queued deliveries (HookDelivery rows, as run hooks and notifications): run by
the worker, signed, retried by the queue, recorded on the delivery, and never fail the run or the gate."""

import hashlib
import hmac
import json
import socket

import pytest
from django.core import mail
from werkzeug import Response

from gates import notifications, services
from gates.models import GateRequest, GateStatus
from pipelines.models import Secret
from pipelines.secrets import set_secret_value
from runs.models import HookDelivery, HookStatus, Run, RunStatus
from tests.api.conftest import client_for
from tests.gates.conftest import deliver_notices, linear, paused, resume_on_a_worker, run_retries

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def notices(settings):
    settings.DATAHUB_HTTP_ALLOW = ["127.0.0.1"]
    settings.DATAHUB_BASE_URL = "https://datahub.example.com"


def webhook_delivery(run) -> HookDelivery:
    return HookDelivery.objects.get(run=run, stage=notifications.STAGE, action_type="WEBHOOK")


def test_it_posts_the_webhook_with_the_run_the_counts_the_preview_and_the_link(httpserver, notices, counting):
    httpserver.expect_request("/hooks/gate", method="POST").respond_with_json({"ok": True})
    run = paused(linear(notifyWebhook=httpserver.url_for("/hooks/gate"), previewCount=1))
    assert httpserver.log == []  # queued, not sent inline by the worker that paused the run
    delivery = webhook_delivery(run)
    assert deliver_notices() == [f"hook-{delivery.pk}-1"]

    [(request, _)] = httpserver.log
    assert request.headers["Content-Type"] == "application/json" and request.headers["X-Datahub-Event"] == "gate.waiting"
    assert "X-DataHub-Signature" not in request.headers  # no notifyWebhookSecretCode: unsigned
    body = json.loads(request.data)
    gate = GateRequest.objects.get()
    assert body == {
        "deliveryId": delivery.pk,
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
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.detail) == (HookStatus.SENT, 1, "HTTP 200 on attempt 1")


def test_the_webhook_is_signed_with_the_secret_named(httpserver, notices, counting):
    secret = Secret(code="gate-key")
    set_secret_value(secret, "s3cret-signing-key")
    secret.save()
    httpserver.expect_request("/hooks/gate", method="POST").respond_with_data("ok")
    run = paused(linear(notifyWebhook=httpserver.url_for("/hooks/gate"), notifyWebhookSecretCode="gate-key"))
    deliver_notices()

    [(request, _)] = httpserver.log
    expected = hmac.new(b"s3cret-signing-key", request.get_data(), hashlib.sha256).hexdigest()
    assert request.headers["X-DataHub-Signature"] == f"sha256={expected}"
    assert json.loads(request.data)["run"] == run.pk
    assert "s3cret-signing-key" not in json.dumps(webhook_delivery(run).action)  # the code is kept, not the value


def test_a_webhook_that_answers_503_is_retried_by_the_queue_and_the_gate_waits_meanwhile(
        httpserver, notices, counting, approver):
    answers = iter([Response("down", status=503), Response("ok", status=200)])
    httpserver.expect_request("/hooks/gate").respond_with_handler(lambda request: next(answers))
    run = paused(linear(notifyWebhook=httpserver.url_for("/hooks/gate")))

    deliver_notices()
    delivery = webhook_delivery(run)
    assert (delivery.status, delivery.detail) == (HookStatus.RETRYING,
                                                  "attempt 1 failed: HTTP 503; next attempt in 1 s")
    gate = GateRequest.objects.get()
    assert gate.status == GateStatus.PENDING and Run.objects.get(pk=run.pk).status == RunStatus.PAUSED
    assert run_retries() == [f"hook {delivery.pk} attempt 2"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (HookStatus.SENT, 2)
    assert len(httpserver.log) == 2
    assert [r.headers["X-DataHub-Attempt"] for r, _ in httpserver.log] == ["1", "2"]
    services.approve(run, "gate", approver)  # the gate works all the same
    assert resume_on_a_worker(run).status == RunStatus.COMPLETED


def test_a_failing_webhook_is_recorded_after_its_last_try_and_does_not_fail_the_run(
        httpserver, notices, counting, approver):
    httpserver.expect_request("/hooks/gate").respond_with_response(Response("down", status=503))
    run = paused(linear(notifyWebhook=httpserver.url_for("/hooks/gate")))
    deliver_notices()
    run_retries()
    run_retries()
    assert len(httpserver.log) == 3  # tried three times
    delivery = webhook_delivery(run)
    assert (delivery.status, delivery.detail) == (HookStatus.FAILED, "failed after 3 attempts: HTTP 503")
    assert Run.objects.get(pk=run.pk).status == RunStatus.PAUSED
    shown = client_for(approver).get(f"/api/gates/{run.pk}/gate/").json()["notices"]["webhook"]
    assert shown["attempts"] == 3 and shown["status"] == "FAILED" and "HTTP 503" in shown["error"]
    services.approve(run, "gate", approver)
    assert resume_on_a_worker(run).status == RunStatus.COMPLETED


def test_a_refused_webhook_is_not_retried(httpserver, notices, counting):
    httpserver.expect_request("/hooks/gate").respond_with_response(Response("no", status=404))
    run = paused(linear(notifyWebhook=httpserver.url_for("/hooks/gate")))
    deliver_notices()
    delivery = webhook_delivery(run)
    assert len(httpserver.log) == 1 and delivery.attempts == 1 and delivery.status == HookStatus.FAILED
    assert run_retries() == []


def test_an_unreachable_or_forbidden_webhook_is_recorded(settings, notices, counting):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = paused(linear(code="unreachable", notifyWebhook=f"http://127.0.0.1:{port}/hook"))
    deliver_notices()
    delivery = webhook_delivery(run)
    assert delivery.status == HookStatus.RETRYING and "cannot connect" in delivery.detail

    settings.DATAHUB_HTTP_ALLOW = []  # loopback is not allowed any more: read when the notice is sent
    run = paused(linear(code="forbidden", notifyWebhook=f"http://127.0.0.1:{port}/hook"))
    deliver_notices()
    delivery = webhook_delivery(run)
    assert delivery.attempts == 1 and delivery.status == HookStatus.FAILED and "127.0.0.1" in delivery.detail


def test_it_emails_an_html_and_a_text_part_with_the_preview_escaped(notices, counting):
    records = [{"sku": "<script>alert(1)</script>", "name": "Tom & Jerry"}, {"sku": "B-2", "name": None}]
    run = paused(linear(records=records, notifyEmail=["ops@example.com", "lead@example.com"]))
    assert mail.outbox == []  # queued: one delivery per address
    assert len(deliver_notices()) == 2

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
    sent = HookDelivery.objects.filter(run=run, stage=notifications.STAGE, action_type="EMAIL").order_by("pk")
    assert [(d.status, d.detail) for d in sent] == [(HookStatus.SENT, "sent to ops@example.com"),
                                                   (HookStatus.SENT, "sent to lead@example.com")]


def test_it_emails_one_address_given_as_a_string(notices, counting):
    paused(linear(notifyEmail="ops@example.com"))
    deliver_notices()
    assert mail.outbox[0].to == ["ops@example.com"]


def test_a_gate_decided_before_its_email_went_is_not_announced(notices, counting, approver):
    run = paused(linear(notifyEmail="ops@example.com"))
    services.approve(run, "gate", approver)
    deliver_notices()
    assert mail.outbox == []
    delivery = HookDelivery.objects.get(run=run, stage=notifications.STAGE)
    assert delivery.status == HookStatus.SKIPPED and "decided" in delivery.detail


def test_a_failing_email_is_recorded_and_does_not_fail_the_run(settings, notices, counting, approver):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    run = paused(linear(notifyEmail="ops@example.com"))
    deliver_notices()
    delivery = HookDelivery.objects.get(run=run, stage=notifications.STAGE)
    assert delivery.status == HookStatus.FAILED and "Connection" in delivery.detail
    assert Run.objects.get(pk=run.pk).status == RunStatus.PAUSED
    services.approve(run, "gate", approver)
    assert resume_on_a_worker(run).status == RunStatus.COMPLETED
