import pathlib
import subprocess
import sys

import pytest

from pipelines.definition import STEP_TYPES, parse
from pipelines.dsl import UnknownOperator, branch, conditions, create_pipeline, operators
from pipelines.errors import DefinitionError, UnknownCode
from pipelines.operators.base import record_operator
from runs.engine.context import RunOptions
from runs.engine.executor import execute
from runs.engine.store import InMemoryStore


def every_step_type():
    return (
        create_pipeline()
        .code("every-type")
        .name("Every step type")
        .description("One step of each type")
        .parallel(max_concurrent_steps=2, error_policy="CONTINUE")
        .trigger(type="SCHEDULE", cron="0 * * * *")
        .extract("src", "inMemory", data=[{"sku": " A1 ", "price": 5}], retries=2, retry_delay_ms=100)
        .transform("clean", operators=[operators.trim(path="sku")], name="Clean up", timeout_ms=5000)
        .validate("check", fields={"sku": {"required": True}}, error_handling_mode="ACCUMULATE")
        .enrich("defaults", source_type="STATIC", defaults={"currency": "EUR"}, continue_on_error=True)
        .route("split", branches=[branch("cheap", conditions.lt("price", 10))])
        .load("save", "restPost", endpoint="https://example.com/in", disabled=True)
        .export("file", "csvExport", path="out.csv")
        .feed("google", "googleMerchant", target_country="DE")
        .sink("index", "records")
        .gate("approve", approval_type="TIMEOUT", timeout_seconds=60)
        .edge("trigger", "src")
        .edge("src", "clean")
        .edge("clean", "check")
        .edge("check", "defaults")
        .edge("defaults", "split")
        .edge("split", "approve", branch="cheap")
        .edge("split", "index", branch="default")
        .edge("approve", "save")
        .edge("approve", "file")
        .edge("approve", "google", dependency_only=True)
    )


def test_it_round_trips_a_pipeline_using_every_step_type():
    built = every_step_type().build()

    assert sorted({s["type"] for s in built["steps"]}) == sorted(STEP_TYPES)
    assert parse(built, check_plugins=False).to_dict() == built
    assert list(built) == ["version", "code", "name", "description", "steps", "edges", "context"]


def test_it_builds_the_definition_json_exactly():
    built = (
        create_pipeline()
        .extract("src", "inMemory", data=[{"a": 1}])
        .sink("out", "records")
        .build()
    )

    assert built == {
        "version": 1,
        "steps": [
            {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": [{"a": 1}]}},
            {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
        ],
        "edges": [],
        "context": {},
    }


def test_it_puts_step_options_on_the_step_in_definition_order_and_the_rest_in_config():
    built = (
        create_pipeline()
        .extract("src", "inMemory", data=[], name="Source", disabled=True, retries=3, retry_delay_ms=250,
                 timeout_ms=1000, continue_on_error=True)
        .build()
    )

    step = built["steps"][0]
    assert list(step) == ["key", "type", "adapterCode", "name", "config", "disabled", "retries",
                          "retryDelayMs", "timeoutMs", "continueOnError"]
    assert step["config"] == {"data": []}
    assert (step["retryDelayMs"], step["timeoutMs"], step["continueOnError"]) == (250, 1000, True)


def test_it_leaves_out_step_options_at_their_defaults():
    built = (
        create_pipeline()
        .extract("src", "inMemory", disabled=False, retries=0, retry_delay_ms=0, continue_on_error=False)
        .build()
    )

    assert built["steps"][0] == {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {}}


def test_it_reports_bad_step_options_as_definition_problems():
    builder = create_pipeline().extract("src", "inMemory", retries=-1, disabled="yes")

    with pytest.raises(DefinitionError) as caught:
        builder.build()
    assert {(p.step, p.field) for p in caught.value.problems} == {("src", "retries"), ("src", "disabled")}


def test_it_converts_snake_case_config_keywords_but_not_the_keys_inside_values():
    built = (
        create_pipeline()
        .extract("src", "httpApi", data_path="items.list", max_pages=3, headers={"X_Api_Key": "k"},
                 records=[{"first_name": "Ada"}], config={"odd_KEY": 1, "already_snake": 2})
        .build()
    )

    assert built["steps"][0]["config"] == {
        "odd_KEY": 1,
        "already_snake": 2,
        "dataPath": "items.list",
        "maxPages": 3,
        "headers": {"X_Api_Key": "k"},
        "records": [{"first_name": "Ada"}],
    }


def test_it_refuses_a_config_key_given_twice():
    with pytest.raises(ValueError, match="'dataPath' is given twice"):
        create_pipeline().extract("src", "httpApi", data_path="a", config={"dataPath": "b"})


def test_it_refuses_a_step_field_spelled_as_config():
    with pytest.raises(ValueError, match="retryDelayMs is a step field, set with retry_delay_ms="):
        create_pipeline().extract("src", "inMemory", retryDelayMs=5)


def test_it_writes_trigger_and_gate_settings_into_config():
    built = (
        create_pipeline()
        .trigger()
        .gate("approve", preview_count=5, notify_email="ops@example.com")
        .build()
    )

    assert built["steps"][0] == {"key": "trigger", "type": "TRIGGER", "config": {"type": "MANUAL"}}
    assert built["steps"][1]["config"] == {
        "approvalType": "MANUAL", "previewCount": 5, "notifyEmail": "ops@example.com"
    }


def test_it_enables_parallel_execution():
    built = create_pipeline().parallel(max_concurrent_steps=8, error_policy="BEST_EFFORT").trigger().build()

    assert built["context"] == {
        "parallelExecution": {"enabled": True, "maxConcurrentSteps": 8, "errorPolicy": "BEST_EFFORT"}
    }
    assert parse(built).parallel.max_concurrent_steps == 8


def test_it_defaults_parallel_to_four_steps_failing_fast():
    built = create_pipeline().parallel().trigger().build()

    assert built["context"]["parallelExecution"] == {
        "enabled": True, "maxConcurrentSteps": 4, "errorPolicy": "FAIL_FAST"
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_concurrent_steps": 0}, "from 1 to 16, got 0"),
        ({"max_concurrent_steps": 17}, "from 1 to 16, got 17"),
        ({"max_concurrent_steps": True}, "from 1 to 16"),
        ({"max_concurrent_steps": "4"}, "from 1 to 16"),
        ({"error_policy": "fail_fast"}, "one of FAIL_FAST, CONTINUE, BEST_EFFORT, got 'fail_fast'"),
    ],
)
def test_it_rejects_bad_parallel_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        create_pipeline().parallel(**kwargs)


def test_it_merges_context_error_handling_and_throughput():
    built = (
        create_pipeline()
        .context({"checkpointing": {"enabled": True}, "errorHandling": {"deadLetterQueue": True}})
        .error_handling(max_retries=3, retry_delay_ms=500, backoff_multiplier=2)
        .error_handling(max_retry_delay_ms=10_000)
        .throughput(batch_size=250, rate_limit_rps=5)
        .context({"throughput": {"concurrency": 2}})
        .trigger()
        .build()
    )

    assert built["context"] == {
        "checkpointing": {"enabled": True},
        "errorHandling": {
            "deadLetterQueue": True,
            "maxRetries": 3,
            "retryDelayMs": 500,
            "backoffMultiplier": 2,
            "maxRetryDelayMs": 10_000,
        },
        "throughput": {"batchSize": 250, "rateLimitRps": 5, "concurrency": 2},
    }


def test_it_writes_edges_and_route_branches():
    built = (
        create_pipeline()
        .extract("src", "inMemory", data=[])
        .route("split", branches=[
            branch("eu", conditions.in_("country", ("DE", "FR")), conditions.exists("vat")),
            branch("big", [conditions.gte("total", 100)]),
        ])
        .sink("eu-out", "records")
        .sink("big-out", "records")
        .sink("rest", "records")
        .sink("audit", "records")
        .edge("src", "split")
        .edge("split", "eu-out", branch="eu")
        .edge("split", "big-out", branch="big")
        .edge("split", "rest", branch="default")
        .edge("src", "audit", dependency_only=True)
        .build()
    )

    assert built["steps"][1]["config"] == {"branches": [
        {"name": "eu", "when": [{"field": "country", "cmp": "in", "value": ["DE", "FR"]},
                                {"field": "vat", "cmp": "exists"}]},
        {"name": "big", "when": [{"field": "total", "cmp": "gte", "value": 100}]},
    ]}
    assert built["edges"] == [
        {"from": "src", "to": "split"},
        {"from": "split", "to": "eu-out", "branch": "eu"},
        {"from": "split", "to": "big-out", "branch": "big"},
        {"from": "split", "to": "rest", "branch": "default"},
        {"from": "src", "to": "audit", "dependencyOnly": True},
    ]


def test_it_rejects_an_edge_to_a_branch_the_route_does_not_have():
    builder = (
        create_pipeline()
        .route("split", branches=[branch("a", conditions.eq("x", 1))])
        .sink("out", "records")
        .edge("split", "out", branch="b")
    )

    with pytest.raises(DefinitionError, match="has no branch 'b'"):
        builder.build()


@pytest.mark.parametrize(
    ("helper", "args", "expected"),
    [
        (conditions.eq, ("sku", "A1"), {"field": "sku", "cmp": "eq", "value": "A1"}),
        (conditions.ne, ("sku", None), {"field": "sku", "cmp": "ne", "value": None}),
        (conditions.gt, ("n", 1), {"field": "n", "cmp": "gt", "value": 1}),
        (conditions.gte, ("n", 1), {"field": "n", "cmp": "gte", "value": 1}),
        (conditions.lt, ("n", 1), {"field": "n", "cmp": "lt", "value": 1}),
        (conditions.lte, ("n", 1.5), {"field": "n", "cmp": "lte", "value": 1.5}),
        (conditions.in_, ("c", ["a", "b"]), {"field": "c", "cmp": "in", "value": ["a", "b"]}),
        (conditions.not_in, ("c", ("a",)), {"field": "c", "cmp": "notIn", "value": ["a"]}),
        (conditions.contains, ("s", "x"), {"field": "s", "cmp": "contains", "value": "x"}),
        (conditions.not_contains, ("s", "x"), {"field": "s", "cmp": "notContains", "value": "x"}),
        (conditions.starts_with, ("s", "x"), {"field": "s", "cmp": "startsWith", "value": "x"}),
        (conditions.ends_with, ("s", "x"), {"field": "s", "cmp": "endsWith", "value": "x"}),
        (conditions.regex, ("s", "^a\\d"), {"field": "s", "cmp": "regex", "value": "^a\\d"}),
        (conditions.matches, ("s", "a*"), {"field": "s", "cmp": "matches", "value": "a*"}),
        (conditions.exists, ("s",), {"field": "s", "cmp": "exists"}),
        (conditions.not_exists, ("s",), {"field": "s", "cmp": "notExists"}),
        (conditions.is_null, ("s",), {"field": "s", "cmp": "isNull"}),
        (conditions.not_null, ("s",), {"field": "s", "cmp": "exists"}),
        (conditions.is_empty, ("s",), {"field": "s", "cmp": "isEmpty"}),
        (conditions.is_not_empty, ("s",), {"field": "s", "cmp": "isNotEmpty"}),
    ],
)
def test_it_writes_conditions(helper, args, expected):
    assert helper(*args) == expected


def test_it_refuses_a_string_as_a_list_of_values():
    with pytest.raises(TypeError, match="needs a list of values"):
        conditions.in_("country", "DE")


def test_it_maps_python_names_to_operator_codes():
    assert operators.trim(path="name") == {"op": "trim", "args": {"path": "name"}}
    assert operators.multi_join(left_key="id", right_key="id", right_data_path="$.steps.p.output") == {
        "op": "multiJoin",
        "args": {"leftKey": "id", "rightKey": "id", "rightDataPath": "$.steps.p.output"},
    }
    assert operators.to_number(source="price")["op"] == "toNumber"
    assert operators.extract_regex(source="s", target="t", pattern="(\\d+)")["op"] == "extractRegex"
    assert operators.deduplicate_records(key="sku")["op"] == "deduplicateRecords"
    assert operators.toNumber(source="price")["op"] == "toNumber"
    assert operators.rename(from_="a", to="b") == {"op": "rename", "args": {"from": "a", "to": "b"}}
    assert operators.trim(path="n", fail_on_error=True)["args"] == {"path": "n", "failOnError": True}
    assert "multi_join" in dir(operators)


def test_it_keeps_operator_arg_values_as_given():
    rows = [{"product_id": 1, "Name": "x"}]
    built = operators.multi_join(left_key="product_id", right_key="product_id", right_data=rows)

    assert built["args"]["rightData"] == rows
    rows[0]["Name"] = "changed"
    assert built["args"]["rightData"][0]["Name"] == "x"


def test_it_suggests_the_nearest_operator_for_an_unknown_name():
    with pytest.raises(UnknownCode) as caught:
        operators.to_numbr(source="x")

    assert "unknown operator 'to_numbr'" in str(caught.value)
    assert "did you mean 'toNumber' (operators.to_number)?" in str(caught.value)
    assert caught.value.suggestion == "toNumber"
    assert not hasattr(operators, "multi_jion")


def test_it_rejects_bad_operator_args_naming_the_field():
    with pytest.raises(ValueError, match="operator 'trim': field 'mode': must be one of both, start, end"):
        operators.trim(path="name", mode="middle")
    with pytest.raises(ValueError, match="operator 'trim': .*unknown field 'pth'; did you mean 'path'"):
        operators.trim(pth="name")
    with pytest.raises(ValueError, match="operator 'rename': 'to' is required"):
        operators.rename(from_="a")


def test_it_defaults_when_to_keep_and_filter_is_when_keep():
    cond = conditions.gt("price", 0)

    assert operators.when([cond]) == {"op": "when", "args": {"conditions": [cond], "action": "keep"}}
    assert operators.when(cond, action="drop")["args"]["action"] == "drop"
    assert operators.filter(cond) == operators.when([cond])
    with pytest.raises(ValueError, match="field 'action'"):
        operators.when(cond, action="skip")


def test_it_builds_a_custom_operator_registered_by_a_plugin(registries):
    with pytest.raises(UnknownCode, match="unknown operator 'shout'"):
        operators.custom("shout", path="name")
    assert not hasattr(operators, "shout")

    schema = {
        "type": "object",
        "properties": {"path": {"type": "string"}, "mark": {"type": "string"}},
        "required": ["path"],
        "additionalProperties": False,
    }

    @record_operator("shout", name="Shout", category="custom", description="Upper-case and add '!'.",
                     schema=schema, builtin=False)
    def shout(args, ctx):
        def fn(record):
            record[args["path"]] = record[args["path"]].upper() + args.get("mark", "!")
            return record
        return fn

    assert operators.custom("shout", path="name") == {"op": "shout", "args": {"path": "name"}}
    assert operators.shout(path="name", mark="?") == {"op": "shout", "args": {"path": "name", "mark": "?"}}
    with pytest.raises(ValueError, match="operator 'shout': .*unknown field 'volume'"):
        operators.custom("shout", path="name", volume=11)

    built = (
        create_pipeline()
        .extract("src", "inMemory", data=[{"name": "hi"}])
        .transform("loud", operators=[operators.shout(path="name")])
        .sink("out", "records")
        .build(validate=True)
    )
    result = execute(parse(built), InMemoryStore(), RunOptions(keep_outputs=True))
    assert result.output("out") == [{"name": "HI!"}]


def test_it_runs_a_dsl_pipeline_through_the_executor():
    built = (
        create_pipeline()
        .code("clean-products")
        .extract("src", "inMemory", data=[
            {"sku": " a1 ", "price": "5", "title": "Pen"},
            {"sku": "b2", "price": "12", "title": "Ink", "discontinued": True},
            {"sku": " c3", "price": "x", "title": "Pad", "discontinued": None},
        ])
        .transform("clean", operators=[
            operators.trim(path="sku"),
            operators.uppercase(path="sku"),
            operators.to_number(source="price", default=0),
            operators.rename(from_="title", to="name"),
            operators.filter(conditions.not_exists("discontinued")),
            operators.set(path="currency", value="EUR"),
        ])
        .sink("out", "records")
        .edge("src", "clean")
        .edge("clean", "out")
        .build(validate=True)
    )

    result = execute(parse(built), InMemoryStore(), RunOptions(keep_outputs=True))

    assert result.status == "COMPLETED", result.error
    assert result.output("out") == [
        {"sku": "A1", "price": 5, "name": "Pen", "currency": "EUR"},
        {"sku": "C3", "price": 0, "name": "Pad", "discontinued": None, "currency": "EUR"},
    ]


def test_it_runs_route_branches_built_with_the_dsl():
    built = (
        create_pipeline()
        .extract("src", "inMemory", data=[{"n": 1}, {"n": 50}, {"n": None}])
        .route("split", branches=[
            branch("big", conditions.gte("n", 10)),
            branch("known", conditions.not_null("n")),
        ])
        .sink("big", "records")
        .sink("known", "records")
        .sink("rest", "records")
        .edge("src", "split")
        .edge("split", "big", branch="big")
        .edge("split", "known", branch="known")
        .edge("split", "rest", branch="default")
        .build(validate=True)
    )

    result = execute(parse(built), InMemoryStore(), RunOptions(keep_outputs=True))

    assert result.output("big") == [{"n": 50}]
    assert result.output("known") == [{"n": 1}, {"n": 50}]
    assert result.output("rest") == [{"n": None}]


def test_it_rejects_duplicate_step_keys():
    builder = create_pipeline().extract("src", "inMemory").extract("src", "inMemory")

    with pytest.raises(DefinitionError) as caught:
        builder.build()
    assert [p.code for p in caught.value.problems] == ["duplicate_key"]


def test_it_rejects_a_cycle():
    builder = (
        create_pipeline()
        .extract("src", "inMemory")
        .transform("a", operators=[])
        .transform("b", operators=[])
        .edge("src", "a")
        .edge("a", "b")
        .edge("b", "a")
    )

    with pytest.raises(DefinitionError, match="cycle") as caught:
        builder.build()
    assert "cycle" in [p.code for p in caught.value.problems]


def test_it_rejects_an_edge_to_a_missing_step_and_an_empty_pipeline():
    with pytest.raises(DefinitionError, match="unknown step 'nowhere'"):
        create_pipeline().extract("src", "inMemory").edge("src", "nowhere").build()
    with pytest.raises(DefinitionError, match="non-empty list of steps"):
        create_pipeline().build()


def test_it_checks_adapters_and_operators_only_when_asked():
    builder = (
        create_pipeline()
        .extract("src", "noSuchExtractor")
        .transform("t", operators=[{"op": "trim", "args": {}}])
    )

    assert builder.build()["steps"][0]["adapterCode"] == "noSuchExtractor"
    with pytest.raises(DefinitionError) as caught:
        builder.build(validate=True)
    assert {(p.step, p.field) for p in caught.value.problems} == {
        ("src", "adapterCode"),
        ("t", "config.operators[0].args"),
    }


def test_it_refuses_something_that_is_not_an_operator_in_a_transform():
    with pytest.raises(TypeError, match=r"operators\[1\] must be an \{op, args\} dict"):
        create_pipeline().transform("t", operators=[operators.trim(path="a"), "trim"])


def test_it_shares_no_state_between_the_builder_and_what_it_built():
    records = [{"a": 1}]
    builder = create_pipeline().extract("src", "inMemory", data=records)
    first = builder.build()

    records.append({"a": 2})
    first["steps"][0]["config"]["data"].append({"a": 3})

    assert builder.build()["steps"][0]["config"]["data"] == [{"a": 1}]


def test_it_imports_no_django():
    code = (
        "import sys, pipelines.dsl; bad = [m for m in sys.modules if m.startswith('django')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    root = pathlib.Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root,
                          env={"PATH": "/usr/bin:/bin"}, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_it_raises_unknown_operator_as_an_unknown_code():
    assert issubclass(UnknownOperator, UnknownCode)
    assert issubclass(UnknownOperator, AttributeError)


def test_it_puts_a_config_key_named_like_a_step_field_into_config_when_given_raw():
    built = create_pipeline().extract("src", "httpApi", timeout_ms=9000, config={"timeoutMs": 500}).build()

    assert built["steps"][0]["config"] == {"timeoutMs": 500}
    assert built["steps"][0]["timeoutMs"] == 9000


def test_it_sets_the_log_level_and_refuses_an_unknown_one():
    built = create_pipeline().code("p").name("P").log_level("DEBUG").extract("src", "inMemory", data=[]).build()
    assert built["context"]["logLevel"] == "DEBUG"
    parse(built)
    with pytest.raises(ValueError, match="ERROR, PIPELINE, STEP, DEBUG"):
        create_pipeline().log_level("VERBOSE")
