"""``concurrency`` consuming threads per consumer: with ackMode RUN_COMPLETED at most that many runs (one
batch each) are in flight; the next batch starts when one completes."""

import time

import pytest

from runs.consumers.services import configured_consumers
from runs.consumers.supervisor import Runner
from runs.models import Run, RunStatus

from .conftest import message_pipeline, unique, wait_for


@pytest.mark.django_db(transaction=True)
def test_it_keeps_at_most_concurrency_runs_in_flight(one_broker):
    broker = one_broker
    queue = unique()
    p = message_pipeline(broker, queue, batchSize=2, batchWaitMs=200, concurrency=3, ackMode="RUN_COMPLETED")
    for i in range(8):
        broker.publish(queue, {"n": i}, message_id=f"m-{i}")
    [c] = configured_consumers([p.code])
    runner = Runner(c.consumer, c.config)
    runner.start()
    try:
        wait_for(lambda: Run.objects.filter(pipeline=p).count() == 3, 10, "three runs, one per thread")
        assert all(len(r.seed_records) == 2 for r in Run.objects.filter(pipeline=p))
        time.sleep(1)  # time enough for a free thread to start a fourth run
        assert Run.objects.filter(pipeline=p).count() == 3, "a fourth batch started while three runs were in flight"
        Run.objects.filter(pipeline=p).update(status=RunStatus.COMPLETED)
        wait_for(lambda: Run.objects.filter(pipeline=p).count() == 4, 10, "the last batch once a thread was free")
        Run.objects.filter(pipeline=p).update(status=RunStatus.COMPLETED)
        wait_for(lambda: broker.depth(queue) == 0, 10, "everything acknowledged")
    finally:
        runner.halt()
        runner.join(time.monotonic() + 5)
    assert not any(t.is_alive() for t in runner.threads), "the threads did not stop within 5 s"
    assert broker.depth(queue) == 0, "a message was left unacknowledged"  # connections closed: unacked is back
    seeded = sorted(r["n"] for run in Run.objects.filter(pipeline=p) for r in run.seed_records)
    assert seeded == list(range(8))
