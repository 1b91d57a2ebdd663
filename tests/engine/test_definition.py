"""Parsing and validating definitions: every problem names its step and field."""

import pytest

from pipelines.definition import parse, problems_of


def inline(key="src", **extra):
    return {"key": key, "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": [{"a": 1}]}, **extra}


def transform(key="t", operators=None, **extra):
    return {"key": key, "type": "TRANSFORM", "config": {"operators": operators or []}, **extra}


def fields(definition):
    return [(p.step, p.field, p.message) for p in problems_of(definition)]


def test_it_round_trips_a_definition_exactly():
    d = {
        "version": 1,
        "code": "x",
        "name": "X",
        "steps": [
            {"key": "start", "type": "TRIGGER", "config": {"type": "MANUAL"}},
            {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "name": "Source",
             "config": {"data": [{"a": 1}]}, "retries": 2, "retryDelayMs": 50, "timeoutMs": 1000,
             "continueOnError": True, "disabled": True, "throughput": {"batchSize": 10}},
            {"key": "r", "type": "ROUTE", "config": {"branches": [{"name": "big", "when": []}]}},
            {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
        ],
        "edges": [
            {"from": "start", "to": "src", "dependencyOnly": True},
            {"from": "src", "to": "r"},
            {"from": "r", "to": "out", "branch": "big"},
        ],
        "context": {"parallelExecution": {"enabled": True, "maxConcurrentSteps": 2, "errorPolicy": "CONTINUE"}},
        "hooks": {"PIPELINE_COMPLETED": []},
    }
    assert parse(d).to_dict() == d
    assert parse(parse(d).to_dict()) == parse(d)


def test_it_reads_parallel_settings_with_defaults():
    p = parse({"steps": [inline()]}).parallel
    assert (p.enabled, p.max_concurrent_steps, p.error_policy) == (False, 4, "FAIL_FAST")


def test_it_rejects_duplicate_step_keys():
    assert ("src", "key", "duplicate step key 'src'") in fields({"steps": [inline(), inline()]})


def test_it_rejects_an_empty_pipeline_and_a_non_object():
    assert fields({"steps": []}) == [(None, "steps", "a pipeline needs a non-empty list of steps")]
    assert fields([1, 2])[0][2] == "a pipeline definition must be a JSON object"


def test_it_names_unknown_edge_ends():
    problems = fields({"steps": [inline()], "edges": [{"from": "src", "to": "nowhere"}]})
    assert (None, "edges[0]", "'to' names unknown step 'nowhere'") in problems


def test_it_finds_cycles_and_names_the_steps():
    d = {"steps": [inline(), transform("a"), transform("b")],
         "edges": [{"from": "src", "to": "a"}, {"from": "a", "to": "b"}, {"from": "b", "to": "a"}]}
    messages = [m for _, _, m in fields(d)]
    assert any(m.startswith("cycle: ") and "a" in m and "b" in m for m in messages), messages


def test_it_rejects_a_self_loop():
    d = {"steps": [inline(), transform("a")], "edges": [{"from": "src", "to": "a"}, {"from": "a", "to": "a"}]}
    assert any("cannot feed itself" in m for _, _, m in fields(d))


def test_it_requires_an_edge_for_every_route_branch():
    route = {"key": "r", "type": "ROUTE", "config": {"branches": [{"name": "big", "when": []}, {"name": "small"}]}}
    d = {"steps": [inline(), route, transform("x")],
         "edges": [{"from": "src", "to": "r"}, {"from": "r", "to": "x", "branch": "big"}]}
    assert ("r", "config.branches", "branch 'small' has no edge; add an edge with \"branch\": \"small\"") in fields(d)


def test_it_rejects_an_edge_to_an_unknown_branch():
    route = {"key": "r", "type": "ROUTE", "config": {"branches": [{"name": "big"}]}}
    d = {"steps": [inline(), route, transform("x")],
         "edges": [{"from": "src", "to": "r"}, {"from": "r", "to": "x", "branch": "bigg"}]}
    assert any("has no branch 'bigg'" in m for _, _, m in fields(d))


def test_it_rejects_a_route_without_edges():
    route = {"key": "r", "type": "ROUTE", "config": {"branches": [{"name": "big"}]}}
    assert any(s == "r" and "needs edges" in m for s, _, m in fields({"steps": [inline(), route]}))


def test_it_rejects_a_step_left_out_of_the_graph():
    d = {"steps": [inline(), transform("a"), transform("lonely")], "edges": [{"from": "src", "to": "a"}]}
    assert ("lonely", "edges", "this step has no edge; in a pipeline with edges every step must be connected") \
        in fields(d)


def test_it_suggests_the_nearest_operator_for_a_misspelling():
    d = {"steps": [inline(), transform(operators=[{"op": "uppercse", "args": {"path": "a"}}])]}
    assert ("t", "config.operators[0].op", "unknown operator 'uppercse'; did you mean 'uppercase'?") in fields(d)


def test_it_suggests_the_nearest_adapter_for_a_misspelling():
    d = {"steps": [{"key": "src", "type": "EXTRACT", "adapterCode": "inMemmory", "config": {}}]}
    assert ("src", "adapterCode", "unknown extractor 'inMemmory'; did you mean 'inMemory'?") in fields(d)


def test_it_requires_an_adapter_code_where_the_step_type_needs_one():
    d = {"steps": [{"key": "load", "type": "LOAD", "config": {}}]}
    assert any(s == "load" and f == "adapterCode" for s, f, _ in fields(d))


def test_it_checks_operator_args_against_the_schema():
    d = {"steps": [inline(), transform(operators=[{"op": "trim", "args": {"paht": "a"}}])]}
    problems = fields(d)
    assert any(s == "t" and f.startswith("config.operators[0].args") and "paht" in m for s, f, m in problems), problems


def test_it_checks_adapter_config_against_the_schema():
    d = {"steps": [{"key": "gen", "type": "EXTRACT", "adapterCode": "generator", "config": {"count": "ten"}}]}
    assert ("gen", "config.count", "must be of type integer, got str") in fields(d)


def test_it_rejects_unknown_step_types_and_fields():
    d = {"steps": [{"key": "x", "type": "TRANSFROM", "config": {}, "retrys": 1}]}
    problems = fields(d)
    assert any(f == "type" and "did you mean 'TRANSFORM'" in m for _, f, m in problems)
    assert ("x", "retrys", "unknown step field 'retrys'") in problems


@pytest.mark.parametrize("value,field", [
    ({"parallelExecution": {"maxConcurrentSteps": 0}}, "context.parallelExecution.maxConcurrentSteps"),
    ({"parallelExecution": {"maxConcurrentSteps": 17}}, "context.parallelExecution.maxConcurrentSteps"),
    ({"parallelExecution": {"errorPolicy": "SOMETIMES"}}, "context.parallelExecution.errorPolicy"),
    ({"throughput": {"batchSize": 0}}, "context.throughput.batchSize"),
])
def test_it_checks_the_context(value, field):
    assert field in [f for _, f, _ in fields({"steps": [inline()], "context": value})]


@pytest.mark.parametrize("field,value", [("retries", -1), ("timeoutMs", 0), ("retryDelayMs", "5"),
                                         ("disabled", "yes")])
def test_it_checks_step_options(field, value):
    assert field in [f for _, f, _ in fields({"steps": [inline(**{field: value})]})]


def test_it_collects_every_problem_at_once():
    d = {"steps": [inline(), inline(), {"key": "z", "type": "NOPE"}], "edges": [], "context": {"bad": 1},
         "surprise": True}
    assert len(problems_of(d)) >= 3
