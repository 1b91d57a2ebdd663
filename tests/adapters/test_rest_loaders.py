"""restPost, restPostExport, webhookExport and the webhook sink against real HTTP servers on 127.0.0.1."""

import base64
import hashlib
import hmac
import json
import socket
import time
from datetime import UTC, datetime

import pytest
from werkzeug import Response

from pipelines.adapters.base import AdapterContext
from pipelines.adapters.rest import RestPostExporter, RestPostLoader, WebhookExporter, WebhookSink
from pipelines.definition import parse
from pipelines.errors import ConfigError, StepError
from pipelines.http import HttpClient, HttpPolicy
from pipelines.plugins import load_plugins
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore

load_plugins(["runs.engine.handlers"], entry_point_group=None)

LOCAL = HttpPolicy(allow=("127.0.0.1",))
SECRETS = {"api-token": "tok-123", "basic-cred": "ann:pw", "api-key": "key-9", "hmac-key": "s3cr3t-signing-key",
           "partner": "partner-value"}
NOW = datetime(2025, 5, 1, 12, 0, 0, tzinfo=UTC)


def secret(code):
    if code not in SECRETS:
        raise ConfigError(f"unknown secret '{code}'")
    return SECRETS[code]


def url(server, p="/hook"):
    return f"http://127.0.0.1:{server.port}{p}"


def make_ctx(**kw):
    kw.setdefault("http", HttpClient(LOCAL))
    kw.setdefault("secret", secret)
    kw.setdefault("now", lambda: NOW)
    return AdapterContext(step_key="load", **kw)


def write(cls, config, batch, **kw):
    writer = cls(config, make_ctx(**kw))
    try:
        return writer.write(batch)
    finally:
        writer.close()


def json_response(data, status=200, headers=None):
    return Response(json.dumps(data), status=status, headers=headers, content_type="application/json")


class Recorder:
    """A handler that keeps each request's method, path, headers and exact body."""

    def __init__(self, answer=None):
        self.calls = []
        self.answer = answer or (lambda body, request: json_response({"ok": True}, status=201))

    def __call__(self, request):
        raw = request.get_data()
        body = json.loads(raw) if raw else None
        self.calls.append({"method": request.method, "path": request.path, "headers": dict(request.headers),
                           "raw": raw, "body": body})
        return self.answer(body, request)


def serve(server, p="/hook", answer=None, method=None):
    rec = Recorder(answer)
    if method:
        server.expect_request(p, method=method).respond_with_handler(rec)
    else:
        server.expect_request(p).respond_with_handler(rec)
    return rec


def sign(secret_value, payload: bytes) -> str:
    return hmac.new(secret_value.encode(), payload, hashlib.sha256).hexdigest()


RECORDS = [{"sku": "A", "qty": 1}, {"sku": "BAD", "qty": 2}, {"sku": "C", "qty": 3}]


def reject_bad(body, request):
    if isinstance(body, dict) and body.get("sku") == "BAD":
        return json_response({"errors": [{"field": "sku", "message": "unknown sku BAD"}]}, status=422)
    return json_response({"id": f"id-{body['sku']}"}, status=201)


@pytest.fixture
def closed_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


# -- restPost: single mode -----------------------------------------------------------------------

def test_single_mode_records_fail_alone_and_the_rest_load(httpserver):
    rec = serve(httpserver, "/products", reject_bad, method="POST")
    result = write(RestPostLoader, {"endpoint": url(httpserver, "/products")}, [dict(r) for r in RECORDS])
    assert result.written == 2
    assert [b["body"] for b in rec.calls] == RECORDS
    ((record, message),) = result.failed
    assert record["sku"] == "BAD"
    assert message.startswith("HTTP 422: ") and "unknown sku BAD" in message
    assert result.output is None  # the engine passes on the input minus the failed record
    assert all(c["headers"]["Content-Type"] == "application/json" for c in rec.calls)


def test_put_and_patch_are_used_as_configured(httpserver):
    rec = serve(httpserver, "/p")
    write(RestPostLoader, {"endpoint": url(httpserver, "/p"), "method": "PUT"}, [{"a": 1}])
    write(RestPostLoader, {"endpoint": url(httpserver, "/p"), "method": "PATCH"}, [{"a": 1}])
    assert [c["method"] for c in rec.calls] == ["PUT", "PATCH"]


def test_response_field_writes_the_created_id_into_the_output(httpserver):
    serve(httpserver, "/products", reject_bad)
    result = write(RestPostLoader, {"endpoint": url(httpserver, "/products"), "responseField": "remote.id"},
                   [dict(r) for r in RECORDS])
    assert result.output == [{"sku": "A", "qty": 1, "remote": {"id": "id-A"}},
                             {"sku": "C", "qty": 3, "remote": {"id": "id-C"}}]


def test_a_response_id_path_missing_from_the_response_warns_once(httpserver):
    serve(httpserver, "/p", lambda b, r: json_response({"created": True}, status=201))
    ctx = make_ctx()
    writer = RestPostLoader({"endpoint": url(httpserver, "/p"), "responseField": "remoteId",
                             "responseIdPath": "data.id"}, ctx)
    result = writer.write([{"a": 1}, {"a": 2}])
    assert result.output == [{"a": 1}, {"a": 2}]
    assert sum("responseIdPath 'data.id'" in w for w in ctx.warnings) == 1


# -- restPost: array mode ------------------------------------------------------------------------

def test_array_mode_sends_chunks_and_a_failed_chunk_fails_together(httpserver):
    def answer(body, request):
        if any(r["n"] == 3 for r in body):
            return Response("database locked", status=500)
        return json_response({"accepted": len(body)})

    rec = serve(httpserver, "/bulk", answer)
    batch = [{"n": i} for i in range(5)]
    result = write(RestPostLoader, {"endpoint": url(httpserver, "/bulk"), "batchMode": "array", "maxBatchSize": 2},
                   batch)
    assert [c["body"] for c in rec.calls] == [[{"n": 0}, {"n": 1}], [{"n": 2}, {"n": 3}], [{"n": 4}]]
    assert result.written == 3
    assert [r["n"] for r, _ in result.failed] == [2, 3]
    assert all(m == "HTTP 500: database locked (array of 2 records failed together)" for _, m in result.failed)


def test_array_mode_without_max_batch_size_sends_the_whole_batch(httpserver):
    rec = serve(httpserver, "/bulk")
    write(RestPostLoader, {"endpoint": url(httpserver, "/bulk"), "batchMode": "batch"}, [{"n": i} for i in range(7)])
    assert len(rec.calls) == 1 and len(rec.calls[0]["body"]) == 7


def test_array_mode_reads_per_item_results(httpserver):
    def answer(body, request):
        return json_response([
            {"status": 201, "id": 10},
            {"status": 422, "error": "price must be positive"},
            {"status": "failed"},
            {"status": "ok", "id": 13},
        ], status=207)

    serve(httpserver, "/bulk", answer)
    batch = [{"n": i} for i in range(4)]
    result = write(RestPostLoader, {"endpoint": url(httpserver, "/bulk"), "batchMode": "array",
                                    "responseField": "remoteId"}, batch)
    assert result.written == 2
    assert [(r["n"], m) for r, m in result.failed] == [
        (1, "HTTP 207, item 1 of the array: price must be positive"),
        (2, "HTTP 207, item 2 of the array: status failed"),
    ]
    assert result.output == [{"n": 0, "remoteId": 10}, {"n": 3, "remoteId": 13}]


def test_array_mode_per_item_results_under_results_even_on_a_4xx(httpserver):
    serve(httpserver, "/bulk", lambda b, r: json_response(
        {"results": [{"error": None, "id": 1}, {"error": {"message": "duplicate"}}]}, status=400))
    result = write(RestPostLoader, {"endpoint": url(httpserver, "/bulk"), "batchMode": "array"}, [{"n": 0}, {"n": 1}])
    assert result.written == 1
    assert result.failed[0][1].endswith("duplicate")


# -- auth and signatures -------------------------------------------------------------------------

@pytest.mark.parametrize(
    "auth, header, expected",
    [
        ({"auth": "BEARER", "bearerTokenSecretCode": "api-token"}, "Authorization", "Bearer tok-123"),
        ({"auth": "BASIC", "basicSecretCode": "basic-cred"}, "Authorization",
         "Basic " + base64.b64encode(b"ann:pw").decode()),
        ({"auth": {"type": "API_KEY", "secretCode": "api-key", "headerName": "X-Key"}}, "X-Key", "key-9"),
        ({"headerSecretCodes": {"X-Partner-Token": "partner"}}, "X-Partner-Token", "partner-value"),
    ],
)
def test_rest_post_auth_headers_as_received(httpserver, auth, header, expected):
    rec = serve(httpserver, "/p")
    result = write(RestPostLoader, {"endpoint": url(httpserver, "/p"), **auth}, [{"a": 1}])
    assert result.written == 1
    assert rec.calls[0]["headers"][header] == expected


def test_hmac_signs_the_exact_body_bytes_and_adds_a_timestamp(httpserver):
    rec = serve(httpserver, "/p")
    write(RestPostLoader, {"endpoint": url(httpserver, "/p"), "auth": "HMAC", "hmacSecretCode": "hmac-key",
                           "hmacHeader": "X-Signature"}, [{"name": "Café ☕", "n": 1.5}])
    call = rec.calls[0]
    assert call["headers"]["X-Timestamp"] == str(int(NOW.timestamp()))
    assert call["headers"]["X-Signature"] == sign(SECRETS["hmac-key"], call["raw"])
    assert call["body"] == {"name": "Café ☕", "n": 1.5}


def test_hmac_payload_template_signs_method_path_timestamp_and_body(httpserver):
    rec = serve(httpserver, "/orders")
    write(RestPostLoader, {"endpoint": url(httpserver, "/orders"), "auth": {"type": "HMAC", "secretCode": "hmac-key"},
                           "hmacPayloadTemplate": "${method}:${path}:${timestamp}:${body}"}, [{"a": 1}])
    call = rec.calls[0]
    stamp = call["headers"]["X-Timestamp"]
    expected = sign(SECRETS["hmac-key"], f"POST:/orders:{stamp}:".encode() + call["raw"])
    assert call["headers"]["X-Datahub-Signature"] == expected


def test_hmac_needs_its_secret_code(httpserver):
    with pytest.raises(ConfigError) as info:
        write(RestPostLoader, {"endpoint": url(httpserver, "/p"), "auth": "HMAC"}, [{"a": 1}])
    assert "hmacSecretCode" in str(info.value)


def test_inline_credentials_and_unknown_secrets_are_config_errors(httpserver):
    rec = serve(httpserver, "/p")
    with pytest.raises(ConfigError) as info:
        write(RestPostLoader, {"endpoint": url(httpserver, "/p"), "headers": {"Authorization": "Bearer x"}}, [{"a": 1}])
    assert info.value.field == "headers.Authorization"
    with pytest.raises(ConfigError) as info:
        write(RestPostLoader, {"endpoint": url(httpserver, "/p"), "auth": "BEARER",
                               "bearerTokenSecretCode": "gone"}, [{"a": 1}])
    assert "unknown secret 'gone'" in str(info.value)
    assert rec.calls == []


# -- retries, failures, guard --------------------------------------------------------------------

def sequence(*answers):
    calls = []

    def answer(body, request):
        calls.append(body)
        return answers[min(len(calls), len(answers)) - 1]()

    return answer


def test_a_503_is_retried_then_the_record_loads(httpserver):
    rec = serve(httpserver, "/p", sequence(lambda: Response("busy", status=503), lambda: Response("busy", status=503),
                                           lambda: json_response({"id": 1}, status=201)))
    ctx = make_ctx()
    result = RestPostLoader({"endpoint": url(httpserver, "/p"), "retries": 2, "retryDelayMs": 10}, ctx).write([{"a": 1}])
    assert result.written == 1 and result.failed == []
    assert len(rec.calls) == 3
    assert sum("HTTP 503" in w for w in ctx.warnings) == 2


def test_a_429_retry_after_is_honoured(httpserver):
    rec = serve(httpserver, "/p", sequence(lambda: Response("slow", status=429, headers={"Retry-After": "1"}),
                                           lambda: json_response({}, status=201)))
    started = time.monotonic()
    result = write(RestPostLoader, {"endpoint": url(httpserver, "/p"), "retries": 1, "retryDelayMs": 5,
                                    "maxRetryDelayMs": 10}, [{"a": 1}])
    assert result.written == 1
    assert len(rec.calls) == 2
    assert time.monotonic() - started >= 0.9


def test_a_400_is_not_retried(httpserver):
    rec = serve(httpserver, "/p", lambda b, r: json_response({"message": "missing field name"}, status=400))
    result = write(RestPostLoader, {"endpoint": url(httpserver, "/p"), "retries": 3, "retryDelayMs": 10}, [{"a": 1}])
    assert len(rec.calls) == 1
    assert result.failed[0][1] == 'HTTP 400: {"message": "missing field name"}'


def test_a_5xx_after_the_retries_fails_the_record(httpserver):
    rec = serve(httpserver, "/p", lambda b, r: Response("<h1>502 Bad Gateway</h1>", status=502))
    result = write(RestPostLoader, {"endpoint": url(httpserver, "/p"), "retries": 1, "retryDelayMs": 1},
                   [{"a": 1}, {"a": 2}])
    assert len(rec.calls) == 4
    assert [m for _, m in result.failed] == ["HTTP 502: <h1>502 Bad Gateway</h1>"] * 2


def test_a_hanging_server_times_out_per_record(hanging_port):
    started = time.monotonic()
    result = write(RestPostLoader, {"endpoint": f"http://127.0.0.1:{hanging_port}/p", "timeoutMs": 150},
                   [{"a": 1}])
    assert "timed out" in result.failed[0][1]
    assert time.monotonic() - started < 3


def test_an_unreachable_endpoint_opens_the_circuit(closed_port):
    result = write(RestPostLoader, {"endpoint": f"http://127.0.0.1:{closed_port}/p"}, [{"n": i} for i in range(8)])
    messages = [m for _, m in result.failed]
    assert len(messages) == 8
    assert all("cannot connect" in m for m in messages[:5])
    # The breaker of pipelines.http_policy: five failures within a minute open it for 30 s.
    assert all(m.startswith(f"not sent: http://127.0.0.1:{closed_port} failed 5 times within 60 s")
               for m in messages[5:])


def test_a_private_endpoint_fails_the_step_without_traffic(no_connect):
    with pytest.raises(StepError) as info:
        write(RestPostLoader, {"endpoint": "http://10.0.0.1/p", "retries": 3}, [{"a": 1}])
    assert "refusing to connect to 10.0.0.1" in str(info.value)
    assert info.value.retryable is False


def test_loopback_is_refused_without_an_allow_entry(httpserver):
    rec = serve(httpserver, "/p")
    with pytest.raises(StepError) as info:
        write(RestPostLoader, {"endpoint": url(httpserver, "/p")}, [{"a": 1}], http=HttpClient(HttpPolicy()))
    assert "loopback" in str(info.value)
    assert rec.calls == []


def test_a_redirect_to_a_private_address_is_refused(httpserver):
    httpserver.expect_request("/p").respond_with_data("", status=307, headers={"Location": "http://169.254.169.254/x"})
    with pytest.raises(StepError) as info:
        write(RestPostLoader, {"endpoint": url(httpserver, "/p")}, [{"a": 1}])
    assert "refusing to connect to 169.254.169.254" in str(info.value)


def test_endpoint_from_a_connection(httpserver):
    rec = serve(httpserver, "/api/products")
    conns = {"erp": {"code": "erp", "type": "HTTP", "baseUrl": url(httpserver, "/api"),
                     "bearerTokenSecretCode": "api-token"}}
    result = write(RestPostLoader, {"connectionCode": "erp", "endpoint": "products"}, [{"a": 1}],
                   connection=conns.__getitem__)
    assert result.written == 1
    assert rec.calls[0]["headers"]["Authorization"] == "Bearer tok-123"


def test_max_retry_delay_below_retry_delay_is_a_config_error(httpserver):
    with pytest.raises(ConfigError) as info:
        write(RestPostLoader, {"endpoint": url(httpserver, "/p"), "retryDelayMs": 500, "maxRetryDelayMs": 100},
              [{"a": 1}])
    assert info.value.field == "maxRetryDelayMs"


# -- exporters -----------------------------------------------------------------------------------

def test_rest_post_export_posts_batches_with_auth(httpserver):
    rec = serve(httpserver, "/export")
    batch = [{"n": i} for i in range(5)]
    result = write(RestPostExporter, {"url": url(httpserver, "/export"), "batchSize": 2,
                                      "bearerTokenSecretCode": "api-token",
                                      "headerSecretCodes": {"X-Partner": "partner"}}, batch)
    assert result.written == 5 and result.output is None
    assert [len(c["body"]) for c in rec.calls] == [2, 2, 1]
    assert all(c["headers"]["Authorization"] == "Bearer tok-123" for c in rec.calls)
    assert rec.calls[0]["headers"]["X-Partner"] == "partner-value"


def test_rest_post_export_retry_count_and_failed_batches(httpserver):
    rec = serve(httpserver, "/export", lambda b, r: Response("nope", status=503))
    result = write(RestPostExporter, {"endpoint": url(httpserver, "/export"), "batchSize": 3, "retryCount": 1,
                                      "retryDelayMs": 1}, [{"n": i} for i in range(4)])
    assert len(rec.calls) == 4  # two batches, two tries each
    assert [m for _, m in result.failed] == ["HTTP 503: nope (batch of 3 records)"] * 3 + [
        "HTTP 503: nope (batch of 1 record)"]


def test_webhook_export_signs_each_body(httpserver):
    rec = serve(httpserver, "/export")
    write(WebhookExporter, {"url": url(httpserver, "/export"), "signatureSecretCode": "hmac-key",
                            "signatureHeaderName": "X-Hub-Signature-256", "batchSize": 1}, [{"n": 1}, {"n": 2}])
    assert len(rec.calls) == 2
    for call in rec.calls:
        assert call["headers"]["X-Hub-Signature-256"] == "sha256=" + sign(SECRETS["hmac-key"], call["raw"])


# -- webhook sink --------------------------------------------------------------------------------

def test_webhook_sink_signs_upserts_and_deletes_and_strips_the_operation(httpserver):
    rec = serve(httpserver, "/hook")
    batch = [
        {"id": 1, "name": "a"},
        {"id": 2, "name": "b", "__operation": "UPSERT"},
        {"id": 3, "name": "c", "__operation": "delete"},
        {"id": 4, "__operation": "DELETE"},
        {"id": 5, "name": "e", "__operation": None},
        {"id": 6, "__operation": "ARCHIVE"},
        {"name": "no id", "__operation": "DELETE"},
    ]
    result = write(WebhookSink, {"url": url(httpserver, "/hook"), "hmacSecretCode": "hmac-key"}, batch)
    assert [(c["method"], c["body"]) for c in rec.calls] == [
        ("POST", [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]),
        ("DELETE", [{"id": 3}, {"id": 4}]),
        ("POST", [{"id": 5, "name": "e"}]),  # a null __operation is the default
    ]
    for call in rec.calls:
        assert call["headers"]["X-Datahub-Signature"] == "sha256=" + sign(SECRETS["hmac-key"], call["raw"])
    assert result.written == 5
    assert [m for _, m in result.failed] == ["invalid __operation 'ARCHIVE' (UPSERT or DELETE)",
                                            "a DELETE record needs its id in 'id'"]
    assert batch[1]["__operation"] == "UPSERT"  # the input is not changed


def test_webhook_sink_batches_and_default_delete_with_id_field(httpserver):
    rec = serve(httpserver, "/hook")
    batch = [{"sku": f"S{i}", "x": i} for i in range(5)]
    write(WebhookSink, {"url": url(httpserver, "/hook"), "batchSize": 2, "defaultOperation": "DELETE",
                        "idField": "sku", "apiKeySecretCode": "api-key", "apiKeyHeader": "X-Hook-Key"}, batch)
    assert [c["body"] for c in rec.calls] == [[{"sku": "S0"}, {"sku": "S1"}], [{"sku": "S2"}, {"sku": "S3"}],
                                             [{"sku": "S4"}]]
    assert all(c["method"] == "DELETE" and c["headers"]["X-Hook-Key"] == "key-9" for c in rec.calls)
    assert "X-Datahub-Signature" not in rec.calls[0]["headers"]


def test_webhook_sink_retries_three_times_by_default(httpserver):
    rec = serve(httpserver, "/hook", lambda b, r: Response("down", status=503))
    result = write(WebhookSink, {"url": url(httpserver, "/hook"), "retryDelayMs": 1, "maxRetryDelayMs": 5},
                   [{"id": 1}])
    assert len(rec.calls) == 4
    assert result.failed[0][1] == "HTTP 503: down (UPSERT batch of 1 record)"


# -- through the executor ------------------------------------------------------------------------

def run(definition, **options):
    store = InMemoryStore()
    opts = RunOptions(keep_outputs=True, http=HttpClient(LOCAL), secret=secret, **options)
    return execute(parse(definition), store, opts), store


def pipeline(*steps):
    source = {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": RECORDS}}
    return {"version": 1, "steps": [source, *steps]}


def test_failed_records_land_in_the_record_errors_and_the_rest_pass_on(httpserver):
    serve(httpserver, "/products", reject_bad)
    d = pipeline({"key": "load", "type": "LOAD", "adapterCode": "restPost",
                  "config": {"endpoint": url(httpserver, "/products"), "responseField": "remoteId"}})
    result, store = run(d)
    assert result.status == "COMPLETED"
    assert result.output("load") == [{"sku": "A", "qty": 1, "remoteId": "id-A"},
                                     {"sku": "C", "qty": 3, "remoteId": "id-C"}]
    (error,) = store.record_errors()
    assert error.step_key == "load"
    assert error.record == {"sku": "BAD", "qty": 2}
    assert error.message.startswith("HTTP 422: ")


def test_a_refused_target_fails_the_step_with_the_reason():
    d = pipeline({"key": "load", "type": "LOAD", "adapterCode": "restPost",
                  "config": {"endpoint": "http://10.0.0.1/products"}})
    result, store = run(d)
    assert result.status == "FAILED"
    assert "refusing to connect to 10.0.0.1" in store.finished()["load"].error


def test_an_inline_credential_fails_the_step_as_a_config_error(httpserver):
    d = pipeline({"key": "sink", "type": "SINK", "adapterCode": "webhook",
                  "config": {"url": url(httpserver), "headers": {"Cookie": "session=abc"}}})
    result, store = run(d)
    assert result.status == "FAILED"
    assert "secret" in store.finished()["sink"].error
    assert store.finished()["sink"].attempts == 1  # config errors are not retried


def test_webhook_failures_through_the_executor(httpserver):
    serve(httpserver, "/hook", lambda b, r: Response("gone", status=410))
    d = pipeline({"key": "sink", "type": "SINK", "adapterCode": "webhook",
                  "config": {"url": url(httpserver), "batchSize": 2}})
    result, store = run(d)
    assert result.status == "COMPLETED"
    assert len(store.record_errors()) == 3
    assert {e.message for e in store.record_errors()} == {"HTTP 410: gone (UPSERT batch of 2 records)",
                                                          "HTTP 410: gone (UPSERT batch of 1 record)"}


def test_a_dry_run_sends_nothing(httpserver):
    rec = serve(httpserver, "/any")
    d = pipeline(
        {"key": "load", "type": "LOAD", "adapterCode": "restPost", "config": {"endpoint": url(httpserver, "/any")}},
        {"key": "export", "type": "EXPORT", "adapterCode": "restPostExport", "config": {"url": url(httpserver, "/any")}},
        {"key": "hook", "type": "EXPORT", "adapterCode": "webhookExport",
         "config": {"url": url(httpserver, "/any"), "signatureSecretCode": "hmac-key"}},
        {"key": "sink", "type": "SINK", "adapterCode": "webhook",
         "config": {"url": url(httpserver, "/any"), "hmacSecretCode": "hmac-key"}},
    )
    d["edges"] = [{"from": "src", "to": k} for k in ("load", "export", "hook", "sink")]
    result, store = run(d, dry_run=True)
    assert result.status == "COMPLETED"
    assert rec.calls == []
    assert httpserver.log == []
    assert result.output("load") == RECORDS


def test_the_writers_do_not_send_when_told_it_is_a_dry_run(httpserver):
    rec = serve(httpserver, "/any")
    for cls in (RestPostLoader, RestPostExporter, WebhookExporter, WebhookSink):
        key = "endpoint" if cls is RestPostLoader else "url"
        write(cls, {key: url(httpserver, "/any")}, [{"a": 1}], dry_run=True)
    assert rec.calls == []


def test_schemas_reject_unknown_fields_and_bad_enums():
    d = pipeline({"key": "load", "type": "LOAD", "adapterCode": "restPost",
                  "config": {"endpoint": "http://example.com/", "batchMode": "bulk", "retries": 20, "endpont": "x"}})
    with pytest.raises(Exception) as info:
        parse(d)
    text = str(info.value)
    assert "config.batchMode" in text and "config.retries" in text and "endpont" in text


def test_a_501_is_not_retried(httpserver):
    # pipelines.http_policy: 501 Not Implemented is final (the plugin's list); the writers used to retry it.
    httpserver.expect_request("/p").respond_with_data("not here", status=501)
    result = write(RestPostLoader, {"endpoint": httpserver.url_for("/p"), "retries": 3, "retryDelayMs": 0},
                   [{"a": 1}])
    assert [m for _, m in result.failed] == ["HTTP 501: not here"]
    assert len(httpserver.log) == 1
