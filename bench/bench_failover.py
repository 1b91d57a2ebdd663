"""Time from a worker's SIGKILL to its run going on on another worker, with the default settings.

    .venv/bin/python bench/bench_failover.py [--trials 3] [--broker orm|redis]

Needs PostgreSQL on 127.0.0.1:5432 (and Redis on 127.0.0.1:6379 for ``--broker redis``). It creates a
scratch database, migrates it, and per trial starts two ``manage.py worker`` processes (one worker
process each) and a run whose second step takes minutes the first time it runs; once that step started,
every process of the worker running it is SIGKILLed, and the clock runs until the step starts again on
the other worker (the trace the steps write, ``tests/ops/worker_plugin.py``). Defaults apply:
DATAHUB_HEARTBEAT_TIMEOUT 15 s, a sweep every DATAHUB_REAPER_SECONDS 5 s, heartbeats every 5 s.

Baseline, measured in the same trial: from starting a run to its first step starting on a live worker
(queueing and claiming, no failure). The goal is under 30 s from the kill.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

from tests.ops.conftest import REDIS, REDIS_KEYS, REDIS_LOCK, ROOT, _postgres, base_env, make_fleet, wait_for


def free_redis_database():
    """An empty Redis database, locked the way the ops tests lock theirs (they may run at the same time)."""
    import redis

    for db in range(15, 0, -1):
        client = redis.Redis.from_url(f"{REDIS}/{db}")
        if client.set(REDIS_LOCK, os.getpid(), nx=True, ex=3600):
            if client.dbsize() == 1:
                return client, f"{REDIS}/{db}"
            client.delete(REDIS_LOCK)
    raise SystemExit("no empty Redis database (1-15) is free")

DEFINITION = {
    "version": 1, "code": "failover", "name": "failover",
    "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": [{"id": 1}]}},
        {"key": "first", "type": "TRANSFORM", "config": {"operators": [{"op": "opsTrace", "args": {"sleepMs": 0}}]}},
        {"key": "slow", "type": "TRANSFORM",
         "config": {"operators": [{"op": "opsTrace", "args": {"sleepMs": 0, "sleepMsFirstTime": 600_000}}]}},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
    ],
    "edges": [],
}
START = """
import json, time
from pipelines.services import save_definition
from runs import services
run = services.start_run(save_definition(json.loads({definition!r})), allow_concurrent=True)
print(json.dumps([run.pk, time.time()]))
"""


def trial(fleet, n: int) -> tuple[float, float]:
    workers = [fleet.start_cluster(f"t{n}-a", command="worker"), fleet.start_cluster(f"t{n}-b", command="worker")]
    for proc in workers:
        fleet.wait_running(proc)
    try:
        run_id, queued_at = fleet.shell(START.format(definition=json.dumps(DEFINITION)))

        def starts(step):
            return [t for t in fleet.trace() if t["run"] == run_id and t["step"] == step and t["event"] == "start"]

        first = wait_for(lambda: starts("first"), 60, "the run to start")[0]
        slow = wait_for(lambda: starts("slow"), 60, "the slow step to start")[0]
        victim = next(p for p in workers if os.getpgid(slow["pid"]) == p.pid)
        fleet.kill(victim)
        killed_at = time.time()
        again = wait_for(lambda: starts("slow")[1:], 120, "the slow step to start on the other worker")[0]
        wait_for(lambda: fleet.sql("SELECT status FROM runs_run WHERE id = %s", (run_id,))[0][0] == "COMPLETED",
                 60, "the run to complete")
        return again["t"] - killed_at, first["t"] - queued_at
    finally:
        for proc in workers:
            fleet.stop(proc, timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--broker", choices=["orm", "redis"], default="orm")
    args = parser.parse_args()
    _common.header(f"failover: SIGKILL of a worker -> its run going on elsewhere ({args.broker} broker, PostgreSQL)")
    conn = _postgres()
    name = f"datahub_bench_failover_{secrets.token_hex(3)}"
    conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgres://postgres@127.0.0.1:5432/{name}"
    work = Path(tempfile.mkdtemp(prefix="datahub-failover-"))
    client = None
    try:
        done = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT,
                              env=base_env(url, work), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        client, redis_url = free_redis_database() if args.broker == "redis" else (None, None)
        failover, baseline = [], []
        for n in range(args.trials):
            fleet = make_fleet(work, url, redis_url, DATAHUB_WORKERS=1)
            took, start = trial(fleet, n)
            failover.append(took)
            baseline.append(start)
            print(f"trial {n + 1}: went on elsewhere {took:.1f} s after the kill; a fresh run started its first "
                  f"step {start:.2f} s after it was queued (load {_common.load_average()})")
        print()
        print(f"SIGKILL -> going on elsewhere: median {statistics.median(failover):.1f} s "
              f"(min {min(failover):.1f}, max {max(failover):.1f}); goal under 30 s: "
              f"{statistics.median(failover) / 30:.2f} of it")
        print(f"baseline, queued -> first step started: median {statistics.median(baseline):.2f} s; "
              f"ratio {statistics.median(failover) / statistics.median(baseline):.0f}x")
    finally:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()
        if client is not None:
            for pattern in REDIS_KEYS:
                for key in client.scan_iter(pattern):
                    client.delete(key)
            client.delete(REDIS_LOCK)


if __name__ == "__main__":
    main()
