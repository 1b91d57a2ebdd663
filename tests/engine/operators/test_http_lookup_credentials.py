"""httpLookup's connectionCode and secret codes: credentials from secrets, sent only to the connection's
origin, never shown back. A real local server checks what arrives."""

import base64
import json

import pytest
from werkzeug import Request, Response

import pipelines.operators  # noqa: F401  (registers the built-in operators)
from pipelines.errors import ConfigError
from pipelines.http import HttpClient, HttpPolicy
from pipelines.operators import http_lookup
from pipelines.operators.base import OperatorContext
from pipelines.operators.chain import OperatorChain, OperatorFailed
from tests.fixtures import credential_stores

TOKEN = "tok-7f3a-SECRET"
PAIR = "ann:pa55-w0rd"


@pytest.fixture
def client():
    c = HttpClient(HttpPolicy(allow=("127.0.0.1",), timeout=5))
    yield c
    c.close()


def context_for(client, connections, secrets=None, warnings=None):
    secrets = secrets if secrets is not None else {"erp-token": TOKEN, "erp-basic": PAIR, "erp-key": TOKEN}
    secret, connection = credential_stores(secrets, connections)
    shown = warnings if warnings is not None else []
    return lambda i: OperatorContext(op_index=i, http=client, secret=secret, connection=connection, warnings=shown)


def lookup(client, args, records, connections, **kw):
    chain = OperatorChain([{"op": "httpLookup", "args": args}],
                          context_for=context_for(client, connections, **kw))
    return chain.apply(records)


def answer_with(header):
    """Answers {"price": ...} only when ``header`` arrived; 401 naming nothing otherwise."""
    def handler(request: Request) -> Response:
        if not request.headers.get(header):
            return Response("no credentials", status=401)
        return Response(json.dumps({"price": int(request.path.rsplit("/", 1)[1]) * 10,
                                    "auth": request.headers[header]}), content_type="application/json")
    return handler


@pytest.mark.parametrize("args, header, sent", [
    ({"bearerTokenSecretCode": "erp-token"}, "Authorization", f"Bearer {TOKEN}"),
    ({"basicAuthSecretCode": "erp-basic"}, "Authorization", "Basic " + base64.b64encode(PAIR.encode()).decode()),
    ({"apiKeySecretCode": "erp-key"}, "X-API-Key", TOKEN),
    ({"apiKeySecretCode": "erp-key", "apiKeyHeader": "X-Partner-Key"}, "X-Partner-Key", TOKEN),
])
def test_it_sends_the_secret_to_the_connections_origin(httpserver, client, args, header, sent):
    httpserver.expect_request("/api/items/1").respond_with_handler(answer_with(header))
    result = lookup(client, {"connectionCode": "erp", "url": "/items/{{id}}", "target": "p",
                             "responsePath": "price", **args},
                    [{"id": 1}], {"erp": {"baseUrl": httpserver.url_for("/api")}})
    assert result.records == [{"id": 1, "p": 10}]
    [(request, _)] = httpserver.log
    assert request.headers[header] == sent


def test_it_uses_the_connections_own_headers_and_auth(httpserver, client):
    httpserver.expect_request("/api/items/2").respond_with_handler(answer_with("Authorization"))
    conn = {"baseUrl": httpserver.url_for("/api"), "headers": {"X-Tenant": "eu"}, "bearerTokenSecretCode": "erp-token"}
    result = lookup(client, {"connectionCode": "erp", "url": "items/{{id}}", "target": "p", "responsePath": "price"},
                    [{"id": 2}], {"erp": conn})
    assert result.records == [{"id": 2, "p": 20}]
    [(request, _)] = httpserver.log
    assert request.headers["X-Tenant"] == "eu" and request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_url_of_the_connections_origin_may_be_given_whole(httpserver, client):
    httpserver.expect_request("/other/3").respond_with_handler(answer_with("Authorization"))
    result = lookup(client, {"connectionCode": "erp", "url": httpserver.url_for("/other/{{id}}").replace("%7B", "{")
                             .replace("%7D", "}"), "target": "p", "responsePath": "price",
                             "bearerTokenSecretCode": "erp-token"},
                    [{"id": 3}], {"erp": {"baseUrl": httpserver.url_for("/api")}})
    assert result.records == [{"id": 3, "p": 30}]


def test_the_secret_never_leaves_the_connections_origin(httpserver, client):
    """A URL of another origin fails its record and nothing is sent there; a record's value inserted by the
    template is URL-encoded, so it cannot point the request (and the secret) elsewhere either."""
    from pytest_httpserver import HTTPServer

    elsewhere = HTTPServer(host="127.0.0.1")
    elsewhere.start()
    try:
        elsewhere.expect_request("/steal/1").respond_with_data("got it")
        conn = {"erp": {"baseUrl": httpserver.url_for("/api")}}
        args = {"connectionCode": "erp", "url": elsewhere.url_for("/steal/") + "{{id}}", "target": "p",
                "bearerTokenSecretCode": "erp-token", "failOnError": True}
        with pytest.raises(OperatorFailed) as info:
            lookup(client, args, [{"id": 1}], conn)
        assert "leaves the origin of the connection" in str(info.value)
        assert TOKEN not in str(info.value)
        # Without failOnError the default is written and the warning says why, without the secret.
        warnings: list[str] = []
        result = lookup(client, {**args, "failOnError": False, "default": "none"}, [{"id": 1}], conn,
                        warnings=warnings)
        assert result.records == [{"id": 1, "p": "none"}]
        assert any("leaves the origin" in w for w in warnings) and TOKEN not in str(warnings)
        assert elsewhere.log == []

        httpserver.expect_request("/api/" + elsewhere.url_for("/steal/1")).respond_with_data("stayed home")
        stayed = lookup(client, {**args, "url": "{{target}}"}, [{"target": elsewhere.url_for("/steal/1")}], conn)
        assert stayed.records[0]["p"] == "stayed home"
        assert elsewhere.log == [] and len(httpserver.log) == 1
    finally:
        elsewhere.clear()
        elsewhere.stop()


def test_a_refusal_quoting_the_credentials_does_not_show_the_secret(httpserver, client):
    httpserver.expect_request("/api/items/1").respond_with_handler(
        lambda request: Response(f"denied: {request.headers.get('Authorization')}", status=403))
    with pytest.raises(OperatorFailed) as info:
        lookup(client, {"connectionCode": "erp", "url": "/items/{{id}}", "target": "p",
                        "bearerTokenSecretCode": "erp-token", "failOnError": True},
               [{"id": 1}], {"erp": {"baseUrl": httpserver.url_for("/api")}})
    assert "HTTP 403" in str(info.value)
    assert TOKEN not in str(info.value)


@pytest.mark.parametrize("args, connections, field, message", [
    ({"url": "https://example.com/{{id}}", "bearerTokenSecretCode": "erp-token"}, {}, "bearerTokenSecretCode",
     "give connectionCode"),
    ({"connectionCode": "nope", "url": "/x"}, {}, "connectionCode", "unknown connection 'nope'"),
    ({"connectionCode": "erp", "url": "/x", "bearerTokenSecretCode": "missing"}, {"erp": {"baseUrl": "https://e.com"}},
     "bearerTokenSecretCode", "unknown secret 'missing'"),
    ({"connectionCode": "erp", "url": "/x", "bearerTokenSecretCode": "erp-token", "apiKeySecretCode": "erp-key"},
     {"erp": {"baseUrl": "https://e.com"}}, "bearerTokenSecretCode", "give one credential"),
    ({"connectionCode": "erp", "url": "/x", "apiKeyHeader": "X-K"}, {"erp": {"baseUrl": "https://e.com"}},
     "apiKeyHeader", "needs apiKeySecretCode"),
    ({"connectionCode": "erp", "url": "/x"}, {"erp": {"headers": {}}}, "connectionCode", "has no baseUrl"),
    ({"connectionCode": "erp", "url": "/x"}, {"erp": {"baseUrl": "https://e.com", "headers": {"Authorization": "x"}}},
     "connection 'erp' headers.Authorization", "carries a credential"),
])
def test_it_refuses_what_cannot_work_naming_the_field(client, args, connections, field, message):
    ctx = context_for(client, connections)(0)
    with pytest.raises(ConfigError, match=message) as info:
        http_lookup.lookup_each([{"id": 1}], {"target": "p", **args}, ctx)
    assert info.value.field == field
    assert TOKEN not in str(info.value)
