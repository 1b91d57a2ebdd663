"""The ``cdc`` extractor: rows per second from a 1,000,000-row table, and commit-to-emit delay when continuous.

    .venv/bin/python bench/bench_cdc.py [--rows 1000000] [--dbs postgres,mysql,sqlite] [--batch 1000,10000]
                                        [--samples 40] [--poll-ms 100,1000] [--skip-throughput] [--skip-delay]

Throughput. A scratch table ``orders(id BIGINT PRIMARY KEY, name, amount, updated_at)`` with ``--rows``
rows, ``updated_at`` spread over ~1,000 distinct values (so ~1,000 rows share each value: batch boundaries
fall inside ties), and an index on ``(updated_at, id)``. One ONE_SHOT read of the whole table through
``CdcExtractor.batches()`` (records built, JSON-safe values, the checkpoint kept per batch), for each
``--batch`` size; the figure is rows per second of wall-clock time, client and server on this machine.

Delay. A real continuous run (``runs.cdc`` through ``runs.services.run_now``, Django on a temporary SQLite
database in a temporary ``DATAHUB_VAR_DIR``): cdc (``safetyLagMs`` 0 on PostgreSQL and MariaDB, 100 on
SQLite) -> a LOAD whose loader notes when each record arrives. A writer inserts one row at a random moment
``--samples`` times and notes when its COMMIT returned; the delay is arrival - commit, per
``pollIntervalMs``. Expected: about half the poll interval plus the cost of one peek and one sub-run.

PostgreSQL and MariaDB are the local ones (postgres / root, no password); a scratch database
``dh_bench_cdc`` is created and dropped. A missing service is skipped with a message.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import header, load_average  # noqa: E402

from pipelines.adapters.base import AdapterContext  # noqa: E402
from pipelines.adapters.cdc import CdcExtractor  # noqa: E402

NAME = "dh_bench_cdc"


# --- the databases ------------------------------------------------------------------------------------------


class Db:
    def __init__(self, kind: str, workdir: str):
        self.kind = kind
        if kind == "postgres":
            self.connection = {"code": "src", "type": "POSTGRES", "host": "127.0.0.1", "port": 5432,
                               "database": NAME, "user": "postgres"}
        elif kind == "mysql":
            self.connection = {"code": "src", "type": "MYSQL", "host": "127.0.0.1", "port": 3306,
                               "database": NAME, "user": "root"}
        else:
            self.connection = {"code": "src", "type": "SQLITE", "path": os.path.join(workdir, "src.db")}

    def admin(self):
        if self.kind == "postgres":
            import psycopg

            return psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True,
                                   connect_timeout=3)
        if self.kind == "mysql":
            import pymysql

            return pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True, connect_timeout=3)
        return None

    def raw(self):
        if self.kind == "postgres":
            import psycopg

            return psycopg.connect(host="127.0.0.1", user="postgres", dbname=NAME, autocommit=True)
        if self.kind == "mysql":
            import pymysql

            return pymysql.connect(host="127.0.0.1", user="root", password="", database=NAME, autocommit=True)
        return sqlite3.connect(self.connection["path"], isolation_level=None, timeout=30)

    def create_database(self) -> None:
        admin = self.admin()
        if admin is None:
            return
        cur = admin.cursor()
        if self.kind == "postgres":
            cur.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{NAME}"')
        else:
            cur.execute(f"DROP DATABASE IF EXISTS `{NAME}`")
            cur.execute(f"CREATE DATABASE `{NAME}`")
        admin.close()

    def drop_database(self) -> None:
        admin = self.admin()
        if admin is None:
            return
        cur = admin.cursor()
        cur.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)' if self.kind == "postgres"
                    else f"DROP DATABASE IF EXISTS `{NAME}`")
        admin.close()

    def ts(self) -> str:
        return {"postgres": "TIMESTAMPTZ", "mysql": "DATETIME(6)", "sqlite": "DATETIME"}[self.kind]

    def now(self) -> str:
        return {"postgres": "now()", "mysql": "CURRENT_TIMESTAMP(6)",
                "sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now')"}[self.kind]

    def fill(self, rows: int) -> float:
        """Create and fill ``orders``; seconds taken."""
        began = time.perf_counter()
        raw = self.raw()
        cur = raw.cursor()
        cur.execute("DROP TABLE IF EXISTS orders")
        cur.execute(f"CREATE TABLE orders (id BIGINT PRIMARY KEY, name VARCHAR(40) NOT NULL, "
                    f"amount DECIMAL(10, 2) NOT NULL, updated_at {self.ts()} NOT NULL)")
        if self.kind == "postgres":
            cur.execute("INSERT INTO orders SELECT g, 'order ' || g, (g % 10000) / 100.0, "
                        "timestamptz '2024-01-01' + (g / 1000) * interval '1 second' "
                        f"FROM generate_series(1, {rows}) g")
        elif self.kind == "mysql":
            cur.execute("INSERT INTO orders SELECT seq, CONCAT('order ', seq), (seq % 10000) / 100, "
                        "TIMESTAMP '2024-01-01 00:00:00' + INTERVAL (seq DIV 1000) SECOND "
                        f"FROM seq_1_to_{rows}")
        else:
            cur.execute("BEGIN")
            cur.execute("WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?) "
                        "INSERT INTO orders SELECT n, 'order ' || n, (n % 10000) / 100.0, "
                        "strftime('%Y-%m-%d %H:%M:%f', '2024-01-01', '+' || (n / 1000) || ' seconds') FROM g",
                        [rows])
            cur.execute("COMMIT")
        cur.execute("CREATE INDEX orders_tracking ON orders (updated_at, id)")
        if self.kind == "postgres":
            cur.execute("ANALYZE orders")
        raw.close()
        return time.perf_counter() - began

    def context(self, checkpoint: dict, batch: int) -> AdapterContext:
        return AdapterContext(connection=lambda code: dict(self.connection), checkpoint=checkpoint, batch_size=batch)


def available(db: Db) -> bool:
    try:
        admin = db.admin()
    except Exception as exc:
        print(f"  {db.kind}: skipped, not reachable ({exc})")
        return False
    if admin is not None:
        admin.close()
    return True


# --- throughput ---------------------------------------------------------------------------------------------


def throughput(db: Db, rows: int, batches: list[int]) -> None:
    print(f"  {db.kind}: filling {rows:,} rows ...", flush=True)
    fill = db.fill(rows)
    print(f"  {db.kind}: filled in {fill:.1f} s (not counted); load average {load_average()}")
    for batch in batches:
        config = {"connectionCode": "src", "table": "orders", "trackingColumn": "updated_at", "primaryKey": "id",
                  "batchSize": batch, "safetyLagMs": 0}
        checkpoint: dict = {}
        extractor = CdcExtractor(config, db.context(checkpoint, batch))
        began = time.perf_counter()
        seen = 0
        try:
            for records in extractor.batches():
                seen += len(records)
        finally:
            extractor.close()
        took = time.perf_counter() - began
        assert seen == rows, (seen, rows)
        print(f"  {db.kind:8} batchSize {batch:>6}: {seen:,} rows in {took:6.2f} s = {seen / took:>9,.0f} rows/s")


# --- commit-to-emit delay in a continuous run ---------------------------------------------------------------


def setup_django(workdir: str) -> None:
    os.environ["DATAHUB_VAR_DIR"] = workdir
    os.environ["DATAHUB_SQLITE_DIRS"] = workdir
    os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "datahub_project.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def delay(db: Db, samples: int, poll_ms: int) -> None:
    from django.db import connections

    from pipelines import registry
    from pipelines.adapters.base import Writer, WriteResult
    from pipelines.models import Connection
    from pipelines.services import save_definition
    from runs import services
    from runs.models import Run

    arrived: dict[int, float] = {}

    class Clock(Writer):
        def write(self, batch):
            now = time.monotonic()
            for r in batch:
                arrived.setdefault(int(r["id"]), now)
            return WriteResult(written=len(batch))

    registry.loaders.register("benchClock", Clock, schema={"type": "object"}, replace=True)
    raw = db.raw()
    cur = raw.cursor()
    cur.execute("DROP TABLE IF EXISTS events")
    cur.execute(f"CREATE TABLE events (id BIGINT PRIMARY KEY, updated_at {db.ts()} NOT NULL DEFAULT "
                f"{'(' + db.now() + ')' if db.kind == 'sqlite' else db.now()})")
    code = f"bench-{db.kind}-{poll_ms}"
    Connection.objects.update_or_create(code="src", defaults={
        "type": db.connection["type"], "config": {k: v for k, v in db.connection.items() if k not in ("code", "type")}})
    pipeline = save_definition({"version": 1, "code": code, "name": code, "steps": [
        {"key": "changes", "type": "EXTRACT", "adapterCode": "cdc",
         "config": {"connectionCode": "src", "table": "events", "trackingColumn": "updated_at", "primaryKey": "id",
                    "mode": "CONTINUOUS", "pollIntervalMs": poll_ms,
                    "safetyLagMs": 100 if db.kind == "sqlite" else 0}},
        {"key": "clock", "type": "LOAD", "adapterCode": "benchClock", "config": {}}]})
    run = services.create_run(pipeline)

    def body():
        try:
            services.run_now(run)
        finally:
            connections.close_all()

    worker = threading.Thread(target=body, daemon=True)
    worker.start()
    time.sleep(1.0)
    committed: dict[int, float] = {}
    rnd = random.Random(1)
    ph = "?" if db.kind == "sqlite" else "%s"
    for i in range(1, samples + 1):
        time.sleep(rnd.uniform(0.2, 0.2 + poll_ms / 1000))
        cur.execute(f"INSERT INTO events (id) VALUES ({ph})", [i])  # autocommit: returns after COMMIT
        committed[i] = time.monotonic()
    deadline = time.monotonic() + 30
    while len(arrived) < samples and time.monotonic() < deadline:
        time.sleep(0.01)
    services.cancel_run(run)
    worker.join(30)
    raw.close()
    delays = sorted((arrived[i] - committed[i]) * 1000 for i in committed if i in arrived)
    progress = Run.objects.get(pk=run.pk).progress or {}
    if len(delays) < samples:
        print(f"  {db.kind}: only {len(delays)} of {samples} rows arrived")
    if delays:
        p95 = delays[min(len(delays) - 1, int(0.95 * len(delays)))]
        print(f"  {db.kind:8} pollIntervalMs {poll_ms:>5}: commit -> LOAD median {statistics.median(delays):7.1f} ms, "
              f"p95 {p95:7.1f} ms, max {delays[-1]:7.1f} ms ({len(delays)} rows; {progress.get('polls')} polls, "
              f"{progress.get('batches')} batches)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dbs", default="postgres,mysql,sqlite")
    parser.add_argument("--batch", default="1000,10000")
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--poll-ms", default="100,1000")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-delay", action="store_true")
    args = parser.parse_args()
    header("cdc extractor: rows per second (ONE_SHOT) and commit-to-emit delay (CONTINUOUS)")
    with tempfile.TemporaryDirectory() as workdir:
        os.environ["DATAHUB_SQLITE_DIRS"] = workdir
        dbs = [Db(kind, workdir) for kind in args.dbs.split(",")]
        dbs = [db for db in dbs if available(db)]
        for db in dbs:
            db.create_database()
        try:
            if not args.skip_throughput:
                print("throughput")
                for db in dbs:
                    throughput(db, args.rows, [int(b) for b in args.batch.split(",")])
            if not args.skip_delay:
                print("delay")
                setup_django(workdir)
                for db in dbs:
                    for poll in [int(p) for p in args.poll_ms.split(",")]:
                        delay(db, args.samples, poll)
        finally:
            for db in dbs:
                db.drop_database()


if __name__ == "__main__":
    main()
