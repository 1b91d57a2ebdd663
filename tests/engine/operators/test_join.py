"""multiJoin: the record join, against inline rows or another step's output."""

import time

import pytest

import pipelines.operators  # noqa: F401  (registers the built-in operators)
from pipelines.errors import ConfigError
from pipelines.operators.base import OperatorContext
from pipelines.operators.chain import OperatorChain, OperatorFailed
from pipelines.registry import operators as registry

ORDERS = [
    {"id": 1, "customer": "c1", "total": 10},
    {"id": 2, "customer": "c2", "total": 20},
    {"id": 3, "customer": "c9", "total": 30},
]
CUSTOMERS = [
    {"cid": "c1", "name": "Ada", "tier": "gold"},
    {"cid": "c2", "name": "Bob"},
    {"cid": "c3", "name": "Cy", "tier": "new"},
]


def join(**args):
    return [
        {
            "op": "multiJoin",
            "args": {"leftKey": "customer", "rightKey": "cid", "rightData": CUSTOMERS, **args},
        }
    ]


def test_it_inner_joins_with_a_prefix(apply_ops):
    out = apply_ops(join(type="INNER", prefix="c"), ORDERS).records
    assert out == [
        {"id": 1, "customer": "c1", "total": 10, "c_cid": "c1", "c_name": "Ada", "c_tier": "gold"},
        {"id": 2, "customer": "c2", "total": 20, "c_cid": "c2", "c_name": "Bob", "c_tier": None},
    ]


def test_it_left_joins_by_default_with_nulls_for_misses(apply_ops):
    out = apply_ops(join(select=["name"]), ORDERS).records
    assert [r["name"] for r in out] == ["Ada", "Bob", None]
    assert len(out) == 3


def test_it_right_and_full_joins_append_unmatched_right_rows(apply_ops):
    right = apply_ops(join(type="RIGHT", prefix="r_", select=["name"]), ORDERS).records
    assert right == [
        {"id": 1, "customer": "c1", "total": 10, "r_name": "Ada"},
        {"id": 2, "customer": "c2", "total": 20, "r_name": "Bob"},
        {"id": None, "customer": None, "total": None, "r_name": "Cy"},
    ]
    full = apply_ops(join(type="FULL", prefix="r", select=["name"]), ORDERS).records
    assert [r["id"] for r in full] == [1, 2, 3, None]
    assert full[2]["r_name"] is None and full[3]["r_name"] == "Cy"


def test_it_overwrites_left_fields_without_a_prefix(apply_ops):
    rows = [{"k": 1, "name": "left"}]
    out = apply_ops(
        [
            {
                "op": "multiJoin",
                "args": {"leftKey": "k", "rightKey": "k", "rightData": [{"k": 1, "name": "right"}]},
            }
        ],
        rows,
    ).records
    assert out == [{"k": 1, "name": "right"}]


def test_it_joins_on_nested_key_paths(apply_ops):
    rows = [{"ref": {"id": "x"}}]
    args = {
        "leftKey": "ref.id",
        "rightKey": "meta.code",
        "rightData": [{"meta": {"code": "x"}, "v": 1}],
        "type": "INNER",
        "select": ["v"],
    }
    assert apply_ops([{"op": "multiJoin", "args": args}], rows).records == [{"ref": {"id": "x"}, "v": 1}]


def test_it_joins_on_composite_keys(apply_ops):
    rows = [{"sku": "A", "wh": 1}, {"sku": "A", "wh": 2}, {"sku": "B", "wh": 1}, {"sku": "A"}]
    stock = [{"s": "A", "w": 1, "qty": 5}, {"s": "A", "w": 2, "qty": 7}, {"s": "B", "w": "1", "qty": 9}]
    args = {"leftKey": ["sku", "wh"], "rightKey": ["s", "w"], "rightData": stock, "select": ["qty"]}
    out = apply_ops([{"op": "multiJoin", "args": args}], rows).records
    assert [r["qty"] for r in out] == [5, 7, None, None]


def test_it_refuses_composite_keys_of_different_lengths(apply_ops):
    args = {"leftKey": ["a", "b"], "rightKey": "a", "rightData": []}
    with pytest.raises(ConfigError, match="same number of paths"):
        apply_ops([{"op": "multiJoin", "args": args}], [{"a": 1}])


def test_it_copies_right_values_per_output_row(apply_ops):
    rows = [{"k": 1}, {"k": 1}]
    args = {"leftKey": "k", "rightKey": "k", "rightData": [{"k": 1, "tags": ["a"]}], "prefix": "r"}
    out = apply_ops([{"op": "multiJoin", "args": args}], rows).records
    out[0]["r_tags"].append("b")
    assert out[1]["r_tags"] == ["a"]
    assert args["rightData"] == [{"k": 1, "tags": ["a"]}]


def test_it_does_not_change_its_input(apply_ops):
    rows = [{"k": 1, "nested": {"a": 1}}]
    args = {
        "leftKey": "k",
        "rightKey": "k",
        "rightData": [{"k": 1, "x": 1}, {"k": 1, "x": 2}],
        "type": "INNER",
    }
    out = apply_ops([{"op": "multiJoin", "args": args}], rows).records
    out[0]["nested"]["a"] = 2
    assert rows == [{"k": 1, "nested": {"a": 1}}]
    assert out[1]["nested"] == {"a": 1}


def step_context(outputs):
    def context(i):
        return OperatorContext(op_index=i, step_outputs=lambda key: outputs[key])

    return context


def test_it_joins_another_steps_output(apply_ops):
    outputs = {"prices": [{"sku": "A", "price": 3}, {"sku": "B", "price": 4}]}
    ops = [
        {
            "op": "multiJoin",
            "args": {
                "leftKey": "sku",
                "rightKey": "sku",
                "rightDataPath": "$.steps.prices.output",
                "select": ["price"],
                "type": "INNER",
            },
        }
    ]
    out = apply_ops(ops, [{"sku": "B"}, {"sku": "Z"}], context_for=step_context(outputs)).records
    assert out == [{"sku": "B", "price": 4}]
    assert outputs["prices"] == [{"sku": "A", "price": 3}, {"sku": "B", "price": 4}]


def test_it_takes_more_than_10000_rows_from_a_step():
    outputs = {"big": [{"id": n} for n in range(12_000)]}
    ops = [
        {
            "op": "multiJoin",
            "args": {
                "leftKey": "id",
                "rightKey": "id",
                "rightDataPath": "$.steps.big.output",
                "type": "INNER",
                "prefix": "r",
            },
        }
    ]
    out = OperatorChain(ops, context_for=step_context(outputs)).apply([{"id": 11_999}]).records
    assert out == [{"id": 11_999, "r_id": 11_999}]


def test_it_names_the_referenced_step_for_the_graph():
    spec = registry.get("multiJoin").impl
    assert spec.references({"rightDataPath": "$.steps.price-list.v2.output"}) == ["price-list.v2"]
    assert spec.references({"rightData": []}) == []
    assert spec.references({"rightDataPath": "steps.x"}) == []  # malformed: reported by the config check
    assert spec.needs_all_records is False  # the left side streams; RIGHT/FULL finish at the end
    assert spec.finish is not None


def test_it_makes_the_referenced_step_a_dependency():
    from pipelines import graph
    from pipelines.definition import parse

    definition = parse(
        {
            "version": 1,
            "steps": [
                {"key": "orders", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": []}},
                {
                    "key": "join",
                    "type": "TRANSFORM",
                    "config": {
                        "operators": [
                            {
                                "op": "multiJoin",
                                "args": {
                                    "leftKey": "id",
                                    "rightKey": "id",
                                    "rightDataPath": "$.steps.prices.output",
                                },
                            }
                        ]
                    },
                },
                {"key": "prices", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": []}},
                {"key": "report", "type": "TRANSFORM", "config": {"operators": []}},
            ],
            # No edge leads from prices to join: the rightDataPath reference alone orders them.
            "edges": [
                {"from": "orders", "to": "join"},
                {"from": "join", "to": "report"},
                {"from": "prices", "to": "report"},
            ],
        },
        check_plugins=False,
    )
    order = graph.topological_order(definition)
    assert order.index("prices") < order.index("join")


@pytest.mark.parametrize(
    "args, message",
    [
        ({"rightDataPath": "$.steps.prices"}, "rightDataPath must look like '$.steps.<stepKey>.output'"),
        ({"rightDataPath": "$.steps..output"}, "rightDataPath must look like"),
        ({"rightDataPath": "$.steps.prices.output", "rightData": []}, "either rightData or rightDataPath"),
        ({"rightDataPath": "$.steps.nope.output"}, "step 'nope' has no output"),
        ({}, "rightData must be an array"),
        ({"rightData": [], "maxOutputRecords": 1e9}, "maxOutputRecords must be an integer between"),
    ],
)
def test_it_refuses_bad_right_sides(apply_ops, args, message):
    ops = [{"op": "multiJoin", "args": {"leftKey": "id", "rightKey": "id", **args}}]
    with pytest.raises(Exception) as info:
        apply_ops(ops, [{"id": 1}], context_for=step_context({"prices": []}))
    assert message in str(info.value)


@pytest.mark.parametrize("args", [{"prefix": 3}, {"maxOutputRecords": True}, {"unknown": 1}])
def test_it_checks_the_schema_before_running(args):
    with pytest.raises(ConfigError):
        OperatorChain(
            [{"op": "multiJoin", "args": {"leftKey": "id", "rightKey": "id", "rightData": [], **args}}]
        )


def test_it_needs_step_outputs_for_a_right_data_path(apply_ops):
    ops = [
        {"op": "multiJoin", "args": {"leftKey": "id", "rightKey": "id", "rightDataPath": "$.steps.a.output"}}
    ]
    with pytest.raises(OperatorFailed, match="not available here"):
        apply_ops(ops, [{"id": 1}])


def test_it_accepts_an_integral_float_ceiling(apply_ops):
    ops = [
        {
            "op": "multiJoin",
            "args": {"leftKey": "id", "rightKey": "id", "rightData": [], "maxOutputRecords": 2.0},
        }
    ]
    assert len(apply_ops(ops, [{"id": 1}, {"id": 2}]).records) == 2


def test_it_joins_in_linear_time():
    n = 20_000
    left = [{"id": i, "v": i} for i in range(n)]
    outputs = {"right": [{"id": i, "w": -i} for i in range(n)]}
    ops = [
        {
            "op": "multiJoin",
            "args": {
                "leftKey": "id",
                "rightKey": "id",
                "rightDataPath": "$.steps.right.output",
                "type": "FULL",
                "prefix": "r",
                "maxOutputRecords": 100_000,
            },
        }
    ]
    started = time.monotonic()
    out = OperatorChain(ops, context_for=step_context(outputs)).apply(left).records
    assert len(out) == n
    assert out[-1] == {"id": n - 1, "v": n - 1, "r_id": n - 1, "r_w": -(n - 1)}
    assert time.monotonic() - started < 5  # a nested loop would take minutes
