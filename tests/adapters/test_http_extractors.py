"""The httpApi and graphql extractors against real HTTP servers on 127.0.0.1 (pytest-httpserver)."""

import base64
import json
import pathlib
import time

import pytest
from defusedxml import ElementTree
from django.core.files.storage import FileSystemStorage
from werkzeug import Response

from pipelines import registry
from pipelines.adapters.base import AdapterContext
from pipelines.adapters.http_api import GraphqlExtractor, HttpApiExtractor
from pipelines.definition import parse
from pipelines.errors import ConfigError, DefinitionError, StepCancelled, StepError
from pipelines.http import HttpClient, HttpPolicy
from pipelines.plugins import load_plugins
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore

load_plugins(["runs.engine.handlers"], entry_point_group=None)

LOCAL = HttpPolicy(allow=("127.0.0.1",))
SECRETS = {"api-token": "tok-123", "basic-cred": "ann:pa:ss", "api-key": "key-9", "just-password": "s3cret"}
FAST = {"maxAttempts": 3, "initialDelayMs": 10, "maxDelayMs": 50}


def secret(code):
    if code not in SECRETS:
        raise ConfigError(f"unknown secret '{code}'")
    return SECRETS[code]


def connections_for(server):
    table = {
        "shop": {"code": "shop", "type": "HTTP", "baseUrl": f"http://127.0.0.1:{server.port}/api/v1/",
                 "headers": {"X-Tenant": "acme"}, "auth": {"type": "BEARER", "secretCode": "api-token"}},
        "db": {"code": "db", "type": "POSTGRES", "host": "127.0.0.1"},
    }

    def connection(code):
        if code not in table:
            raise ConfigError(f"unknown connection '{code}'")
        return table[code]

    return connection


def url(server, p="/items"):
    return f"http://127.0.0.1:{server.port}{p}"


def make_ctx(server=None, **kw):
    kw.setdefault("http", HttpClient(LOCAL))
    kw.setdefault("secret", secret)
    if server is not None:
        kw.setdefault("connection", connections_for(server))
    return AdapterContext(step_key="src", **kw)


def extract(config, server=None, cls=HttpApiExtractor, **kw):
    ctx = make_ctx(server, **kw)
    return [list(b) for b in cls(config, ctx).batches()], ctx


def flat(batches):
    return [r for b in batches for r in b]


def requests_made(server, p=None):
    return [req for req, _ in server.log if p is None or req.path == p]


def json_response(data, status=200, headers=None):
    return Response(json.dumps(data), status=status, headers=headers, content_type="application/json")


def rows(n, start=0):
    return [{"id": i} for i in range(start, start + n)]


# -- pagination ----------------------------------------------------------------------------------

def test_offset_pagination_reads_every_page_and_stops_on_a_short_one(httpserver):
    def handler(request):
        offset, limit = int(request.args["offset"]), int(request.args["limit"])
        return json_response({"data": {"items": rows(max(0, min(limit, 5 - offset)), offset)}})

    httpserver.expect_request("/items").respond_with_handler(handler)
    batches, _ = extract({"url": url(httpserver), "dataPath": "data.items",
                          "pagination": {"type": "OFFSET", "limit": 2}})
    assert batches == [rows(2), rows(2, 2), rows(1, 4)]  # one batch per page
    assert [(r.args["offset"], r.args["limit"]) for r in requests_made(httpserver)] == [
        ("0", "2"), ("2", "2"), ("4", "2")]


def test_offset_pagination_stops_on_an_empty_page_and_uses_custom_parameter_names(httpserver):
    def handler(request):
        skip = int(request.args["skip"])
        return json_response(rows(2, skip) if skip < 4 else [])

    httpserver.expect_request("/items").respond_with_handler(handler)
    batches, _ = extract({"url": url(httpserver), "pagination": {
        "type": "offset", "limit": 2, "offsetParam": "skip", "limitParam": "take"}})
    assert flat(batches) == rows(4)
    assert [r.args["skip"] for r in requests_made(httpserver)] == ["0", "2", "4"]


def test_page_pagination_counts_pages_from_start_page(httpserver):
    def handler(request):
        page = int(request.args["p"])
        assert request.args["per_page"] == "3"
        return json_response({"results": rows(3 if page < 2 else 2, page * 3)})

    httpserver.expect_request("/items").respond_with_handler(handler)
    batches, _ = extract({"url": url(httpserver), "dataPath": "results", "pagination": {
        "type": "PAGE", "limit": 3, "pageParam": "p", "pageSizeParam": "per_page", "startPage": 0}})
    assert flat(batches) == rows(8)
    assert [r.args["p"] for r in requests_made(httpserver)] == ["0", "1", "2"]


def test_cursor_pagination_follows_the_cursor_until_it_is_null(httpserver):
    pages = {None: (rows(2), "c2"), "c2": (rows(2, 2), "c3"), "c3": (rows(1, 4), None)}

    def handler(request):
        items, nxt = pages[request.args.get("after")]
        return json_response({"items": items, "meta": {"next": nxt}})

    httpserver.expect_request("/items").respond_with_handler(handler)
    batches, _ = extract({"url": url(httpserver), "dataPath": "items", "pagination": {
        "type": "CURSOR", "limit": 2, "cursorParam": "after", "cursorPath": "meta.next"}})
    assert flat(batches) == rows(5)
    assert [r.args.get("after") for r in requests_made(httpserver)] == [None, "c2", "c3"]


def test_cursor_pagination_stops_when_the_cursor_repeats_or_has_more_is_false(httpserver):
    httpserver.expect_request("/loop").respond_with_json({"items": rows(2), "next": "same"})
    batches, ctx = extract({"url": url(httpserver, "/loop"), "dataPath": "items",
                            "pagination": {"type": "CURSOR", "limit": 2, "cursorPath": "next"}})
    assert len(requests_made(httpserver, "/loop")) == 2
    assert any("twice" in w for w in ctx.warnings)

    httpserver.expect_request("/more").respond_with_json({"items": rows(2), "next": "x", "hasMore": False})
    extract({"url": url(httpserver, "/more"), "dataPath": "items",
             "pagination": {"type": "CURSOR", "limit": 2, "cursorPath": "next", "hasMorePath": "hasMore"}})
    assert len(requests_made(httpserver, "/more")) == 1


def test_cursor_pagination_needs_a_cursor_path(httpserver):
    with pytest.raises(ConfigError) as info:
        extract({"url": url(httpserver), "pagination": {"type": "CURSOR"}})
    assert info.value.field == "pagination.cursorPath"
    assert requests_made(httpserver) == []


def test_link_header_pagination_follows_rel_next_until_it_is_gone(httpserver):
    def handler(request):
        page = int(request.args.get("page", "1"))
        headers = {}
        if page == 1:  # absolute link
            headers["Link"] = f'<{url(httpserver)}?page=2&per_page=2>; rel="next", <{url(httpserver)}?page=3>; rel="last"'
        elif page == 2:  # relative link
            headers["Link"] = '</items?page=3&per_page=2>; rel="next"'
        return json_response(rows(2 if page < 3 else 1, (page - 1) * 2), headers=headers)

    httpserver.expect_request("/items").respond_with_handler(handler)
    batches, _ = extract({"url": url(httpserver), "query": {"per_page": 2},
                          "pagination": {"type": "link-header"}})
    assert flat(batches) == rows(5)
    assert [r.args.get("page") for r in requests_made(httpserver)] == [None, "2", "3"]


def test_link_header_to_another_origin_is_not_followed(httpserver):
    other = f"http://localhost:{httpserver.port}/items?page=2"
    httpserver.expect_request("/items").respond_with_json(rows(1), headers={"Link": f'<{other}>; rel="next"'})
    with pytest.raises(StepError) as info:
        extract({"url": url(httpserver), "auth": {"type": "BEARER", "secretCode": "api-token"},
                 "pagination": {"type": "LINK_HEADER"}})
    assert "another origin" in str(info.value)
    assert len(requests_made(httpserver)) == 1


def test_max_pages_stops_an_endless_api_with_a_warning(httpserver):
    httpserver.expect_request("/items").respond_with_json(rows(2))
    batches, ctx = extract({"url": url(httpserver), "pagination": {"type": "PAGE", "limit": 2, "maxPages": 3}})
    assert len(flat(batches)) == 6
    assert len(requests_made(httpserver)) == 3
    assert any("maxPages=3" in w for w in ctx.warnings)


def test_default_max_pages_is_100(httpserver):
    httpserver.expect_request("/items").respond_with_json(rows(1))
    batches, _ = extract({"url": url(httpserver), "pagination": {"type": "OFFSET", "limit": 1}})
    assert len(requests_made(httpserver)) == 100


def test_a_large_page_is_cut_into_batches_and_the_record_limit_stops_paging(httpserver):
    httpserver.expect_request("/items").respond_with_json(rows(10))
    batches, _ = extract({"url": url(httpserver), "pagination": {"type": "PAGE", "limit": 10}},
                         batch_size=4, record_limit=7)
    assert [len(b) for b in batches] == [4, 3]
    assert len(requests_made(httpserver)) == 1


# -- data path, body, connection -----------------------------------------------------------------

def test_data_path_single_object_is_wrapped_and_scalars_become_value_records(httpserver):
    httpserver.expect_request("/one").respond_with_json({"data": {"product": {"sku": "A"}}})
    httpserver.expect_request("/ids").respond_with_json({"ids": [1, 2]})
    assert flat(extract({"url": url(httpserver, "/one"), "dataPath": "data.product"})[0]) == [{"sku": "A"}]
    assert flat(extract({"url": url(httpserver, "/ids"), "dataPath": "ids"})[0]) == [{"value": 1}, {"value": 2}]


def test_a_missing_data_path_fails_the_step_naming_what_is_there(httpserver):
    httpserver.expect_request("/items").respond_with_json({"results": [], "count": 0})
    with pytest.raises(StepError) as info:
        extract({"url": url(httpserver), "dataPath": "data.items"})
    message = str(info.value)
    assert "dataPath 'data.items' is not in the response" in message
    assert "results, count" in message
    assert info.value.retryable is False


def test_post_sends_the_json_body_query_and_headers(httpserver):
    seen = {}

    def handler(request):
        seen.update(body=request.get_json(), args=dict(request.args), headers=dict(request.headers))
        return json_response({"hits": [{"a": 1}]})

    httpserver.expect_request("/search", method="POST").respond_with_handler(handler)
    batches, _ = extract({"url": url(httpserver, "/search"), "method": "POST", "body": {"q": "shoes"},
                          "query": {"lang": "en", "active": True}, "headers": {"X-Trace": 7},
                          "dataPath": "hits"})
    assert flat(batches) == [{"a": 1}]
    assert seen["body"] == {"q": "shoes"}
    assert seen["args"] == {"lang": "en", "active": "true"}
    assert seen["headers"]["X-Trace"] == "7"
    assert seen["headers"]["Content-Type"] == "application/json"


def test_a_body_with_get_is_a_config_error(httpserver):
    with pytest.raises(ConfigError) as info:
        extract({"url": url(httpserver), "body": {"q": 1}})
    assert info.value.field == "body"


def test_a_connection_gives_base_url_headers_and_auth(httpserver):
    httpserver.expect_request("/api/v1/products").respond_with_json([{"sku": "A"}])
    batches, _ = extract({"connectionCode": "shop", "url": "products"}, httpserver)
    assert flat(batches) == [{"sku": "A"}]
    (request,) = requests_made(httpserver)
    assert request.headers["Authorization"] == "Bearer tok-123"
    assert request.headers["X-Tenant"] == "acme"


def test_a_connection_refuses_urls_of_another_origin_and_database_connections(httpserver):
    with pytest.raises(ConfigError) as info:
        extract({"connectionCode": "shop", "url": "http://evil.example/steal"}, httpserver)
    assert "leaves the origin" in str(info.value)
    with pytest.raises(ConfigError) as info:
        extract({"connectionCode": "db", "url": "/x"}, httpserver)
    assert "POSTGRES" in str(info.value)
    with pytest.raises(ConfigError) as info:
        extract({"connectionCode": "nope", "url": "/x"}, httpserver)
    assert info.value.field == "connectionCode"
    assert requests_made(httpserver) == []


def test_a_relative_url_without_connection_is_refused(httpserver):
    with pytest.raises(ConfigError) as info:
        extract({"url": "/items"})
    assert info.value.field == "url"


# -- auth ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "auth, header, expected",
    [
        ({"auth": {"type": "BEARER", "secretCode": "api-token"}}, "Authorization", "Bearer tok-123"),
        ({"bearerTokenSecretCode": "api-token"}, "Authorization", "Bearer tok-123"),
        ({"auth": {"type": "BASIC", "secretCode": "basic-cred"}}, "Authorization",
         "Basic " + base64.b64encode(b"ann:pa:ss").decode()),
        ({"basicSecretCode": "basic-cred"}, "Authorization", "Basic " + base64.b64encode(b"ann:pa:ss").decode()),
        ({"auth": {"type": "BASIC", "secretCode": "just-password", "username": "bob"}}, "Authorization",
         "Basic " + base64.b64encode(b"bob:s3cret").decode()),
        ({"auth": {"type": "API_KEY", "secretCode": "api-key"}}, "X-API-Key", "key-9"),
        ({"auth": {"type": "API_KEY", "secretCode": "api-key", "headerName": "X-Shop-Key"}}, "X-Shop-Key", "key-9"),
        ({"apiKeySecretCode": "api-key", "apiKeyHeaderName": "X-Partner"}, "X-Partner", "key-9"),
    ],
)
def test_auth_headers_as_the_server_receives_them(httpserver, auth, header, expected):
    httpserver.expect_request("/items").respond_with_json([])
    extract({"url": url(httpserver), **auth})
    (request,) = requests_made(httpserver)
    assert request.headers[header] == expected


def test_an_api_key_in_the_query_is_sent_but_hidden_in_messages(httpserver):
    httpserver.expect_request("/items").respond_with_json({"error": "nope"}, status=403)
    with pytest.raises(StepError) as info:
        extract({"url": url(httpserver), "query": {"page": 1},
                 "auth": {"type": "API_KEY", "secretCode": "api-key", "queryParam": "key"}})
    (request,) = requests_made(httpserver)
    assert request.args["key"] == "key-9"
    message = str(info.value)
    assert "key-9" not in message
    assert "key=***" in message and "page=1" in message
    assert "HTTP 403" in message and '"error": "nope"' in message


@pytest.mark.parametrize("name", ["Authorization", "cookie", "X-Api-Key"])
def test_credential_headers_inline_are_refused_before_any_request(httpserver, name):
    with pytest.raises(ConfigError) as info:
        extract({"url": url(httpserver), "headers": {name: "Bearer leaked"}})
    assert "secret" in str(info.value)
    assert info.value.field == f"headers.{name}"
    assert requests_made(httpserver) == []


def test_an_unknown_secret_is_a_config_error_naming_the_field(httpserver):
    with pytest.raises(ConfigError) as info:
        extract({"url": url(httpserver), "bearerTokenSecretCode": "missing"})
    assert "unknown secret 'missing'" in str(info.value)
    assert info.value.field == "bearerTokenSecretCode"


def test_two_flat_credentials_are_ambiguous(httpserver):
    with pytest.raises(ConfigError):
        extract({"url": url(httpserver), "bearerTokenSecretCode": "api-token", "apiKeySecretCode": "api-key"})


# -- retries, errors, timeouts -------------------------------------------------------------------

def counting(responses):
    """A handler answering with ``responses`` in turn (the last one repeats)."""
    calls = []

    def handler(request):
        calls.append(request)
        return responses[min(len(calls), len(responses)) - 1]()

    return handler, calls


def test_it_retries_503_then_succeeds(httpserver):
    handler, calls = counting([lambda: Response("busy", status=503)] * 2 + [lambda: json_response([{"ok": 1}])])
    httpserver.expect_request("/items").respond_with_handler(handler)
    batches, ctx = extract({"url": url(httpserver), "retry": FAST})
    assert flat(batches) == [{"ok": 1}]
    assert len(calls) == 3
    assert sum("HTTP 503" in w for w in ctx.warnings) == 2


def test_it_honours_retry_after_on_429(httpserver):
    handler, calls = counting([lambda: Response("slow down", status=429, headers={"Retry-After": "1"}),
                               lambda: json_response([{"ok": 1}])])
    httpserver.expect_request("/items").respond_with_handler(handler)
    started = time.monotonic()
    batches, _ = extract({"url": url(httpserver), "retry": FAST})
    assert flat(batches) == [{"ok": 1}]
    assert len(calls) == 2
    assert time.monotonic() - started >= 0.9  # the header's second, not the 10 ms backoff


def test_it_does_not_retry_a_400(httpserver):
    httpserver.expect_request("/items").respond_with_json({"message": "bad filter"}, status=400)
    with pytest.raises(StepError) as info:
        extract({"url": url(httpserver), "query": {"token": "zzz", "f": "x"}, "retry": FAST})
    assert len(requests_made(httpserver)) == 1
    message = str(info.value)
    assert message.startswith("HTTP 400 from GET http://127.0.0.1:")
    assert "/items?token=***&f=x" in message and "zzz" not in message
    assert "bad filter" in message
    assert info.value.retryable is False


def test_a_5xx_after_all_attempts_is_a_retryable_step_error(httpserver):
    httpserver.expect_request("/items").respond_with_data("down for maintenance", status=503)
    with pytest.raises(StepError) as info:
        extract({"url": url(httpserver), "retry": {**FAST, "maxAttempts": 2}})
    assert len(requests_made(httpserver)) == 2
    assert "HTTP 503" in str(info.value) and "down for maintenance" in str(info.value)
    assert info.value.retryable is True


def test_a_server_that_hangs_times_out(hanging_port):
    started = time.monotonic()
    with pytest.raises(StepError) as info:
        extract({"url": f"http://127.0.0.1:{hanging_port}/items", "timeoutMs": 200,
                 "retry": {"maxAttempts": 2, "initialDelayMs": 10}})
    assert "timed out" in str(info.value)
    assert info.value.retryable is True
    assert time.monotonic() - started < 3


def test_a_non_json_body_fails_the_step(httpserver):
    httpserver.expect_request("/items").respond_with_data("<html>login</html>", content_type="text/html")
    with pytest.raises(StepError) as info:
        extract({"url": url(httpserver)})
    assert "response is not JSON" in str(info.value)
    assert "text/html" in str(info.value)


def test_a_private_target_is_refused_without_any_traffic(no_connect):
    with pytest.raises(StepError) as info:
        extract({"url": "http://10.0.0.1/items", "retry": FAST})
    assert "refusing to connect to 10.0.0.1" in str(info.value)
    assert info.value.retryable is False


def test_loopback_is_refused_when_the_policy_does_not_allow_it(httpserver):
    httpserver.expect_request("/items").respond_with_json([])
    with pytest.raises(StepError) as info:
        extract({"url": url(httpserver)}, http=HttpClient(HttpPolicy()))
    assert "loopback" in str(info.value)
    assert requests_made(httpserver) == []


def test_a_redirect_to_a_private_address_is_refused(httpserver):
    httpserver.expect_request("/items").respond_with_data("", status=302, headers={"Location": "http://10.0.0.1/x"})
    with pytest.raises(StepError) as info:
        extract({"url": url(httpserver)})
    assert "refusing to connect to 10.0.0.1" in str(info.value)


def test_no_http_client_is_a_config_error():
    with pytest.raises(ConfigError):
        extract({"url": "http://example.com/"}, http=None)


def test_a_cancelled_step_stops_before_the_next_page(httpserver):
    httpserver.expect_request("/items").respond_with_json(rows(2))
    ctx = make_ctx()
    gen = HttpApiExtractor({"url": url(httpserver), "pagination": {"type": "PAGE", "limit": 2}}, ctx).batches()
    assert next(gen) == rows(2)
    ctx.cancelled.set()
    with pytest.raises(StepCancelled):
        next(gen)
    assert len(requests_made(httpserver)) == 1


def test_rate_limit_spaces_requests(httpserver):
    httpserver.expect_request("/items").respond_with_json(rows(1))
    started = time.monotonic()
    extract({"url": url(httpserver), "rateLimit": {"requestsPerSecond": 10},
             "pagination": {"type": "PAGE", "limit": 1, "maxPages": 4}})
    assert time.monotonic() - started >= 0.28  # 4 requests at 10/s: 3 gaps of 0.1 s


# -- incremental, through the executor -----------------------------------------------------------

def run(definition, server=None, store=None, **options):
    store = store or InMemoryStore()
    opts = RunOptions(keep_outputs=True, http=HttpClient(LOCAL), secret=secret,
                      connection=connections_for(server) if server else None, **options)
    return execute(parse(definition), store, opts), store


def pipeline(config, code="httpApi"):
    return {"version": 1, "steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": code, "config": config},
        {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
    ]}


def test_incremental_keeps_the_greatest_cursor_in_the_checkpoint(httpserver):
    data = [{"id": 1, "updatedAt": "2024-01-03"}, {"id": 2, "updatedAt": "2024-01-05"},
            {"id": 3, "updatedAt": "2024-01-04"}]

    def handler(request):
        since = request.args.get("updated_since", "")
        return json_response([r for r in data if r["updatedAt"] > since])

    httpserver.expect_request("/items").respond_with_handler(handler)
    d = pipeline({"url": url(httpserver), "incremental": {
        "param": "updated_since", "cursorPath": "updatedAt", "initialValue": "2024-01-01"}})
    result, store = run(d)
    assert result.status == "COMPLETED"
    assert len(result.output("out")) == 3
    assert store.checkpoints["src"]["incremental"] == {"param": "updated_since", "value": "2024-01-05"}

    data.append({"id": 4, "updatedAt": "2024-01-09"})
    result, store = run(d, store=store)
    assert result.output("out") == [{"id": 4, "updatedAt": "2024-01-09"}]
    assert [r.args["updated_since"] for r in requests_made(httpserver)] == ["2024-01-01", "2024-01-05"]
    assert store.checkpoints["src"]["incremental"]["value"] == "2024-01-09"

    dry, store = run(d, store=store, dry_run=True)
    assert store.checkpoints["src"]["incremental"]["value"] == "2024-01-09"


def test_an_http_error_lands_on_the_step(httpserver):
    httpserver.expect_request("/items").respond_with_json({"error": "no such list"}, status=404)
    result, store = run(pipeline({"url": url(httpserver), "retry": FAST}))
    assert result.status == "FAILED"
    error = store.finished()["src"].error
    assert "HTTP 404 from GET" in error and "no such list" in error
    assert store.finished()["out"].status == "SKIPPED"


def test_a_bad_config_is_reported_when_the_definition_is_parsed():
    with pytest.raises(DefinitionError) as info:
        parse(pipeline({"url": "http://example.com/", "dataPth": "x", "pagination": {"type": "SOMETIMES"}}))
    text = str(info.value)
    assert "dataPth" in text and "config.pagination.type" in text


def test_an_extract_step_reads_pages_through_the_executor(httpserver):
    def handler(request):
        page = int(request.args["page"])
        return json_response({"items": rows(2 if page < 3 else 0, page * 10)})

    httpserver.expect_request("/items").respond_with_handler(handler)
    result, store = run(pipeline({"url": url(httpserver), "dataPath": "items",
                                  "pagination": {"type": "PAGE", "limit": 2}}))
    assert result.status == "COMPLETED"
    assert [r["id"] for r in result.output("out")] == [10, 11, 20, 21]


# -- graphql -------------------------------------------------------------------------------------

PRODUCTS = [{"id": i, "name": f"P{i}"} for i in range(5)]


def graphql_server(server, p="/graphql"):
    bodies = []

    def handler(request):
        body = request.get_json()
        bodies.append(body)
        v = body.get("variables") or {}
        if "skip" in v:
            items = PRODUCTS[v["skip"]: v["skip"] + v["take"]]
            return json_response({"data": {"products": {"items": items, "totalItems": len(PRODUCTS)}}})
        start = int(v.get("after") or 0)
        chunk = PRODUCTS[start: start + v.get("first", 100)]
        end = start + len(chunk)
        return json_response({"data": {"products": {
            "edges": [{"node": p, "cursor": str(p["id"])} for p in chunk],
            "pageInfo": {"hasNextPage": end < len(PRODUCTS), "endCursor": str(end)},
        }}})

    server.expect_request(p, method="POST").respond_with_handler(handler)
    return bodies


def test_graphql_offset_pagination_sends_skip_and_take(httpserver):
    bodies = graphql_server(httpserver)
    query = "query Products($skip: Int, $take: Int) { products(skip: $skip, take: $take) { items { id name } } }"
    batches, _ = extract({"url": url(httpserver, "/graphql"), "query": query, "variables": {"lang": "en"},
                          "operationName": "Products", "dataPath": "data.products.items",
                          "pagination": {"type": "OFFSET", "limit": 2}}, cls=GraphqlExtractor)
    assert flat(batches) == PRODUCTS
    assert [b["variables"] for b in bodies] == [
        {"lang": "en", "skip": 0, "take": 2}, {"lang": "en", "skip": 2, "take": 2},
        {"lang": "en", "skip": 4, "take": 2}]
    assert all(b["operationName"] == "Products" and b["query"] == query for b in bodies)


def test_graphql_offset_stops_at_the_total_count(httpserver):
    bodies = graphql_server(httpserver)
    extract({"url": url(httpserver, "/graphql"), "query": "{ products { items { id } } }",
             "dataPath": "products.items",
             "pagination": {"type": "OFFSET", "limit": 5, "totalCountPath": "products.totalItems"}},
            cls=GraphqlExtractor)
    assert len(bodies) == 1  # a full page, but the total says there is no more


def test_graphql_relay_pagination_unwraps_edges_and_follows_page_info(httpserver):
    bodies = graphql_server(httpserver)
    batches, _ = extract({"url": url(httpserver, "/graphql"), "query": "{ products { edges { node { id } } } }",
                          "dataPath": "data.products.edges", "pagination": {"type": "RELAY", "limit": 2}},
                         cls=GraphqlExtractor)
    assert flat(batches) == PRODUCTS
    assert [b["variables"] for b in bodies] == [{"first": 2}, {"first": 2, "after": "2"}, {"first": 2, "after": "4"}]


def test_graphql_without_data_path_uses_the_only_field_of_data(httpserver):
    graphql_server(httpserver)
    batches, _ = extract({"url": url(httpserver, "/graphql"), "query": "{ products { edges { node { id } } } }",
                          "pagination": {"type": "cursor", "limit": 10}}, cls=GraphqlExtractor)
    assert flat(batches) == PRODUCTS


def test_graphql_errors_in_a_200_fail_the_step_with_their_messages(httpserver):
    httpserver.expect_request("/graphql", method="POST").respond_with_json(
        {"data": None, "errors": [{"message": "Cannot query field 'prize'"}, {"message": "Unknown type Foo"}]})
    with pytest.raises(StepError) as info:
        extract({"url": url(httpserver, "/graphql"), "query": "{ x }"}, cls=GraphqlExtractor)
    assert "GraphQL errors" in str(info.value)
    assert "Cannot query field 'prize'; Unknown type Foo" in str(info.value)


def test_graphql_through_a_connection_with_auth(httpserver):
    graphql_server(httpserver, "/api/v1/graphql")
    batches, _ = extract({"connectionCode": "shop", "url": "/graphql", "query": "{ products { items { id } } }",
                          "pagination": {"type": "OFFSET", "limit": 10}}, httpserver, cls=GraphqlExtractor)
    assert flat(batches) == PRODUCTS
    assert requests_made(httpserver)[0].headers["Authorization"] == "Bearer tok-123"


def test_graphql_missing_page_info_is_explained(httpserver):
    httpserver.expect_request("/graphql", method="POST").respond_with_json({"data": {"things": [{"a": 1}]}})
    with pytest.raises(StepError) as info:
        extract({"url": url(httpserver, "/graphql"), "query": "{ things }", "dataPath": "things",
                 "pagination": {"type": "RELAY", "limit": 1}}, cls=GraphqlExtractor)
    assert "pageInfoPath" in str(info.value)


def test_graphql_in_a_pipeline_reports_http_errors_on_the_step(httpserver):
    httpserver.expect_request("/graphql", method="POST").respond_with_json(
        {"errors": [{"message": "Syntax Error: Expected Name"}]}, status=400)
    result, store = run(pipeline({"url": url(httpserver, "/graphql"), "query": "{"}, code="graphql"))
    assert result.status == "FAILED"
    assert "HTTP 400" in store.finished()["src"].error
    assert "Syntax Error" in store.finished()["src"].error



# -- the demo and the schemas --------------------------------------------------------------------

def test_the_demo_pages_through_an_api_and_writes_a_google_feed(httpserver, tmp_path):
    demo = pathlib.Path(__file__).resolve().parents[2] / "pipelines" / "demo" / "demo-http-to-feed.json"
    definition = json.loads(demo.read_text())
    products = [{"id": i, "sku": f"SKU-{i}", "title": f"Product {i}", "description": f"Nice thing {i}",
                 "price": 9.99 + i, "stock": i % 3, "thumbnail": f"https://cdn.example/{i}.webp"}
                for i in range(1, 121)]

    def handler(request):  # the shape of dummyjson.com/products
        skip, limit = int(request.args["skip"]), int(request.args["limit"])
        assert request.args["select"].startswith("sku,title")
        return json_response({"products": products[skip: skip + limit], "total": len(products),
                              "skip": skip, "limit": limit})

    httpserver.expect_request("/products").respond_with_handler(handler)
    definition["steps"][1]["config"]["url"] = url(httpserver, "/products")
    storage = FileSystemStorage(location=tmp_path / "storage")
    result, store = run(definition, storage=storage)
    assert result.status == "COMPLETED", result.error
    assert [r.args["skip"] for r in requests_made(httpserver)] == ["0", "50", "100"]
    [name] = [w.split(" ")[1] for w in store.finished()["feed"].warnings if w.startswith("wrote ")]
    with storage.open(name, "rb") as f:
        items = ElementTree.fromstring(f.read()).findall("channel/item")
    assert len(items) == 120
    assert store.record_errors() == []


def _undescribed(schema, where=""):
    missing = []
    for name, prop in (schema.get("properties") or {}).items():
        if not prop.get("description"):
            missing.append(f"{where}{name}")
        missing.extend(_undescribed(prop, f"{where}{name}."))
    for option in schema.get("anyOf") or []:
        missing.extend(_undescribed(option, where))
    return missing


def test_every_config_field_of_the_http_adapters_is_described():
    for reg, code in [(registry.extractors, "httpApi"), (registry.extractors, "graphql"),
                      (registry.loaders, "restPost"), (registry.exporters, "restPostExport"),
                      (registry.exporters, "webhookExport"), (registry.sinks, "webhook")]:
        schema = reg.get(code).schema
        assert schema["additionalProperties"] is False, code
        assert _undescribed(schema) == [], code
