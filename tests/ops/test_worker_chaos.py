"""Chaos: three ``manage.py worker`` processes (one worker process each), 30 runs, and every few seconds a
random worker is SIGKILLed (its whole process group) or SIGTERMed (in turn) and started again, on Redis and on the
ORM broker, with PostgreSQL.

Each run's pipeline: an extract of 10 records of its own (ids ``100 * n + k``), two steps that take 2.5 s
each, and a LOAD that upserts into a real table (``tableUpsert`` into a PostgreSQL database of the test's
own). What must hold once the chaos stops:

* all 30 runs COMPLETED; none is left RUNNING or PENDING (or FAILED);
* the table holds every record exactly once, as the steps made it;
* no step that had COMPLETED ran again: a watcher reads the step rows every 0.3 s while the chaos lasts,
  and no step started (in the trace the steps write) after it was seen COMPLETED;
* no worker process is left.

It runs after the other tests of tests/ops (its name sorts last but for the drain test, which does not care):
thousands of task rows go through the shared ORM queue table, after which PostgreSQL hands queued tasks out
in no particular order, and test_crash_recovery.py needs them in the order they were queued.

Bounded: at most ~2 minutes per broker (the chaos lasts up to 45 s; then the runs left have 75 s to finish;
without chaos the 30 runs take about 50 s on the three workers).
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from contextlib import suppress

import pytest

from tests.ops.conftest import _postgres, group_alive, wait_for

# Real workers on a PostgreSQL database of the test's own: the same whatever DATABASE_URL says.
pytestmark = pytest.mark.own_database

RUNS, RECORDS = 30, 10
CHAOS_SECONDS, FINISH_SECONDS, EVERY = 45, 75, 3.0


def pipeline(n: int, database: str) -> dict:
    def slow(key):
        return {"key": key, "type": "TRANSFORM", "config": {"operators": [
            {"op": "opsTrace", "args": {"sleepMs": 2500}}, {"op": "set", "args": {"path": key, "value": True}}]}}

    return {
        "version": 1, "code": f"chaos-{n}", "name": f"chaos {n}",
        "steps": [
            {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory",
             "config": {"data": [{"id": 100 * n + k, "run": n} for k in range(RECORDS)]}},
            slow("first"), slow("second"),
            {"key": "load", "type": "LOAD", "adapterCode": "tableUpsert",
             "config": {"connectionCode": "chaos-target", "table": "chaos_items", "lookupFields": ["id"],
                        "fieldMapping": {"id": "id", "run": "run", "first": "first", "second": "second"}}},
        ],
        "edges": [],
    }


START = """
import json
from pipelines.models import Connection
from pipelines.services import save_definition
from runs import services
Connection.objects.update_or_create(code="chaos-target", defaults={{"type": "POSTGRES", "config": {{
    "host": "127.0.0.1", "port": 5432, "database": {database!r}, "user": "postgres"}}}})
print(json.dumps([services.start_run(save_definition(d)).pk for d in json.loads({definitions!r})]))
"""


@pytest.fixture
def target_database():
    conn = _postgres()
    name = f"datahub_chaos_{os.getpid()}_{random.randrange(1 << 24):06x}"
    conn.execute(f'CREATE DATABASE "{name}"')
    try:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={name}", autocommit=True) as target:
            target.execute("CREATE TABLE chaos_items (id INT PRIMARY KEY, run INT NOT NULL, "
                           "first BOOLEAN NOT NULL, second BOOLEAN NOT NULL)")
        yield name
    finally:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


class Watcher(threading.Thread):
    """When each (run, step) was first seen COMPLETED (wall-clock, the clock the trace uses)."""

    def __init__(self, fleet, ids):
        super().__init__(daemon=True)
        self.fleet, self.ids = fleet, ids
        self.seen: dict[tuple[int, str], float] = {}
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            now = time.time()
            with suppress(Exception):  # a busy database now and then: the next look sees it
                for run_id, step in self.fleet.sql("SELECT run_id, step_key FROM runs_steprun WHERE run_id = ANY(%s) "
                                                   "AND status = 'COMPLETED'", (self.ids,)):
                    self.seen.setdefault((run_id, step), now)
            self.done.wait(0.3)


@pytest.mark.parametrize("broker", ["redis", "orm"])
def test_every_run_completes_and_every_record_arrives_once_while_workers_die(
        broker, request, postgres_url, fleet_factory, target_database):
    redis_url = request.getfixturevalue("redis_url") if broker == "redis" else None
    fleet = fleet_factory(postgres_url, redis_url, DATAHUB_WORKERS=1, DATAHUB_DRAIN_SECONDS=6)
    rng = random.Random(13)
    started = 0

    def start_worker():
        nonlocal started
        started += 1
        return fleet.start_cluster(f"{broker}-worker-{started}", command="worker")

    live = [start_worker() for _ in range(3)]
    for proc in live:
        fleet.wait_running(proc)
    ids = fleet.shell(START.format(database=target_database,
                                   definitions=json.dumps([pipeline(n, target_database) for n in range(RUNS)])))
    watcher = Watcher(fleet, ids)
    watcher.start()
    actions = []

    def statuses():
        return dict(fleet.sql("SELECT status, count(*) FROM runs_run WHERE id = ANY(%s) GROUP BY status", (ids,)))

    try:
        chaos_ends = time.monotonic() + CHAOS_SECONDS
        while time.monotonic() < chaos_ends and statuses().get("COMPLETED", 0) < RUNS:
            time.sleep(EVERY * rng.uniform(0.75, 1.25))
            # A worker still importing Django has no signal handlers yet: only running ones are victims.
            ready = [p for p in live if "running." in p.log_path.read_text()]
            if not ready:
                continue
            victim = rng.choice(ready)
            live.remove(victim)
            if len(actions) % 2 == 0:
                fleet.kill(victim)
                actions.append("SIGKILL")
            else:
                os.killpg(victim.pid, signal.SIGTERM)
                victim.wait(30)
                actions.append("SIGTERM")
                assert victim.returncode == 0, f"{victim.name} exited with {victim.returncode}"
            wait_for(lambda v=victim: not group_alive(v.pid), 10, "the stopped worker's processes to exit")
            live.append(start_worker())
        wait_for(lambda: statuses().get("COMPLETED", 0) == RUNS, FINISH_SECONDS,
                 f"all {RUNS} runs to complete after the chaos ({statuses()})")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nactions: {actions}\n{fleet.logs_text()}") from None
    finally:
        watcher.done.set()
        watcher.join(5)
        for proc in live:
            fleet.stop(proc, timeout=15)
    print(f"{broker}: {len(actions)} workers killed or stopped: {actions}")
    assert len(actions) >= 4 and "SIGKILL" in actions and "SIGTERM" in actions

    assert statuses() == {"COMPLETED": RUNS}
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={target_database}") as target:
        rows = target.execute("SELECT id, run, first, second FROM chaos_items ORDER BY id").fetchall()
    assert rows == [(100 * n + k, n, True, True) for n in range(RUNS) for k in range(RECORDS)]

    again = [(t["run"], t["step"], round(t["t"] - watcher.seen[(t["run"], t["step"])], 1))
             for t in fleet.trace() if t["event"] == "start" and (t["run"], t["step"]) in watcher.seen
             and t["t"] > watcher.seen[(t["run"], t["step"])]]
    assert again == [], "steps that had COMPLETED started again"
    interrupted = sum(1 for t in fleet.trace() if t["event"] == "start") - 2 * RUNS
    resumed = fleet.sql("SELECT kind, count(*) FROM runs_runevent WHERE run_id = ANY(%s) GROUP BY kind", (ids,))
    print(f"{broker}: steps run again after an interruption: {interrupted}; run events: {dict(resumed)}")
    for proc in fleet.clusters:
        assert not group_alive(proc.pid), f"{proc.name} left a process behind"
