"""JSON operators: parseJson, stringifyJson, pick, omit; and the JSON.stringify text they write."""

import pytest

import pipelines.operators  # noqa: F401  (registers the built-in operators)
from pipelines.errors import ConfigError
from pipelines.operators.chain import OperatorChain
from pipelines.operators.json_ops import js_json, parse_json_text
from pipelines.registry import operators as registry


def one(apply_ops, op, args, record):
    result = apply_ops([{"op": op, "args": args}], [record])
    assert not result.failures
    return result.records[0]


# parseJson


def test_it_parses_json_text_into_the_target(apply_ops):
    out = one(
        apply_ops, "parseJson", {"source": "raw", "target": "meta"}, {"raw": '{"w": 1.5, "tags": ["a"]}'}
    )
    assert out == {"raw": '{"w": 1.5, "tags": ["a"]}', "meta": {"w": 1.5, "tags": ["a"]}}


def test_it_parses_in_place_without_a_target(apply_ops):
    assert one(apply_ops, "parseJson", {"source": "raw"}, {"raw": "[1, 2]"}) == {"raw": [1, 2]}
    assert one(apply_ops, "parseJson", {"source": "raw"}, {"raw": '"text"'}) == {"raw": "text"}
    assert one(apply_ops, "parseJson", {"source": "raw"}, {"raw": "null"}) == {"raw": None}


def test_it_leaves_invalid_json_unchanged(apply_ops):
    for raw in ["{not json", "", "NaN", "Infinity", "{'a': 1}", "1 2"]:
        assert one(apply_ops, "parseJson", {"source": "raw", "target": "t"}, {"raw": raw}) == {"raw": raw}


def test_it_leaves_missing_null_and_non_string_sources_unchanged(apply_ops):
    for record in [{}, {"raw": None}, {"raw": {"a": 1}}, {"raw": 5}]:
        assert one(apply_ops, "parseJson", {"source": "raw", "target": "t"}, dict(record)) == record


def test_it_parses_like_json_parse():
    assert parse_json_text("123456789012345678901234567890") == 1.2345678901234568e29  # a JS number
    assert parse_json_text('"\\ud800"') == "\ud800"
    with pytest.raises(ValueError):
        parse_json_text("NaN")


# stringifyJson


def test_it_writes_compact_json_text_as_javascript_does(apply_ops):
    record = {"m": {"weight": 1.5, "d": {"w": 10.0}, "name": 'é"x'}}
    out = one(apply_ops, "stringifyJson", {"source": "m", "target": "s"}, record)
    assert out["s"] == '{"weight":1.5,"d":{"w":10},"name":"é\\"x"}'


def test_it_indents_by_two_when_pretty(apply_ops):
    out = one(
        apply_ops,
        "stringifyJson",
        {"source": "m", "target": "s", "pretty": True},
        {"m": {"a": [1, {}], "b": []}},
    )
    assert out["s"] == '{\n  "a": [\n    1,\n    {}\n  ],\n  "b": []\n}'


def test_it_stringifies_scalars_in_place(apply_ops):
    assert one(apply_ops, "stringifyJson", {"source": "v"}, {"v": "x"}) == {"v": '"x"'}
    assert one(apply_ops, "stringifyJson", {"source": "v"}, {"v": False}) == {"v": "false"}
    assert one(apply_ops, "stringifyJson", {"source": "v"}, {"v": 2.0}) == {"v": "2"}


def test_it_leaves_null_and_missing_values_for_stringify(apply_ops):
    assert one(apply_ops, "stringifyJson", {"source": "v", "target": "t"}, {"v": None}) == {"v": None}
    assert one(apply_ops, "stringifyJson", {"source": "v", "target": "t"}, {}) == {}


def test_it_orders_integer_like_keys_first_as_javascript_does():
    assert js_json({"b": 1, "10": 2, "2": 3, "01": 4}) == '{"2":3,"10":2,"b":1,"01":4}'


@pytest.mark.parametrize(
    "value, text",
    [
        (None, "null"),
        (True, "true"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (float("nan"), "null"),
        ([1, None, "a\nb"], '[1,null,"a\\nb"]'),
        ({}, "{}"),
        ("\u2028\x1f", '"\u2028\\u001f"'),
    ],
)
def test_it_writes_json_text_like_json_stringify(value, text):
    assert js_json(value) == text


# pick / omit


def test_it_picks_only_the_listed_paths(apply_ops):
    record = {"id": 1, "name": "A", "secret": "x", "meta": {"a": 1, "b": 2}}
    out = one(apply_ops, "pick", {"fields": ["id", "meta.b", "missing"]}, record)
    assert out == {"id": 1, "meta": {"b": 2}}


def test_it_picks_null_values(apply_ops):
    assert one(apply_ops, "pick", {"fields": ["a"]}, {"a": None, "b": 1}) == {"a": None}


def test_it_picks_nothing_from_an_empty_list(apply_ops):
    assert one(apply_ops, "pick", {"fields": []}, {"a": 1}) == {}


def test_it_omits_the_listed_paths(apply_ops):
    record = {"id": 1, "secret": "x", "meta": {"debug": 1, "keep": 2}}
    out = one(apply_ops, "omit", {"fields": ["secret", "meta.debug", "nope", "meta.nope.deeper"]}, record)
    assert out == {"id": 1, "meta": {"keep": 2}}


@pytest.mark.parametrize(
    "op, args",
    [
        ("parseJson", {}),
        ("parseJson", {"source": ""}),
        ("parseJson", {"source": "a", "target": "b.__proto__"}),
        ("stringifyJson", {"source": "a", "pretty": "yes"}),
        ("pick", {}),
        ("pick", {"fields": "id"}),
        ("pick", {"fields": ["ok", "constructor"]}),
        ("omit", {"fields": [1]}),
        ("omit", {"fields": ["a"], "extra": 1}),
    ],
)
def test_it_refuses_a_bad_json_operator_config(op, args):
    with pytest.raises(ConfigError) as err:
        OperatorChain([{"op": op, "args": args}])
    assert err.value.field.startswith("operators[0].args")


def test_it_registers_json_operators_with_their_category():
    for code in ("parseJson", "stringifyJson", "pick", "omit"):
        entry = registry.get(code)
        assert entry.category == "json"
        assert entry.schema["additionalProperties"] is False
        assert all(p.get("description") for p in entry.schema["properties"].values())
