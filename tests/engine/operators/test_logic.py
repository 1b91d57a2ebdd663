"""Logic operators: when, ifThenElse, switch, deltaFilter."""

import pytest

import pipelines.operators  # noqa: F401  (registers the built-in operators)
from pipelines.errors import ConfigError
from pipelines.operators.base import OperatorContext
from pipelines.operators.chain import OperatorChain, OperatorFailed
from pipelines.registry import operators as registry

ROWS = [
    {"id": 1, "status": "active", "price": 150},
    {"id": 2, "status": "inactive", "price": 25},
    {"id": 3, "status": "active", "price": 10},
    {"id": 4, "price": 80},
]


def ids(result):
    return [r["id"] for r in result.records]


# when


def test_it_keeps_records_matching_every_condition(apply_ops):
    conds = [
        {"field": "status", "cmp": "eq", "value": "active"},
        {"field": "price", "cmp": "gt", "value": 20},
    ]
    result = apply_ops([{"op": "when", "args": {"conditions": conds, "action": "keep"}}], ROWS)
    assert ids(result) == [1]
    assert result.dropped == 3


def test_it_drops_records_matching_every_condition(apply_ops):
    conds = [{"field": "status", "cmp": "eq", "value": "active"}]
    result = apply_ops([{"op": "when", "args": {"conditions": conds, "action": "drop"}}], ROWS)
    assert ids(result) == [2, 4]


def test_it_keeps_matches_when_action_is_omitted(apply_ops):
    # The plugin's runtime drops here; its DSL (and we) keep.
    conds = [{"field": "status", "cmp": "eq", "value": "active"}]
    assert ids(apply_ops([{"op": "when", "args": {"conditions": conds}}], ROWS)) == [1, 3]


def test_it_documents_the_keep_default_in_the_schema():
    action = registry.get("when").schema["properties"]["action"]
    assert action["default"] == "keep"
    assert "keep" in action["description"]


def test_it_treats_a_missing_field_as_null_in_when(apply_ops):
    conds = [{"field": "status", "cmp": "isNull"}]
    assert ids(apply_ops([{"op": "when", "args": {"conditions": conds}}], ROWS)) == [4]
    conds = [{"field": "status", "cmp": "exists"}]
    assert ids(apply_ops([{"op": "when", "args": {"conditions": conds}}], ROWS)) == [1, 2, 3]


def test_it_keeps_everything_with_no_conditions(apply_ops):
    assert ids(apply_ops([{"op": "when", "args": {"conditions": []}}], ROWS)) == [1, 2, 3, 4]


def test_it_does_not_change_the_input_records(apply_ops):
    rows = [{"a": {"b": 1}}]
    apply_ops([{"op": "when", "args": {"conditions": [{"field": "a.b", "value": 1}]}}], rows)
    assert rows == [{"a": {"b": 1}}]


@pytest.mark.parametrize(
    "args",
    [
        {},
        {"conditions": {"field": "a"}},
        {"conditions": [{"field": "a", "cmp": "equals", "value": 1}]},
        {"conditions": [{"field": "a", "cmp": "gt", "value": "1"}]},
        {"conditions": [], "action": "filter"},
        {"conditions": [], "actoin": "keep"},
    ],
)
def test_it_refuses_a_bad_when_config(args):
    with pytest.raises(ConfigError) as err:
        OperatorChain([{"op": "when", "args": args}])
    assert err.value.field.startswith("operators[0]")


def test_it_names_the_bad_condition_field():
    with pytest.raises(ConfigError) as err:
        OperatorChain(
            [
                {
                    "op": "when",
                    "args": {
                        "conditions": [{"field": "a"}, {"field": "a", "cmp": "regex", "value": "(a+)+"}]
                    },
                }
            ]
        )
    assert err.value.field == "operators[0].args.conditions[1].value"


# ifThenElse


def test_it_sets_then_or_else_value(apply_ops):
    args = {
        "condition": {"field": "price", "cmp": "gte", "value": 100},
        "thenValue": "premium",
        "elseValue": "standard",
        "target": "tier",
    }
    result = apply_ops([{"op": "ifThenElse", "args": args}], ROWS)
    assert [r["tier"] for r in result.records] == ["premium", "standard", "standard", "standard"]


def test_it_writes_null_when_else_value_is_omitted(apply_ops):
    args = {"condition": {"field": "price", "cmp": "gt", "value": 100}, "thenValue": True, "target": "big"}
    result = apply_ops([{"op": "ifThenElse", "args": args}], [{"price": 200}, {"price": 1}, {}])
    assert [r["big"] for r in result.records] == [True, None, None]


def test_it_writes_nothing_on_a_match_when_then_value_is_omitted(apply_ops):
    args = {"condition": {"field": "a", "value": 1}, "elseValue": "no", "target": "out"}
    result = apply_ops([{"op": "ifThenElse", "args": args}], [{"a": 1}, {"a": 2}])
    assert result.records == [{"a": 1}, {"a": 2, "out": "no"}]


def test_it_writes_nested_targets_and_copies_object_values(apply_ops):
    args = {"condition": {"field": "a", "value": 1}, "thenValue": {"tags": ["x"]}, "target": "meta.flags"}
    result = apply_ops([{"op": "ifThenElse", "args": args}], [{"a": 1}, {"a": 1}])
    first, second = result.records
    assert first["meta"]["flags"] == {"tags": ["x"]}
    first["meta"]["flags"]["tags"].append("y")
    assert second["meta"]["flags"] == {"tags": ["x"]}


def test_it_uses_operator_alias_in_if_then_else(apply_ops):
    args = {
        "condition": {"field": "s", "operator": "contains", "value": "x"},
        "thenValue": 1,
        "elseValue": 0,
        "target": "t",
    }
    assert [
        r["t"] for r in apply_ops([{"op": "ifThenElse", "args": args}], [{"s": "axb"}, {"s": 5}]).records
    ] == [1, 0]


@pytest.mark.parametrize(
    "args",
    [
        {"thenValue": 1, "target": "t"},
        {"condition": {"field": "a"}, "thenValue": 1},
        {"condition": {"field": "a", "cmp": "between"}, "target": "t"},
        {"condition": [{"field": "a"}], "target": "t"},
        {"condition": {"field": "a"}, "target": "__proto__"},
    ],
)
def test_it_refuses_a_bad_if_then_else_config(args):
    with pytest.raises(ConfigError):
        OperatorChain([{"op": "ifThenElse", "args": args}])


# switch

CASES = [
    {"value": "electronics", "result": "Tech"},
    {"value": "clothing", "result": "Fashion"},
    {"value": 1, "result": "one"},
    {"value": True, "result": "yes"},
    {"value": None, "result": "nothing"},
]


def switch(apply_ops, values, **extra):
    args = {"source": "v", "cases": CASES, "target": "out", **extra}
    records = [{} if v == "<missing>" else {"v": v} for v in values]
    return [r["out"] for r in apply_ops([{"op": "switch", "args": args}], records).records]


def test_it_switches_on_the_first_matching_case(apply_ops):
    assert switch(apply_ops, ["clothing", "electronics"]) == ["Fashion", "Tech"]


def test_it_writes_default_or_null_when_nothing_matches(apply_ops):
    assert switch(apply_ops, ["food"], default="Other") == ["Other"]
    assert switch(apply_ops, ["food"]) == [None]


def test_it_matches_loosely_across_types_as_the_plugin_does(apply_ops):
    # Same type: strict. Different types: compared as text (String(a) === String(b)).
    assert switch(apply_ops, ["1", 1.0, "true", True, False]) == ["one", "one", "yes", "yes", None]


def test_it_matches_null_and_missing_only_the_null_case(apply_ops):
    assert switch(apply_ops, [None, "<missing>", "null"]) == ["nothing", "nothing", None]


def test_it_compares_list_and_object_cases_by_content(apply_ops):
    args = {
        "source": "v",
        "cases": [{"value": [1, 2], "result": "pair"}, {"value": {"a": 1}, "result": "obj"}],
        "target": "out",
    }
    records = [{"v": [1, 2]}, {"v": {"a": 1}}, {"v": "1,2"}, {"v": [2, 1]}]
    result = apply_ops([{"op": "switch", "args": args}], records)
    assert [r["out"] for r in result.records] == ["pair", "obj", "pair", None]


def test_it_copies_object_results(apply_ops):
    args = {"source": "v", "cases": [{"value": 1, "result": {"k": []}}], "target": "out"}
    a, b = apply_ops([{"op": "switch", "args": args}], [{"v": 1}, {"v": 1}]).records
    a["out"]["k"].append(1)
    assert b["out"] == {"k": []}


@pytest.mark.parametrize(
    "args",
    [
        {"cases": [], "target": "t"},
        {"source": "v", "target": "t"},
        {
            "source": "v",
            "cases": [],
        },
        {"source": "v", "cases": [{"value": 1}], "target": "t"},
        {"source": "v", "cases": ["a"], "target": "t"},
        {"source": "v", "cases": {"a": 1}, "target": "t"},
    ],
)
def test_it_refuses_a_bad_switch_config(args):
    with pytest.raises(ConfigError):
        OperatorChain([{"op": "switch", "args": args}])


# deltaFilter


def delta(records, checkpoint, **args):
    args.setdefault("idPath", "id")
    chain = OperatorChain(
        [{"op": "deltaFilter", "args": args}],
        context_for=lambda i: OperatorContext(op_index=i, checkpoint=checkpoint),
    )
    return chain.apply(records).records


def test_it_passes_every_record_on_a_first_run():
    checkpoint = {}
    rows = [{"id": 1, "a": 1}, {"id": 2, "a": 2}]
    assert delta(rows, checkpoint) == rows
    assert set(checkpoint["hashes"]) == {"1", "2"}


def test_it_passes_only_new_and_changed_records_on_the_next_run():
    checkpoint = {}
    delta([{"id": 1, "a": 1}, {"id": 2, "a": 2}], checkpoint)
    out = delta([{"id": 1, "a": 1}, {"id": 2, "a": 20}, {"id": 3, "a": 3}], checkpoint)
    assert out == [{"id": 2, "a": 20}, {"id": 3, "a": 3}]
    assert delta([{"id": 1, "a": 1}, {"id": 2, "a": 20}, {"id": 3, "a": 3}], checkpoint) == []


def test_it_ignores_key_order_when_comparing():
    checkpoint = {}
    delta([{"id": 1, "a": 1, "b": 2}], checkpoint)
    assert delta([{"b": 2, "a": 1, "id": 1}], checkpoint) == []


def test_it_replaces_the_checkpoint_with_this_runs_ids():
    checkpoint = {}
    delta([{"id": 1, "a": 1}, {"id": 2, "a": 2}], checkpoint)
    delta([{"id": 1, "a": 1}], checkpoint)
    assert set(checkpoint["hashes"]) == {"1"}
    # id 2 was forgotten, so it is new again
    assert delta([{"id": 2, "a": 2}], checkpoint) == [{"id": 2, "a": 2}]


def test_it_always_passes_records_without_an_id():
    checkpoint = {}
    rows = [{"a": 1}, {"id": None, "a": 1}]
    assert delta(rows, checkpoint) == rows
    assert delta(rows, checkpoint) == rows
    assert checkpoint["hashes"] == {}


def test_it_keys_ids_by_their_text():
    checkpoint = {}
    delta([{"id": 7, "a": 1}], checkpoint)
    assert list(checkpoint["hashes"]) == ["7"]
    assert delta([{"id": "7", "a": 1}], checkpoint) == [{"id": "7", "a": 1}]  # the record itself changed


def test_it_compares_only_include_paths():
    checkpoint = {}
    delta(
        [{"id": 1, "price": 5, "seen": "mon", "m": {"x": 1, "y": 1}}],
        checkpoint,
        includePaths=["price", "m.x"],
    )
    assert (
        delta(
            [{"id": 1, "price": 5, "seen": "tue", "m": {"x": 1, "y": 2}}],
            checkpoint,
            includePaths=["price", "m.x"],
        )
        == []
    )
    changed = [{"id": 1, "price": 6, "seen": "tue", "m": {"x": 1}}]
    assert delta(changed, checkpoint, includePaths=["price", "m.x"]) == changed


def test_it_ignores_exclude_paths():
    checkpoint = {}
    delta([{"id": 1, "price": 5, "meta": {"at": 1, "k": 1}}], checkpoint, excludePaths=["meta.at"])
    assert (
        delta([{"id": 1, "price": 5, "meta": {"at": 2, "k": 1}}], checkpoint, excludePaths=["meta.at"]) == []
    )
    rows = [{"id": 1, "price": 5, "meta": {"at": 2, "k": 2}}]
    assert delta(rows, checkpoint, excludePaths=["meta.at"]) == rows


def test_it_does_not_change_the_records_it_hashes():
    checkpoint = {}
    rows = [{"id": 1, "meta": {"at": 1}}]
    assert delta(rows, checkpoint, excludePaths=["meta.at"]) == [{"id": 1, "meta": {"at": 1}}]


def test_it_compares_each_duplicate_id_with_the_previous_run():
    checkpoint = {}
    delta([{"id": 1, "a": 1}], checkpoint)
    assert delta([{"id": 1, "a": 1}, {"id": 1, "a": 1}], checkpoint) == []


def test_it_keeps_the_checkpoint_unchanged_in_a_dry_run():
    checkpoint = {}
    delta([{"id": 1, "a": 1}], checkpoint)
    before = dict(checkpoint["hashes"])
    chain = OperatorChain(
        [{"op": "deltaFilter", "args": {"idPath": "id"}}],
        context_for=lambda i: OperatorContext(op_index=i, checkpoint=checkpoint, dry_run=True),
    )
    assert chain.apply([{"id": 1, "a": 2}, {"id": 9}]).records == [{"id": 1, "a": 2}, {"id": 9}]
    assert checkpoint["hashes"] == before


def test_it_reads_an_unknown_checkpoint_shape_as_a_first_run():
    checkpoint = {"something": "else"}
    assert delta([{"id": 1}], checkpoint) == [{"id": 1}]


def test_it_needs_the_whole_step_input():
    assert registry.get("deltaFilter").impl.needs_all_records
    assert OperatorChain([{"op": "deltaFilter", "args": {"idPath": "id"}}]).needs_all_records


def test_it_refuses_a_delta_filter_without_id_path():
    with pytest.raises(ConfigError):
        OperatorChain([{"op": "deltaFilter", "args": {}}])


def test_it_fails_the_step_for_a_forbidden_id_path():
    chain = OperatorChain([{"op": "deltaFilter", "args": {"idPath": "a.__proto__"}}])
    with pytest.raises(OperatorFailed):
        chain.apply([{"id": 1}])


def test_it_registers_logic_operators_with_their_category():
    for code in ("when", "ifThenElse", "switch", "deltaFilter"):
        entry = registry.get(code)
        assert entry.category == "logic"
        assert entry.description
        assert entry.schema["additionalProperties"] is False
        for prop in entry.schema["properties"].values():
            assert prop.get("description")
