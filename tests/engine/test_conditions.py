"""The 19 comparators and compiled conditions (shared by when, ifThenElse and ROUTE)."""

import pytest

from pipelines.conditions import (
    COMPARATORS,
    CONDITION_SCHEMA,
    compile_condition,
    compile_conditions,
    strict_equal,
)
from pipelines.errors import ConfigError
from pipelines.js import glob_regex, regex_problem
from pipelines.js import number_text as js_number
from pipelines.js import regex as js_regex
from pipelines.js import string as js_string
from pipelines.records import MISSING
from pipelines.registry import schema_problems


def check(cmp, actual, value=None):
    """The comparator alone and the compiled condition must agree."""
    direct = COMPARATORS[cmp](actual, value)
    record = {} if actual is MISSING else {"f": actual}
    compiled = compile_condition({"field": "f", "cmp": cmp, "value": value})(record)
    assert direct == compiled, (cmp, actual, value)
    return direct


def test_it_has_the_nineteen_comparators_of_the_plugin():
    assert sorted(COMPARATORS) == sorted(
        [
            "eq", "ne", "gt", "gte", "lt", "lte", "in", "notIn", "contains", "notContains", "startsWith",
            "endsWith", "regex", "matches", "exists", "notExists", "isNull", "isEmpty", "isNotEmpty",
        ]
    )  # fmt: skip


# eq / ne


def test_it_compares_eq_strictly_without_coercion():
    assert check("eq", "a", "a")
    assert not check("eq", "1", 1)
    assert not check("eq", 1, "1")
    assert not check("eq", True, 1)
    assert not check("eq", 1, True)
    assert not check("eq", 0, False)
    assert check("eq", 1, 1.0)
    assert check("eq", 1.0, 1)
    assert check("eq", True, True)
    assert not check("eq", False, None)


def test_it_reads_a_missing_field_as_null():
    assert check("eq", MISSING, None)
    assert check("eq", None, None)
    assert not check("eq", MISSING, "x")
    assert check("ne", MISSING, "x")
    assert not check("ne", MISSING, None)


def test_it_compares_lists_and_objects_by_content():
    assert check("eq", [1, "a"], [1, "a"])
    assert not check("eq", [1, "a"], ["a", 1])
    assert check("eq", {"a": [1, {"b": 2}]}, {"a": [1.0, {"b": 2}]})
    assert not check("eq", {"a": 1}, {"a": True})
    assert not check("eq", [1], {"0": 1})
    assert check("ne", [1], [2])


def test_it_keeps_ne_the_negation_of_eq():
    for a, b in [("a", "a"), (1, "1"), (True, 1), (None, None), ([1], [1]), (2, 2.0)]:
        assert check("ne", a, b) is not check("eq", a, b)


# gt / gte / lt / lte


def test_it_orders_numbers_only():
    assert check("gt", 5, 3)
    assert not check("gt", 3, 3)
    assert check("gte", 3, 3.0)
    assert check("lt", -1.5, 0)
    assert check("lte", 2, 2)
    assert not check("gt", "5", 3)
    assert not check("gt", True, 0)
    assert not check("lt", None, 1)
    assert not check("lt", MISSING, 1)
    assert not check("gte", [5], 1)


def test_it_returns_false_for_a_non_number_value_when_called_directly():
    assert COMPARATORS["gt"](5, "3") is False
    assert COMPARATORS["lte"](5, None) is False


# in / notIn


def test_it_tests_membership_strictly():
    assert check("in", "b", ["a", "b"])
    assert not check("in", "c", ["a", "b"])
    assert not check("in", 1, ["1"])
    assert not check("in", True, [1])
    assert not check("in", 1, [True])
    assert check("in", 2, [1.0, 2.0])
    assert check("in", None, [None, "x"])
    assert check("in", MISSING, [None])
    assert not check("in", MISSING, ["x"])
    assert check("in", [1], [[1], [2]])
    assert check("notIn", "c", ["a", "b"])
    assert not check("notIn", "a", ["a"])
    assert check("notIn", True, [1, "true"])


def test_it_gives_false_for_in_and_notin_without_a_list_when_called_directly():
    assert COMPARATORS["in"]("a", "abc") is False
    assert COMPARATORS["notIn"]("a", "xyz") is False


# contains / notContains / startsWith / endsWith


def test_it_tests_substrings_on_strings_only():
    assert check("contains", "hello world", "lo w")
    assert not check("contains", "hello", "x")
    assert check("notContains", "hello", "x")
    assert not check("notContains", "hello", "ell")
    assert check("startsWith", "SKU-1", "SKU")
    assert not check("startsWith", "x-SKU", "SKU")
    assert check("endsWith", "file.csv", ".csv")
    assert not check("endsWith", "file.csv", ".json")


def test_it_gives_false_for_string_comparators_on_other_types():
    # As in the plugin: contains is a substring test, not list membership, and notContains on a
    # non-string is false too (not "does not contain").
    assert not check("contains", ["a", "b"], "a")
    assert not check("notContains", ["a", "b"], "c")
    assert not check("startsWith", 123, "1")
    assert not check("endsWith", None, "")
    assert not check("contains", MISSING, "a")


# regex / matches


def test_it_searches_with_a_regex_in_javascript_syntax():
    assert check("regex", "order-123", r"\d+")
    assert not check("regex", "order", r"\d+")
    assert check("regex", "abc", "^a")
    assert not check("regex", "ABC", "^a")
    assert not check("regex", 123, r"\d")
    assert not check("regex", None, ".*")


def test_it_gives_false_for_an_unsafe_regex_when_called_directly():
    assert COMPARATORS["regex"]("aaaa", "(a+)+$") is False
    assert COMPARATORS["regex"]("a", "[") is False


def test_it_matches_globs_against_the_whole_string():
    assert check("matches", "report-2024.csv", "report-*.csv")
    assert check("matches", "a1", "a?")
    assert not check("matches", "a12", "a?")
    assert not check("matches", "xreport.csv", "report*")
    assert check("matches", "a.b", "a.b")
    assert not check("matches", "axb", "a.b")
    assert check("matches", "(x)[y]", "(x)[y]")
    assert not check("matches", 5, "*")


# exists / notExists / isNull / isEmpty / isNotEmpty


def test_it_keeps_exists_and_notexists_the_right_way_round():
    assert check("exists", "x")
    assert check("exists", 0)
    assert check("exists", "")
    assert check("exists", False)
    assert not check("exists", None)
    assert not check("exists", MISSING)
    assert check("notExists", None)
    assert check("notExists", MISSING)
    assert not check("notExists", 0)


def test_it_treats_null_and_missing_alike_for_isnull():
    assert check("isNull", None)
    assert check("isNull", MISSING)
    assert not check("isNull", "")
    assert not check("isNull", 0)


def test_it_counts_empty_string_null_missing_and_empty_list_as_empty():
    for value in ["", None, MISSING, []]:
        assert check("isEmpty", value), value
        assert not check("isNotEmpty", value), value
    for value in [" ", 0, False, {}, [None], "x"]:
        assert not check("isEmpty", value), value
        assert check("isNotEmpty", value), value


def test_it_ignores_value_for_presence_comparators():
    assert compile_condition({"field": "a", "cmp": "exists", "value": "anything"})({"a": 1})
    assert compile_condition({"field": "a", "cmp": "isEmpty"})({})


# compiling


def test_it_defaults_cmp_to_eq():
    test = compile_condition({"field": "status", "value": "active"})
    assert test({"status": "active"})
    assert not test({"status": "inactive"})


def test_it_accepts_operator_as_an_alias_of_cmp():
    test = compile_condition({"field": "price", "operator": "gt", "value": 10})
    assert test({"price": 11})
    assert not test({"price": 10})


def test_it_accepts_cmp_and_operator_when_they_agree():
    assert compile_condition({"field": "a", "cmp": "eq", "operator": "eq", "value": 1})({"a": 1})


def test_it_refuses_cmp_and_operator_that_disagree():
    with pytest.raises(ConfigError) as err:
        compile_condition({"field": "a", "cmp": "eq", "operator": "ne", "value": 1})
    assert err.value.field == "cmp"


def test_it_reads_nested_paths():
    test = compile_condition({"field": "customer.address.city", "cmp": "eq", "value": "Berlin"})
    assert test({"customer": {"address": {"city": "Berlin"}}})
    assert not test({"customer": {}})
    assert not test({"customer": "Berlin"})
    assert compile_condition({"field": "lines[0].qty", "cmp": "gt", "value": 1})({"lines": [{"qty": 2}]})


def test_it_refuses_an_unknown_comparator_with_a_suggestion():
    with pytest.raises(ConfigError) as err:
        compile_condition({"field": "a", "cmp": "greaterThan", "value": 1})
    assert "unknown comparator 'greaterThan'" in str(err.value)
    assert "isNotEmpty" in str(err.value)  # lists the known ones
    assert err.value.field == "cmp"
    with pytest.raises(ConfigError, match="did you mean 'startsWith'"):
        compile_condition({"field": "a", "cmp": "startswith", "value": "x"})
    with pytest.raises(ConfigError, match="did you mean 'notExists'"):
        compile_condition({"field": "a", "operator": "notExist"})


@pytest.mark.parametrize(
    "cond, field",
    [
        ("price > 0", None),
        ({"cmp": "eq", "value": 1}, "field"),
        ({"field": "", "cmp": "eq"}, "field"),
        ({"field": 5, "cmp": "eq"}, "field"),
        ({"field": "a.__proto__", "cmp": "eq"}, "field"),
        ({"field": "a", "cmp": "eq", "valeu": 1}, None),
        ({"field": "a", "cmp": 3}, "cmp"),
        ({"field": "a", "cmp": "gt", "value": "10"}, "value"),
        ({"field": "a", "cmp": "lte", "value": True}, "value"),
        ({"field": "a", "cmp": "in", "value": "abc"}, "value"),
        ({"field": "a", "cmp": "notIn", "value": None}, "value"),
        ({"field": "a", "cmp": "contains", "value": 1}, "value"),
        ({"field": "a", "cmp": "matches", "value": None}, "value"),
        ({"field": "a", "cmp": "regex", "value": "("}, "value"),
        ({"field": "a", "cmp": "regex", "value": "(a+)+"}, "value"),
        ({"field": "a", "cmp": "regex", "value": "x" * 300}, "value"),
    ],
)
def test_it_refuses_a_bad_condition_at_compile_time(cond, field):
    with pytest.raises(ConfigError) as err:
        compile_condition(cond)
    assert err.value.field == field


def test_it_prefixes_error_fields_with_the_given_location():
    with pytest.raises(ConfigError) as err:
        compile_condition({"field": "a", "cmp": "nope"}, field="condition")
    assert err.value.field == "condition.cmp"
    with pytest.raises(ConfigError) as err:
        compile_conditions([{"field": "a"}, {"field": "b", "cmp": "gt", "value": "x"}], field="conditions")
    assert err.value.field == "conditions[1].value"


def test_it_ands_a_list_of_conditions():
    test = compile_conditions(
        [
            {"field": "status", "cmp": "eq", "value": "active"},
            {"field": "price", "cmp": "gt", "value": 20},
            {"field": "sku", "cmp": "startsWith", "value": "A"},
        ]
    )
    assert test({"status": "active", "price": 21, "sku": "A1"})
    assert not test({"status": "active", "price": 20, "sku": "A1"})
    assert not test({"status": "inactive", "price": 21, "sku": "A1"})
    two = compile_conditions([{"field": "a", "value": 1}, {"field": "b", "value": 2}])
    assert two({"a": 1, "b": 2}) and not two({"a": 1, "b": 3})


def test_it_treats_an_empty_condition_list_as_always_true():
    assert compile_conditions([])({"anything": 1})


def test_it_refuses_conditions_that_are_not_a_list():
    with pytest.raises(ConfigError):
        compile_conditions({"field": "a"})


def test_it_describes_one_condition_in_its_schema():
    assert schema_problems(CONDITION_SCHEMA, {"field": "a", "cmp": "eq", "value": [1]}) == []
    assert schema_problems(CONDITION_SCHEMA, {"field": "a", "operator": "isEmpty"}) == []
    assert schema_problems(CONDITION_SCHEMA, {"field": "a", "cmp": "bogus"})
    assert schema_problems(CONDITION_SCHEMA, {"cmp": "eq"})
    assert schema_problems(CONDITION_SCHEMA, {"field": "a", "extra": 1})
    assert set(CONDITION_SCHEMA["properties"]["cmp"]["enum"]) == set(COMPARATORS)


@pytest.mark.parametrize(
    "cmp, value, actual, expected",
    [
        ("eq", "x", "x", True),
        ("eq", True, 1, False),
        ("eq", 2, 2.0, True),
        ("eq", 2, True, False),
        ("eq", None, MISSING, True),
        ("eq", [1], [1], True),
        ("ne", "x", 1, True),
        ("ne", False, 0, True),
        ("in", ["a", 1, None], 1.0, True),
        ("in", ["a", 1, None], True, False),
        ("in", ["a", 1, None], None, True),
        ("in", [{"a": 1}], {"a": 1}, True),
        ("notIn", ["a", 1], "b", True),
        ("notIn", ["a", 1], 1, False),
    ],
)
def test_it_specialises_common_cases_without_changing_their_meaning(cmp, value, actual, expected):
    record = {} if actual is MISSING else {"f": actual}
    assert compile_condition({"field": "f", "cmp": cmp, "value": value})(record) is expected
    assert COMPARATORS[cmp](actual, value) is expected


# JavaScript semantics helpers


def test_it_equals_numbers_across_int_and_float_but_never_bools():
    assert strict_equal(1, 1.0)
    assert not strict_equal(1, True)
    assert not strict_equal(None, 0)
    assert not strict_equal("a", ["a"])


@pytest.mark.parametrize(
    "value, text",
    [
        (1, "1"),
        (1.0, "1"),
        (-0.0, "0"),
        (1.5, "1.5"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e-7, "1e-7"),
        (0.000001, "0.000001"),
        (123e-20, "1.23e-18"),
        (2**70, "1.1805916207174113e+21"),
        (float("inf"), "Infinity"),
    ],
)
def test_it_writes_numbers_as_javascript_does(value, text):
    assert js_number(value) == text


def test_it_converts_values_to_text_as_javascript_string_does():
    assert js_string(True) == "true"
    assert js_string(None) == "null"
    assert js_string([1, None, [2, "x"]]) == "1,,2,x"
    assert js_string({"a": 1}) == "[object Object]"
    assert js_string(2.50) == "2.5"


def test_it_compiles_javascript_regexes_with_javascript_meaning():
    assert js_regex(r"^\d+$").search("123")
    assert not js_regex(r"^\d+$").search("123\n")  # $ is the end of the text
    assert not js_regex(r"\d").search("٣")  # \d is ASCII
    assert not js_regex(r"^\w+$").search("é")
    assert js_regex(r"\s").search("\u00a0")
    assert not js_regex("a.b").search("a\rb")  # . stops at every line break
    assert js_regex("a.b", "s").search("a\nb")
    assert js_regex("^b$", "m").search("a\nb\nc")
    assert js_regex("ABC", "i").search("abc")
    assert js_regex(r"(?<y>\d{4})-\k<y>").search("2024-2024")
    assert js_regex(r"\bcat\b").search("a cat!")
    assert not js_regex(r"\bcat\b").search("concat")
    assert js_regex(r"[^]").search("\n")
    assert not js_regex(r"[]").search("x")
    assert js_regex(r"\/\e").search("/e")


def test_it_refuses_patterns_the_plugin_considers_unsafe():
    assert regex_problem("(a+)+") and regex_problem("(.*)*x")
    assert regex_problem("a*+") and regex_problem(r"(a)\1+")
    assert regex_problem("x" * 257)
    assert regex_problem("") and regex_problem(None)
    assert regex_problem(r"^[^@]+@[^@]+\.[^@]+$") is None
    with pytest.raises(ValueError):
        js_regex("(a*)*")
    with pytest.raises(ValueError, match="flag"):
        js_regex("a", "x")


def test_it_turns_globs_into_anchored_patterns():
    assert glob_regex("*.csv").fullmatch("a.csv")
    assert glob_regex("*").fullmatch("line1\nline2")
    assert not glob_regex("a*").fullmatch("ba")
