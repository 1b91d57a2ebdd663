"""The `database` extractor and pipelines.adapters.sqlconn, against real SQLite, PostgreSQL and MariaDB.

PostgreSQL and MariaDB tests run in a scratch database created for this module (and dropped after it);
they skip, saying why, only when the service does not answer. The fixtures here are shared with
test_table_upsert.py.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from pipelines.adapters import sqlconn
from pipelines.adapters.base import AdapterContext
from pipelines.adapters.database import DatabaseExtractor
from pipelines.definition import parse
from pipelines.errors import ConfigError, StepError
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore

PG_HOST, PG_PORT = "127.0.0.1", 5432
MY_HOST, MY_PORT = "127.0.0.1", 3306


# --- scratch databases -------------------------------------------------------------------------------------


def _scratch_name(request, kind: str) -> str:
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    return f"dh_{kind}_{module}_{os.getpid()}"


@pytest.fixture(scope="module")
def pg_database(request):
    """A PostgreSQL database for this module: its name."""
    import psycopg

    name = _scratch_name(request, "pg")
    try:
        admin = psycopg.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres", autocommit=True,
                                connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable on {PG_HOST}:{PG_PORT}: {exc}")
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.execute(f'CREATE DATABASE "{name}"')
    yield name
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="module")
def mysql_database(request):
    """A MariaDB/MySQL database for this module: its name."""
    import pymysql

    name = _scratch_name(request, "my")
    try:
        admin = pymysql.connect(host=MY_HOST, port=MY_PORT, user="root", password="", autocommit=True,
                                connect_timeout=3)
    except pymysql.MySQLError as exc:
        pytest.skip(f"MariaDB/MySQL not reachable on {MY_HOST}:{MY_PORT}: {exc}")
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
    yield name
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    admin.close()


def qi(kind: str, name: str) -> str:
    """A quoted identifier for setup SQL sent without parameters (so % is not doubled)."""
    q = "`" if kind == "mysql" else '"'
    return q + name.replace(q, q + q) + q


class Target:
    """One database under test: its Connection dict, raw setup access and adapter contexts."""

    def __init__(self, kind: str, connection: dict, secrets: dict | None = None):
        self.kind = kind
        self.connection = connection
        self.code = connection["code"]
        self.secrets = dict(secrets or {})
        self.auto_pk = {"sqlite": "id INTEGER PRIMARY KEY", "postgres": "id SERIAL PRIMARY KEY",
                        "mysql": "id INT AUTO_INCREMENT PRIMARY KEY"}[kind]
        self.timestamp = "DATETIME(6)" if kind == "mysql" else "TIMESTAMP"

    # Raw access for setup and checks; SQL uses ? placeholders.
    def _raw(self):
        c = self.connection
        if self.kind == "sqlite":
            return sqlite3.connect(c["path"], isolation_level=None)
        if self.kind == "postgres":
            import psycopg

            return psycopg.connect(host=c["host"], port=c["port"], user=c["user"], dbname=c["database"],
                                   autocommit=True)
        import pymysql

        return pymysql.connect(host=c["host"], port=c["port"], user=c["user"], password="", database=c["database"],
                               autocommit=True)

    def _sql(self, sql: str) -> str:
        return sql if self.kind == "sqlite" else sql.replace("?", "%s")

    def run(self, *statements: str) -> None:
        raw = self._raw()
        try:
            cur = raw.cursor()
            for s in statements:
                cur.execute(s)
        finally:
            raw.close()

    def insert(self, table: str, rows: list[dict]) -> None:
        raw = self._raw()
        try:
            cur = raw.cursor()
            for row in rows:
                cols = ", ".join(qi(self.kind, c) for c in row)
                marks = ", ".join("?" for _ in row)
                values = [str(v) if isinstance(v, Decimal) and self.kind == "sqlite" else v for v in row.values()]
                cur.execute(self._sql(f"INSERT INTO {qi(self.kind, table)} ({cols}) VALUES ({marks})"), values)
        finally:
            raw.close()

    def rows(self, sql: str, params=()) -> list[tuple]:
        raw = self._raw()
        try:
            cur = raw.cursor()
            if params:
                cur.execute(self._sql(sql), list(params))
            else:
                cur.execute(sql)
            return [tuple(_plain(v) for v in r) for r in cur.fetchall()]
        finally:
            raw.close()

    def create(self, table: str, columns: str) -> None:
        self.run(f"DROP TABLE IF EXISTS {qi(self.kind, table)}", f"CREATE TABLE {qi(self.kind, table)} ({columns})")

    # What adapters get.
    def resolve(self, code: str) -> dict:
        if code != self.code:
            raise ConfigError(f"unknown connection '{code}' (known: {self.code})", field="connectionCode")
        return dict(self.connection)

    def secret(self, code: str) -> str:
        if code not in self.secrets:
            raise ConfigError(f"unknown secret '{code}'")
        return self.secrets[code]

    def ctx(self, **kw) -> AdapterContext:
        kw.setdefault("batch_size", 1000)
        return AdapterContext(connection=self.resolve, secret=self.secret, **kw)

    def options(self, **kw) -> RunOptions:
        return RunOptions(keep_outputs=True, connection=self.resolve, secret=self.secret, **kw)


def _plain(value):
    """Compare across drivers: Decimals as floats, booleans as 0/1."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bool):
        return int(value)
    return value


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def target(request, tmp_path, settings):
    kind = request.param
    if kind == "sqlite":
        path = tmp_path / "shop.db"
        sqlite3.connect(path).close()
        settings.DATAHUB_SQLITE_DIRS = [str(tmp_path)]
        return Target(kind, {"code": "shop", "type": "SQLITE", "path": str(path)})
    if kind == "postgres":
        name = request.getfixturevalue("pg_database")
        return Target(kind, {"code": "shop", "type": "POSTGRES", "host": PG_HOST, "port": PG_PORT,
                             "database": name, "user": "postgres"})
    name = request.getfixturevalue("mysql_database")
    return Target(kind, {"code": "shop", "type": "MYSQL", "host": MY_HOST, "port": MY_PORT,
                         "database": name, "user": "root"})


@pytest.fixture
def statements(monkeypatch):
    """Every statement adapters send through SqlConnection, as (method, sql)."""
    seen: list[tuple[str, str]] = []
    for method in ("execute", "executemany", "stream"):
        original = getattr(sqlconn.SqlConnection, method)

        def wrapper(self, sql, *args, _original=original, _method=method, **kwargs):
            seen.append((_method, sql))
            return _original(self, sql, *args, **kwargs)

        monkeypatch.setattr(sqlconn.SqlConnection, method, wrapper)
    return seen


def run_definition(target: Target, steps: list[dict], store: InMemoryStore | None = None, **options):
    store = store or InMemoryStore()
    result = execute(parse({"steps": steps}), store, target.options(**options))
    return result, store


def extract(target: Target, config: dict, **ctx) -> list[list[dict]]:
    extractor = DatabaseExtractor({"connectionCode": target.code, **config}, target.ctx(**ctx))
    try:
        return list(extractor.batches())
    finally:
        extractor.close()


def products(target: Target, n: int = 5) -> None:
    target.create("products", f"{target.auto_pk}, sku VARCHAR(20) NOT NULL, qty INTEGER, price NUMERIC(10,2), "
                              f"updated_at {target.timestamp}")
    start = datetime(2024, 1, 1, 12, 0, 0)
    target.insert("products", [
        {"sku": f"A-{i:03d}", "qty": i, "price": Decimal(f"{i}.50"), "updated_at": start + timedelta(minutes=i)}
        for i in range(1, n + 1)
    ])


# --- extracting --------------------------------------------------------------------------------------------


def test_it_extracts_with_positional_parameters(target):
    products(target)
    for query in ("SELECT sku, qty FROM products WHERE qty >= ? AND sku LIKE ? ORDER BY sku",
                  "SELECT sku, qty FROM products WHERE sku LIKE $2 AND qty >= $1 ORDER BY sku"):
        batches = extract(target, {"query": query, "parameters": [4, "A-%"]})
        assert batches == [[{"sku": "A-004", "qty": 4}, {"sku": "A-005", "qty": 5}]]


def test_it_keeps_a_literal_percent_sign_with_parameters(target):
    products(target, 3)
    batches = extract(target, {"query": "SELECT sku FROM products WHERE sku LIKE 'A-00%' AND qty > $1 ORDER BY sku",
                               "parameters": [1]})
    assert [r["sku"] for r in batches[0]] == ["A-002", "A-003"]


def test_it_streams_more_rows_than_the_batch_size_in_batches(target):
    products(target, 25)
    batches = extract(target, {"query": "SELECT id, sku FROM products ORDER BY id", "batchSize": 10})
    assert [len(b) for b in batches] == [10, 10, 5]
    assert [r["sku"] for b in batches for r in b] == [f"A-{i:03d}" for i in range(1, 26)]
    paged = extract(target, {"query": "SELECT id FROM products ORDER BY id", "pagination": {"pageSize": 7, "maxPages": 2}})
    assert [len(b) for b in paged] == [7, 7]


def test_it_makes_values_json_safe(target):
    products(target, 1)
    [[row]] = extract(target, {"query": "SELECT sku, price, updated_at FROM products"})
    if target.kind == "sqlite":
        assert row["price"] == 1.5  # SQLite stores NUMERIC(10,2) as a REAL
        assert row["updated_at"] == "2024-01-01 12:01:00"  # and a timestamp as the text it was given
    else:
        assert row["price"] == "1.50"  # a Decimal keeps its digits, as a string
        assert row["updated_at"] == "2024-01-01T12:01:00"


def test_it_reads_incrementally_across_runs_keeping_the_last_value_in_the_checkpoint(target):
    products(target, 3)
    step = {"key": "src", "type": "EXTRACT", "adapterCode": "database", "config": {
        "connectionCode": "shop", "query": "SELECT sku, updated_at FROM products",
        "incremental": {"enabled": True, "column": "updated_at"}}}
    keep = {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}}
    store = InMemoryStore()
    first, _ = run_definition(target, [step, keep], store)
    assert first.status == "COMPLETED", first.error
    assert [r["sku"] for r in first.output("out")] == ["A-001", "A-002", "A-003"]
    saved = store.checkpoints["src"]["incremental"]
    assert saved["column"] == "updated_at"

    target.insert("products", [{"sku": "B-001", "qty": 9, "updated_at": datetime(2024, 1, 2)},
                               {"sku": "B-000", "qty": 9, "updated_at": datetime(2023, 12, 31)}])
    target.run("UPDATE products SET updated_at = " + {"sqlite": "'2024-01-03 00:00:00'",
                                                       "postgres": "'2024-01-03'", "mysql": "'2024-01-03'"}[target.kind]
               + " WHERE sku = 'A-002'")
    second, _ = run_definition(target, [step, keep], store)
    assert second.status == "COMPLETED", second.error
    assert [r["sku"] for r in second.output("out")] == ["B-001", "A-002"]  # in the column's order; B-000 is older
    third, _ = run_definition(target, [step, keep], store)
    assert third.output("out") == []


def test_it_moves_the_incremental_value_only_as_far_as_the_records_it_gave(target):
    products(target, 8)
    ctx = target.ctx(record_limit=5)
    extractor = DatabaseExtractor({"connectionCode": "shop", "query": "SELECT id, sku FROM products", "batchSize": 3,
                                   "incremental": {"enabled": True, "column": "id"}}, ctx)
    try:
        got = [r["sku"] for b in extractor.batches() for r in b]
    finally:
        extractor.close()
    assert got == ["A-001", "A-002", "A-003", "A-004", "A-005"]
    assert ctx.checkpoint["incremental"] == {"column": "id", "value": 5, "type": "json"}


def test_it_refuses_an_incremental_column_the_query_does_not_return_before_reading_rows(target, statements):
    products(target)
    with pytest.raises(ConfigError, match="incremental column 'updatd_at' is not a column of the query's result; "
                                          "did you mean 'updated_at'") as err:
        extract(target, {"query": "SELECT sku, updated_at FROM products",
                         "incremental": {"enabled": True, "column": "updatd_at"}})
    assert err.value.field == "incremental.column"
    assert [m for m, _ in statements if m == "stream"] == []  # only the LIMIT 0 probe ran


@pytest.mark.parametrize("query, hint", [("SELECT * FROM prodcts", "products"), ("SELECT skuu FROM products", "sku")])
def test_it_turns_an_unknown_table_or_column_into_a_config_error_with_the_nearest_name(target, query, hint):
    products(target, 1)
    with pytest.raises(ConfigError, match=f"did you mean '{hint}'"):
        extract(target, {"query": query})


@pytest.mark.parametrize("query, message", [
    ("DELETE FROM products", "must be a SELECT"),
    ("SELECT 1; DROP TABLE products", "';' is not allowed"),
    ("SELECT * FROM products; DROP TABLE products;", "';' is not allowed"),
    ("SELECT * FROM products -- trailing", "comments are not allowed"),
    ("SELECT * FROM products /* x */", "comments are not allowed"),
    ("WITH gone AS (DELETE FROM products RETURNING *) SELECT * FROM gone", "contains DELETE"),
    ("SELECT * INTO copied FROM products", "contains INTO"),
    ("SELECT * FROM products FOR UPDATE", "contains UPDATE"),
])
def test_it_refuses_anything_but_one_select_before_connecting(target, statements, query, message):
    products(target, 2)
    with pytest.raises(ConfigError, match=message):
        extract(target, {"query": query})
    assert statements == []
    assert target.rows("SELECT count(*) FROM products") == [(2,)]


def test_it_lets_semicolons_and_dashes_inside_literals_and_quoted_names_pass():
    assert sqlconn.check_select("SELECT 'a;b' AS \"x;--\", $$;$$ AS y;") == "SELECT 'a;b' AS \"x;--\", $$;$$ AS y"
    assert sqlconn.check_select("SELECT 'it''s; fine' AS `--`", "mysql") == "SELECT 'it''s; fine' AS `--`"
    # MySQL strings take backslash escapes: the quote is escaped, so the ';' is inside the literal ...
    assert sqlconn.check_select("SELECT 'a\\'; b'", "mysql")
    # ... while on PostgreSQL a backslash is an ordinary character and the ';' ends the statement.
    with pytest.raises(ConfigError, match="';' is not allowed"):
        sqlconn.check_select("SELECT 'a\\'; DROP TABLE t; SELECT 'x'", "postgres")
    with pytest.raises(ConfigError, match="unterminated"):
        sqlconn.check_select("SELECT 'open")


def test_it_refuses_a_query_whose_placeholders_and_parameters_disagree(target):
    products(target, 1)
    with pytest.raises(ConfigError, match="1 placeholder.*2 parameter") as err:
        extract(target, {"query": "SELECT sku FROM products WHERE qty = ?", "parameters": [1, 2]})
    assert err.value.field == "parameters"
    with pytest.raises(ConfigError, match=r"uses \$2 but 1 parameter"):
        extract(target, {"query": "SELECT sku FROM products WHERE qty = $2", "parameters": [1]})


def test_it_fails_a_query_that_takes_longer_than_query_timeout_ms_with_a_retryable_error(target):
    slow = {
        "postgres": "SELECT pg_sleep(3) AS slept",
        "mysql": "SELECT SLEEP(3) AS slept",
        "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000000) "
                  "SELECT count(*) AS n FROM c",
    }[target.kind]
    with pytest.raises(StepError, match="timed out after 300 ms") as err:
        extract(target, {"query": slow, "queryTimeoutMs": 300})
    assert err.value.retryable


def test_it_runs_the_query_in_a_read_only_transaction(target):
    """The keyword check explains refusals; the read-only transaction is what stops a write."""
    products(target, 1)
    conn = sqlconn.connect(target.connection, target.secret, read_only=True)
    try:
        with pytest.raises(Exception, match="(?i)read.only|readonly|attempt to write"):
            conn.execute("DELETE FROM products")
    finally:
        conn.close()
    assert target.rows("SELECT count(*) FROM products") == [(1,)]


def test_it_records_a_bad_column_on_the_step_and_does_not_retry_a_config_error(target):
    products(target, 1)
    step = {"key": "src", "type": "EXTRACT", "adapterCode": "database", "retries": 2, "config": {
        "connectionCode": "shop", "query": "SELECT sku FROM products", "incremental": {"enabled": True, "column": "skus"}}}
    result, store = run_definition(target, [step])
    assert result.status == "FAILED"
    finished = store.finished()["src"]
    assert "did you mean 'sku'" in finished.error
    assert finished.attempts == 1


def test_it_checks_database_type_against_the_connection(target):
    other = "SQLITE" if target.kind != "sqlite" else "POSTGRESQL"
    with pytest.raises(ConfigError, match="databaseType is") as err:
        extract(target, {"query": "SELECT 1 AS one", "databaseType": other})
    assert err.value.field == "databaseType"


def test_it_refuses_a_connection_that_is_not_a_database():
    ctx = AdapterContext(connection=lambda code: {"code": code, "type": "HTTP", "baseUrl": "https://x"})
    with pytest.raises(ConfigError, match="connection 'api' is of type HTTP; a SQL adapter needs one of"):
        list(DatabaseExtractor({"connectionCode": "api", "query": "SELECT 1"}, ctx).batches())


def test_it_reports_an_unreachable_server_as_a_retryable_step_error():
    down = Target("postgres", {"code": "down", "type": "POSTGRES", "host": "127.0.0.1", "port": 1,
                               "database": "x", "user": "postgres", "connectTimeoutMs": 2000})
    step = {"key": "src", "type": "EXTRACT", "adapterCode": "database", "retries": 1, "retryDelayMs": 10,
            "config": {"connectionCode": "down", "query": "SELECT 1 AS one"}}
    result, store = run_definition(down, [step])
    assert result.status == "FAILED"
    finished = store.finished()["src"]
    assert finished.attempts == 2
    assert "cannot connect to PostgreSQL connection 'down' (postgres://postgres@127.0.0.1:1/x)" in finished.error


# --- SQLite files -----------------------------------------------------------------------------------------


def test_it_opens_sqlite_files_only_inside_the_allowed_folders(tmp_path, settings):
    inside, outside = tmp_path / "in", tmp_path / "out"
    inside.mkdir()
    outside.mkdir()
    sqlite3.connect(outside / "x.db").close()
    settings.DATAHUB_SQLITE_DIRS = [str(inside)]
    with pytest.raises(ConfigError, match="outside the allowed folders"):
        sqlconn.connect({"code": "f", "type": "SQLITE", "path": str(outside / "x.db")})
    with pytest.raises(ConfigError, match="outside the allowed folders"):
        sqlconn.connect({"code": "f", "type": "SQLITE", "path": str(inside / ".." / "out" / "x.db")})
    with pytest.raises(ConfigError, match="does not exist"):
        sqlconn.connect({"code": "f", "type": "SQLITE", "path": str(inside / "missing.db")})
    assert not (inside / "missing.db").exists()


def test_it_refuses_datahubs_own_sqlite_database(settings):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("Django runs on another database here: there is no SQLite file of its own to refuse")
    own = settings.DATABASES["default"]["NAME"]
    settings.DATAHUB_SQLITE_DIRS = [os.path.dirname(own)]
    with pytest.raises(ConfigError, match="Datahub's own database"):
        sqlconn.connect({"code": "own", "type": "SQLITE", "path": own})


# --- connection parameters and secrets (no server needed) ----------------------------------------------------


SECRETS = {"pg-pw": "s3cret", "pg-url": "postgresql://app:p%40ss@db.example:6543/shop?sslmode=require",
           "my-url": "mysql://app:p%40ss@db.example:3307/shop", "lite-url": "sqlite:///{path}"}


def test_it_builds_postgres_parameters_with_the_password_from_a_secret():
    params = sqlconn.connect_params({"code": "pg", "type": "POSTGRES", "host": "db", "port": 5433, "database": "shop",
                                     "username": "app", "passwordSecretCode": "pg-pw", "ssl": {"enabled": True}},
                                    SECRETS.get, query_timeout_ms=1500)
    assert params.kwargs["password"] == "s3cret"
    assert params.kwargs["user"] == "app" and params.kwargs["dbname"] == "shop" and params.kwargs["port"] == 5433
    assert params.kwargs["sslmode"] == "verify-full"
    assert "statement_timeout=1500" in params.kwargs["options"] and "timezone=UTC" in params.kwargs["options"]
    assert "s3cret" not in params.describe and params.describe == "postgres://app@db:5433/shop"


def test_it_takes_a_whole_connection_string_from_a_secret():
    pg = sqlconn.connect_params({"code": "pg", "type": "POSTGRES", "host": "ignored", "connectionStringSecretCode": "pg-url"},
                                SECRETS.get)
    assert pg.conninfo == SECRETS["pg-url"] and "host" not in pg.kwargs
    assert pg.describe == "postgresql://app@db.example:6543/shop"
    my = sqlconn.connect_params({"code": "my", "type": "MYSQL", "connectionStringSecretCode": "my-url"}, SECRETS.get)
    assert (my.kwargs["host"], my.kwargs["port"], my.kwargs["user"], my.kwargs["password"], my.kwargs["database"]) == \
        ("db.example", 3307, "app", "p@ss", "shop")
    assert "p@ss" not in my.describe
    with pytest.raises(ConfigError, match="must be mysql://"):
        sqlconn.connect_params({"code": "my", "type": "MYSQL", "connectionStringSecretCode": "pg-url"}, SECRETS.get)


def test_it_resolves_a_sqlite_connection_string(tmp_path):
    db = tmp_path / "a.db"
    sqlite3.connect(db).close()
    secrets = {"lite": f"sqlite://{db}"}
    params = sqlconn.connect_params({"code": "l", "type": "SQLITE", "connectionStringSecretCode": "lite"}, secrets.get,
                                    allowed_dirs=[tmp_path])
    assert params.kwargs["path"] == str(db.resolve())


def test_it_needs_a_secret_resolver_for_a_password():
    with pytest.raises(ConfigError, match="secret 'pg-pw' cannot be resolved here"):
        sqlconn.connect_params({"code": "pg", "type": "POSTGRES", "passwordSecretCode": "pg-pw"}, None)


def test_it_connects_to_postgres_with_a_connection_string_secret(pg_database):
    # The server trusts local connections, so this proves the URL is used, not that the password is checked
    # (the MariaDB test below does that).
    url = f"postgresql://postgres:unused@{PG_HOST}:{PG_PORT}/{pg_database}"
    viaurl = Target("postgres", {"code": "shop", "type": "POSTGRES", "connectionStringSecretCode": "pg-url"},
                    {"pg-url": url})
    assert extract(viaurl, {"query": "SELECT current_database() AS db"}) == [[{"db": pg_database}]]


@pytest.fixture
def mysql_user(mysql_database):
    """A MariaDB user with a password, allowed on the scratch database."""
    import pymysql

    user, password = f"dh_u{os.getpid()}", "pw-Datahub-1"
    admin = pymysql.connect(host=MY_HOST, port=MY_PORT, user="root", password="", autocommit=True)
    hosts = ("%", "localhost", "127.0.0.1")
    with admin.cursor() as cur:
        for host in hosts:
            cur.execute("CREATE OR REPLACE USER %s@%s IDENTIFIED BY %s", (user, host, password))
            cur.execute(f"GRANT ALL ON `{mysql_database}`.* TO %s@%s", (user, host))
    yield user, password
    with admin.cursor() as cur:
        for host in hosts:
            cur.execute("DROP USER IF EXISTS %s@%s", (user, host))
    admin.close()


def test_it_logs_in_to_mariadb_with_the_password_secret_and_refuses_a_wrong_one(mysql_database, mysql_user):
    user, password = mysql_user
    connection = {"code": "shop", "type": "MYSQL", "host": MY_HOST, "port": MY_PORT, "database": mysql_database,
                  "user": user, "passwordSecretCode": "db-pw"}
    good = Target("mysql", connection, {"db-pw": password})
    assert extract(good, {"query": "SELECT CURRENT_USER() AS me"})[0][0]["me"].startswith(user + "@")
    bad = Target("mysql", connection, {"db-pw": "wrong"})
    with pytest.raises(StepError, match="Access denied") as err:
        extract(bad, {"query": "SELECT 1 AS one"})
    assert not err.value.retryable


@pytest.mark.django_db(transaction=True)
def test_it_resolves_connection_and_secret_rows_inside_the_worker(mysql_database, mysql_user):
    """The whole path: Connection and Secret rows, a saved pipeline, a run through runs.services."""
    from pipelines.models import Connection, Secret
    from pipelines.secrets import set_secret_value
    from pipelines.services import save_definition
    from runs import services

    user, password = mysql_user
    secret = Secret(code="shop-db-password")
    set_secret_value(secret, password)
    secret.save()
    Connection.objects.create(code="shop-db", type="MYSQL", config={
        "host": MY_HOST, "port": MY_PORT, "database": mysql_database, "user": user,
        "passwordSecretCode": "shop-db-password"})
    pipeline = save_definition({"version": 1, "code": "sql-read", "name": "SQL read", "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "database",
         "config": {"connectionCode": "shop-db", "query": "SELECT ? AS greeting", "parameters": ["hello"]}},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}}]})
    outcome = services.run_now(services.create_run(pipeline), keep_outputs=True)
    assert outcome.run.status == "COMPLETED", outcome.run.error
    assert outcome.result.output("out") == [{"greeting": "hello"}]


# --- names and values (no server needed) ---------------------------------------------------------------------


def test_it_quotes_names_for_each_dialect():
    assert sqlconn.POSTGRES.quote('odd "name"') == '"odd ""name"""'
    assert sqlconn.POSTGRES.quote("pct %") == '"pct %%"'  # psycopg reads % as a placeholder start
    assert sqlconn.MYSQL.quote("back`tick") == "`back``tick`"
    assert sqlconn.SQLITE.quote("pct %") == '"pct %"'
    with pytest.raises(ConfigError):
        sqlconn.SQLITE.quote("nul\x00")


def test_it_encodes_checkpoint_values_with_their_type():
    for value in (datetime(2024, 5, 6, 7, 8, 9, 10), date(2024, 5, 6), Decimal("12.50"), 42, "x"):
        assert sqlconn.decode_cursor(sqlconn.encode_cursor(value)) == value


def test_it_makes_driver_values_json_safe():
    assert sqlconn.json_value({"d": Decimal("1E+2"), "t": timedelta(days=1, seconds=3661, microseconds=500000),
                               "b": b"\x00\x01", "l": (date(2024, 1, 2),)}) == \
        {"d": "100", "t": "P1DT01H01M1.5S", "b": "AAE=", "l": ["2024-01-02"]}
