"""Aggregation operators: aggregate (with groupBy), count, unique, flatten, first, last, expand."""

import pytest

import pipelines.operators  # noqa: F401  (registers the built-in operators)
from pipelines.errors import ConfigError
from pipelines.operators.aggregation import flatten_list
from pipelines.operators.chain import OperatorChain
from pipelines.registry import operators as registry

SALES = [
    {"id": 1, "region": "EU", "shop": "a", "amount": 10},
    {"id": 2, "region": "US", "shop": "b", "amount": 5.5},
    {"id": 3, "region": "EU", "shop": "a", "amount": 30},
    {"id": 4, "region": "EU", "shop": "c", "amount": "n/a"},
    {"id": 5, "amount": 1},
]


def agg(op, **args):
    return {"op": "aggregate", "args": {"op": op, **args}}


# -- aggregate -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op, expected",
    [("count", 5), ("sum", 46.5), ("avg", 11.625), ("min", 1), ("max", 30), ("first", 10), ("last", 1)],
)
def test_it_aggregates_numbers_over_the_whole_input(apply_ops, op, expected):
    out = apply_ops([agg(op, source="amount", target="result")], SALES).records
    assert [r["result"] for r in out] == [expected] * 5


def test_it_writes_integral_averages_as_integers(apply_ops):
    out = apply_ops([agg("avg", source="n", target="a")], [{"n": 10}, {"n": 20}, {"n": 30}]).records
    assert out[0]["a"] == 20 and type(out[0]["a"]) is int


def test_it_aggregates_nothing_to_zero_or_null(apply_ops):
    rows = [{"x": "a"}, {"x": None}]
    assert apply_ops([agg("sum", source="x", target="s")], rows).records[0]["s"] is None
    assert apply_ops([agg("count", target="c")], rows).records[0]["c"] == 2
    assert apply_ops([agg("count", target="c")], []).records == []


def test_it_ignores_booleans_as_numbers(apply_ops):
    out = apply_ops([agg("sum", source="x", target="s")], [{"x": True}, {"x": 2}]).records
    assert out[0]["s"] == 2


def test_it_aggregates_per_group(apply_ops):
    out = apply_ops([agg("sum", source="amount", target="regionTotal", groupBy="region")], SALES).records
    assert [r["regionTotal"] for r in out] == [40, 5.5, 40, 40, 1]
    assert [r["id"] for r in out] == [1, 2, 3, 4, 5]  # order kept


def test_it_aggregates_per_composite_group(apply_ops):
    out = apply_ops([agg("count", target="n", groupBy=["region", "shop"])], SALES).records
    assert [r["n"] for r in out] == [2, 1, 2, 1, 1]


def test_it_groups_missing_and_null_together_but_keeps_types_apart(apply_ops):
    rows = [{"g": None, "v": 1}, {"v": 2}, {"g": 1, "v": 4}, {"g": "1", "v": 8}, {"g": True, "v": 16}]
    out = apply_ops([agg("sum", source="v", target="t", groupBy="g")], rows).records
    assert [r["t"] for r in out] == [3, 3, 4, 8, 16]


def test_it_needs_all_records_for_aggregate():
    assert registry.get("aggregate").impl.needs_all_records is True
    assert OperatorChain([agg("count", target="c")]).needs_all_records is True


def test_it_requires_a_source_except_for_count(apply_ops):
    with pytest.raises(Exception, match="'source' is required"):
        apply_ops([agg("sum", target="s")], [{"a": 1}])
    with pytest.raises(ConfigError):
        apply_ops([agg("median", source="a", target="s")], [])


# -- count, first, last --------------------------------------------------------------------------


def test_it_counts_arrays_and_strings_and_zero_otherwise(apply_ops):
    ops = [{"op": "count", "args": {"source": "v", "target": "n"}}]
    rows = [{"v": [1, 2]}, {"v": "héllo"}, {"v": 12}, {"v": None}, {}]
    assert [r["n"] for r in apply_ops(ops, rows).records] == [2, 5, 0, 0, 0]


def test_it_picks_first_and_last_or_null(apply_ops):
    ops = [
        {"op": "first", "args": {"source": "v", "target": "f"}},
        {"op": "last", "args": {"source": "v", "target": "l"}},
    ]
    out = apply_ops(ops, [{"v": [3, 4, 5]}, {"v": []}, {"v": "abc"}]).records
    assert [(r["f"], r["l"]) for r in out] == [(3, 5), (None, None), (None, None)]


# -- unique --------------------------------------------------------------------------------------


def test_it_removes_duplicate_values_keeping_the_first(apply_ops):
    ops = [{"op": "unique", "args": {"source": "tags"}}]
    rows = [{"tags": ["a", "b", "a", 1, 1.0, True, "1", {"k": 1}, {"k": 1}, [1], [1]]}]
    assert apply_ops(ops, rows).records[0]["tags"] == ["a", "b", 1, True, "1", {"k": 1}, [1]]


def test_it_removes_duplicate_objects_by_key(apply_ops):
    ops = [{"op": "unique", "args": {"source": "v", "target": "u", "by": "sku"}}]
    rows = [
        {
            "v": [
                {"sku": "A", "n": 1},
                {"sku": "A", "n": 2},
                {"n": 3},
                {"sku": None, "n": 4},
                "x",
                "x",
                {"sku": 1},
                {"sku": "1"},
            ]
        }
    ]
    out = apply_ops(ops, rows).records[0]
    assert out["u"] == [{"sku": "A", "n": 1}, {"n": 3}, "x", "x", {"sku": 1}, {"sku": "1"}]
    assert len(out["v"]) == 8


def test_it_leaves_a_non_array_alone_for_unique(apply_ops):
    ops = [{"op": "unique", "args": {"source": "v", "target": "u"}}]
    assert apply_ops(ops, [{"v": "abc"}]).records == [{"v": "abc"}]


# -- flatten -------------------------------------------------------------------------------------


def test_it_flattens_to_a_depth(apply_ops):
    rows = [{"v": [1, [2, [3, [4]]], 5]}]
    one = apply_ops([{"op": "flatten", "args": {"source": "v", "target": "f"}}], rows).records[0]["f"]
    two = apply_ops([{"op": "flatten", "args": {"source": "v", "target": "f", "depth": 2}}], rows).records[0][
        "f"
    ]
    zero = apply_ops([{"op": "flatten", "args": {"source": "v", "depth": 0}}], rows).records[0]["v"]
    assert one == [1, 2, [3, [4]], 5]
    assert two == [1, 2, 3, [4], 5]
    assert zero == [1, [2, [3, [4]]], 5]


def test_it_flattens_very_deep_arrays_without_recursion():
    deep: list = [0]
    for _ in range(5000):
        deep = [deep]
    assert flatten_list(deep, 10_000) == [0]


# -- expand --------------------------------------------------------------------------------------

PRODUCTS = [
    {"id": "P1", "name": "Widget", "variants": [{"sku": "S"}, {"sku": "M"}], "meta": {"x": 1}},
    {"id": "P2", "name": "Gizmo", "variants": []},
    {"id": "P3", "name": "Tags", "variants": ["red", None]},
]


def test_it_expands_with_parent_fields(apply_ops):
    ops = [
        {
            "op": "expand",
            "args": {
                "path": "variants",
                "parentFields": {"productId": "id", "m": "meta", "nested.name": "name"},
            },
        }
    ]
    out = apply_ops(ops, PRODUCTS).records
    assert out == [
        {"sku": "S", "productId": "P1", "m": {"x": 1}, "nested": {"name": "Widget"}},
        {"sku": "M", "productId": "P1", "m": {"x": 1}, "nested": {"name": "Widget"}},
        {"_item": "red", "productId": "P3", "nested": {"name": "Tags"}},
        {"_item": None, "productId": "P3", "nested": {"name": "Tags"}},
    ]
    out[0]["m"]["x"] = 99
    assert out[1]["m"] == {"x": 1}


def test_it_expands_merging_the_parent(apply_ops):
    ops = [{"op": "expand", "args": {"path": "variants", "mergeParent": True}}]
    out = apply_ops(ops, PRODUCTS).records
    assert out == [
        {"id": "P1", "name": "Widget", "meta": {"x": 1}, "sku": "S"},
        {"id": "P1", "name": "Widget", "meta": {"x": 1}, "sku": "M"},
        {"id": "P2", "name": "Gizmo", "variants": []},
        {"id": "P3", "name": "Tags", "_item": "red"},
        {"id": "P3", "name": "Tags", "_item": None},
    ]
    out[0]["meta"]["x"] = 2
    assert out[1]["meta"] == {"x": 1}


def test_it_expands_elements_alone_and_drops_empty_arrays(apply_ops):
    ops = [{"op": "expand", "args": {"path": "variants"}}]
    result = apply_ops(ops, PRODUCTS)
    assert result.records == [{"sku": "S"}, {"sku": "M"}, {"_item": "red"}, {"_item": None}]


def test_it_expands_a_nested_path_and_removes_it_when_merging(apply_ops):
    ops = [{"op": "expand", "args": {"path": "order.lines", "mergeParent": True}}]
    rows = [{"order": {"no": 7, "lines": [{"sku": "A"}]}}]
    assert apply_ops(ops, rows).records == [{"order": {"no": 7}, "sku": "A"}]


def test_it_does_not_change_the_input_when_expanding(apply_ops):
    rows = [{"v": [{"a": 1}, {"a": 2}], "p": 1}]
    apply_ops([{"op": "expand", "args": {"path": "v", "mergeParent": True}}], rows)
    assert rows == [{"v": [{"a": 1}, {"a": 2}], "p": 1}]


def test_it_describes_every_aggregation_operator():
    codes = [
        "aggregate",
        "count",
        "unique",
        "deduplicateRecords",
        "flatten",
        "first",
        "last",
        "expand",
        "multiJoin",
    ]
    for code in codes:
        entry = registry.get(code)
        assert entry.category == "aggregation"
        assert entry.description
        assert entry.schema["additionalProperties"] is False
        for name, prop in entry.schema["properties"].items():
            assert prop.get("description"), (code, name)
