"""A ``manage.py consume`` process killed with SIGKILL mid-batch: nothing is lost and no run starts twice.

The first process takes a batch of 10 messages and starts their run; with ackMode RUN_COMPLETED it holds
them unacknowledged until the run completes (on RabbitMQ, with prefetch 20, it also holds the next 5 in
its buffer, not yet in a run). It is killed there. A second process takes the consumer over once the first
one's lease lapses; the broker redelivers (RabbitMQ: the connection died) or the second process claims the
pending entries (Redis: XAUTOCLAIM after claimIdleMs). The 10 find their run; the other 5 start a run of
their own; once the runs complete every message is acknowledged, each in exactly one run.
"""

import pytest

from runs.consumers.models import Consumer
from runs.models import Run, RunStatus

from .conftest import message_pipeline, unique, wait_for
from .processes import ConsumeProcess


@pytest.mark.django_db(transaction=True)
def test_it_loses_nothing_and_starts_no_duplicate_run_when_a_consumer_is_killed_mid_batch(broker, tmp_path):
    queue = unique()
    p = message_pipeline(broker, queue, ackMode="RUN_COMPLETED", batchSize=10, batchWaitMs=2000, prefetch=20,
                         claimIdleMs=1000)
    group = f"datahub-{p.code}"

    def all_in_hand():
        if broker.kind == "REDIS_STREAMS":
            return broker.client.xpending(queue, group)["pending"] == 10
        return broker.depth(queue) == 0

    first = ConsumeProcess(tmp_path, "first", "--pipeline", p.code, "--tick", "0.5")
    second = None
    try:
        wait_for(lambda: Consumer.objects.filter(pipeline=p, state="RUNNING").exists() or first.proc.poll(), 30,
                 "the first consume process to run the consumer")
        assert first.proc.poll() is None, first.log()
        for i in range(15):
            broker.publish(queue, {"n": i}, message_id=f"m-{i}")
        wait_for(lambda: Run.objects.filter(pipeline=p).exists(), 20, "the first batch's run")
        [r1] = Run.objects.filter(pipeline=p)
        assert sorted(r["n"] for r in r1.seed_records) == list(range(10))
        wait_for(all_in_hand, 10, "the first process to hold the messages")
        assert Run.objects.filter(pipeline=p).count() == 1

        first.kill()
        second = ConsumeProcess(tmp_path, "second", "--pipeline", p.code, "--tick", "0.5")

        def settled():
            # Stand-in for a worker: every run that turns up completes (the runs are never executed here).
            Run.objects.filter(pipeline=p, status=RunStatus.PENDING).update(status=RunStatus.COMPLETED)
            return Consumer.objects.get(pipeline=p).acked >= 15

        wait_for(settled, 40, "every message to be acknowledged by the second process")
        took = second.terminate(timeout=10)
        assert took is not None and took < 6, f"SIGTERM took {took} s\n{second.log()}"
        runs = list(Run.objects.filter(pipeline=p).order_by("pk"))
        assert runs[0].pk == r1.pk and len(runs) >= 2
        seeded = [r["n"] for run in runs for r in run.seed_records]
        assert sorted(seeded) == list(range(15)), f"lost or duplicated messages: {sorted(seeded)}"
        assert broker.depth(queue) == 0
        if broker.kind == "REDIS_STREAMS":
            assert broker.client.xpending(queue, group)["pending"] == 0
    finally:
        first.close()
        if second is not None:
            second.close()
