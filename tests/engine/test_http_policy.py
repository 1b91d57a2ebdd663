"""The one outbound HTTP policy (pipelines.http_policy): what is retried, how long to wait, when an endpoint
counts as down, pacing and credential headers. Where the copies it replaced disagreed, the plugin's
behaviour was chosen; each such choice has a test here (and the callers' own tests use it end to end)."""

import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from werkzeug import Response

from pipelines.errors import ConfigError, StepCancelled
from pipelines.http import HttpClient, HttpPolicy
from pipelines.http_policy import (
    MAX_RETRY_AFTER_S,
    Backoff,
    CircuitBreaker,
    RateLimiter,
    check_headers,
    is_credential_header,
    is_retryable_status,
    origin_of,
    request_with_retry,
    retry_after_seconds,
)


@pytest.fixture
def client():
    c = HttpClient(HttpPolicy(allow=("127.0.0.1",), timeout=5))
    yield c
    c.close()


# -- what is retried --------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_it_retries_timeouts_throttling_and_server_errors(status):
    assert is_retryable_status(status)


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 409, 422, 425, 501])
def test_it_does_not_retry_what_another_try_cannot_change(status):
    # The plugin's isRetryableStatus: 501 Not Implemented is final; 425 (which run hooks used to retry)
    # is not in its list either.
    assert not is_retryable_status(status)


# -- how long to wait -------------------------------------------------------------------------------

def test_it_reads_retry_after_as_seconds_or_a_date_and_caps_it():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(" 0 ") == 0.0
    assert retry_after_seconds(str(10 * 3600)) == MAX_RETRY_AFTER_S
    assert retry_after_seconds("-5") == 0.0
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= retry_after_seconds(when) <= 30
    for unreadable in (None, "", "soon", "nan"):
        assert retry_after_seconds(unreadable) is None


def test_retry_after_wins_over_the_backoff():
    # Run hooks used to wait max(backoff, Retry-After); every other caller (and the plugin's HTTP client)
    # waits what the server asked for. One rule now: the server's Retry-After.
    backoff = Backoff(attempts=5, initial_ms=1000, max_ms=30_000, multiplier=2)
    assert [backoff.wait(n) for n in (1, 2, 3, 6)] == [1.0, 2.0, 4.0, 30.0]
    assert backoff.wait(3, retry_after=0.5) == 0.5
    assert backoff.wait(1, retry_after=500) == MAX_RETRY_AFTER_S


def test_it_builds_the_backoff_from_a_retry_config():
    b = Backoff.from_retry_config({"maxAttempts": 4, "initialDelayMs": 10, "maxDelayMs": 50, "backoffMultiplier": 3})
    assert (b.attempts, b.delay(1), b.delay(2), b.delay(3)) == (4, 0.01, 0.03, 0.05)
    assert Backoff.from_retry_config(None, default_attempts=2) == Backoff(attempts=2)


def test_it_retries_a_503_after_its_retry_after_and_returns_the_answer(httpserver, client):
    answers = iter([Response("busy", status=503, headers={"Retry-After": "0"}), Response("ok", status=200)])
    httpserver.expect_request("/flaky").respond_with_handler(lambda request: next(answers))
    heard = []
    response = request_with_retry(client, "GET", httpserver.url_for("/flaky"), cancelled=threading.Event(),
                                  backoff=Backoff(attempts=3, initial_ms=5000),
                                  on_retry=lambda n, why, wait: heard.append((n, why, wait)))
    assert response.status == 200 and response.text == "ok"
    assert heard == [(1, "HTTP 503", 0.0)]  # Retry-After: 0 beat the 5 s backoff
    assert len(httpserver.log) == 2


def test_it_does_not_retry_a_501_or_a_400(httpserver, client):
    httpserver.expect_request("/nope").respond_with_data("no", status=501)
    httpserver.expect_request("/bad").respond_with_data("no", status=400)
    for path, status in (("/nope", 501), ("/bad", 400)):
        response = request_with_retry(client, "GET", httpserver.url_for(path), cancelled=threading.Event(),
                                      backoff=Backoff(attempts=3, initial_ms=0))
        assert response.status == status
    assert len(httpserver.log) == 2


def test_it_stops_waiting_when_cancelled(httpserver, client):
    httpserver.expect_request("/busy").respond_with_data("busy", status=503)
    cancelled = threading.Event()
    threading.Timer(0.1, cancelled.set).start()
    started = time.monotonic()
    with pytest.raises(StepCancelled):
        request_with_retry(client, "GET", httpserver.url_for("/busy"), cancelled=cancelled,
                           backoff=Backoff(attempts=3, initial_ms=10_000))
    assert time.monotonic() - started < 5
    assert len(httpserver.log) == 1


# -- when an endpoint counts as down ----------------------------------------------------------------

def test_the_breaker_opens_after_five_failures_within_the_window():
    breaker = CircuitBreaker()
    for n in range(4):
        breaker.failure("http://a:80", f"HTTP 503 #{n}")
    assert breaker.refusal("http://a:80") is None
    breaker.failure("http://a:80", "HTTP 503 #4")
    refusal = breaker.refusal("http://a:80")
    assert refusal.startswith("not sent: http://a:80 failed 5 times within 60 s (last: HTTP 503 #4)")
    assert breaker.refusal("http://b:80") is None  # per origin


def test_the_breaker_counts_failures_within_the_window():
    # graphqlMutation used to give up on an endpoint after 3 failures in a row for the rest of the step,
    # the HTTP writers after 5 in a row; the plugin's breaker counts 5 within 60 s and opens for 30 s.
    # A success closes the count, as in every copy it replaced.
    breaker = CircuitBreaker()
    for _ in range(4):
        breaker.failure("k", "x")
    breaker.success("k")
    breaker.failure("k", "x")
    assert breaker.refusal("k") is None
    old = CircuitBreaker(window_s=0.05)
    for _ in range(4):
        old.failure("k", "x")
    time.sleep(0.1)
    old.failure("k", "x")
    assert old.refusal("k") is None  # the first four fell out of the window


def test_the_breaker_half_opens_then_closes_after_three_successes():
    breaker = CircuitBreaker(open_s=0.05)
    for _ in range(5):
        breaker.failure("k", "down")
    assert breaker.refusal("k") is not None
    time.sleep(0.1)
    assert breaker.refusal("k") is None  # half open: calls go through again
    breaker.success("k")
    breaker.failure("k", "down again")  # one failure while half open opens it at once
    assert "down again" in breaker.refusal("k")
    time.sleep(0.1)
    for _ in range(3):
        breaker.success("k")
    breaker.failure("k", "a blip")  # closed now: one failure is only one of five
    assert breaker.refusal("k") is None


# -- pacing -----------------------------------------------------------------------------------------

def test_the_rate_limiter_spaces_requests_per_key():
    limiter = RateLimiter(20)
    cancelled = threading.Event()
    started = time.monotonic()
    for _ in range(5):
        assert limiter.wait(cancelled, "a") is False
    assert time.monotonic() - started >= 0.19  # 4 intervals of 50 ms
    started = time.monotonic()
    limiter.wait(cancelled, "b")
    assert time.monotonic() - started < 0.04  # another key has its own slots
    assert RateLimiter(None).wait(cancelled) is False


def test_the_rate_limiter_wait_ends_when_cancelled():
    limiter = RateLimiter(0.5)
    cancelled = threading.Event()
    limiter.wait(cancelled)
    threading.Timer(0.05, cancelled.set).start()
    started = time.monotonic()
    assert limiter.wait(cancelled) is True
    assert time.monotonic() - started < 1


# -- credential headers -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key", "apikey",
                                  "X-Auth-Token", "x-access-token", "Client-Secret", "X-Signature"])
def test_it_knows_credential_headers(name):
    assert is_credential_header(name)


@pytest.mark.parametrize("name", ["Accept", "X-Request-Id", "X-Tenant", "Content-Type", "X-Monkey"])
def test_it_lets_plain_headers_through(name):
    assert not is_credential_header(name)


def test_check_headers_refuses_credentials_client_headers_and_bad_values_naming_the_field():
    assert check_headers({"X-Tenant": "eu", "X-Count": 3, "X-On": True}, "headers") == {
        "X-Tenant": "eu", "X-Count": "3", "X-On": "true"}
    cases = [
        ({"Client-Secret": "s3cr3t"}, "headers.Client-Secret", "carries a credential"),
        ({"Host": "evil"}, "headers.Host", "set by the HTTP client"),
        ({"X-A": "1", "x-a": "2"}, "headers.x-a", "given twice"),
        ({"X-A": "a\r\nX-Injected: 1"}, "headers.X-A", "line break"),
        ({"bad name": "1"}, "headers.bad name", "not a valid header name"),
    ]
    for headers, field, message in cases:
        with pytest.raises(ConfigError, match=message) as info:
            check_headers(headers, "headers")
        assert info.value.field == field
        assert "s3cr3t" not in str(info.value)
    assert check_headers({"Authorization": "Bearer x"}, "h", allow_credentials=True) == {"Authorization": "Bearer x"}


def test_origin_of_names_scheme_host_and_port():
    assert origin_of("https://API.example.com/a?b=1") == "https://api.example.com:443"
    assert origin_of("http://127.0.0.1:8080/x") == "http://127.0.0.1:8080"
    assert origin_of("http://user:pw@h/x") == "http://h:80"


def test_the_policy_and_its_callers_import_no_django():
    """[pure]: the policy, the guarded client, the HTTP adapters' helpers and httpLookup run without Django."""
    import os
    import subprocess
    import sys

    code = ("import sys; import pipelines.http_policy, pipelines.http, pipelines.adapters.http_auth, "
            "pipelines.operators.http_lookup, pipelines.adapters.sqlconn; "
            "print(sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')))")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_connections_origin_is_compared_as_the_policy_says():
    """One origin rule (origin_of) binds a connection's credentials, for the HTTP adapters and graphqlMutation:
    the default port written out is the same origin; another port or host is not."""
    from pipelines.adapters.base import AdapterContext
    from pipelines.adapters.http_auth import resolve_target

    ctx = AdapterContext(connection=lambda code: {"code": code, "type": "HTTP", "baseUrl": "https://api.example.com/v1"})
    target = resolve_target({"connectionCode": "erp", "url": "https://API.example.com:443/v1/items"}, ctx)
    assert target.url == "https://API.example.com:443/v1/items"
    for elsewhere in ("https://api.example.com:8443/v1/items", "http://api.example.com/v1/items",
                      "https://evil.example.com/v1/items"):
        with pytest.raises(ConfigError, match="leaves the origin of connection 'erp'") as info:
            resolve_target({"connectionCode": "erp", "url": elsewhere}, ctx)
        assert info.value.field == "url"
