"""Testing a connection opens it for real and answers in words: SQL (SQLite, PostgreSQL), HTTP through the
guarded client (a local server), Redis PING, RabbitMQ; failures are answers, not exceptions, and no secret
value appears in them."""

import sqlite3

import pytest
from pytest_httpserver import HTTPServer

from pipelines.connection_checks import check_connection
from pipelines.credentials import save_connection, save_secret


def test_it_connects_to_a_sqlite_file(db, settings, tmp_path):
    settings.DATAHUB_SQLITE_DIRS = [str(tmp_path)]
    sqlite3.connect(tmp_path / "shop.db").close()
    conn = save_connection(code="shop", type="SQLITE", config={"path": str(tmp_path / "shop.db")})
    result = check_connection(conn)
    assert result.ok, result.message
    assert "ran SELECT 1" in result.message


def test_it_says_why_a_sqlite_path_is_refused(db, settings, tmp_path):
    settings.DATAHUB_SQLITE_DIRS = [str(tmp_path / "allowed")]
    conn = save_connection(code="shop", type="SQLITE", config={"path": "/etc/passwd"})
    result = check_connection(conn)
    assert not result.ok
    assert "/etc/passwd" in result.message


def test_it_connects_to_postgresql(db):
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=2).close()
    except Exception as exc:
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432: {exc}")
    ok = save_connection(code="pg", type="POSTGRES",
                         config={"host": "127.0.0.1", "port": 5432, "database": "postgres", "user": "postgres"})
    result = check_connection(ok)
    assert result.ok and "PostgreSQL" in result.message, result.message
    missing = save_connection(code="pg-missing", type="POSTGRES", config={
        "host": "127.0.0.1", "port": 5432, "database": "no_such_db_i18", "user": "postgres"})
    result = check_connection(missing)
    assert not result.ok and "no_such_db_i18" in result.message


def test_it_reaches_an_http_api_with_its_auth(db, settings, httpserver: HTTPServer):
    settings.DATAHUB_HTTP_ALLOW = ["127.0.0.1"]
    save_secret(code="api-token", value="tok-123")
    httpserver.expect_request("/v1", headers={"Authorization": "Bearer tok-123"}).respond_with_json({"ok": True})
    conn = save_connection(code="api", type="HTTP", config={
        "baseUrl": httpserver.url_for("/v1"), "auth": {"type": "BEARER", "secretCode": "api-token"}})
    result = check_connection(conn)
    assert result.ok, result.message
    assert result.message == f"{httpserver.url_for('/v1')} answered HTTP 200"


def test_it_says_when_the_credentials_are_refused(db, settings, httpserver: HTTPServer):
    settings.DATAHUB_HTTP_ALLOW = ["127.0.0.1"]
    httpserver.expect_request("/v1").respond_with_data("no", status=401)
    conn = save_connection(code="api", type="HTTP", config={"baseUrl": httpserver.url_for("/v1")})
    result = check_connection(conn)
    assert not result.ok and "refused the credentials (HTTP 401)" in result.message


def test_it_keeps_the_ssrf_guard(db, settings, httpserver: HTTPServer):
    settings.DATAHUB_HTTP_ALLOW = []
    conn = save_connection(code="api", type="HTTP", config={"baseUrl": httpserver.url_for("/")})
    result = check_connection(conn)
    assert not result.ok and "loopback" in result.message, result.message
    assert len(httpserver.log) == 0


def test_it_pings_redis(db):
    redis = pytest.importorskip("redis")
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2).ping()
    except Exception as exc:
        pytest.skip(f"Redis is not reachable on 127.0.0.1:6379 ({type(exc).__name__})")
    up = save_connection(code="cache", type="REDIS", config={"host": "127.0.0.1", "port": 6379})
    assert check_connection(up).ok
    down = save_connection(code="nowhere", type="REDIS", config={"host": "127.0.0.1", "port": 1})
    result = check_connection(down, timeout_s=2)
    assert not result.ok and "127.0.0.1:1" in result.message


def test_it_connects_to_rabbitmq(db):
    pika = pytest.importorskip("pika")
    try:
        pika.BlockingConnection(pika.URLParameters(
            "amqp://guest:guest@127.0.0.1:5672/%2F?connection_attempts=1&socket_timeout=2")).close()
    except Exception as exc:
        pytest.skip(f"RabbitMQ is not reachable on 127.0.0.1:5672 with guest/guest ({type(exc).__name__})")
    save_secret(code="amqp-pw", value="guest")
    save_secret(code="amqp-wrong", value="not-the-password")
    up = save_connection(code="rabbit", type="CUSTOM", config={
        "amqpUrl": "amqp://127.0.0.1:5672/%2F", "username": "guest", "passwordSecretCode": "amqp-pw"})
    result = check_connection(up)
    assert result.ok, result.message
    wrong = save_connection(code="rabbit-wrong", type="CUSTOM", config={
        "amqpUrl": "amqp://127.0.0.1:5672/%2F", "username": "guest", "passwordSecretCode": "amqp-wrong"})
    result = check_connection(wrong)
    assert not result.ok and "RabbitMQ at 127.0.0.1:5672" in result.message


def test_it_hides_secret_values_a_driver_repeats(db, monkeypatch):
    from pipelines import connection_checks

    def chatty_driver(conn, ctx, timeout_s):  # a driver whose error repeats what it was given
        url = ctx.secret(conn["connectionStringSecretCode"])
        raise RuntimeError(f"cannot log in to {url} with password {ctx.secret(conn['passwordSecretCode'])}")

    monkeypatch.setitem(connection_checks.CHECKS, "CUSTOM", chatty_driver)
    save_secret(code="db-url", value="postgresql://app:Url-Pw-77@db.example:5432/shop")
    save_secret(code="db-pw", value="Plain-Pw-42")
    conn = save_connection(code="shop", type="CUSTOM",
                           config={"connectionStringSecretCode": "db-url", "passwordSecretCode": "db-pw"})
    result = check_connection(conn)
    assert not result.ok
    assert "Url-Pw-77" not in result.message and "Plain-Pw-42" not in result.message
    assert result.message == "RuntimeError: cannot log in to *** with password ***"
    # the password alone, as a driver may print it, is hidden too
    assert connection_checks.redact("user app, password Url-Pw-77: refused",
                                    ["postgresql://app:Url-Pw-77@db.example:5432/shop"]) == "user app, password ***: refused"


def test_it_says_what_a_custom_connection_it_cannot_test_needs(db):
    conn = save_connection(code="other", type="CUSTOM", config={"region": "eu"})
    result = check_connection(conn)
    assert not result.ok and "only as RabbitMQ" in result.message
