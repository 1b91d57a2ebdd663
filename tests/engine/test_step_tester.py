"""The step tester's core (runs.step_tester), without HTTP pages: one step on a sample or on pasted records,
its outputs per branch, its dead letters and a per-record diff; what it refuses, and that it never writes."""

import time

import pytest

from pipelines.adapters.base import Writer, WriteResult
from pipelines.http import HttpClient, HttpPolicy
from runs.engine.context import RunOptions
from runs.step_tester import CannotTest, Change, Limits, diff, parse_records, try_step


def inline(key, records):
    return {"key": key, "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": records}}


def transform(key, *operators):
    return {"key": key, "type": "TRANSFORM", "config": {"operators": list(operators)}}


def op(code, /, **args):
    return {"op": code, "args": args}


def chain(*steps):
    return {"version": 1, "code": "t", "steps": list(steps), "edges": []}


PRODUCTS = [{"sku": " a1 ", "price": "10", "old": 1}, {"sku": "b2", "price": "x"}, {"sku": "c3", "price": "7.5"}]


# --- TRANSFORM: operators, diff, dead letters --------------------------------------------------------------

def test_it_runs_a_transform_on_the_sample_of_the_step_before_and_says_what_changed_per_record():
    d = chain(inline("src", PRODUCTS),
              transform("clean", op("trim", path="sku"), op("toNumber", source="price"), op("set", path="ok", value=True),
                        op("remove", path="old"), op("script", code="{**record, 'cents': record['price'] * 100}")),
              {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}})
    result = try_step(d, "clean")
    assert result.source == "sample"
    assert result.input == PRODUCTS  # what the step got, unchanged by it
    assert result.outputs["output"] == [{"sku": "a1", "price": 10, "ok": True, "cents": 1000},
                                        {"sku": "c3", "price": 7.5, "ok": True, "cents": 750}]
    # the dead letter is the record as it entered the step, with the run's message naming the operator
    assert result.errors == [({"sku": "b2", "price": "x"}, "script (operator 5): '*' needs numbers, got null and number")]
    first, second, third = result.rows
    assert first.fate == "changed"
    assert set(first.changes[0]) == {Change("sku", "changed", " a1 ", "a1"), Change("price", "changed", "10", 10),
                                     Change("ok", "added", after=True), Change("old", "removed", before=1),
                                     Change("cents", "added", after=1000)}
    assert second.fate == "failed" and second.error == result.errors[0][1] and second.outputs == []
    assert third.fate == "changed" and Change("price", "changed", "7.5", 7.5) in third.changes[0]
    assert result.error is None


def test_it_says_which_records_a_filter_drops_and_which_pass_unchanged():
    d = chain(inline("src", [{"n": 1}, {"n": 5}]), transform("big", op("when", conditions=[{"field": "n", "cmp": "gt", "value": 2}])))
    result = try_step(d, "big")
    assert [r.fate for r in result.rows] == ["dropped", "unchanged"]
    assert result.outputs["output"] == [{"n": 5}]


def test_it_shows_outputs_without_a_per_record_diff_when_the_operators_combine_records():
    d = chain(inline("src", [{"g": "a", "n": 1}, {"g": "a", "n": 2}, {"g": "b", "n": 3}]),
              transform("sum", op("aggregate", op="sum", source="n", target="total", groupBy="g")))
    result = try_step(d, "sum")
    assert result.rows is None and "aggregate" in result.unmatched
    assert [r["total"] for r in result.outputs["output"]] == [3, 3, 3]


def test_an_operator_that_fails_the_step_is_the_steps_error_with_the_runs_message():
    d = chain(transform("strict", op("script", code="{**record, 'b': record['a'] - 1}", failOnError=True)))
    result = try_step(d, "strict", records=[{"a": 1}, {"a": "x"}])
    assert result.error and "script" in result.error and "needs numbers" in result.error


# --- VALIDATE ---------------------------------------------------------------------------------------------

def validate(mode="ACCUMULATE"):
    return {"key": "check", "type": "VALIDATE",
            "config": {"errorHandlingMode": mode, "rules": [{"field": "sku", "required": True, "pattern": "^[A-Z]"},
                                                            {"field": "price", "type": "number", "min": 0}]}}


def test_validate_passes_valid_records_and_lists_each_invalid_one_with_its_message():
    records = [{"sku": "A1", "price": 3}, {"sku": "b", "price": -1}, {"price": 2}]
    result = try_step(chain(validate()), "check", records=records)
    assert result.source == "pasted"
    assert result.outputs["output"] == [{"sku": "A1", "price": 3}]
    assert [r.fate for r in result.rows] == ["passed", "failed", "failed"]
    messages = [m for _, m in result.errors]
    assert "sku" in messages[0] and "price" in messages[0] and "sku" in messages[1]
    assert result.rows[1].error == messages[0]
    assert result.error is None


def test_validate_fail_fast_fails_the_step_at_the_first_invalid_record_as_the_run_would():
    result = try_step(chain(validate("FAIL_FAST")), "check", records=[{"sku": "A", "price": 1}, {"sku": "b"}])
    assert result.error.startswith("record 2 is invalid") and "FAIL_FAST" in result.error
    assert result.outputs["output"] == []
    assert len(result.errors) == 1


# --- ROUTE ------------------------------------------------------------------------------------------------

def test_route_shows_every_branch_and_where_each_record_went():
    route = {"key": "split", "type": "ROUTE", "config": {"branches": [
        {"name": "cheap", "when": [{"field": "price", "cmp": "lt", "value": 10}]},
        {"name": "euro", "when": [{"field": "currency", "cmp": "eq", "value": "EUR"}]}]}}
    d = {"version": 1, "code": "r",
         "steps": [inline("src", [{"price": 5, "currency": "EUR"}, {"price": 50, "currency": "USD"},
                                  {"price": 1, "currency": "USD"}]), route,
                   {"key": "a", "type": "SINK", "adapterCode": "records", "config": {}}],
         "edges": [{"from": "src", "to": "split"}, {"from": "split", "to": "a", "branch": "cheap"},
                   {"from": "split", "to": "a", "branch": "euro"}, {"from": "split", "to": "a", "branch": "default"}]}
    result = try_step(d, "split")
    assert result.outputs["cheap"] == [{"price": 5, "currency": "EUR"}, {"price": 1, "currency": "USD"}]
    assert result.outputs["euro"] == [{"price": 5, "currency": "EUR"}]
    assert result.outputs["default"] == [{"price": 50, "currency": "USD"}]
    assert [r.branches for r in result.rows] == [["cheap", "euro"], ["default"], ["cheap"]]


def test_the_sample_follows_the_branch_an_edge_carries():
    d = {"version": 1, "code": "r",
         "steps": [inline("src", [{"n": 1}, {"n": 20}]),
                   {"key": "split", "type": "ROUTE",
                    "config": {"branches": [{"name": "big", "when": [{"field": "n", "cmp": "gt", "value": 10}]}]}},
                   transform("t", op("set", path="seen", value=True))],
         "edges": [{"from": "src", "to": "split"}, {"from": "split", "to": "t", "branch": "default"},
                   {"from": "split", "to": "t", "branch": "big"}, {"from": "split", "to": "u", "branch": "default"}]}
    d["steps"].append(transform("u", op("set", path="other", value=True)))
    assert try_step(d, "u").input == [{"n": 1}]
    assert try_step(d, "t").input == [{"n": 1}, {"n": 20}]  # fan-in in edge order: default, then big


# --- what the tester refuses, and that it never writes -----------------------------------------------------

class CountingWriter(Writer):
    written: list = []

    def write(self, batch):
        CountingWriter.written.extend(batch)
        return WriteResult(len(batch), [], None)


@pytest.fixture
def counting(registries):
    CountingWriter.written = []
    registries.loaders.register("counting", CountingWriter, schema={"type": "object"})
    return CountingWriter


def test_a_step_with_side_effects_is_refused_by_name(counting):
    d = chain(inline("src", [{"a": 1}]), {"key": "save", "type": "LOAD", "adapterCode": "counting", "config": {}})
    with pytest.raises(CannotTest, match="step 'save' is a LOAD step: the tester runs only TRANSFORM"):
        try_step(d, "save", records=[{"a": 1}])
    with pytest.raises(CannotTest, match="step 'src' is a EXTRACT step"):
        try_step(d, "src")
    assert counting.written == []


def test_a_writer_before_the_step_does_not_run_and_a_note_names_it(counting):
    d = chain(inline("src", [{"a": 1}, {"a": 2}]), {"key": "save", "type": "LOAD", "adapterCode": "counting", "config": {}},
              transform("after", op("set", path="b", value=2)))
    result = try_step(d, "after")
    assert counting.written == []
    assert result.input == [{"a": 1}, {"a": 2}]
    assert any("step 'save' (LOAD) did not run" in n for n in result.notes)


def test_the_sample_is_bounded_by_the_record_limit():
    d = chain(inline("src", [{"n": i} for i in range(50)]), transform("t", op("set", path="x", value=1)))
    result = try_step(d, "t", limits=Limits(records=5))
    assert result.input == [{"n": i} for i in range(5)]


def test_a_failing_step_before_names_it():
    d = chain(inline("src", [{"a": 1}]), dict(validate("FAIL_FAST"), key="broken"),
              transform("t", op("set", path="x", value=1)))
    with pytest.raises(CannotTest, match="the sample could not be made: step 'broken' failed: record 1 is invalid"):
        try_step(d, "t")


def test_the_first_step_has_no_sample_and_says_to_paste_records():
    d = chain(transform("t", op("set", path="x", value=1)))
    with pytest.raises(CannotTest, match="step 't' has no step before it"):
        try_step(d, "t")
    assert try_step(d, "t", records=[{"a": 1}]).outputs["output"] == [{"a": 1, "x": 1}]


def test_an_unknown_step_is_named():
    with pytest.raises(CannotTest, match="there is no step 'nope'"):
        try_step(chain(transform("t")), "nope", records=[{}])


def test_a_slow_sample_is_stopped_at_the_time_limit(registries):
    from tests.engine.conftest import ProbeExtractor

    registries.extractors.register("probe", ProbeExtractor, schema={"type": "object"})
    d = chain({"key": "slow", "type": "EXTRACT", "adapterCode": "probe", "config": {"sleep": 30}},
              transform("t", op("set", path="x", value=1)))
    started = time.monotonic()
    with pytest.raises(CannotTest, match="longer than the tester's 0.5 s"):
        try_step(d, "t", limits=Limits(seconds=0.5))
    assert time.monotonic() - started < 3


def test_threads_a_step_left_behind_are_bounded(registries):
    import threading

    from pipelines.operators.base import record_operator

    release = threading.Event()

    @record_operator("deaf", name="Deaf", category="custom", description="waits, not listening to stop",
                     builtin=False, schema={"type": "object"})
    def build(args, ctx):
        def fn(record):
            release.wait(10)
            return record

        return fn

    d = chain(transform("t", op("deaf")))
    limits = Limits(seconds=0.2, concurrent=1)
    with pytest.raises(CannotTest, match="took longer than the tester's 0.2 s"):
        try_step(d, "t", records=[{"a": 1}], limits=limits)
    with pytest.raises(CannotTest, match=r"the tester is busy \(1 tests still running\)"):
        try_step(d, "t", records=[{"a": 1}], limits=limits)
    release.set()  # the step left behind ends: its slot is free again
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            assert try_step(d, "t", records=[{"a": 1}], limits=limits).outputs["output"] == [{"a": 1}]
            break
        except CannotTest:
            time.sleep(0.05)
    else:
        pytest.fail("the slot was not given back")


# --- outbound requests stay under the SSRF guard ------------------------------------------------------------

def test_an_http_enrich_is_refused_a_loopback_address_unless_allowed(httpserver):
    httpserver.expect_request("/items/a").respond_with_json({"stock": 4})
    enrich = {"key": "look", "type": "ENRICH",
              "config": {"sourceType": "HTTP", "url": f"http://127.0.0.1:{httpserver.port}/items/{{{{sku}}}}",
                         "target": "info"}}
    guarded = try_step(chain(enrich), "look", records=[{"sku": "a"}],
                        options=RunOptions(http=HttpClient(HttpPolicy())))
    # as in a run: the lookup writes its default and says why in a warning
    assert guarded.outputs["output"] == [{"sku": "a", "info": None}]
    assert any("loopback" in w for w in guarded.warnings), guarded.warnings
    assert len(httpserver.log) == 0
    allowed = try_step(chain(enrich), "look", records=[{"sku": "a"}],
                        options=RunOptions(http=HttpClient(HttpPolicy(allow=("127.0.0.1",)))))
    assert allowed.outputs["output"] == [{"sku": "a", "info": {"stock": 4}}]
    assert allowed.rows[0].changes == [[Change("info", "added", after={"stock": 4})]]


# --- pasted records ---------------------------------------------------------------------------------------

def test_pasted_records_may_be_an_array_one_object_or_one_object_per_line():
    assert parse_records('[{"a": 1}, {"a": 2}]') == [{"a": 1}, {"a": 2}]
    assert parse_records('{"a": 1}') == [{"a": 1}]
    assert parse_records('{"a": 1}\n\n{"a": 2}\n') == [{"a": 1}, {"a": 2}]


@pytest.mark.parametrize("text, message", [
    ('[{"a": 1},\n {"a": 2,}]', "line 2, column 10: Expecting property name enclosed in double quotes"),
    ('{"a": 1}\n{"a": 2', "line 2, column 8: Expecting ',' delimiter (one record per line)"),
    ('[{"a": 1}, 3]', "record 2: a record is a JSON object"),
    ('{"a": 1}\n"text"', "line 2: a record is a JSON object like {\"sku\": \"A1\"}, not a string"),
    ("   ", "paste at least one record"),
    ('[{"a": 1}, {"a": 2}, {"a": 3}]', "at most 2 records can be tested at once (3 given)"),
])
def test_bad_pasted_records_are_refused_naming_the_line_and_column(text, message):
    with pytest.raises(CannotTest) as caught:
        parse_records(text, Limits(records=2))
    assert message in str(caught.value)


def test_diff_walks_nested_objects_and_keeps_json_types_apart():
    before = {"a": {"b": 1, "c": 2}, "n": 1, "flag": 1, "list": [1], "bools": [1, {"x": 0}], "same": [1, {"y": 2}]}
    after = {"a": {"b": 1, "c": 3, "d": 4}, "n": 1.0, "flag": True, "list": [1, 2], "bools": [True, {"x": False}],
             "same": [1.0, {"y": 2}]}
    assert diff(before, after) == [Change("a.c", "changed", 2, 3), Change("a.d", "added", after=4),
                                   Change("flag", "changed", 1, True), Change("list", "changed", [1], [1, 2]),
                                   Change("bools", "changed", [1, {"x": 0}], [True, {"x": False}])]
