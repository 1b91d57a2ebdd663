"""Per-record retry, dead letters and call counts for every operator kind: custom operators (called one
record at a time), httpLookup (against a real local server) and the refusal for whole-batch operators."""

import time
from collections import Counter

import pytest
from werkzeug.wrappers import Response

from pipelines.custom import register_operator
from pipelines.definition import parse, problems_of
from pipelines.http import HttpClient, HttpPolicy
from runs.engine.context import RunOptions
from runs.engine.events import RecordRetried
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore


def pipeline(records, operators, retry=None):
    config = {"operators": operators}
    if retry is not None:
        config["retryPerRecord"] = retry
    return {"steps": [
        {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": records}},
        {"key": "t", "type": "TRANSFORM", "config": config},
    ]}


def run(definition, **options):
    store = InMemoryStore()
    result = execute(parse(definition), store, RunOptions(keep_outputs=True, **options))
    return result, store


def audit(store):
    return [(e.record["id"], e.attempt, e.error) for e in store.events if isinstance(e, RecordRetried)]


@pytest.fixture
def counted(registries):
    """A custom operator that counts its calls per record id and fails a record as often as its `fails`."""
    calls: Counter = Counter()

    def apply(records, args, helpers):
        out = []
        for r in records:
            calls[r["id"]] += 1
            if calls[r["id"]] <= r.get("fails", 0):
                raise ValueError(f"record {r['id']} is not ready")
            out.append({**r, "tries": calls[r["id"]]})
        return out

    register_operator(code="counted", apply=apply)
    return calls


def test_it_retries_a_custom_operator_per_record_in_rounds_with_the_delay(counted):
    records = [{"id": i} for i in range(6)]
    records[1]["fails"] = 2
    records[4]["fails"] = 1
    started = time.monotonic()
    result, store = run(pipeline(records, [{"op": "counted"}], {"maxRetries": 3, "retryDelayMs": 150}))
    elapsed = time.monotonic() - started
    assert [(r["id"], r["tries"]) for r in result.output("t")] == [(0, 1), (1, 3), (2, 1), (3, 1), (4, 2), (5, 1)]
    assert store.record_errors() == []
    assert audit(store) == [(1, 1, "record 1 is not ready"), (4, 1, "record 4 is not ready"),
                            (1, 2, "record 1 is not ready")]
    # Two rounds (one for records 1 and 4, one for record 1), 150 ms each; not one delay per record.
    assert 0.3 <= elapsed < 2, elapsed
    # Records that passed were never given to the operator again; failing ones once per attempt.
    assert counted == {0: 1, 1: 3, 2: 1, 3: 1, 4: 2, 5: 1}


def test_it_calls_a_custom_operator_once_per_record_without_a_policy(counted):
    records = [{"id": i} for i in range(50)]
    records[7]["fails"] = records[31]["fails"] = 9
    result, store = run(pipeline(records, [{"op": "counted"}]))
    assert [r["id"] for r in result.output("t")] == [i for i in range(50) if i not in (7, 31)]
    assert [(e.record, e.attempts) for e in store.record_errors()] == [
        ({"id": 7, "fails": 9}, 1), ({"id": 31, "fails": 9}, 1)]
    assert set(counted.values()) == {1}, "a record was given to the custom operator more than once"


def test_it_dead_letters_the_record_as_it_entered_the_step(counted):
    # Per-record operators before the custom one change the record; the dead letter must not carry
    # their changes, or a replay would apply them twice.
    operators = [
        {"op": "rename", "args": {"from": "name", "to": "title"}},
        {"op": "uppercase", "args": {"path": "title"}},
        {"op": "counted"},
    ]
    records = [{"id": 1, "name": "ok"}, {"id": 2, "name": "bad", "fails": 9}]
    result, store = run(pipeline(records, operators, {"maxRetries": 2, "retryDelayMs": 1}))
    assert result.output("t") == [{"id": 1, "title": "OK", "tries": 1}]
    [error] = store.record_errors()
    assert (error.record, error.attempts) == ({"id": 2, "name": "bad", "fails": 9}, 3)
    assert counted[2] == 3
    # The replay of the dead letter through the same step is the record as a first run would see it.
    counted.clear()
    replay, _ = run(pipeline([{k: v for k, v in error.record.items() if k != "fails"}], operators))
    assert replay.output("t") == [{"id": 2, "title": "BAD", "tries": 1}]


def test_it_retries_records_a_custom_operator_expanded_and_keeps_their_order(registries, counted):
    register_operator(code="twice", apply=lambda records, args, helpers: [
        {**r, "copy": n} for r in records for n in (1, 2)])
    operators = [{"op": "twice"}, {"op": "remove", "args": {"path": "copy"}}, {"op": "counted"}]
    records = [{"id": 1}, {"id": 2, "fails": 1}, {"id": 3}]
    result, store = run(pipeline(records, operators, {"maxRetries": 1, "retryDelayMs": 1}))
    # Record 2's first copy fails once; the retry runs record 2 (as it entered) through the whole chain.
    assert [r["id"] for r in result.output("t")] == [1, 1, 2, 2, 3, 3]
    assert store.record_errors() == []
    assert audit(store) == [(2, 1, "record 2 is not ready")]


@pytest.mark.parametrize("operator,register", [
    ("aggregate", None),
    ("wholeBatch", {"needs_all_records": True}),
])
def test_it_refuses_retry_over_an_operator_that_works_on_the_whole_batch(registries, operator, register):
    if register is not None:
        register_operator(code=operator, apply=lambda records, args, helpers: records, **register)
    args = {"op": "count", "target": "n"} if operator == "aggregate" else {}
    definition = pipeline([{"id": 1}], [{"op": "trim", "args": {"path": "id"}}, {"op": operator, "args": args}],
                          {"maxRetries": 2})
    problems = [p for p in problems_of(definition) if p.field == "config.retryPerRecord"]
    assert [(p.step, p.message) for p in problems] == [(
        "t", f"operators[1] ('{operator}') works on the whole batch, so a failing record cannot be retried on "
        "its own; put it in a TRANSFORM step of its own, without retryPerRecord")]
    definition["steps"][1]["config"]["retryPerRecord"] = {"maxRetries": 0}
    assert problems_of(definition) == []


# -- httpLookup against a real local server ----------------------------------------------------------

@pytest.fixture
def flaky_server(httpserver):
    """/items/<id> answers 503 the number of times the id's `fails` says, then {"price": id * 10}."""
    hits: Counter = Counter()
    fails = {"2": 1, "3": 99}

    def handler(request):
        item = request.path.rsplit("/", 1)[1]
        hits[item] += 1
        if hits[item] <= fails.get(item, 0):
            return Response('{"error": "busy"}', status=503, content_type="application/json")
        return Response(f'{{"price": {int(item) * 10}}}', content_type="application/json")

    httpserver.expect_request("/items/1").respond_with_handler(handler)
    httpserver.expect_request("/items/2").respond_with_handler(handler)
    httpserver.expect_request("/items/3").respond_with_handler(handler)
    return httpserver, hits


def lookup_step(server, retry):
    args = {"url": server.url_for("/items/{{id}}"), "target": "price", "responsePath": "price",
            "maxRetries": 0, "cacheTtlSec": 0}
    return pipeline([{"id": 1}, {"id": 2}, {"id": 3}], [{"op": "httpLookup", "args": args}], retry)


def test_it_retries_failed_http_lookups_per_record(flaky_server):
    server, hits = flaky_server
    client = HttpClient(HttpPolicy(allow=("127.0.0.1",)))
    result, store = run(lookup_step(server, {"maxRetries": 2, "retryDelayMs": 50}), http=client)
    assert result.output("t") == [{"id": 1, "price": 10}, {"id": 2, "price": 20}]
    [error] = store.record_errors()
    assert (error.record, error.attempts) == ({"id": 3}, 3)
    assert "503" in error.message
    assert [(i, n) for i, n, _ in audit(store)] == [(2, 1), (3, 1), (3, 2), (3, 3)]
    # Only the failing records were asked again, once per attempt.
    assert hits == {"1": 1, "2": 2, "3": 3}


def test_it_writes_the_default_on_a_failed_lookup_without_retry(flaky_server):
    server, hits = flaky_server
    client = HttpClient(HttpPolicy(allow=("127.0.0.1",)))
    result, store = run(lookup_step(server, None), http=client)
    assert result.output("t") == [{"id": 1, "price": 10}, {"id": 2, "price": None}, {"id": 3, "price": None}]
    assert store.record_errors() == []
    assert hits == {"1": 1, "2": 1, "3": 1}
