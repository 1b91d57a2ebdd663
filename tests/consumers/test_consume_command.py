"""manage.py consume (the long-running process) and manage.py consumers list|start|stop."""

import json
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from runs.consumers.models import Consumer
from runs.models import Run

from .conftest import message_pipeline, unique, wait_for
from .processes import ConsumeProcess


def consumers(*args) -> str:
    out = StringIO()
    call_command("consumers", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_it_follows_stop_and_start_from_the_cli_and_exits_cleanly_on_sigterm(one_broker, tmp_path):
    broker = one_broker
    queue = unique()
    p = message_pipeline(broker, queue)
    proc = ConsumeProcess(tmp_path, "consume", "--pipeline", p.code, "--tick", "0.5")
    try:
        wait_for(lambda: Consumer.objects.filter(pipeline=p, state="RUNNING").exists() or proc.proc.poll(), 30,
                 "the consumer to run")
        assert proc.proc.poll() is None, proc.log()
        broker.publish(queue, {"n": 1}, message_id="one")
        wait_for(lambda: Run.objects.filter(pipeline=p).count() == 1, 10, "the first run")

        assert consumers("stop", p.code) == f"{p.code}/inbox: stopped\n"
        wait_for(lambda: Consumer.objects.filter(pipeline=p, state="STOPPED", owner="").exists(), 10,
                 "the consumer to stop")
        broker.publish(queue, {"n": 2}, message_id="two")
        time.sleep(1.5)
        assert Run.objects.filter(pipeline=p).count() == 1, "a stopped consumer took a message"
        listed = json.loads(consumers("list", "--json"))
        [mine] = [c for c in listed if c["consumer"] == f"{p.code}/inbox"]
        assert (mine["desired"], mine["state"], mine["received"], mine["runsStarted"]) == ("STOPPED", "STOPPED", 1, 1)

        consumers("start", f"{p.code}/inbox")
        wait_for(lambda: Run.objects.filter(pipeline=p).count() == 2, 10, "the second run after the start")

        took = proc.terminate(timeout=10)
        assert took is not None and took < 5, f"SIGTERM took {took} s:\n{proc.log()}"
        assert proc.proc.returncode == 0, proc.log()
        assert "stopped" in proc.log()
        row = Consumer.objects.get(pipeline=p)
        assert (row.owner, row.state) == ("", "STOPPED")
    finally:
        proc.close()


@pytest.mark.django_db
def test_it_names_what_exists_when_the_consumer_is_unknown():
    with pytest.raises(CommandError, match="there is no MESSAGE trigger 'nope'"):
        consumers("stop", "nope")
    with pytest.raises(CommandError, match="needs NAME"):
        consumers("start")
