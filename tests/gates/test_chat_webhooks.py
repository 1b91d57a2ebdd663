"""Webhook notices shaped for Slack and Microsoft Teams incoming webhooks, received by a real local HTTP
server: the gate's notice (notifyWebhookFormat) and a run's end (context.notifications.webhookFormat)."""

import json

import pytest

from pipelines.notice_formats import Notice, shape
from pipelines.services import save_definition
from runs import hooks
from runs import services as run_services
from runs.models import HookDelivery
from tests.fixtures import simple_definition
from tests.gates.conftest import deliver_notices, linear, paused

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def receiver(httpserver, settings):
    settings.DATAHUB_HTTP_ALLOW = ["127.0.0.1"]
    settings.DATAHUB_BASE_URL = "https://datahub.example.com"
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    return httpserver


def received(httpserver) -> dict:
    [(request, _)] = httpserver.log
    assert request.headers["Content-Type"] == "application/json"
    return json.loads(request.data)


def test_a_gate_notice_for_slack_is_a_block_kit_message(receiver, counting):
    records = [{"sku": "<!channel> <https://evil.example|click>", "price": 1}] * 1200
    run = paused(linear(records=records, notifyWebhook=receiver.url_for("/hook"), notifyWebhookFormat="slack"))
    deliver_notices()
    body = received(receiver)
    assert set(body) == {"text", "blocks"}
    header, text, fields, actions = body["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": 'Gate "gate" waits for approval'}}
    assert text["type"] == "section" and "1,200 record(s) of Pipeline gated" in text["text"]["text"]
    assert {"type": "mrkdwn", "text": "*Records held*\n1,200"} in fields["fields"]
    assert actions["type"] == "actions"
    assert actions["elements"][0] == {"type": "button", "text": {"type": "plain_text", "text": "Review, approve or reject"},
                                      "url": f"https://datahub.example.com/gates/{run.pk}/gate/"}
    assert "<!channel>" not in json.dumps(body)  # record values stay out of chat notices (the page shows them)


def test_a_gate_notice_for_teams_is_an_adaptive_card(receiver, counting):
    run = paused(linear(notifyWebhook=receiver.url_for("/hook"), notifyWebhookFormat="teams"))
    deliver_notices()
    body = received(receiver)
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["body"][0]["text"] == 'Gate "gate" waits for approval'
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["Run"] == str(run.pk) and facts["Records held"] == "2" and facts["Approval"] == "MANUAL"
    assert card["actions"][0] == {"type": "Action.OpenUrl", "title": "Review, approve or reject",
                                  "url": f"https://datahub.example.com/gates/{run.pk}/gate/"}


def test_an_unknown_format_is_refused_when_the_pipeline_is_saved(db):
    from pipelines.errors import DefinitionError

    with pytest.raises(DefinitionError) as caught:
        save_definition(linear(notifyWebhook="https://chat.example.com/h", notifyWebhookFormat="discord"))
    assert "notifyWebhookFormat" in str(caught.value)


def test_a_run_notice_for_teams_and_slack(receiver):
    for fmt in ("teams", "slack"):
        receiver.clear_log()
        receiver.expect_request("/hook", method="POST").respond_with_data("ok")
        definition = simple_definition(f"notify-{fmt}", notifications={
            "onComplete": True, "webhookUrl": receiver.url_for("/hook"), "webhookFormat": fmt})
        run = run_services.run_now(run_services.create_run(save_definition(definition))).run
        for delivery in HookDelivery.objects.filter(run=run):
            hooks.deliver_webhook(delivery.pk)
        body = received(receiver)
        url = f"https://datahub.example.com/runs/{run.pk}/"
        if fmt == "teams":
            card = body["attachments"][0]["content"]
            assert card["body"][0]["text"] == f"Run {run.pk} of {definition['name']}: completed"
            assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open the run", "url": url}]
        else:
            assert body["blocks"][-1]["elements"][0]["url"] == url
            assert body["text"].startswith(f"Run {run.pk} of {definition['name']}: completed")


def test_the_formats_cut_to_slacks_limits_and_escape():
    long = Notice(title="t" * 500, text="a & b < c", facts=[("k", "v")] * 12, links=[])
    body = shape("slack", long, {})
    assert len(body["blocks"][0]["text"]["text"]) == 150
    assert body["blocks"][1]["text"]["text"] == "a &amp; b &lt; c"
    assert len(body["blocks"][2]["fields"]) == 10
    assert shape(None, long, {"raw": 1}) == {"raw": 1}
    with pytest.raises(ValueError, match="formats: datahub, slack, teams"):
        shape("discord", long, {})
