"""runs.engine.streams.Stream: hand-off between a producing and a consuming thread, bounded in bytes."""

import threading
import time

import pytest

from pipelines.errors import StepCancelled
from runs.engine.streams import Stream, UpstreamFailed, estimate_bytes


def batch(start, n=100, pad="x" * 50):
    return [{"id": i, "text": pad} for i in range(start, start + n)]


def produce(stream, batches, *, end=True, delay=0.0):
    def run():
        for b in batches:
            stream.append(b)
            if delay:
                time.sleep(delay)
        if end:
            stream.end()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_the_consumer_gets_the_first_batch_before_the_producer_ends():
    stream = Stream(name="src")
    seen = threading.Event()
    stream.append(batch(0))
    reader = stream.consume()
    first = next(reader)  # the producer has not ended: nothing but the first batch exists
    assert [r["id"] for r in first] == list(range(100))
    seen.set()
    stream.append(batch(100))
    stream.end()
    assert [r["id"] for b in reader for r in b] == list(range(100, 200))


def test_every_record_arrives_once_in_order_across_threads():
    stream = Stream(budget_bytes=20_000)
    batches = [batch(i * 100) for i in range(200)]
    t = produce(stream, batches)
    got = [r["id"] for b in stream.consume() for r in b]
    t.join(5)
    assert got == list(range(20_000))
    assert len(stream) == 20_000


def test_a_slow_consumer_holds_the_fast_producer_back_within_the_byte_budget():
    one = estimate_bytes(batch(0))
    stream = Stream(budget_bytes=5 * one)
    reader = stream.consume()
    t = produce(stream, [batch(i * 100) for i in range(100)])
    count = 0
    for b in reader:
        count += len(b)
        time.sleep(0.002)
    t.join(5)
    assert count == 10_000
    assert stream.waits > 0  # the producer did wait for the consumer
    assert stream.peak_bytes <= 5 * one  # never more than the budget queued
    assert stream.spilled_batches == 0  # a reading consumer makes the producer wait, not spill


def test_past_the_budget_without_a_reader_the_queue_spills_and_is_read_back_first():
    one = estimate_bytes(batch(0))
    stream = Stream(budget_bytes=3 * one)
    for i in range(20):  # nobody reads yet: the producer must not block
        stream.append(batch(i * 100))
    assert stream.spilled_batches >= 17
    assert stream.peak_bytes <= 3 * one
    assert stream.spilled
    stream.append(batch(2000))
    stream.end()
    assert [r["id"] for b in stream.consume() for r in b] == list(range(2100))


def test_a_producer_failure_reaches_the_consumer_as_upstream_failed_not_as_an_end():
    stream = Stream(name="src")
    stream.append(batch(0))
    reader = stream.consume()
    next(reader)
    stream.append(batch(100))
    stream.fail("boom")
    with pytest.raises(UpstreamFailed, match="step 'src' did not complete: boom"):
        next(reader)


def test_a_consumer_waiting_for_data_stops_when_cancelled():
    stream = Stream()
    cancelled = threading.Event()
    threading.Timer(0.1, cancelled.set).start()
    with pytest.raises(StepCancelled):
        list(stream.consume(cancelled))


def test_a_producer_held_back_stops_when_cancelled():
    cancelled = threading.Event()
    one = estimate_bytes(batch(0))
    stream = Stream(budget_bytes=one, producer_cancelled=cancelled)
    reader = stream.consume()
    stream.append(batch(0))
    next(reader)  # reading now, but taking nothing more
    stream.append(batch(100))
    threading.Timer(0.1, cancelled.set).start()
    with pytest.raises(StepCancelled):
        stream.append(batch(200))


def test_a_consumer_that_leaves_does_not_block_the_producer_and_the_kept_copy_has_everything():
    one = estimate_bytes(batch(0))
    stream = Stream(budget_bytes=one, keep=True, spill_records=250)
    reader = stream.consume()
    stream.append(batch(0))
    next(reader)
    reader.close()  # the consumer failed: its generator is closed
    for i in range(1, 10):
        stream.append(batch(i * 100))  # would block forever if the consumer still counted
    stream.end()
    assert [r["id"] for r in stream.to_list()] == list(range(1000))
    assert stream.kept.spilled
    with stream.open_lines() as fh:
        assert fh.read().count(b"\n") == 10


def test_without_keep_a_second_reader_is_refused_with_a_clear_error():
    stream = Stream(name="src")
    stream.append(batch(0))
    stream.end()
    assert len(stream.to_list()) == 100  # a consumer that starts after the producer ended
    with pytest.raises(RuntimeError, match="step 'src' was handed over to its consumer and not kept"):
        stream.to_list()


def test_unread_batches_can_be_saved_without_taking_them():
    stream = Stream(budget_bytes=estimate_bytes(batch(0)))
    for i in range(3):
        stream.append(batch(i * 100))
    stream.end()
    assert stream.open_lines().read().count(b'"id"') == 300
    assert [r["id"] for r in stream.head(150)] == list(range(150))
    assert len(stream.to_list()) == 300


def test_the_byte_estimate_follows_the_record_size_not_the_record_count():
    small = [{"a": 1}] * 1000
    large = [{"a": "x" * 1000}] * 1000
    assert estimate_bytes(large) > 5 * estimate_bytes(small)
    assert estimate_bytes([]) == 0
