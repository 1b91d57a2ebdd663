"""A MESSAGE trigger's config is checked when the pipeline is saved: every problem with its step and field."""

import pytest

from pipelines.errors import DefinitionError
from pipelines.services import save_definition
from runs.consumers.config import MessageSettings, message_problems

GOOD = {"type": "MESSAGE", "queueType": "RABBITMQ_AMQP", "connectionCode": "rabbit", "queueName": "orders"}


def problems_of(config):
    with pytest.raises(DefinitionError) as caught:
        save_definition({"version": 1, "code": "msg-config", "steps": [
            {"key": "inbox", "type": "TRIGGER", "config": config},
            {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}}]})
    return {(p.step, (p.field or "").removeprefix("config.")): p.message for p in caught.value.problems}


@pytest.mark.django_db
def test_it_refuses_a_message_trigger_without_queue_type_connection_or_queue():
    problems = problems_of({"type": "MESSAGE"})
    assert problems[("inbox", "queueType")].startswith("a MESSAGE trigger needs queueType, one of RABBITMQ_AMQP")
    assert problems[("inbox", "connectionCode")] == "a MESSAGE trigger needs connectionCode"
    assert problems[("inbox", "queueName")] == "a MESSAGE trigger needs queueName"


@pytest.mark.django_db
@pytest.mark.parametrize(("extra", "field", "text"), [
    ({"queueType": "SQS"}, "queueType", "SQS"),
    ({"batchSize": 0}, "batchSize", "0"),
    ({"concurrency": 17}, "concurrency", "17"),
    ({"ackMode": "WHENEVER"}, "ackMode", "WHENEVER"),
    ({"batchSize": 10, "prefetch": 5}, "prefetch", "prefetch (5) must be at least batchSize (10)"),
    ({"deadLetterQueue": "orders"}, "deadLetterQueue", "must not be the queue itself"),
    ({"prefetchCount": 5}, None, "prefetchCount"),
])
def test_it_names_the_field_of_a_bad_setting(extra, field, text):
    problems = problems_of({**GOOD, **extra})
    where = [message for (step, f), message in problems.items() if step == "inbox" and (field is None or f == field)]
    assert where and any(text in m for m in where), problems


@pytest.mark.django_db
def test_it_saves_a_good_message_trigger_and_reads_its_defaults():
    save_definition({"version": 1, "code": "msg-config", "steps": [
        {"key": "inbox", "type": "TRIGGER", "config": {**GOOD, "queueType": "RABBITMQ", "batchSize": 5}}]})
    s = MessageSettings.from_config({**GOOD, "queueType": "RABBITMQ", "batchSize": 5}, pipeline_code="msg-config")
    assert (s.queue_type, s.batch_size, s.prefetch, s.concurrency, s.ack_mode, s.max_retries) == (
        "RABBITMQ_AMQP", 5, 5, 1, "RUN_CREATED", 3)
    assert (s.dead_letter_queue, s.consumer_group) == ("orders.dead", "datahub-msg-config")
    assert message_problems(GOOD) == []
