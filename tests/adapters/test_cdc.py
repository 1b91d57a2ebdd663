"""The `cdc` extractor against real SQLite, PostgreSQL and MariaDB: operations, the (value, key) cursor,
late commits with a real concurrent writer, name checks, and the checkpoint that only advances when the
whole run completed.

PostgreSQL and MariaDB run in scratch databases made for this module (tests/adapters/test_database.py's
fixtures) and skip, saying why, only when the service does not answer.
"""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import timedelta

import pytest

from pipelines.adapters.base import AdapterContext
from pipelines.adapters.cdc import COMMIT_KEY, COMMIT_ON_RUN_COMPLETED, CdcExtractor
from pipelines.errors import ConfigError
from tests.adapters import test_database as _db
from tests.adapters.test_database import MY_HOST, MY_PORT, PG_HOST, PG_PORT, Target, qi

# The scratch databases and the three-database `target` of the database adapter tests (named per module).
pg_database, mysql_database, target, statements = _db.pg_database, _db.mysql_database, _db.target, _db.statements

TS = {"sqlite": "DATETIME", "postgres": "TIMESTAMPTZ", "mysql": "DATETIME(6)"}
NOW = {"sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now')", "postgres": "now()", "mysql": "CURRENT_TIMESTAMP(6)"}
BOOL = {"sqlite": "BOOLEAN", "postgres": "BOOLEAN", "mysql": "TINYINT(1)"}


def T(day: int, second: int = 0) -> str:
    return f"2024-01-{day:02d} 10:00:{second:02d}.000000"


def now_default(kind: str) -> str:
    return f"({NOW[kind]})" if kind == "sqlite" else NOW[kind]


class Poller:
    """Runs the extractor the way the EXTRACT step does, keeping its checkpoint between polls like a store
    that commits after every poll."""

    def __init__(self, target: Target, **config):
        self.target = target
        self.config = {"connectionCode": target.code, "table": "orders", "trackingColumn": "updated_at",
                       "primaryKey": "id", **config}
        self.checkpoint: dict = {}
        self.batches: list[list[dict]] = []
        self.warnings: list[str] = []

    def poll(self, *, stop_after: int | None = None, **ctx) -> list[dict]:
        context = self.target.ctx(checkpoint=self.checkpoint, **ctx)
        extractor = CdcExtractor(dict(self.config), context)
        self.batches = []
        try:
            for batch in extractor.batches():
                self.batches.append(batch)
                if stop_after is not None and len(self.batches) >= stop_after:
                    break  # a consumer that stops here has taken this batch
        finally:
            extractor.close()
        self.warnings = list(context.warnings)
        return [r for b in self.batches for r in b]

    def until_quiet(self, rounds: int = 100) -> list[dict]:
        """Poll until a poll finds nothing and no open transaction holds it back (all changes are in)."""
        seen: list[dict] = []
        for _ in range(rounds):
            got = self.poll()
            seen += got
            held = self.checkpoint["poll"]["heldBackBy"]
            if not got and "transaction" not in held and "observation" not in held:
                return seen
            time.sleep(0.02)
        raise AssertionError(f"the extractor never caught up: {self.checkpoint['poll']}")


def ops(records) -> list[tuple]:
    return [(r["id"], r["_cdc_operation"]) for r in records]


def orders_table(target: Target, *, extra: str = "") -> None:
    kind = target.kind
    target.create("orders", f"id INT PRIMARY KEY, name VARCHAR(50), created_at {TS[kind]} NOT NULL, "
                             f"updated_at {TS[kind]} NOT NULL, deleted_at {TS[kind]} NULL{extra}")


# --- operations ---------------------------------------------------------------------------------------------


def test_it_emits_inserts_updates_and_soft_deletes_once_each(target):
    orders_table(target)
    target.insert("orders", [{"id": i, "name": f"o{i}", "created_at": T(1), "updated_at": T(1)} for i in (1, 2, 3)])
    p = Poller(target, createdColumn="created_at", includeDeletes=True, deleteColumn="deleted_at")

    first = p.poll()
    assert ops(first) == [(1, "INSERT"), (2, "INSERT"), (3, "INSERT")]
    assert first[0]["name"] == "o1" and first[0]["_cdc_timestamp"].startswith("2024-01-01")
    assert set(first[0]) == {"id", "name", "created_at", "updated_at", "deleted_at", "_cdc_operation",
                             "_cdc_timestamp"}

    target.run(f"UPDATE orders SET name = 'changed', updated_at = '{T(2)}' WHERE id = 1",
               f"UPDATE orders SET deleted_at = '{T(3)}' WHERE id = 2",  # the tracking column does not move
               f"INSERT INTO orders (id, name, created_at, updated_at) VALUES (4, 'o4', '{T(4)}', '{T(4)}')")
    second = p.poll()
    assert sorted(ops(second)) == [(1, "UPDATE"), (2, "DELETE"), (4, "INSERT")]
    assert {r["id"]: r["name"] for r in second} == {1: "changed", 2: "o2", 4: "o4"}
    delete = next(r for r in second if r["id"] == 2)
    assert delete["_cdc_timestamp"].startswith("2024-01-03")
    # A soft-deleted row that also moved its tracking column is still one DELETE, not a DELETE and an UPDATE.
    target.run(f"UPDATE orders SET deleted_at = '{T(5)}', updated_at = '{T(5)}' WHERE id = 3")
    assert ops(p.poll()) == [(3, "DELETE")]
    assert p.poll() == []


def test_it_tells_a_row_created_and_updated_since_the_last_poll_as_an_insert(target):
    orders_table(target)
    target.insert("orders", [{"id": 1, "name": "a", "created_at": T(1), "updated_at": T(1)}])
    p = Poller(target, createdColumn="created_at")
    assert ops(p.poll()) == [(1, "INSERT")]
    target.insert("orders", [{"id": 2, "name": "b", "created_at": T(2), "updated_at": T(3)}])  # never seen
    assert ops(p.poll()) == [(2, "INSERT")]


def test_it_emits_upsert_when_it_cannot_tell_insert_from_update(target):
    orders_table(target)
    target.insert("orders", [{"id": 1, "name": "a", "created_at": T(1), "updated_at": T(1)}])
    p = Poller(target)
    assert ops(p.poll()) == [(1, "UPSERT")]
    target.run(f"UPDATE orders SET updated_at = '{T(2)}' WHERE id = 1")
    assert ops(p.poll()) == [(1, "UPSERT")]


def test_it_skips_soft_deleted_rows_unless_deletes_are_wanted(target):
    orders_table(target, extra=f", is_deleted {BOOL[target.kind]} NOT NULL DEFAULT FALSE")
    target.insert("orders", [{"id": i, "name": f"o{i}", "created_at": T(1), "updated_at": T(1)} for i in (1, 2)])
    flagged = Poller(target, includeDeletes=True, deleteColumn="is_deleted")
    skipping = Poller(target, deleteColumn="is_deleted")
    assert len(flagged.poll()) == 2 and len(skipping.poll()) == 2
    # A flag has no time of its own: the delete is seen when the tracking column moves with it.
    target.run(f"UPDATE orders SET is_deleted = TRUE, updated_at = '{T(2)}' WHERE id = 2")
    assert ops(flagged.poll()) == [(2, "DELETE")]
    assert skipping.poll() == []
    assert skipping.checkpoint["cursor"]["key"][0]["value"] == 2  # skipped, but passed


# --- the cursor ----------------------------------------------------------------------------------------------


def test_it_reads_200_rows_sharing_a_timestamp_in_batches_of_50_each_once(target):
    orders_table(target)
    target.insert("orders", [{"id": i, "name": f"o{i}", "created_at": T(1), "updated_at": T(1)}
                             for i in random.Random(7).sample(range(1, 201), 200)])
    p = Poller(target, batchSize=50)
    records = p.poll()
    assert [len(b) for b in p.batches] == [50, 50, 50, 50]
    assert [r["id"] for r in records] == list(range(1, 201))
    assert p.checkpoint["cursor"]["key"] == [{"value": 200, "type": "json"}]
    assert len(json.dumps(p.checkpoint)) < 1000  # O(1): the last (value, key), no per-row state
    assert p.poll() == []


def test_it_resumes_inside_a_run_of_equal_timestamps_without_loss_or_repeat(target):
    orders_table(target)
    target.insert("orders", [{"id": i, "name": "x", "created_at": T(1), "updated_at": T(1)} for i in range(1, 201)])
    p = Poller(target, batchSize=50)
    first = p.poll(stop_after=2)  # stopped (a crash, a cancel) after 100 rows of the tie
    target.insert("orders", [{"id": 0, "name": "late key", "created_at": T(1), "updated_at": T(1)}])
    rest = p.poll()
    ids = [r["id"] for r in first + rest]
    assert ids == list(range(1, 201))  # id 0 sorts before the cursor: see the late-commit tests for that case
    assert len(set(ids)) == len(ids)


def test_it_keeps_a_composite_key_cursor(target):
    kind = target.kind
    target.create("lines", f"order_id INT NOT NULL, line INT NOT NULL, updated_at {TS[kind]} NOT NULL, "
                           "PRIMARY KEY (order_id, line)")
    target.insert("lines", [{"order_id": o, "line": n, "updated_at": T(1)} for o in (1, 2, 3) for n in (1, 2, 3)])
    p = Poller(target, table="lines", primaryKey=["order_id", "line"], batchSize=2)
    records = p.poll()
    assert [(r["order_id"], r["line"]) for r in records] == [(o, n) for o in (1, 2, 3) for n in (1, 2, 3)]
    assert [len(b) for b in p.batches] == [2, 2, 2, 2, 1]


def test_it_leaves_the_cursor_alone_after_an_empty_poll(target):
    orders_table(target)
    target.insert("orders", [{"id": 1, "name": "a", "created_at": T(1), "updated_at": T(1)}])
    p = Poller(target)
    p.poll()
    cursor = json.dumps(p.checkpoint["cursor"], sort_keys=True)
    assert p.poll() == []
    assert json.dumps(p.checkpoint["cursor"], sort_keys=True) == cursor
    assert p.checkpoint[COMMIT_KEY] == COMMIT_ON_RUN_COMPLETED


def test_it_round_trips_microseconds_through_the_checkpoint(target):
    orders_table(target)
    target.insert("orders", [{"id": 1, "name": "a", "created_at": T(1), "updated_at": "2024-01-01 10:00:00.123456"},
                             {"id": 2, "name": "b", "created_at": T(1), "updated_at": "2024-01-01 10:00:00.123457"}])
    p = Poller(target, batchSize=1)
    assert [r["id"] for r in p.poll(stop_after=1)] == [1]
    assert [r["id"] for r in p.poll()] == [2]


def test_it_reads_a_version_column(target):
    target.create("orders", "id INT PRIMARY KEY, name VARCHAR(50), version BIGINT NOT NULL")
    target.insert("orders", [{"id": i, "name": "a", "version": i * 10} for i in (1, 2, 3)])
    p = Poller(target, trackingColumn="version", trackingType="VERSION")
    assert [r["id"] for r in p.poll()] == [1, 2, 3]
    target.run("UPDATE orders SET version = 40, name = 'b' WHERE id = 1")
    [record] = p.poll()
    assert (record["id"], record["version"], record["_cdc_operation"]) == (1, 40, "UPSERT")
    assert record["_cdc_timestamp"][:4].isdigit()  # when the change was seen
    assert p.poll() == []


def test_it_reads_rows_newer_than_the_safety_lag_only_once_they_are_old_enough(target):
    orders_table(target)
    target.run(f"INSERT INTO orders (id, name, created_at, updated_at) VALUES (1, 'now', {NOW[target.kind]}, "
               f"{NOW[target.kind]})")
    p = Poller(target, safetyLagMs=60_000)
    assert p.poll() == []
    assert "safetyLagMs 60000" in p.checkpoint["poll"]["heldBackBy"]
    p.config["safetyLagMs"] = 300
    time.sleep(0.4)
    assert [r["id"] for r in p.poll()] == [1]


# --- names and config ------------------------------------------------------------------------------------


def test_it_refuses_unknown_names_before_reading_any_row(target, statements):
    orders_table(target)
    with pytest.raises(ConfigError, match="table 'order' does not exist.*did you mean 'orders'") as e:
        Poller(target, table="order").poll()
    assert e.value.field == "table"
    with pytest.raises(ConfigError, match="column 'updatedat' does not exist.*did you mean 'updated_at'") as e:
        Poller(target, trackingColumn="updatedat").poll()
    assert e.value.field == "trackingColumn"
    with pytest.raises(ConfigError, match="column 'nme'.*'name'") as e:
        Poller(target, columns=["id", "nme"]).poll()
    assert e.value.field == "columns.1"
    with pytest.raises(ConfigError, match="column 'deleted'") as e:
        Poller(target, includeDeletes=True, deleteColumn="deleted").poll()
    assert e.value.field == "deleteColumn"
    # Only catalogue queries ran: no statement read the table (or a misspelt one).
    assert not [sql for _, sql in statements if "FROM" in sql and ("orders" in sql or "order" in sql.split())]


def test_it_checks_types_and_the_connection(target):
    orders_table(target)
    with pytest.raises(ConfigError, match="trackingType VERSION needs a numeric column"):
        Poller(target, trackingType="VERSION").poll()
    with pytest.raises(ConfigError, match="trackingType TIMESTAMP needs a date/time column.*use trackingType VERSION"):
        Poller(target, trackingColumn="id").poll()
    other = "MYSQL" if target.kind != "mysql" else "POSTGRESQL"
    with pytest.raises(ConfigError, match=f"databaseType is {other} but connection 'shop' is of type") as e:
        Poller(target, databaseType=other).poll()
    assert e.value.field == "databaseType"
    with pytest.raises(ConfigError, match="deleteColumn is required"):
        Poller(target, includeDeletes=True).poll()


def test_it_quotes_names_that_need_it(target):
    kind = target.kind
    target.run(f"DROP TABLE IF EXISTS {qi(kind, 'order lines')}",
               f"CREATE TABLE {qi(kind, 'order lines')} ({qi(kind, 'Line Id')} INT PRIMARY KEY, "
               f"{qi(kind, 'changed%at')} {TS[kind]} NOT NULL, {qi(kind, 'select')} VARCHAR(10))")
    target.run(f"INSERT INTO {qi(kind, 'order lines')} VALUES (1, '{T(1)}', 'x')")  # no parameters: % stays
    p = Poller(target, table="order lines", trackingColumn="changed%at", primaryKey="Line Id")
    [record] = p.poll()
    assert (record["Line Id"], record["select"], record["_cdc_operation"]) == (1, "x", "UPSERT")
    assert record["changed%at"].startswith("2024-01-01") and record["_cdc_timestamp"] == record["changed%at"]
    target.run(f"UPDATE {qi(kind, 'order lines')} SET {qi(kind, 'changed%at')} = '{T(2)}'")
    assert len(p.poll()) == 1


def test_it_warns_when_the_key_is_not_unique(target):
    target.create("orders", f"id INT NOT NULL, updated_at {TS[target.kind]} NOT NULL")
    target.insert("orders", [{"id": 1, "updated_at": T(1)}])
    p = Poller(target)
    p.poll()
    assert any("no unique index covers primaryKey id" in w for w in p.warnings)


def test_it_starts_over_when_the_checkpoint_belongs_to_another_column(target):
    orders_table(target)
    target.insert("orders", [{"id": 1, "name": "a", "created_at": T(1), "updated_at": T(1)}])
    p = Poller(target)
    p.poll()
    p.config["trackingColumn"] = "created_at"
    assert [r["id"] for r in p.poll()] == [1]
    assert any("reading" in w and "from the beginning" in w for w in p.warnings)


# --- late commits: a real concurrent writer --------------------------------------------------------------------


def _writer(target: Target):
    raw = target._raw()
    cur = raw.cursor()
    return raw, cur


@pytest.fixture(params=["postgres", "mysql"])
def server(request) -> Target:
    """PostgreSQL or MariaDB only: SQLite has one writer at a time."""
    if request.param == "postgres":
        name = request.getfixturevalue("pg_database")
        return Target("postgres", {"code": "shop", "type": "POSTGRES", "host": PG_HOST, "port": PG_PORT,
                                   "database": name, "user": "postgres"})
    name = request.getfixturevalue("mysql_database")
    return Target("mysql", {"code": "shop", "type": "MYSQL", "host": MY_HOST, "port": MY_PORT,
                            "database": name, "user": "root"})


def test_it_delivers_a_late_commit_with_an_older_timestamp_exactly_once(server):
    kind = server.kind
    server.create("orders", f"id INT PRIMARY KEY, name VARCHAR(50), updated_at {TS[kind]} NOT NULL "
                            f"DEFAULT {now_default(kind)}")
    server.run("INSERT INTO orders (id, name, updated_at) VALUES (1, 'before', '2024-01-01 00:00:00')")
    p = Poller(server, safetyLagMs=0)
    assert [r["id"] for r in p.poll()] == [1]

    raw, cur = _writer(server)
    try:
        cur.execute("BEGIN")
        cur.execute("INSERT INTO orders (id, name) VALUES (2, 'late')")  # its timestamp: now, not yet visible
        time.sleep(0.05)
        server.run("INSERT INTO orders (id, name) VALUES (3, 'early')")  # newer timestamp, committed first
        assert server.rows("SELECT COUNT(*) FROM orders") == [(2,)]
        # A cursor that took 'early' now would pass 'late' forever. The open transaction holds the poll back.
        assert p.poll() == []
        assert "transaction open since" in p.checkpoint["poll"]["heldBackBy"]
        cur.execute("COMMIT")
    finally:
        raw.close()
    seen = p.until_quiet()
    assert [r["name"] for r in seen] == ["late", "early"]
    late, early = server.rows("SELECT updated_at FROM orders WHERE id IN (2, 3) ORDER BY id")
    assert late[0] < early[0]  # the late commit really has the older tracking value


def test_it_delivers_a_late_commit_of_a_lower_version_exactly_once(server):
    kind = server.kind
    auto = "id SERIAL PRIMARY KEY" if kind == "postgres" else "id INT AUTO_INCREMENT PRIMARY KEY"
    server.create("events", f"{auto}, name VARCHAR(50)")
    server.run("INSERT INTO events (name) VALUES ('first')")
    p = Poller(server, table="events", trackingColumn="id", trackingType="VERSION", primaryKey="id")
    assert [r["name"] for r in p.poll()] == ["first"]

    raw, cur = _writer(server)
    try:
        cur.execute("BEGIN")
        cur.execute("INSERT INTO events (name) VALUES ('late')")  # takes id 2
        server.run("INSERT INTO events (name) VALUES ('early')")  # takes id 3, commits first
        for _ in range(3):
            assert p.poll() == []  # never past id 2 while its transaction is open
        cur.execute("COMMIT")
    finally:
        raw.close()
    seen = p.until_quiet()
    assert [(r["id"], r["name"]) for r in seen] == [(2, "late"), (3, "early")]


def test_it_sees_every_change_of_concurrent_writers_and_misses_none(target):
    """Writers insert and update in transactions of random length while the extractor polls with no safety
    lag on the servers (SQLite, whose writers go one at a time, keeps its default lag)."""
    kind = target.kind
    target.create("items", f"id INT PRIMARY KEY, val INT NOT NULL, updated_at {TS[kind]} NOT NULL "
                           f"DEFAULT {now_default(kind)}")
    lag = {"sqlite": 200, "postgres": 0, "mysql": 0}[kind]
    p = Poller(target, table="items", safetyLagMs=lag, batchSize=37)
    final: dict[int, int] = {}
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        rnd = random.Random(worker)
        raw, cur = _writer(target)
        ph = "?" if kind == "sqlite" else "%s"
        next_id = worker * 100_000
        try:
            while not stop.is_set():
                cur.execute("BEGIN IMMEDIATE" if kind == "sqlite" else "BEGIN")
                done = {}
                for _ in range(rnd.randint(1, 4)):
                    mine = [i for i in final if i // 100_000 == worker]
                    if mine and rnd.random() < 0.5:
                        i = rnd.choice(mine)
                        val = done.get(i, final[i]) + 1
                        cur.execute(f"UPDATE items SET val = {ph}, updated_at = {NOW[kind]} WHERE id = {ph}", [val, i])
                    else:
                        next_id += 1
                        i, val = next_id, 0
                        cur.execute(f"INSERT INTO items (id, val) VALUES ({ph}, {ph})", [i, val])
                    done[i] = val
                time.sleep(rnd.random() * 0.03)  # the commit comes late
                cur.execute("COMMIT")
                with lock:
                    final.update(done)
        except BaseException as exc:  # reported to the test
            errors.append(exc)
        finally:
            raw.close()

    threads = [threading.Thread(target=write, args=(w,)) for w in (1, 2, 3)]
    for t in threads:
        t.start()
    seen: list[dict] = []
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        seen += p.poll()
        time.sleep(0.01)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors
    time.sleep(lag / 1000 + 0.05)
    seen += p.until_quiet()

    last: dict[int, int] = {}
    for r in seen:
        assert r["val"] >= last.get(r["id"], -1), f"row {r['id']} went back from {last[r['id']]} to {r['val']}"
        last[r["id"]] = r["val"]
    assert len(final) > 20
    missing = {i: v for i, v in final.items() if last.get(i) != v}
    assert not missing, f"{len(missing)} rows not seen in their final state, e.g. {list(missing.items())[:5]}"


def test_it_warns_and_relies_on_the_lag_when_it_cannot_see_other_sessions_on_postgres(pg_database):
    import psycopg

    admin = psycopg.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname=pg_database, autocommit=True)
    admin.execute("DROP ROLE IF EXISTS dh_cdc_reader")
    admin.execute("CREATE ROLE dh_cdc_reader LOGIN")
    admin.execute("DROP TABLE IF EXISTS orders")
    admin.execute("CREATE TABLE orders (id INT PRIMARY KEY, updated_at TIMESTAMPTZ NOT NULL DEFAULT now())")
    admin.execute("GRANT SELECT ON orders TO dh_cdc_reader")
    reader = Target("postgres", {"code": "shop", "type": "POSTGRES", "host": PG_HOST, "port": PG_PORT,
                                 "database": pg_database, "user": "dh_cdc_reader"})
    writer = psycopg.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname=pg_database)
    try:
        writer.execute("INSERT INTO orders (id) VALUES (1)")  # open, and writing
        p = Poller(reader, safetyLagMs=500)
        assert p.poll() == []
        assert any("1 open transaction(s) of other database roles cannot be seen" in w and "pg_read_all_stats" in w
                   for w in p.warnings)
        writer.commit()
        time.sleep(0.6)
        assert [r["id"] for r in p.poll()] == [1]
    finally:
        writer.close()
        admin.execute("DROP TABLE orders")
        admin.execute("DROP ROLE dh_cdc_reader")
        admin.close()


def test_it_takes_the_password_from_the_connections_secret_on_mysql(mysql_database):
    import pymysql

    admin = pymysql.connect(host=MY_HOST, port=MY_PORT, user="root", password="", autocommit=True)
    with admin.cursor() as cur:
        cur.execute("DROP USER IF EXISTS 'dh_cdc'@'%'")
        cur.execute("CREATE USER 'dh_cdc'@'%' IDENTIFIED BY 's3cret-pw'")
        cur.execute(f"GRANT SELECT ON `{mysql_database}`.* TO 'dh_cdc'@'%'")
        cur.execute(f"DROP TABLE IF EXISTS `{mysql_database}`.orders")
        cur.execute(f"CREATE TABLE `{mysql_database}`.orders (id INT PRIMARY KEY, updated_at DATETIME(6) NOT NULL)")
        cur.execute(f"INSERT INTO `{mysql_database}`.orders VALUES (1, '2024-01-01')")
    try:
        conn = {"code": "shop", "type": "MYSQL", "host": "127.0.0.1", "port": MY_PORT, "database": mysql_database,
                "user": "dh_cdc", "passwordSecretCode": "shop-password"}
        good = Target("mysql", conn, {"shop-password": "s3cret-pw"})
        p = Poller(good)
        assert [r["id"] for r in p.poll()] == [1]
        # Without PROCESS the open transactions are invisible: the step says so and relies on the lag.
        assert any("INNODB_TRX cannot be read" in w for w in p.warnings)
        bad = Target("mysql", conn, {"shop-password": "wrong"})
        with pytest.raises(Exception, match="Access denied"):
            Poller(bad).poll()
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS `{mysql_database}`.orders")
            cur.execute("DROP USER IF EXISTS 'dh_cdc'@'%'")
        admin.close()


def test_the_store_and_the_extractor_agree_on_the_commit_marker():
    from runs.store import DEFER_KEY, DEFER_UNTIL

    assert (DEFER_KEY, DEFER_UNTIL) == (COMMIT_KEY, COMMIT_ON_RUN_COMPLETED)


def test_it_reads_nothing_in_a_dry_context_without_a_connection_resolver():
    with pytest.raises(ConfigError, match="cannot be resolved here"):
        list(CdcExtractor({"connectionCode": "x", "table": "t", "trackingColumn": "u", "primaryKey": "id"},
                          AdapterContext()).batches())


# --- the checkpoint advances only once the batch went through the rest of the pipeline ----------------------


def connection_row(target: Target):
    from pipelines.models import Connection

    config = {k: v for k, v in target.connection.items() if k not in ("code", "type")}
    return Connection.objects.create(code=target.code, type=target.connection["type"], config=config)


def cdc_pipeline(code: str = "cdc-orders", *, load_table: str = "orders_copy", extra_steps=(), edges=(),
                 context=None, **config) -> dict:
    return {
        "version": 1, "code": code, "name": code,
        "steps": [
            {"key": "changes", "type": "EXTRACT", "adapterCode": "cdc",
             "config": {"connectionCode": "shop", "table": "orders", "trackingColumn": "updated_at",
                        "primaryKey": "id", "batchSize": 2, **config}},
            *extra_steps,
            {"key": "load", "type": "LOAD", "adapterCode": "tableUpsert",
             "config": {"connectionCode": "shop", "table": load_table, "lookupFields": ["id"],
                        "fieldMapping": {"id": "id", "name": "name", "op": "_cdc_operation"}}},
        ],
        "edges": list(edges),
        "context": context or {},
    }


def run_pipeline(pipeline, **kwargs):
    from runs import services

    return services.run_now(services.create_run(pipeline, **kwargs)).run


def saved_cursor(pipeline):
    from runs.models import Checkpoint

    row = Checkpoint.objects.filter(pipeline=pipeline, step_key="changes").first()
    return None if row is None else [k["value"] for k in row.data["cursor"]["key"]]


@pytest.mark.django_db(transaction=True)
def test_a_failed_load_leaves_the_checkpoint_and_the_next_run_delivers_the_same_rows(target):
    from pipelines.services import save_definition

    connection_row(target)
    orders_table(target)
    target.insert("orders", [{"id": i, "name": f"o{i}", "created_at": T(1), "updated_at": T(i)} for i in (1, 2, 3)])
    pipeline = save_definition(cdc_pipeline())

    crashed = run_pipeline(pipeline)  # the load's table does not exist: extract completed, load failed
    assert crashed.status == "FAILED", crashed.error
    assert crashed.step_runs.get(step_key="changes").records_out == 3
    assert saved_cursor(pipeline) is None and crashed.pending_checkpoints == {}

    target.create("orders_copy", "id INT PRIMARY KEY, name VARCHAR(50), op VARCHAR(10)")
    again = run_pipeline(pipeline)
    assert again.status == "COMPLETED", again.error
    assert target.rows("SELECT id, name, op FROM orders_copy ORDER BY id") == [
        (1, "o1", "UPSERT"), (2, "o2", "UPSERT"), (3, "o3", "UPSERT")]
    assert saved_cursor(pipeline) == [3]
    from runs.models import Checkpoint

    assert "_commit" not in Checkpoint.objects.get(pipeline=pipeline, step_key="changes").data

    assert run_pipeline(pipeline).step_runs.get(step_key="changes").records_out == 0
    target.run(f"UPDATE orders SET name = 'new', updated_at = '{T(9)}' WHERE id = 2")
    last = run_pipeline(pipeline)
    assert last.step_runs.get(step_key="changes").records_out == 1
    assert target.rows("SELECT name FROM orders_copy WHERE id = 2") == [("new",)]


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_dies_between_extract_and_load_loses_nothing(target, monkeypatch):
    from pipelines.services import save_definition
    from runs import services
    from runs.engine.events import StepStarted
    from runs.store import DjangoRunStore

    connection_row(target)
    orders_table(target)
    target.create("orders_copy", "id INT PRIMARY KEY, name VARCHAR(50), op VARCHAR(10)")
    target.insert("orders", [{"id": i, "name": f"o{i}", "created_at": T(1), "updated_at": T(1)} for i in (1, 2)])
    pipeline = save_definition(cdc_pipeline())

    class WorkerKilled(BaseException):
        """Not an Exception: nothing in the run catches it, as with a killed process."""

    emit = DjangoRunStore.emit

    def dying(self, event):
        if isinstance(event, StepStarted) and event.step_key == "load":
            raise WorkerKilled()
        emit(self, event)

    monkeypatch.setattr(DjangoRunStore, "emit", dying)
    run = services.create_run(pipeline)
    with pytest.raises(WorkerKilled):
        services.run_now(run)
    monkeypatch.setattr(DjangoRunStore, "emit", emit)
    run.refresh_from_db()
    assert run.status == "RUNNING" and "changes" in run.pending_checkpoints  # the extract had ended
    assert saved_cursor(pipeline) is None

    type(run).objects.filter(pk=run.pk).update(heartbeat_at=run.heartbeat_at - timedelta(hours=1))
    assert services.reap_stale_runs(max_silence_seconds=60) == 1
    # Taken back and resumed: the extract's saved output feeds the load; the cursor is committed at the end.
    after = services.run_now(run).run
    assert after.status == "COMPLETED", after.error
    assert after.step_runs.get(step_key="changes").attempts == 1
    assert target.rows("SELECT id FROM orders_copy ORDER BY id") == [(1,), (2,)]
    assert saved_cursor(pipeline) == [2]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("target", ["sqlite"], indirect=True)
def test_a_run_that_completes_with_a_failed_step_does_not_advance_the_checkpoint(target):
    from pipelines.services import save_definition

    connection_row(target)
    orders_table(target)
    target.create("orders_copy", "id INT PRIMARY KEY, name VARCHAR(50), op VARCHAR(10)")
    target.insert("orders", [{"id": 1, "name": "a", "created_at": T(1), "updated_at": T(1)}])
    broken = {"key": "audit", "type": "LOAD", "adapterCode": "tableUpsert",
              "config": {"connectionCode": "shop", "table": "no_such_table", "lookupFields": ["id"]}}
    definition = cdc_pipeline(extra_steps=[broken], edges=[{"from": "changes", "to": "audit"},
                                                           {"from": "changes", "to": "load"}],
                              context={"parallelExecution": {"enabled": True, "errorPolicy": "BEST_EFFORT"}})
    pipeline = save_definition(definition)
    run = run_pipeline(pipeline)
    assert run.status == "COMPLETED"
    assert "checkpoint of step 'changes' not advanced because step 'audit' failed" in run.error
    assert saved_cursor(pipeline) is None
    assert run_pipeline(pipeline).step_runs.get(step_key="changes").records_out == 1  # delivered again


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("target", ["sqlite"], indirect=True)
def test_a_dry_run_reads_but_never_moves_the_checkpoint(target):
    from pipelines.services import save_definition

    connection_row(target)
    orders_table(target)
    target.insert("orders", [{"id": 1, "name": "a", "created_at": T(1), "updated_at": T(1)}])
    pipeline = save_definition(cdc_pipeline())
    run = run_pipeline(pipeline, dry_run=True)
    assert run.status == "COMPLETED", run.error
    assert run.step_runs.get(step_key="changes").records_out == 1
    assert saved_cursor(pipeline) is None and run.pending_checkpoints == {}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("target", ["sqlite"], indirect=True)
def test_a_run_paused_at_a_gate_commits_its_cursor_only_when_it_completes(target, settings, tmp_path):
    from pipelines.services import save_definition
    from runs import services
    from runs.models import Run

    settings.MEDIA_ROOT = str(tmp_path / "media")
    connection_row(target)
    orders_table(target)
    target.create("orders_copy", "id INT PRIMARY KEY, name VARCHAR(50), op VARCHAR(10)")
    target.insert("orders", [{"id": 1, "name": "a", "created_at": T(1), "updated_at": T(1)}])
    gate = {"key": "gate", "type": "GATE", "config": {"approvalType": "MANUAL"}}
    pipeline = save_definition(cdc_pipeline(extra_steps=[gate]))
    run = run_pipeline(pipeline)
    assert run.status == "PAUSED", run.error
    assert run.pending_checkpoints["changes"]["cursor"]["key"] == [{"value": 1, "type": "json"}]
    assert saved_cursor(pipeline) is None

    services.release_paused_step(run, "gate")
    done = services.resume_now(Run.objects.get(pk=run.pk)).run
    assert done.status == "COMPLETED", done.error
    assert saved_cursor(pipeline) == [1] and done.pending_checkpoints == {}
    assert target.rows("SELECT id FROM orders_copy") == [(1,)]
