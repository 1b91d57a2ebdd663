"""The guarded outbound HTTP helper, against a real local server (pytest-httpserver on 127.0.0.1)."""

import socket
import time

import pytest
from werkzeug import Response

from pipelines.errors import DatahubError
from pipelines.http import HttpClient, HttpError, HttpPolicy, HttpResponse

LOCAL = HttpPolicy(allow=("127.0.0.1",))


def url(server, path="/"):
    return f"http://127.0.0.1:{server.port}{path}"


def test_it_refuses_the_loopback_server_without_an_allow_entry(httpserver):
    httpserver.expect_request("/x").respond_with_data("secret")
    with pytest.raises(HttpError) as info:
        HttpClient().get(url(httpserver, "/x"))
    assert "refusing to connect to 127.0.0.1" in str(info.value)
    assert "loopback" in str(info.value)
    assert info.value.retryable is False
    assert isinstance(info.value, DatahubError)
    assert [r for r, _ in httpserver.log if r.path == "/x"] == []


def test_it_fetches_from_an_allowed_address(httpserver):
    httpserver.expect_request("/items", query_string="page=2").respond_with_json(
        {"items": [1, 2]}, headers={"X-Total": "2"}
    )
    response = HttpClient(LOCAL).get(url(httpserver, "/items"), params={"page": 2})
    assert isinstance(response, HttpResponse)
    assert response.status == 200
    assert response.json() == {"items": [1, 2]}
    assert response.headers["x-total"] == "2"
    assert response.text.startswith("{")
    assert response.url.startswith(url(httpserver, "/items"))


def test_it_allows_by_cidr_and_by_host_name(httpserver):
    httpserver.expect_request("/ok").respond_with_data("ok")
    assert HttpClient(HttpPolicy(allow=("127.0.0.0/8",))).get(url(httpserver, "/ok")).text == "ok"
    by_name = HttpClient(HttpPolicy(allow=("localhost",)))
    assert by_name.get(f"http://localhost:{httpserver.port}/ok").text == "ok"


def test_it_sends_json_bodies_and_headers(httpserver):
    httpserver.expect_request(
        "/post", method="POST", json={"a": 1}, headers={"X-Trace": "t1"}
    ).respond_with_data("done", status=201)
    response = HttpClient(LOCAL).post(url(httpserver, "/post"), json={"a": 1}, headers={"X-Trace": "t1"})
    assert response.status == 201
    assert response.text == "done"


def test_it_returns_error_statuses_and_raises_only_when_asked(httpserver):
    httpserver.expect_request("/missing").respond_with_data("no", status=404)
    httpserver.expect_request("/busy").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "3"}
    )
    httpserver.expect_request("/down").respond_with_data("oops", status=503)
    client = HttpClient(LOCAL)

    missing = client.get(url(httpserver, "/missing"))
    assert missing.status == 404 and missing.ok is False
    with pytest.raises(HttpError) as info:
        missing.raise_for_status()
    assert info.value.status == 404 and info.value.retryable is False

    with pytest.raises(HttpError) as info:
        client.get(url(httpserver, "/busy")).raise_for_status()
    assert info.value.retryable is True and info.value.retry_after == 3

    with pytest.raises(HttpError) as info:
        client.get(url(httpserver, "/down")).raise_for_status()
    assert info.value.status == 503 and info.value.retryable is True
    assert "HTTP 503" in str(info.value)


def test_it_follows_redirects_it_may_follow(httpserver):
    httpserver.expect_request("/old").respond_with_data("", status=301, headers={"Location": "/new"})
    httpserver.expect_request("/new").respond_with_data("moved here")
    response = HttpClient(LOCAL).get(url(httpserver, "/old"))
    assert response.status == 200
    assert response.text == "moved here"
    assert response.url.endswith("/new")


def test_it_turns_a_post_into_a_get_on_303(httpserver):
    httpserver.expect_request("/form", method="POST").respond_with_data(
        "", status=303, headers={"Location": "/result"}
    )
    httpserver.expect_request("/result", method="GET").respond_with_data("result")
    response = HttpClient(LOCAL).post(url(httpserver, "/form"), json={"x": 1})
    assert response.text == "result"
    assert [r.method for r, _ in httpserver.log if r.path == "/result"] == ["GET"]


@pytest.mark.parametrize(
    "target", ["http://10.0.0.1/internal", "http://169.254.169.254/latest/meta-data/", "http://[::1]/"]
)
def test_it_refuses_a_redirect_to_a_private_target(httpserver, target):
    httpserver.expect_request("/hop").respond_with_data("", status=302, headers={"Location": target})
    with pytest.raises(HttpError) as info:
        HttpClient(LOCAL).get(url(httpserver, "/hop"))
    assert "refusing to connect" in str(info.value)


def test_it_refuses_a_redirect_to_another_scheme(httpserver):
    httpserver.expect_request("/hop").respond_with_data(
        "", status=302, headers={"Location": "file:///etc/passwd"}
    )
    with pytest.raises(HttpError, match="only http and https"):
        HttpClient(LOCAL).get(url(httpserver, "/hop"))


def test_it_stops_after_max_redirects(httpserver):
    httpserver.expect_request("/loop").respond_with_data("", status=302, headers={"Location": "/loop"})
    with pytest.raises(HttpError, match="too many redirects"):
        HttpClient(HttpPolicy(allow=("127.0.0.1",), max_redirects=3)).get(url(httpserver, "/loop"))
    assert len([r for r, _ in httpserver.log if r.path == "/loop"]) == 4


def test_it_drops_credentials_when_a_redirect_leaves_the_origin(httpserver):
    other = f"http://localhost:{httpserver.port}/landing"
    httpserver.expect_request("/start").respond_with_data("", status=302, headers={"Location": other})
    httpserver.expect_request("/landing").respond_with_data("landed")
    client = HttpClient(HttpPolicy(allow=("127.0.0.1", "localhost")))
    headers = {"Authorization": "Bearer x", "X-Api-Key": "secret", "Accept": "application/json"}
    response = client.get(url(httpserver, "/start"), headers=headers)
    assert response.text == "landed"
    first = next(r for r, _ in httpserver.log if r.path == "/start")
    second = next(r for r, _ in httpserver.log if r.path == "/landing")
    assert first.headers.get("Authorization") == "Bearer x" and first.headers.get("X-Api-Key") == "secret"
    assert second.headers.get("Authorization") is None
    assert second.headers.get("X-Api-Key") is None  # a custom credential header is dropped too
    assert second.headers.get("Accept") == "application/json"


def test_it_refuses_a_declared_body_over_the_cap(httpserver):
    httpserver.expect_request("/big").respond_with_data(b"x" * 5000)
    with pytest.raises(HttpError, match="larger than the 1000-byte limit"):
        HttpClient(HttpPolicy(allow=("127.0.0.1",), max_bytes=1000)).get(url(httpserver, "/big"))


def test_it_cuts_off_a_streamed_body_over_the_cap(httpserver):
    def endless(_request):
        def chunks():
            for _ in range(1000):
                yield b"y" * 1024

        return Response(chunks(), mimetype="text/plain")  # no Content-Length

    httpserver.expect_request("/stream").respond_with_handler(endless)
    with pytest.raises(HttpError, match="larger than the 10000-byte limit") as info:
        HttpClient(HttpPolicy(allow=("127.0.0.1",), max_bytes=10_000)).get(url(httpserver, "/stream"))
    assert info.value.retryable is False


def test_it_accepts_a_body_exactly_at_the_cap(httpserver):
    httpserver.expect_request("/exact").respond_with_data(b"z" * 1000)
    response = HttpClient(HttpPolicy(allow=("127.0.0.1",), max_bytes=1000)).get(url(httpserver, "/exact"))
    assert len(response.body) == 1000


def test_it_times_out_on_a_slow_handler(httpserver):
    def slow(_request):
        time.sleep(2.5)
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    started = time.monotonic()
    with pytest.raises(HttpError, match="timed out") as info:
        HttpClient(LOCAL).get(url(httpserver, "/slow"), timeout=0.2)
    assert info.value.retryable is True
    # Long before the answer: the bound leaves a loaded machine (CI runs two suites at once) its slack.
    assert time.monotonic() - started < 1.5


def test_it_reports_a_refused_connection_as_retryable():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(HttpError, match="cannot connect") as info:
        HttpClient(LOCAL).get(f"http://127.0.0.1:{port}/")
    assert info.value.retryable is True


@pytest.mark.parametrize(
    "target, reason",
    [
        ("http://10.0.0.1/", "private"),
        ("http://192.168.1.10:8080/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[::1]/", "loopback"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://100.64.0.1/", "non-public"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[fc00::1]/", "private"),
    ],
)
def test_it_refuses_private_literal_addresses_before_connecting(no_connect, target, reason):
    with pytest.raises(HttpError) as info:
        HttpClient().get(target)
    assert reason in str(info.value)
    assert "allow-list" in str(info.value)


def test_it_allows_a_literal_private_address_only_when_listed(no_connect):
    # Allowed: the check passes and the (patched) connect is reached.
    with pytest.raises(AssertionError, match="connection was attempted"):
        HttpClient(HttpPolicy(allow=("10.0.0.0/8",))).get("http://10.0.0.1/")


@pytest.mark.parametrize(
    "target", ["ftp://example.com/x", "file:///etc/passwd", "gopher://h/", "http:///nohost"]
)
def test_it_refuses_other_schemes_and_hostless_urls(no_connect, target):
    with pytest.raises(HttpError):
        HttpClient().get(target)


def test_it_checks_every_resolved_address(monkeypatch, no_connect):
    def resolve(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(HttpError, match=r"mixed\.example \(10\.1\.2\.3\): private"):
        HttpClient().get("http://mixed.example/")


def test_it_connects_to_the_address_it_checked(monkeypatch, httpserver):
    """The name is resolved once, inside the connect; the socket goes to that checked address."""
    httpserver.expect_request("/pinned").respond_with_data("pinned")
    calls = []

    def resolve(host, port, *args, **kwargs):
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    response = HttpClient(LOCAL).get(f"http://rebind.test:{httpserver.port}/pinned")
    assert response.text == "pinned"
    # One name lookup (the connect then "resolves" the checked literal address, which needs no DNS).
    assert [c for c in calls if c != "127.0.0.1"] == ["rebind.test"]
    pinned = [request for request, _ in httpserver.log if request.path == "/pinned"]
    assert pinned[0].headers["Host"] == f"rebind.test:{httpserver.port}"


def test_it_refuses_an_unresolvable_host_as_retryable(monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(HttpError, match="cannot resolve host 'nowhere.invalid'") as info:
        HttpClient().get("http://nowhere.invalid/")
    assert info.value.retryable is True


def test_it_rejects_an_invalid_json_body_with_an_http_error(httpserver):
    httpserver.expect_request("/bad").respond_with_data("not json", content_type="application/json")
    with pytest.raises(HttpError, match="not valid JSON"):
        HttpClient(LOCAL).get(url(httpserver, "/bad")).json()


def test_it_decodes_text_with_the_declared_charset():
    response = HttpResponse(
        status=200,
        headers={"Content-Type": "text/plain; charset=latin-1"},
        body="café".encode("latin-1"),
        url="x",
    )
    assert response.text == "café"


def test_it_validates_the_policy():
    with pytest.raises(ValueError):
        HttpPolicy(max_bytes=0)
    with pytest.raises(ValueError):
        HttpPolicy(allow=("",))
    assert HttpPolicy(allow="127.0.0.1").allow == ("127.0.0.1",)


def test_it_does_not_keep_cookies_between_requests(httpserver):
    httpserver.expect_request("/login").respond_with_data("in", headers={"Set-Cookie": "sid=abc; Path=/"})
    httpserver.expect_request("/next").respond_with_data("next")
    client = HttpClient(LOCAL)
    client.get(url(httpserver, "/login"))
    client.get(url(httpserver, "/next"))
    following = [r for r, _ in httpserver.log if r.path == "/next"][0]
    assert "Cookie" not in following.headers


def test_it_can_be_shared_between_threads(httpserver):
    from concurrent.futures import ThreadPoolExecutor

    httpserver.expect_request("/n").respond_with_data("n")
    client = HttpClient(LOCAL)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: client.get(url(httpserver, "/n")).text, range(12)))
    assert results == ["n"] * 12
