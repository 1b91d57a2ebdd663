"""Validation operators: validateRequired, validateFormat (they annotate, never drop)."""

import pytest

import pipelines.operators  # noqa: F401  (registers the built-in operators)
from pipelines.errors import ConfigError
from pipelines.operators.chain import OperatorChain
from pipelines.registry import operators as registry

EMAIL = r"^[^@]+@[^@]+\.[^@]+$"


def errors_of(apply_ops, items, records):
    result = apply_ops(items, records)
    assert not result.failures and len(result.records) == len(records)
    return [r.get("_validationErrors") for r in result.records]


def required(fields, **extra):
    return {"op": "validateRequired", "args": {"fields": fields, **extra}}


def fmt(field="email", pattern=EMAIL, **extra):
    return {"op": "validateFormat", "args": {"field": field, "pattern": pattern, **extra}}


def test_it_flags_missing_null_blank_and_empty_values(apply_ops):
    records = [{"a": None}, {}, {"a": "  \t"}, {"a": []}, {"a": {}}, {"a": "\u00a0\ufeff"}]
    for errs in errors_of(apply_ops, [required(["a"])], records):
        assert errs == [{"field": "a", "message": "Field 'a' is required", "rule": "required"}]


def test_it_accepts_present_values_including_zero_and_false(apply_ops):
    records = [{"a": 0}, {"a": False}, {"a": "x"}, {"a": [None]}, {"a": {"k": None}}]
    assert errors_of(apply_ops, [required(["a"])], records) == [None] * 5


def test_it_adds_no_error_field_to_a_valid_record(apply_ops):
    result = apply_ops([required(["a"])], [{"a": 1}])
    assert result.records == [{"a": 1}]


def test_it_reports_each_missing_field_in_order(apply_ops):
    (errs,) = errors_of(apply_ops, [required(["a", "b.c", "d"])], [{"b": {"c": ""}, "d": 1}])
    assert [e["field"] for e in errs] == ["a", "b.c"]


def test_it_appends_to_an_existing_error_list_and_a_custom_error_field(apply_ops):
    record = {"errs": [{"field": "x", "message": "earlier", "rule": "custom"}]}
    out = apply_ops([required(["a"], errorField="errs")], [record]).records[0]
    assert [e["message"] for e in out["errs"]] == ["earlier", "Field 'a' is required"]
    out = apply_ops(
        [required(["a"], errorField="meta.errors")], [{"meta": {"errors": "not a list"}}]
    ).records[0]
    assert out["meta"]["errors"] == [{"field": "a", "message": "Field 'a' is required", "rule": "required"}]


def test_it_gives_each_record_its_own_error_objects(apply_ops):
    first, second = apply_ops([required(["a"])], [{}, {}]).records
    first["_validationErrors"][0]["message"] = "changed"
    assert second["_validationErrors"][0]["message"] == "Field 'a' is required"


def test_it_flags_a_value_that_does_not_match_the_format(apply_ops):
    records = [{"email": "a@b.co"}, {"email": "bob-at-invalid"}]
    assert errors_of(apply_ops, [fmt()], records) == [
        None,
        [{"field": "email", "message": "Field 'email' does not match required format", "rule": "format"}],
    ]


def test_it_uses_the_custom_error_message(apply_ops):
    (errs,) = errors_of(apply_ops, [fmt(errorMessage="Invalid email format")], [{"email": "nope"}])
    assert errs == [{"field": "email", "message": "Invalid email format", "rule": "format"}]


def test_it_skips_empty_values_in_format_checks(apply_ops):
    records = [{}, {"email": None}, {"email": ""}, {"email": "   "}, {"email": []}]
    assert errors_of(apply_ops, [fmt()], records) == [None] * 5


def test_it_flags_a_non_string_value_in_format_checks(apply_ops):
    (errs,) = errors_of(apply_ops, [fmt(field="n", pattern=r"^\d+$")], [{"n": 12}])
    assert errs == [
        {"field": "n", "message": "Field 'n' must be a string for format validation", "rule": "format"}
    ]


def test_it_searches_rather_than_matching_the_whole_value(apply_ops):
    assert errors_of(apply_ops, [fmt(field="s", pattern=r"\d")], [{"s": "ab1"}, {"s": "ab"}])[0] is None


def test_it_reads_the_pattern_as_javascript(apply_ops):
    # $ is the end of the text (not before a final newline) and \d is ASCII only.
    records = [{"s": "123\n"}, {"s": "١٢٣"}]
    errs = errors_of(apply_ops, [fmt(field="s", pattern=r"^\d+$")], records)
    assert all(e and e[0]["rule"] == "format" for e in errs)


def test_it_combines_both_validators_in_one_error_list(apply_ops):
    (errs,) = errors_of(apply_ops, [required(["name"]), fmt()], [{"email": "x"}])
    assert [e["rule"] for e in errs] == ["required", "format"]


@pytest.mark.parametrize(
    "item",
    [
        {"op": "validateRequired", "args": {}},
        {"op": "validateRequired", "args": {"fields": "a"}},
        {"op": "validateRequired", "args": {"fields": ["__proto__"]}},
        {"op": "validateRequired", "args": {"fields": ["a"], "errorField": ""}},
        {"op": "validateFormat", "args": {"field": "a"}},
        {"op": "validateFormat", "args": {"pattern": "x"}},
        {"op": "validateFormat", "args": {"field": "a", "pattern": "("}},
        {"op": "validateFormat", "args": {"field": "a", "pattern": "(a+)+$"}},
        {"op": "validateFormat", "args": {"field": "a", "pattern": "x", "message": "m"}},
    ],
)
def test_it_refuses_a_bad_validation_config(item):
    with pytest.raises(ConfigError) as err:
        OperatorChain([item])
    assert err.value.field.startswith("operators[0]")


def test_it_registers_validation_operators_with_their_category():
    for code in ("validateRequired", "validateFormat"):
        entry = registry.get(code)
        assert entry.category == "validation"
        assert entry.schema["additionalProperties"] is False
        assert entry.schema["properties"]["errorField"]["default"] == "_validationErrors"
        assert all(p.get("description") for p in entry.schema["properties"].values())
