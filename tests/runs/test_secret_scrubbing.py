"""A server that echoes the credentials it was sent, in error bodies, cannot get them shown anywhere: not in
the run's error, the step's error, the record errors, the REST and GraphQL answers, the run page, or the
log. Real runs (the worker's code path) against a real local server."""

import base64
import json
import logging

import pytest
from werkzeug import Request, Response

from pipelines.models import Secret
from pipelines.redaction import REDACTED, RedactingFilter, Redactor
from pipelines.secrets import set_secret_value
from pipelines.services import save_definition
from runs import services
from runs.models import RecordError, RunStatus
from tests.api.conftest import client_for, gql

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "tok-Z9q-secret/value+1"  # '/' and '+' change when URL-encoded: the encoded form is scrubbed too
PASSWORD = "pa55-w0rd!"
BASIC = base64.b64encode(f"ann:{PASSWORD}".encode()).decode()


@pytest.fixture(autouse=True)
def _local_http(settings):
    settings.DATAHUB_HTTP_ALLOW = ["127.0.0.1"]


@pytest.fixture
def secrets(db):
    for code, value in (("api-token", TOKEN), ("basic-cred", f"ann:{PASSWORD}")):
        s = Secret(code=code)
        set_secret_value(s, value)
        s.save()


def echo(request: Request) -> Response:
    """Refuses everything, quoting what it was sent: headers (raw), the query string, and JSON-escaped."""
    sent = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "x-api-key")}
    body = (f"denied. You sent: {sent}; query {request.query_string.decode()}; "
            f"as JSON {json.dumps({'auth': request.headers.get('Authorization', '')})}")
    return Response(body, status=400)


def graphql_echo(request: Request) -> Response:
    """A GraphQL server whose every answer is an error quoting the Authorization header it got."""
    message = f"token {request.headers.get('Authorization')} is not allowed to create products"
    return Response(json.dumps({"data": {"createProduct": None},
                                "errors": [{"message": message, "path": ["createProduct"]}]}),
                    content_type="application/json")


def run(definition):
    pipeline = save_definition(definition)
    return services.run_now(services.create_run(pipeline)).run


def assert_nowhere(text: str) -> None:
    for secret in (TOKEN, PASSWORD, BASIC, f"ann:{PASSWORD}", "tok-Z9q-secret%2Fvalue%2B1"):
        assert secret not in text, f"{secret!r} shown in: {text[:2000]}"


def everything_shown(run, alice) -> str:
    """The run as every reader sees it: the rows, the REST and GraphQL answers, the run page."""
    api = client_for(alice)
    rest = api.get(f"/api/runs/{run.pk}/").content.decode()
    rest += api.get(f"/api/runs/{run.pk}/record-errors/").content.decode()
    _, body = gql(api, "query($id: ID!) { run(id: $id) { error stepRuns { error warnings } "
                       "recordErrors { message } } }", {"id": run.pk})
    from django.test import Client

    browser = Client()
    browser.force_login(alice)
    page = browser.get(f"/runs/{run.pk}/").content.decode()
    rows = [run.error, *(s.error for s in run.step_runs.all()), *(str(s.warnings) for s in run.step_runs.all()),
            *(e.message for e in RecordError.objects.filter(run=run))]
    return "\n".join([rest, json.dumps(body), page, *rows])


@pytest.mark.parametrize("auth", [
    {"auth": {"type": "BEARER", "secretCode": "api-token"}},
    {"auth": {"type": "BASIC", "secretCode": "basic-cred"}},
    {"auth": {"type": "API_KEY", "secretCode": "api-token", "queryParam": "api_key"}},
    {"auth": {"type": "API_KEY", "secretCode": "api-token"}},
])
def test_a_run_error_quoting_the_credentials_shows_none_of_them(httpserver, secrets, alice, auth):
    httpserver.expect_request("/items").respond_with_handler(echo)
    definition = {"code": "echoed", "name": "echoed", "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "httpApi",
         "config": {"url": httpserver.url_for("/items"), **auth}},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
    ]}
    done = run(definition)
    assert done.status == RunStatus.FAILED
    assert "HTTP 400" in done.error and "denied. You sent" in done.error and REDACTED in done.error
    shown = everything_shown(done, alice)
    assert "denied. You sent" in shown
    assert_nowhere(shown)


def test_record_errors_quoting_the_token_show_none_of_it(httpserver, secrets, alice):
    httpserver.expect_request("/graphql", method="POST").respond_with_handler(graphql_echo)
    definition = {"code": "echoed-records", "name": "echoed", "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": [{"sku": "A-1"}]}},
        {"key": "load", "type": "LOAD", "adapterCode": "graphqlMutation",
         "config": {"endpoint": httpserver.url_for("/graphql"), "bearerTokenSecretCode": "api-token",
                    "mutation": "mutation($input: ProductInput!) { createProduct(input: $input) { id } }"}},
    ]}
    done = run(definition)
    [error] = RecordError.objects.filter(run=done)
    assert error.message == f"GraphQL error: token {REDACTED} is not allowed to create products"
    assert error.record == {"sku": "A-1"}
    assert_nowhere(everything_shown(done, alice))


def test_log_lines_and_tracebacks_are_scrubbed():
    redactor = Redactor()
    redactor.add(TOKEN)
    record = logging.LogRecord("runs", logging.ERROR, __file__, 1, "step %s failed: %s", ("src", f"got {TOKEN}"),
                               None)
    try:
        raise ValueError(f"server said {TOKEN}")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert f"step src failed: got {REDACTED}" in formatted and f"server said {REDACTED}" in formatted
    assert_nowhere(formatted)


def test_the_console_handler_scrubs():
    handlers = [h for h in logging.getLogger().handlers if any(isinstance(f, RedactingFilter) for f in h.filters)]
    assert handlers, "settings.LOGGING's console handler has no RedactingFilter"


def test_short_values_are_not_scrubbed():
    redactor = Redactor()
    redactor.add("abc")
    assert redactor.scrub("abc def") == "abc def"
    redactor.add("abcd")
    assert redactor.scrub("abcd def") == f"{REDACTED} def"


def test_a_secret_url_has_its_password_scrubbed_alone_too():
    redactor = Redactor()
    redactor.add("redis://:s3cret%2Fpw@cache.internal:6379/0")
    assert redactor.scrub("auth failed for password s3cret/pw") == f"auth failed for password {REDACTED}"
    assert redactor.scrub("cannot reach redis://:s3cret%2Fpw@cache.internal:6379/0") == f"cannot reach {REDACTED}"


def test_http_lookup_gets_connections_and_secrets_in_a_real_run(httpserver, secrets, alice):
    """The executor hands operators the run's connections and secrets as it hands them to adapters."""
    from pipelines.models import Connection

    def priced(request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return Response(f"denied: {request.headers.get('Authorization')}", status=401)
        return Response(json.dumps({"price": 42}), content_type="application/json")

    httpserver.expect_request("/api/items/A-1").respond_with_handler(priced)
    Connection.objects.create(code="erp", type="HTTP", config={"baseUrl": httpserver.url_for("/api")})
    definition = {"code": "priced", "name": "priced", "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": [{"sku": "A-1"}]}},
        {"key": "price", "type": "TRANSFORM", "config": {"operators": [
            {"op": "httpLookup", "args": {"connectionCode": "erp", "url": "/items/{{sku}}", "target": "price",
                                          "responsePath": "price", "bearerTokenSecretCode": "api-token",
                                          "failOnError": True}}]}},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
    ]}
    done = run(definition)
    assert done.status == RunStatus.COMPLETED, done.error
    assert done.step_runs.get(step_key="price").records_out == 1
    [(request, _)] = httpserver.log
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert_nowhere(everything_shown(done, alice))
