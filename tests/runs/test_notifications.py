"""context.notifications: an email (text + HTML) and a signed webhook when a run completes or fails."""

import hashlib
import hmac
import json

import pytest
from django.core import mail

from pipelines.models import Secret
from pipelines.secrets import set_secret_value
from pipelines.services import save_definition
from runs import hooks, notifications, services
from runs.models import HookDelivery, HookStatus, RunStatus
from tests.fixtures import simple_definition

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.DATAHUB_HTTP_ALLOW = ["127.0.0.1"]
    settings.DATAHUB_BASE_URL = "https://hub.example.com"


def pipeline(records=None, code="shop", **notify):
    d = simple_definition(code, records=records, notifications=notify)
    d["steps"].insert(2, {"key": "check", "type": "VALIDATE", "config": {"fields": {"sku": {"required": True}}}})
    return save_definition(d)


def run(p, **kw):
    return services.run_now(services.create_run(p, **kw)).run


def send_all():
    for d in HookDelivery.objects.filter(status=HookStatus.PENDING).order_by("pk"):
        if d.action_type == "EMAIL":
            notifications.send_notice(d.pk)
        else:
            hooks.deliver_webhook(d.pk)


def test_it_emails_a_summary_with_counts_first_errors_and_a_link_when_a_run_completes():
    bad = {"sku": None, "name": "<script>alert(1)</script>"}
    p = pipeline(records=[{"sku": "a"}, bad], onComplete=True, emailTo="ops@example.com, lead@example.com")
    r = run(p)
    assert r.status == RunStatus.COMPLETED
    send_all()
    (message,) = mail.outbox
    assert message.to == ["ops@example.com", "lead@example.com"]
    assert message.subject == f"[Datahub] Pipeline shop: run {r.pk} completed"
    text = message.body
    assert f"run {r.pk} COMPLETED" in text
    assert "check: COMPLETED  2 / 1 / 1" in text
    assert "[check] sku is required" in text and '"name": "<script>alert(1)</script>"' in text
    assert f"https://hub.example.com/runs/{r.pk}/" in text
    html, mime = message.alternatives[0]
    assert mime == "text/html"
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert f'<a href="https://hub.example.com/runs/{r.pk}/">' in html
    assert "<td>check</td><td>COMPLETED</td><td>2</td>" in html
    assert HookDelivery.objects.get().status == HookStatus.SENT


def test_it_notifies_on_error_only_when_asked():
    p = pipeline(onError=True, emailTo=["ops@example.com"])
    run(p)  # completes: onComplete not asked
    assert not HookDelivery.objects.exists()
    broken = simple_definition("shop", notifications={"onError": True, "emailTo": "ops@example.com"})
    broken["steps"][0] = {"key": "src", "type": "EXTRACT", "adapterCode": "csv", "config": {"path": "/nowhere.csv"}}
    r = run(save_definition(broken))
    assert r.status == RunStatus.FAILED
    send_all()
    (message,) = mail.outbox
    assert message.subject.endswith("failed") and r.error.split(":")[0] in message.body


def test_it_sends_nothing_for_dry_runs_cancelled_runs_or_without_settings():
    p = pipeline(onComplete=True, onError=True, emailTo="ops@example.com")
    run(p, dry_run=True)
    services.cancel_run(services.create_run(p))
    run(pipeline(code="quiet"))
    assert not HookDelivery.objects.exists()


def test_it_posts_a_signed_summary_to_the_webhook_url(httpserver):
    s = Secret(code="notify-key")
    set_secret_value(s, "n-secret")
    s.save()
    httpserver.expect_request("/notify", method="POST").respond_with_data("ok")
    p = pipeline(onComplete=True, webhookUrl=httpserver.url_for("/notify"), webhookSecretCode="notify-key")
    r = run(p)
    send_all()
    request, _ = httpserver.log[0]
    body = request.get_data()
    assert request.headers["X-DataHub-Signature"] == "sha256=" + hmac.new(b"n-secret", body, hashlib.sha256).hexdigest()
    payload = json.loads(body)
    assert payload["event"] == "run.completed" and payload["runId"] == r.pk and payload["status"] == "COMPLETED"
    assert payload["steps"]["clean"] == {"status": "COMPLETED", "recordsIn": 2, "recordsOut": 2, "errors": 0}
    assert payload["url"] == f"https://hub.example.com/runs/{r.pk}/"
    assert HookDelivery.objects.get().stage == "NOTIFICATION"


def test_it_keeps_a_failed_notice_on_the_run_without_touching_its_status(httpserver):
    httpserver.expect_request("/notify").respond_with_data("gone", status=404)
    p = pipeline(onComplete=True, webhookUrl=httpserver.url_for("/notify"), emailTo="ops@example.com")
    r = run(p)
    send_all()
    webhook = HookDelivery.objects.get(action_type="WEBHOOK")
    assert webhook.status == HookStatus.FAILED and "HTTP 404" in webhook.detail
    r.refresh_from_db()
    assert r.status == RunStatus.COMPLETED and len(mail.outbox) == 1
