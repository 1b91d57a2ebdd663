"""Enrichment operators: lookup, enrich, coalesce, default, httpLookup (against a real local server)."""

import threading
import time

import pytest
from werkzeug import Response

import pipelines.operators  # noqa: F401  (registers the built-in operators)
from pipelines import http_policy
from pipelines import js as js_module
from pipelines.errors import ConfigError
from pipelines.http import HttpClient, HttpPolicy
from pipelines.operators import http_lookup
from pipelines.operators.base import OperatorContext
from pipelines.operators.chain import OperatorFailed

# -- lookup --------------------------------------------------------------------------------------


def test_it_looks_values_up_by_their_text(apply_ops):
    ops = [
        {
            "op": "lookup",
            "args": {"source": "code", "map": {"1": "one", "true": "yes", "US": "USA"}, "target": "name"},
        }
    ]
    out = apply_ops(ops, [{"code": 1}, {"code": True}, {"code": "US"}, {"code": 1.0}]).records
    assert [r["name"] for r in out] == ["one", "yes", "USA", "one"]


def test_it_writes_the_default_or_null_on_a_miss(apply_ops):
    table = {"US": "USA", "NU": None}
    with_default = [{"op": "lookup", "args": {"source": "c", "map": table, "target": "n", "default": "?"}}]
    without = [{"op": "lookup", "args": {"source": "c", "map": table, "target": "n"}}]
    rows = [{"c": "XX"}, {"c": None}, {}, {"c": "NU"}]
    assert [r["n"] for r in apply_ops(with_default, rows).records] == ["?", "?", "?", "?"]
    assert [r["n"] for r in apply_ops(without, rows).records] == [None, None, None, None]


def test_it_copies_looked_up_objects_per_record(apply_ops):
    ops = [{"op": "lookup", "args": {"source": "c", "map": {"a": {"x": [1]}}, "target": "v"}}]
    out = apply_ops(ops, [{"c": "a"}, {"c": "a"}]).records
    out[0]["v"]["x"].append(2)
    assert out[1]["v"] == {"x": [1]}


def test_it_requires_lookup_source_map_and_target(apply_ops):
    with pytest.raises(ConfigError, match="'map' is required"):
        apply_ops([{"op": "lookup", "args": {"source": "a", "target": "b"}}], [])


# -- enrich --------------------------------------------------------------------------------------


def test_it_fills_defaults_only_where_missing_or_null_then_sets(apply_ops):
    ops = [
        {
            "op": "enrich",
            "args": {
                "defaults": {"price": 0, "category": "NONE", "flag": True, "meta.source": "default"},
                "set": {"meta.version": 2, "category": "FORCED"},
            },
        }
    ]
    rows = [{"price": None, "flag": False}, {"price": 5, "category": "A", "meta": {"source": "x"}}]
    out = apply_ops(ops, rows).records
    assert out[0] == {
        "price": 0,
        "flag": False,
        "category": "FORCED",
        "meta": {"source": "default", "version": 2},
    }
    assert out[1] == {"price": 5, "category": "FORCED", "flag": True, "meta": {"source": "x", "version": 2}}


def test_it_does_not_change_its_input(apply_ops):
    rows = [{"a": None}]
    apply_ops([{"op": "enrich", "args": {"defaults": {"a": 1}}}], rows)
    assert rows == [{"a": None}]


def test_it_refuses_a_forbidden_enrich_path(apply_ops):
    with pytest.raises(ConfigError) as info:
        apply_ops([{"op": "enrich", "args": {"set": {"__proto__.x": 1}}}], [])
    assert "forbidden" in str(info.value)


# -- coalesce ------------------------------------------------------------------------------------


def test_it_coalesces_skipping_null_missing_and_empty(apply_ops):
    ops = [{"op": "coalesce", "args": {"paths": ["a", "b.c", "d"], "target": "x", "default": "none"}}]
    rows = [{"a": "", "b": {"c": None}, "d": 0}, {"a": False}, {"b": {"c": "deep"}}, {}]
    assert [r["x"] for r in apply_ops(ops, rows).records] == [0, False, "deep", "none"]


def test_it_coalesces_to_null_without_a_default(apply_ops):
    ops = [{"op": "coalesce", "args": {"paths": ["a"], "target": "x"}}]
    assert apply_ops(ops, [{}]).records == [{"x": None}]


# -- default -------------------------------------------------------------------------------------


def test_it_defaults_only_null_or_missing(apply_ops):
    ops = [{"op": "default", "args": {"path": "s.v", "value": "fill"}}]
    rows = [{"s": {"v": ""}}, {"s": {"v": None}}, {}, {"s": {"v": 0}}]
    assert [r["s"]["v"] for r in apply_ops(ops, rows).records] == ["", "fill", "fill", 0]


def test_it_requires_a_default_value(apply_ops):
    with pytest.raises(ConfigError, match="'value' is required"):
        apply_ops([{"op": "default", "args": {"path": "a"}}], [])


def test_it_writes_javascript_strings():
    js = js_module.string
    assert [js(True), js(1.0), js(1.5), js(1e-7), js(1e21), js([1, None, "a"]), js({"a": 1})] == [
        "true",
        "1",
        "1.5",
        "1e-7",
        "1e+21",
        "1,,a",
        "[object Object]",
    ]


# -- httpLookup ----------------------------------------------------------------------------------


@pytest.fixture
def client():
    return HttpClient(HttpPolicy(allow=("127.0.0.1",)))


@pytest.fixture
def lookup(client):
    """lookup(args, records) -> ChainResult, with an HttpClient allowed to reach the local server."""
    from pipelines.operators.chain import OperatorChain

    def run(args, records, *, ctx_kwargs=None):
        def context(i):
            return OperatorContext(op_index=i, http=client, **(ctx_kwargs or {}))

        return OperatorChain([{"op": "httpLookup", "args": args}], context_for=context).apply(records)

    return run


@pytest.fixture
def threaded_server():
    """A server that answers requests concurrently (the default httpserver handles one at a time)."""
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture
def fast_backoff(monkeypatch):
    monkeypatch.setattr(http_lookup, "RETRY_DELAY_MS", 10)


def base(httpserver, path="/items/{{id}}"):
    return f"http://127.0.0.1:{httpserver.port}{path}"


def hits(httpserver, prefix):
    return [r for r, _ in httpserver.log if r.path.startswith(prefix)]


def test_it_writes_the_response_part_into_the_target(httpserver, lookup):
    httpserver.expect_request("/items/1").respond_with_json({"data": {"price": 10}})
    httpserver.expect_request("/items/2").respond_with_json({"data": {"price": 20}})
    result = lookup(
        {"url": base(httpserver), "target": "price", "responsePath": "data.price"}, [{"id": 1}, {"id": 2}]
    )
    assert result.records == [{"id": 1, "price": 10}, {"id": 2, "price": 20}]


def test_it_url_encodes_template_values(httpserver, lookup):
    httpserver.expect_request("/q/a b&c=d/é/").respond_with_data("found", content_type="text/plain")
    result = lookup(
        {"url": base(httpserver, "/q/{{name}}/{{accent}}/{{missing}}"), "target": "t"},
        [{"name": "a b&c=d", "accent": "é"}],
    )
    assert result.records[0]["t"] == "found"
    raw = hits(httpserver, "/q/")[0].environ["RAW_URI"]
    assert "a%20b%26c%3Dd" in raw and "%C3%A9" in raw


def test_it_keeps_input_order_with_parallel_requests(threaded_server, lookup):
    httpserver = threaded_server

    active, peak = [0], [0]
    lock = threading.Lock()

    def slow_for_small(request):
        n = int(request.path.rsplit("/", 1)[1])
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05 * (5 - n))  # the first records answer last
        with lock:
            active[0] -= 1
        return Response(f'{{"n": {n}}}', content_type="application/json")

    for n in range(5):
        httpserver.expect_request(f"/items/{n}").respond_with_handler(slow_for_small)
    records = [{"id": n} for n in range(5)]
    result = lookup({"url": base(httpserver), "target": "r", "batchSize": 5}, records)
    assert [r["r"]["n"] for r in result.records] == [0, 1, 2, 3, 4]
    # In parallel, not one after another (counted, not timed: a loaded machine stretches any time bound).
    assert peak[0] > 1


def test_it_bounds_parallelism_by_batch_size(threaded_server, lookup):
    httpserver = threaded_server

    active, peak = [0], [0]
    lock = threading.Lock()

    def handler(_request):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return Response("{}", content_type="application/json")

    for n in range(8):
        httpserver.expect_request(f"/items/{n}").respond_with_handler(handler)
    lookup({"url": base(httpserver), "target": "r", "batchSize": 2}, [{"id": n} for n in range(8)])
    assert peak[0] == 2


def test_it_asks_once_per_distinct_request_and_caches_across_batches(httpserver, client):
    from pipelines.operators.chain import OperatorChain

    httpserver.expect_request("/items/7").respond_with_json({"v": 7})
    chain = OperatorChain(
        [{"op": "httpLookup", "args": {"url": base(httpserver), "target": "v", "responsePath": "v"}}],
        context_for=lambda i: OperatorContext(op_index=i, http=client),
    )
    assert [r["v"] for r in chain.apply([{"id": 7}, {"id": 7}, {"id": 7}]).records] == [7, 7, 7]
    assert [r["v"] for r in chain.apply([{"id": 7}]).records] == [7]
    assert len(hits(httpserver, "/items/7")) == 1


def test_it_does_not_cache_with_a_zero_ttl(httpserver, client):
    from pipelines.operators.chain import OperatorChain

    httpserver.expect_request("/items/7").respond_with_json({"v": 7})
    chain = OperatorChain(
        [{"op": "httpLookup", "args": {"url": base(httpserver), "target": "v", "cacheTtlSec": 0}}],
        context_for=lambda i: OperatorContext(op_index=i, http=client),
    )
    chain.apply([{"id": 7}])
    chain.apply([{"id": 7}])
    assert len(hits(httpserver, "/items/7")) == 2


def test_it_writes_the_default_on_404_or_drops_with_skip_on_404(httpserver, lookup):
    httpserver.expect_request("/items/1").respond_with_json({"ok": True})
    httpserver.expect_request("/items/2").respond_with_data("nope", status=404)
    rows = [{"id": 1}, {"id": 2}]
    kept = lookup({"url": base(httpserver), "target": "r", "default": {"ok": False}}, rows)
    assert kept.records == [{"id": 1, "r": {"ok": True}}, {"id": 2, "r": {"ok": False}}]
    skipped = lookup({"url": base(httpserver), "target": "r", "skipOn404": True}, rows)
    assert skipped.records == [{"id": 1, "r": {"ok": True}}]
    assert skipped.dropped == 1


def test_it_retries_retryable_failures_with_backoff(httpserver, lookup, fast_backoff):
    httpserver.expect_ordered_request("/items/1").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/items/1").respond_with_data("busy", status=429)
    httpserver.expect_ordered_request("/items/1").respond_with_json({"v": 1})
    result = lookup(
        {"url": base(httpserver), "target": "r", "responsePath": "v", "maxRetries": 2}, [{"id": 1}]
    )
    assert result.records == [{"id": 1, "r": 1}]
    assert len(hits(httpserver, "/items/1")) == 3


def test_it_does_not_retry_a_client_error(httpserver, lookup, fast_backoff):
    httpserver.expect_request("/items/1").respond_with_data("bad", status=400)
    result = lookup({"url": base(httpserver), "target": "r", "default": "d", "maxRetries": 3}, [{"id": 1}])
    assert result.records == [{"id": 1, "r": "d"}]
    assert len(hits(httpserver, "/items/1")) == 1


def test_it_writes_the_default_and_warns_when_a_lookup_fails(httpserver, client, fast_backoff):
    from pipelines.operators.chain import OperatorChain

    httpserver.expect_request("/items/1").respond_with_data("down", status=500)
    contexts = []

    def context(i):
        contexts.append(OperatorContext(op_index=i, http=client))
        return contexts[-1]

    chain = OperatorChain(
        [
            {
                "op": "httpLookup",
                "args": {"url": base(httpserver), "target": "r", "default": None, "maxRetries": 1},
            }
        ],
        context_for=context,
    )
    assert chain.apply([{"id": 1}]).records == [{"id": 1, "r": None}]
    assert len(hits(httpserver, "/items/1")) == 2
    assert "HTTP 500" in contexts[0].warnings[0]


def test_it_fails_the_step_with_fail_on_error(httpserver, lookup, fast_backoff):
    httpserver.expect_request("/items/1").respond_with_data("down", status=500)
    with pytest.raises(OperatorFailed) as info:
        lookup({"url": base(httpserver), "target": "r", "failOnError": True, "maxRetries": 0}, [{"id": 1}])
    assert "HTTP 500" in str(info.value)
    assert "/items/1" in str(info.value)


def test_it_times_out_and_retries(httpserver, lookup, fast_backoff):
    def slow(_request):
        time.sleep(0.4)
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/items/1").respond_with_handler(slow)
    result = lookup(
        {"url": base(httpserver), "target": "r", "timeoutMs": 100, "maxRetries": 1, "default": "late"},
        [{"id": 1}],
    )
    assert result.records == [{"id": 1, "r": "late"}]


def test_it_posts_a_body_from_a_field(httpserver, lookup):
    httpserver.expect_request("/price", method="POST", json={"sku": "A"}).respond_with_json({"price": 3})
    result = lookup(
        {
            "url": base(httpserver, "/price"),
            "method": "POST",
            "bodyField": "query",
            "target": "p",
            "responsePath": "price",
        },
        [{"query": {"sku": "A"}}],
    )
    assert result.records == [{"query": {"sku": "A"}, "p": 3}]


def test_it_posts_a_static_body_and_sends_static_headers(httpserver, lookup):
    httpserver.expect_request(
        "/price", method="POST", json={"all": True}, headers={"X-Tenant": "t1"}
    ).respond_with_json([1, 2])
    result = lookup(
        {
            "url": base(httpserver, "/price"),
            "method": "POST",
            "body": {"all": True},
            "headers": {"X-Tenant": "t1"},
            "target": "p",
        },
        [{}],
    )
    assert result.records == [{"p": [1, 2]}]


def test_it_writes_the_default_for_an_absent_response_path(httpserver, lookup):
    httpserver.expect_request("/items/1").respond_with_json({"other": 1})
    result = lookup(
        {"url": base(httpserver), "target": "r", "responsePath": "data.price", "default": 0}, [{"id": 1}]
    )
    assert result.records == [{"id": 1, "r": 0}]


def test_it_refuses_private_targets_through_the_guarded_client(lookup):
    result = lookup(
        {"url": "http://169.254.169.254/latest/{{id}}", "target": "r", "default": "blocked"}, [{"id": 1}]
    )
    assert result.records == [{"id": 1, "r": "blocked"}]
    with pytest.raises(OperatorFailed, match="refusing to connect"):
        lookup({"url": "http://10.0.0.1/{{id}}", "target": "r", "failOnError": True}, [{"id": 1}])


def test_it_opens_the_circuit_after_repeated_failures(httpserver, lookup, fast_backoff):
    for n in range(8):
        httpserver.expect_request(f"/items/{n}").respond_with_data("down", status=503)
    result = lookup(
        {"url": base(httpserver), "target": "r", "maxRetries": 1, "batchSize": 1, "default": "x"},
        [{"id": n} for n in range(8)],
    )
    assert [r["r"] for r in result.records] == ["x"] * 8
    # Five lookups (two attempts each) fail; the circuit then opens and the last three are not sent.
    assert len(hits(httpserver, "/items/")) == 2 * http_policy.BREAKER_FAILURES


def test_it_needs_an_http_client(apply_ops):
    with pytest.raises(OperatorFailed, match="outbound HTTP is not available here"):
        apply_ops(
            [{"op": "httpLookup", "args": {"url": "https://example.com/{{id}}", "target": "r"}}], [{"id": 1}]
        )


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key", "Cookie", "x-auth-token", "Client-Secret"])
def test_it_refuses_static_credential_headers(lookup, header):
    with pytest.raises(OperatorFailed) as info:
        lookup({"url": "https://example.com/", "target": "r", "headers": {header: "Bearer abc"}}, [{}])
    assert "secret code" in str(info.value)
    assert "abc" not in str(info.value)


@pytest.mark.parametrize(
    "args, message",
    [
        ({"url": "ftp://example.com/{{id}}"}, "http or https"),
        ({"url": "https://user:pw@example.com/"}, "must not contain credentials"),
        ({"url": "https://example.com/", "bearerTokenSecretCode": "token"}, "give connectionCode"),
        ({"url": "https://example.com/", "connectionCode": "erp"}, "no connection store"),
        ({"url": "https://example.com/", "headers": {"Host": "evil"}}, "set by the HTTP client"),
    ],
)
def test_it_refuses_impossible_config(lookup, args, message):
    with pytest.raises(OperatorFailed, match=message):
        lookup({"target": "r", **args}, [{}])


def test_it_validates_httplookup_limits_in_the_schema(apply_ops):
    with pytest.raises(ConfigError):
        apply_ops([{"op": "httpLookup", "args": {"url": "https://x/", "target": "r", "batchSize": 501}}], [])
    with pytest.raises(ConfigError):
        apply_ops([{"op": "httpLookup", "args": {"url": "https://x/", "target": "r", "method": "PUT"}}], [])


def test_it_stops_when_the_run_is_cancelled(httpserver, client, fast_backoff):
    httpserver.expect_request("/items/1").respond_with_json({})
    cancelled = threading.Event()
    cancelled.set()
    from pipelines.operators.chain import OperatorChain

    chain = OperatorChain(
        [{"op": "httpLookup", "args": {"url": base(httpserver), "target": "r", "default": "c"}}],
        context_for=lambda i: OperatorContext(op_index=i, http=client, cancelled=cancelled),
    )
    assert chain.apply([{"id": 1}]).records == [{"id": 1, "r": "c"}]
    assert hits(httpserver, "/items/") == []


def test_it_describes_every_enrichment_operator():
    from pipelines.registry import operators as registry

    for code in ["lookup", "enrich", "coalesce", "default", "httpLookup"]:
        entry = registry.get(code)
        assert entry.category == "enrichment"
        assert entry.description and "\n" not in entry.description
        assert entry.schema["additionalProperties"] is False
        assert "failOnError" in entry.schema["properties"]
        for name, prop in entry.schema["properties"].items():
            assert prop.get("description"), (code, name)
    assert registry.get("httpLookup").meta["pure"] is False
