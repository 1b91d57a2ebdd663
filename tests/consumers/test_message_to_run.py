"""A message published to the real broker becomes a run seeded with it; idempotent; acknowledged after."""

import pytest

from runs.consumers.models import Consumer, MessageDelivery
from runs.models import Run

from .conftest import message_pipeline, unique

pytestmark = pytest.mark.django_db


def test_it_starts_a_run_seeded_with_the_published_message_and_acknowledges_it(broker, consuming):
    queue = unique()
    p = message_pipeline(broker, queue)
    c = consuming(p)
    broker.publish(queue, {"sku": "A-1", "qty": 2}, message_id="order-1")
    c.poll_until(lambda: Run.objects.filter(pipeline=p).exists(), what="a run")
    run = Run.objects.get(pipeline=p)
    assert run.trigger == "message" and run.seed_step == "inbox"
    assert run.seed_records == [{"sku": "A-1", "qty": 2}]
    c.close()  # what was delivered but not acknowledged goes back to the queue now
    assert broker.depth(queue) == 0, "the message was not acknowledged after its run was created"
    row = Consumer.objects.get(pk=c.consumer.pk)
    assert (row.received, row.runs_started, row.acked, row.dead_letters) == (1, 1, 1, 0)


def test_it_seeds_one_run_with_a_batch_of_ten_messages(broker, consuming):
    queue = unique()
    p = message_pipeline(broker, queue, batchSize=10, batchWaitMs=5000)
    for i in range(10):
        broker.publish(queue, {"n": i}, message_id=f"m-{i}")
    c = consuming(p)
    assert c.poll() == 10
    runs = list(Run.objects.filter(pipeline=p))
    assert len(runs) == 1
    assert sorted(r["n"] for r in runs[0].seed_records) == list(range(10))
    assert MessageDelivery.objects.filter(run=runs[0]).count() == 10
    c.close()
    assert broker.depth(queue) == 0


def test_it_starts_a_run_with_what_arrived_when_the_batch_does_not_fill_in_time(broker, consuming):
    queue = unique()
    p = message_pipeline(broker, queue, batchSize=10, batchWaitMs=300)
    for i in range(3):
        broker.publish(queue, {"n": i}, message_id=f"m-{i}")
    c = consuming(p)
    assert c.poll() == 3
    assert [len(r.seed_records) for r in Run.objects.filter(pipeline=p)] == [3]


def test_it_starts_no_second_run_when_a_message_whose_run_exists_comes_again(broker, consuming):
    """A redelivery (the consumer died after the run was created, before its ack) finds the run."""
    queue = unique()
    p = message_pipeline(broker, queue)
    c = consuming(p)
    broker.publish(queue, {"sku": "A-1"}, message_id="order-7")
    c.poll_until(lambda: Run.objects.filter(pipeline=p).exists(), what="a run")
    first = Run.objects.get(pipeline=p)
    # The same message again. RabbitMQ: published again with its message id. Redis identifies an entry by its
    # id, which XADD never repeats: stand in a new entry whose id is recorded as already in that run.
    # (Real redeliveries after a SIGKILL: test_consumer_killed.py.)
    if broker.kind == "REDIS_STREAMS":
        entry = MessageDelivery.objects.get(run=first).key
        broker.client.xadd(queue, {"data": b'{"sku": "A-1"}'}, id=f"{int(entry.split('-')[0]) + 1}-0")
        MessageDelivery.objects.filter(run=first).update(key=f"{int(entry.split('-')[0]) + 1}-0")
    else:
        broker.publish(queue, {"sku": "A-1"}, message_id="order-7")
    c.poll_until(lambda: Consumer.objects.get(pk=c.consumer.pk).received == 2, what="the message again")
    assert list(Run.objects.filter(pipeline=p)) == [first]
    assert Consumer.objects.get(pk=c.consumer.pk).acked == 2
    c.close()
    assert broker.depth(queue) == 0


def test_it_marks_records_of_a_delete_message_from_the_queue_producer(broker, consuming):
    queue = unique()
    p = message_pipeline(broker, queue)
    c = consuming(p)
    headers = {"x-datahub-operation": "DELETE"}
    if broker.kind == "REDIS_STREAMS":
        broker.publish_fields(queue, {"data": b'{"id": 5}', "operation": "DELETE", "id": "5"})
    else:
        broker.publish(queue, {"id": 5}, message_id="5", headers=headers)
    c.poll_until(lambda: Run.objects.filter(pipeline=p).exists(), what="a run")
    assert Run.objects.get(pipeline=p).seed_records == [{"id": 5, "__operation": "DELETE"}]


def test_it_waits_for_messages_without_spinning_even_with_no_batch_wait(broker, consuming):
    """batchWaitMs 0 starts a run with what is there, but an idle consumer still waits about a second per poll."""
    import time

    queue = unique()
    p = message_pipeline(broker, queue, batchSize=10, batchWaitMs=0)
    c = consuming(p)
    started = time.monotonic()
    assert c.poll() == 0
    assert 0.9 <= time.monotonic() - started < 3
    broker.publish(queue, {"n": 1}, message_id="m-1")
    c.poll_until(lambda: Run.objects.filter(pipeline=p).exists(), what="a run")
    assert Run.objects.get(pipeline=p).seed_records == [{"n": 1}]


def test_it_reports_consumers_in_the_metrics(broker, consuming):
    from django.test import Client

    queue = unique()
    p = message_pipeline(broker, queue)
    c = consuming(p)
    broker.publish(queue, {"n": 1}, message_id="m-1")
    broker.publish(queue, b"not json", message_id="m-2")
    c.poll_until(lambda: Consumer.objects.get(pk=c.consumer.pk).received == 2, what="both messages")
    Consumer.objects.filter(pk=c.consumer.pk).update(lag=4)
    text = Client().get("/metrics").content.decode()
    labels = f'{{pipeline="{p.code}",trigger="inbox"}}'
    for line in (f"datahub_consumer_up{labels} 0.0", f"datahub_consumer_lag{labels} 4.0",
                 f"datahub_consumer_messages_received_total{labels} 2.0",
                 f"datahub_consumer_dead_letters_total{labels} 1.0", f"datahub_consumer_errors_total{labels} 0.0"):
        assert line in text, line
