"""JavaScript semantics written once (pipelines.js): every operator and condition that means String(),
parseFloat or a JavaScript regex gets the same answer, the one Node gives."""

import pytest

import pipelines.operators  # noqa: F401  (registers the built-in operators)
from pipelines import js
from pipelines.conditions import compile_condition
from pipelines.errors import ConfigError
from pipelines.operators.chain import OperatorChain

EDGE_NUMBERS = [
    (1.5e-5, "0.000015"),  # fixed notation down to 1e-6, as Node writes it (the lookup copy wrote 1.5e-5)
    (1e-7, "1e-7"),
    (1e21, "1e+21"),
    (10**21, "1e+21"),  # an int from 1e21 up is written as the number JavaScript holds
    (2**53 + 1, "9007199254740993"),  # below 1e21 every digit of an exact int is kept
    (-0.0, "0"),
    (20.0, "20"),
    (0.1 + 0.2, "0.30000000000000004"),
]


@pytest.mark.parametrize(("value", "text"), EDGE_NUMBERS)
def test_it_writes_numbers_as_javascripts_string_does(value, text):
    assert js.string(value) == text


@pytest.mark.parametrize(("value", "text"), EDGE_NUMBERS)
def test_it_gives_lookup_template_and_case_the_same_text(value, text):
    """lookup (enrichment), template (data) and the condition 'eq' on a text all use js.string."""
    lookup = OperatorChain([{"op": "lookup", "args": {"source": "v", "map": {text: "hit"}, "target": "t"}}])
    assert lookup.apply([{"v": value}]).records[0]["t"] == "hit"
    template = OperatorChain([{"op": "template", "args": {"template": "${v}", "target": "t"}}])
    assert template.apply([{"v": value}]).records[0]["t"] == text


def test_it_reads_numbers_as_parsefloat_does():
    assert [js.parse_float(t) for t in ["12abc", " 1e3x", ".5", "abc", "1e999", "٣"]] == [12, 1000, 0.5, None,
                                                                                       None, None]


@pytest.mark.parametrize("text", ["123", "١٢٣", "12a"])
def test_a_condition_and_extractregex_agree_on_digits(text):
    """JavaScript's \\d is ASCII: '١٢٣' (Arabic-Indic digits) matches neither (Python's \\d would match)."""
    condition = compile_condition({"field": "v", "cmp": "regex", "value": r"^\d+$"})
    extract = OperatorChain([{"op": "extractRegex", "args": {"source": "v", "target": "t", "pattern": r"^\d+$",
                                                              "group": 0}}])
    matched = extract.apply([{"v": text}]).records[0]["t"] is not None
    assert condition({"v": text}) == matched == (text == "123")


def test_one_guard_refuses_for_conditions_validation_and_operators():
    pattern = "((ab)+c){50}"  # missed by the plugin's three checks, caught by the nesting scan
    assert js.regex_problem(pattern)
    with pytest.raises(js.RegexError):
        js.regex(pattern)
    with pytest.raises(ConfigError, match="backtrack catastrophically"):
        compile_condition({"field": "v", "cmp": "regex", "value": pattern})
    with pytest.raises(ConfigError, match="backtrack catastrophically"):
        OperatorChain([{"op": "replaceRegex", "args": {"path": "v", "pattern": pattern, "replacement": ""}}])


def test_it_refuses_a_flag_given_twice_or_unknown():
    with pytest.raises(js.RegexError, match="given twice") as twice:
        js.regex("a", "ii")
    assert twice.value.part == "flags"
    with pytest.raises(js.RegexError, match="unsupported regex flag 'x'"):
        js.regex("a", "x")
