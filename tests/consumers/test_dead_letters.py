"""Bad input never crashes a consumer: malformed messages and messages whose runs keep failing become dead
letters with the reason, in the dead-letter queue or stream and on the consumer; nothing else is lost."""

import pytest
from django_q.conf import Conf

from runs.consumers.models import Consumer, DeadLetter
from runs.models import Run, RunStatus

from .conftest import message_pipeline, unique

MALFORMED = [
    (b"{not json", "not JSON: Expecting property name enclosed in double quotes at line 1, column 2 "
                  "(starts '{not json')"),
    (b"42", "the message must be a JSON object or an array of objects, not a number"),
    (b'[{"ok": 1}, "two"]', "item 1 of the array is a string, not an object"),
    (b"\xff\xfe\x00", "the message is not UTF-8 (byte 0)"),
    (b"", "the message is empty"),
]


@pytest.mark.django_db
def test_it_dead_letters_malformed_messages_with_the_reason_and_runs_the_good_ones(broker, consuming):
    queue = unique()
    p = message_pipeline(broker, queue, batchSize=10)
    broker.publish(queue, {"sku": "good-1"}, message_id="good-1")
    for i, (body, _) in enumerate(MALFORMED):
        broker.publish(queue, body, message_id=f"bad-{i}")
    broker.publish(queue, {"sku": "good-2"}, message_id="good-2")
    c = consuming(p)
    c.poll_until(lambda: DeadLetter.objects.count() == len(MALFORMED) and Run.objects.exists(), what="dead letters")
    assert [r["sku"] for r in Run.objects.get(pipeline=p).seed_records] == ["good-1", "good-2"]
    reasons = {d.reason for d in DeadLetter.objects.filter(consumer=c.consumer)}
    assert reasons == {f"malformed message: {why}" for _, why in MALFORMED}
    published = broker.dead_letters(queue)
    assert sorted(body for body, _ in published) == sorted(body for body, _ in MALFORMED)
    assert {h["x-datahub-reason" if broker.kind != "REDIS_STREAMS" else "reason"] for _, h in published} == reasons
    c.close()
    assert broker.depth(queue) == 0, "a message was left unacknowledged"
    assert Consumer.objects.get(pk=c.consumer.pk).dead_letters == len(MALFORMED)


@pytest.mark.django_db
def test_it_dead_letters_a_stream_entry_without_a_data_field():
    """Redis only: an entry whose fields are not the producer's shape."""
    from .conftest import Redis

    try:
        server = Redis()
    except Exception as exc:
        pytest.skip(f"Redis is not reachable on 127.0.0.1:6379 ({type(exc).__name__})")
    try:
        from .conftest import Consuming

        queue = unique()
        p = message_pipeline(server, queue)
        server.publish_fields(queue, {"sku": "A-1", "qty": "2"})
        c = Consuming(p)
        try:
            c.poll_until(lambda: DeadLetter.objects.exists(), what="a dead letter")
        finally:
            c.close()
        assert DeadLetter.objects.get().reason == ("malformed message: the stream entry has no 'data' field (its "
                                                   "fields: qty, sku)")
        assert not Run.objects.exists()
    finally:
        server.close()


@pytest.mark.django_db(transaction=True)
def test_it_retries_a_message_whose_run_fails_then_dead_letters_it_after_max_retries(broker, consuming, monkeypatch):
    """ackMode RUN_COMPLETED, maxRetries 1: the run fails (a FAIL_FAST validation), the message comes back and
    a second run fails too; then it is a dead letter with the run's error, and no third run starts."""
    monkeypatch.setattr(Conf, "SYNC", True)  # a run executes when its transaction commits, in this thread
    queue = unique()
    p = message_pipeline(broker, queue, ackMode="RUN_COMPLETED", maxRetries=1, steps=[
        {"key": "check", "type": "VALIDATE",
         "config": {"errorHandlingMode": "FAIL_FAST", "rules": [{"field": "price", "required": True}]}},
    ])
    broker.publish(queue, {"sku": "no-price"}, message_id="m-1")
    broker.publish(queue, {"sku": "ok", "price": 3}, message_id="m-2")
    c = consuming(p)
    c.poll_until(lambda: DeadLetter.objects.exists() and Consumer.objects.get(pk=c.consumer.pk).acked == 1,
                 timeout=20, what="one message done and the failing one a dead letter")
    runs = list(Run.objects.filter(pipeline=p).order_by("pk"))
    failed = [r for r in runs if r.status == RunStatus.FAILED]
    assert [r.seed_records for r in failed] == [[{"sku": "no-price"}]] * 2
    assert [r.seed_records for r in runs if r.status == RunStatus.COMPLETED] == [[{"sku": "ok", "price": 3}]]
    assert len(runs) == 3
    dead = DeadLetter.objects.get()
    assert dead.attempts == 2
    assert dead.reason.startswith(f"run {failed[1].pk} ended FAILED") and "gave up after 2 runs (maxRetries 1)" in dead.reason
    assert "price" in dead.reason
    [(body, headers)] = broker.dead_letters(queue)
    assert body == b'{"sku": "no-price"}'
    for _ in range(3):
        c.poll()
    assert Run.objects.filter(pipeline=p).count() == 3


@pytest.mark.django_db
def test_it_prunes_dead_letters_with_the_record_errors(settings):
    from datetime import timedelta

    from django.utils import timezone

    from pipelines.services import save_definition
    from runs import retention
    from runs.consumers.services import configured_consumers

    settings.DATAHUB_KEEP_RECORD_ERRORS_DAYS = 90
    p = save_definition({"version": 1, "code": "prune-dl", "steps": [{"key": "inbox", "type": "TRIGGER", "config": {
        "type": "MESSAGE", "queueType": "REDIS_STREAMS", "connectionCode": "r", "queueName": "q"}}]})
    [c] = configured_consumers([p.code])
    old = DeadLetter.objects.create(consumer=c.consumer, key="1-0", body="x", reason="old")
    DeadLetter.objects.create(consumer=c.consumer, key="2-0", body="y", reason="new")
    DeadLetter.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=91))
    assert retention.prune(dry_run=True)["dead_letters"] == 1
    assert retention.prune()["dead_letters"] == 1
    assert list(DeadLetter.objects.values_list("reason", flat=True)) == ["new"]
