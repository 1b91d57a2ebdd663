"""Hook actions carried out for real runs: LOG, WEBHOOK (signed, retried), EMAIL and TRIGGER_PIPELINE."""

import hashlib
import hmac
import json
import logging
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task
from werkzeug import Response

from pipelines.models import Pipeline, Secret
from pipelines.secrets import set_secret_value
from pipelines.services import save_definition
from runs import hooks, services
from runs.models import HookDelivery, HookStatus, Run, RunStatus
from tests.fixtures import simple_definition

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _local_http(settings):
    settings.DATAHUB_HTTP_ALLOW = ["127.0.0.1"]


def secret(code, value):
    s = Secret(code=code)
    set_secret_value(s, value)
    s.save()


def with_hooks(code="shop", hooks_=None, records=None, **kw):
    d = simple_definition(code, records=records)
    d["hooks"] = hooks_ or {}
    d.update(kw)
    return save_definition(d)


def run(pipeline, **kw):
    return services.run_now(services.create_run(pipeline, **kw), keep_outputs=True).run


def test_it_logs_a_log_hook_and_adds_it_to_the_steps_warnings(caplog):
    p = with_hooks(hooks_={
        "AFTER_TRANSFORM": [{"type": "LOG", "level": "WARN", "message": "cleaned ${recordCount} in ${stepKey}"}],
        "PIPELINE_COMPLETED": [{"type": "LOG", "message": "done: ${status}"}],
    })
    with caplog.at_level(logging.INFO, logger="datahub.hooks"):
        r = run(p)
    assert r.status == RunStatus.COMPLETED
    assert r.step_runs.get(step_key="clean").warnings == ["AFTER_TRANSFORM WARNING: cleaned 2 in clean"]
    assert "cleaned 2 in clean" in caplog.text and "done: COMPLETED" in caplog.text
    assert not HookDelivery.objects.exists()


def test_it_delivers_a_signed_webhook_with_the_records(httpserver):
    secret("hook-key", "sign-me")
    secret("partner", "p-token")
    url = httpserver.url_for("/after-sink")
    p = with_hooks(hooks_={"AFTER_SINK": [{"type": "WEBHOOK", "name": "tell shop", "url": url, "secretCode": "hook-key",
                                           "headers": {"X-Shop": "eu"}, "headerSecretCodes": {"X-Token": "partner"}}]})
    r = run(p)
    d = HookDelivery.objects.get()
    assert (d.stage, d.step_key, d.action_type, d.name, d.status) == ("AFTER_SINK", "out", "WEBHOOK", "tell shop",
                                                                       HookStatus.PENDING)
    httpserver.expect_request("/after-sink", method="POST").respond_with_data("ok")
    async_task("runs.hooks.deliver_webhook", d.pk, 1, sync=True)  # the worker's code path
    d.refresh_from_db()
    assert (d.status, d.attempts) == (HookStatus.SENT, 1)
    request, _ = httpserver.log[0]
    body = request.get_data()
    payload = json.loads(body)
    assert payload["deliveryId"] == d.pk and payload["runId"] == r.pk and payload["pipelineCode"] == "shop"
    assert payload["stage"] == "AFTER_SINK" and payload["records"] == [{"sku": "a"}, {"sku": "b"}]
    expected = "sha256=" + hmac.new(b"sign-me", body, hashlib.sha256).hexdigest()
    assert request.headers["X-DataHub-Signature"] == expected
    assert request.headers["X-Shop"] == "eu" and request.headers["X-Token"] == "p-token"
    assert request.headers["X-DataHub-Event"] == "AFTER_SINK" and request.headers["X-DataHub-Delivery"] == str(d.pk)


def test_it_retries_a_failing_webhook_with_backoff_and_sends_each_attempt_once(httpserver):
    answers = iter([503, 502, 200])
    httpserver.expect_request("/flaky").respond_with_handler(lambda request: Response("x", status=next(answers)))
    p = with_hooks(hooks_={"PIPELINE_COMPLETED": [{"type": "WEBHOOK", "url": httpserver.url_for("/flaky"),
                                                   "retryConfig": {"initialDelayMs": 2000, "backoffMultiplier": 3}}]})
    run(p)
    d = HookDelivery.objects.get()
    before = timezone.now()
    assert hooks.deliver_webhook(d.pk, 1) == "retrying"
    assert hooks.deliver_webhook(d.pk, 1) == "skipped"  # the same task delivered twice
    retry = Schedule.objects.get(func="runs.hooks.deliver_webhook")
    assert retry.args == repr((d.pk, 2)) and retry.schedule_type == Schedule.ONCE and retry.repeats == -1
    assert before + timedelta(seconds=1.5) < retry.next_run < before + timedelta(seconds=3)
    assert hooks.deliver_webhook(d.pk, 2) == "retrying"
    second = Schedule.objects.filter(func="runs.hooks.deliver_webhook").exclude(pk=retry.pk).get()
    assert second.next_run - timezone.now() > timedelta(seconds=5)  # 2 s x 3
    assert hooks.deliver_webhook(d.pk, 3) == "sent"
    d.refresh_from_db()
    assert (d.status, d.attempts, d.detail) == (HookStatus.SENT, 3, "HTTP 200 on attempt 3")
    assert len(httpserver.log) == 3


def test_it_gives_up_after_the_last_attempt_and_notes_it_on_the_step_not_the_run(httpserver, caplog):
    httpserver.expect_request("/down").respond_with_data("no", status=500)
    p = with_hooks(hooks_={"AFTER_TRANSFORM": [{"type": "WEBHOOK", "url": httpserver.url_for("/down"),
                                                "retryConfig": {"maxAttempts": 2, "initialDelayMs": 0}}]})
    r = run(p)
    d = HookDelivery.objects.get()
    assert hooks.deliver_webhook(d.pk, 1) == "retrying"
    assert hooks.deliver_webhook(d.pk, 2) == "failed"
    d.refresh_from_db()
    assert d.status == HookStatus.FAILED and d.detail == "failed after 2 attempts: HTTP 500"
    r.refresh_from_db()
    assert r.status == RunStatus.COMPLETED and r.error == ""
    assert r.step_runs.get(step_key="clean").warnings == ["AFTER_TRANSFORM WEBHOOK: failed after 2 attempts: HTTP 500"]
    assert "failed after 2 attempts" in caplog.text


def test_it_does_not_retry_what_cannot_get_better(httpserver, settings):
    httpserver.expect_request("/bad").respond_with_data("no", status=400)
    p = with_hooks(hooks_={"PIPELINE_COMPLETED": [
        {"type": "WEBHOOK", "url": httpserver.url_for("/bad")},
        {"type": "WEBHOOK", "url": httpserver.url_for("/signed"), "secretCode": "missing-secret"},
    ]})
    run(p)
    first, second = HookDelivery.objects.order_by("pk")
    assert hooks.deliver_webhook(first.pk) == "failed"
    assert hooks.deliver_webhook(second.pk) == "failed"
    second.refresh_from_db()
    assert "unknown secret 'missing-secret'" in second.detail
    settings.DATAHUB_HTTP_ALLOW = []
    run(with_hooks("private", hooks_={"PIPELINE_COMPLETED": [{"type": "WEBHOOK", "url": httpserver.url_for("/x")}]}))
    third = HookDelivery.objects.latest("pk")
    assert hooks.deliver_webhook(third.pk) == "failed"
    third.refresh_from_db()
    assert "refusing to connect" in third.detail and third.attempts == 1
    assert not Schedule.objects.filter(func="runs.hooks.deliver_webhook").exists()


def test_it_sends_nothing_in_a_dry_run():
    p = with_hooks(hooks_={"PIPELINE_COMPLETED": [{"type": "EMAIL", "to": "ops@example.com"}]})
    run(p, dry_run=True)
    d = HookDelivery.objects.get()
    assert d.status == HookStatus.SKIPPED and "dry run" in d.detail
    assert hooks.send_email(d.pk) == "skipped" and mail.outbox == []


def test_it_sends_an_email_hook_with_placeholders_and_no_header_injection():
    p = with_hooks(hooks_={"ON_DEAD_LETTER": [{"type": "EMAIL", "to": ["a@example.com", "b@example.com"],
                                               "subject": "${recordCount} bad\r\nBcc: evil@example.com",
                                               "body": "step ${stepKey} of ${pipelineCode}: ${errors}"}]})
    d = simple_definition("shop", records=[{"sku": "a"}, {"sku": None}])
    d["steps"].insert(2, {"key": "check", "type": "VALIDATE", "config": {"fields": {"sku": {"required": True}}}})
    d["hooks"] = Pipeline.objects.get(pk=p.pk).extra["hooks"]
    run(save_definition(d))
    delivery = HookDelivery.objects.get()
    assert hooks.send_email(delivery.pk) == "sent"
    (message,) = mail.outbox
    assert message.to == ["a@example.com", "b@example.com"]
    assert message.subject == "1 bad Bcc: evil@example.com"
    assert message.body == "step check of shop: ['sku is required']"


def test_it_triggers_another_pipeline_with_the_records_and_keeps_the_parent():
    target = save_definition({"version": 1, "code": "next", "steps": [
        {"key": "start", "type": "TRIGGER", "config": {"type": "MANUAL"}},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}}],
        "edges": [{"from": "start", "to": "out"}]})
    p = with_hooks(hooks_={"AFTER_TRANSFORM": [{"type": "TRIGGER_PIPELINE", "pipelineCode": "next"}],
                           "PIPELINE_COMPLETED": [{"type": "TRIGGER_PIPELINE", "pipelineCode": "next"}]})
    parent = run(p)
    seeded, plain = HookDelivery.objects.order_by("pk")
    assert hooks.trigger_pipeline(seeded.pk) == "sent"
    child = Run.objects.get(pipeline=target)
    assert (child.trigger, child.seed_step, child.seed_records, child.parent_run_id) == (
        "hook", "start", [{"sku": "a"}, {"sku": "b"}], parent.pk)
    assert services.run_now(child, keep_outputs=True).result.output("out") == [{"sku": "a"}, {"sku": "b"}]
    assert hooks.trigger_pipeline(plain.pk) == "sent"
    second = Run.objects.filter(pipeline=target).latest("pk")
    assert (second.seed_step, second.seed_records) == ("", None)


def test_it_refuses_a_pipeline_that_would_trigger_itself_directly_or_through_others():
    me = with_hooks("loop", hooks_={"PIPELINE_COMPLETED": [{"type": "TRIGGER_PIPELINE", "pipelineCode": "loop"}]})
    first = run(me)
    d = HookDelivery.objects.get()
    assert hooks.trigger_pipeline(d.pk) == "failed"
    d.refresh_from_db()
    assert d.detail == "refused: a trigger loop (loop → loop)"
    assert Run.objects.count() == 1 and first.status == RunStatus.COMPLETED

    a = with_hooks("a", hooks_={"PIPELINE_COMPLETED": [{"type": "TRIGGER_PIPELINE", "pipelineCode": "b"}]})
    with_hooks("b", hooks_={"PIPELINE_COMPLETED": [{"type": "TRIGGER_PIPELINE", "pipelineCode": "a"}]})
    run(a)
    assert hooks.trigger_pipeline(HookDelivery.objects.latest("pk").pk) == "sent"
    b_run = Run.objects.filter(pipeline__code="b").get()
    services.run_now(b_run)
    back = HookDelivery.objects.latest("pk")
    assert hooks.trigger_pipeline(back.pk) == "failed"
    back.refresh_from_db()
    assert back.detail == "refused: a trigger loop (a → b → a)"


def test_it_records_why_a_pipeline_could_not_be_triggered():
    save_definition(simple_definition("busy"))
    services.create_run(Pipeline.objects.get(code="busy"))
    save_definition(simple_definition("off"))
    Pipeline.objects.filter(code="off").update(enabled=False)
    p = with_hooks(hooks_={"PIPELINE_COMPLETED": [
        {"type": "TRIGGER_PIPELINE", "pipelineCode": "ghost"},
        {"type": "TRIGGER_PIPELINE", "pipelineCode": "off"},
        {"type": "TRIGGER_PIPELINE", "pipelineCode": "busy"},
        {"type": "TRIGGER_PIPELINE", "pipelineCode": "busy", "triggerKey": "nope"},
    ]})
    assert run(p).status == RunStatus.COMPLETED
    details = []
    for d in HookDelivery.objects.order_by("pk"):
        assert hooks.trigger_pipeline(d.pk) == "failed"
        d.refresh_from_db()
        details.append(d.detail)
    assert details[0] == "there is no pipeline 'ghost'"
    assert details[1] == "pipeline 'off' is disabled"
    assert "already has an active run" in details[2]
    assert details[3] == "pipeline 'busy' has no TRIGGER step 'nope'"


def test_it_refuses_to_save_broken_hooks():
    from pipelines.errors import DefinitionError

    d = simple_definition("broken")
    d["hooks"] = {"AFTER_LOAD": [{"type": "WEBHOOK", "url": "ftp://x"}]}
    with pytest.raises(DefinitionError) as err:
        save_definition(d)
    assert "hooks.AFTER_LOAD[0].url" in [p.field for p in err.value.problems]


def test_it_fails_a_run_whose_hooks_broke_after_saving_before_any_step_runs():
    from pipelines.models import PipelineRevision

    pipeline = save_definition(simple_definition("broken"))
    bad = dict(pipeline.current_revision.definition, hooks={"AFTER_LOAD": [{"type": "WEBHOOK", "url": "ftp://x"}]})
    PipelineRevision.objects.filter(pk=pipeline.current_revision.pk).update(definition=bad)
    r = run(pipeline)
    assert r.status == RunStatus.FAILED
    assert "hooks.AFTER_LOAD[0].url" in r.error and not r.step_runs.exists()


def test_it_follows_the_one_http_policy_501_is_final_and_retry_after_wins(httpserver):
    # pipelines.http_policy: a 501 cannot get better on another try (hooks used to retry it, and 425);
    # a 503's Retry-After sets the next attempt even when the backoff would wait longer.
    httpserver.expect_request("/nope").respond_with_data("no", status=501)
    httpserver.expect_request("/busy").respond_with_data("busy", status=503, headers={"Retry-After": "2"})
    p = with_hooks(hooks_={"PIPELINE_COMPLETED": [
        {"type": "WEBHOOK", "url": httpserver.url_for("/nope")},
        {"type": "WEBHOOK", "url": httpserver.url_for("/busy"), "retryConfig": {"initialDelayMs": 60_000}},
    ]})
    run(p)
    nope, busy = HookDelivery.objects.order_by("pk")
    assert hooks.deliver_webhook(nope.pk) == "failed"
    nope.refresh_from_db()
    assert (nope.attempts, nope.detail) == (1, "failed after 1 attempt: HTTP 501")
    before = timezone.now()
    assert hooks.deliver_webhook(busy.pk) == "retrying"
    busy.refresh_from_db()
    assert busy.detail == "attempt 1 failed: HTTP 503; next attempt in 2 s"
    retry = Schedule.objects.get(func="runs.hooks.deliver_webhook")
    assert retry.next_run < before + timedelta(seconds=10)
