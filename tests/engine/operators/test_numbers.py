"""Numeric operators (research/vendure-data-hub.md §2.3): math, currency, unit, toNumber, toString,
parseNumber, formatNumber, toCents, round. Numbers follow JavaScript's rules (see numbers.py)."""

import orjson
import pytest

from pipelines.js import number_text as js_number_to_string
from pipelines.operators.chain import OperatorChain
from pipelines.operators.numbers import js_round
from tests.engine.operators.helpers import one, refused

NBSP, NNBSP = "\u00a0", "\u202f"


NOT_NUMBERS = [
    pytest.param({}, id="missing"),
    pytest.param({"v": None}, id="null"),
    pytest.param({"v": "12"}, id="numeric-string"),
    pytest.param({"v": True}, id="bool"),
    pytest.param({"v": [1]}, id="array"),
]


# --- JavaScript helpers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (20.0, "20"), (-0.0, "0"), (2.5, "2.5"), (0.1 + 0.2, "0.30000000000000004"), (1e21, "1e+21"),
        (1.5e-7, "1.5e-7"), (0.000001, "0.000001"), (123456789012345680.0, "123456789012345680"),
        (-1.25e-10, "-1.25e-10"), (1.7976931348623157e308, "1.7976931348623157e+308"),
    ],
)  # fmt: skip
def test_it_writes_numbers_as_javascript_does(value, text):
    assert js_number_to_string(value) == text


@pytest.mark.parametrize(
    ("value", "rounded"), [(2.5, 3), (-2.5, -2), (-2.6, -3), (0.49999999999999994, 0), (1999.5, 2000)]
)
def test_it_rounds_halves_up_like_math_round(value, rounded):
    assert js_round(value) == rounded


# --- math ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "value", "operand", "expected"),
    [
        ("add", 20, "2.50", 22.5),
        ("subtract", 20, "2", 18),
        ("multiply", 99.5, "0.05", 4.9750000000000005),
        ("divide", 10, "4", 2.5),
        ("modulo", 10, "3", 1),
        ("modulo", -10, "3", -1),
        ("power", 1500, "2", 2250000),
        ("abs", -0.15, None, 0.15),
        ("round", 2.5, None, 3),
        ("round", -2.5, None, -2),
        ("floor", 99.5, None, 99),
        ("ceil", 99.1, None, 100),
    ],
)
def test_it_does_math(apply_ops, operation, value, operand, expected):
    args = {"operation": operation, "source": "v", "target": "t"}
    if operand is not None:
        args["operand"] = operand
    assert one(apply_ops, "math", args, {"v": value})["t"] == expected


def test_it_writes_whole_results_as_integers(apply_ops):
    out = one(
        apply_ops, "math", {"operation": "add", "source": "v", "operand": "0.5", "target": "t"}, {"v": 19.5}
    )
    assert out["t"] == 20 and type(out["t"]) is int


def test_it_rounds_the_result_to_decimals_like_javascript(apply_ops):
    args = {"operation": "multiply", "source": "v", "operand": "0.05", "target": "t", "decimals": 2}
    assert one(apply_ops, "math", args, {"v": 99.5})["t"] == 4.98


@pytest.mark.parametrize(("operation", "expected"), [("round", 19.13), ("floor", 19.12), ("ceil", 19.13)])
def test_it_uses_decimals_as_the_precision_of_round_floor_and_ceil(apply_ops, operation, expected):
    args = {"operation": operation, "source": "v", "target": "t", "decimals": 2}
    assert one(apply_ops, "math", args, {"v": 19.125})["t"] == expected


def test_it_ignores_negative_decimals(apply_ops):
    args = {"operation": "divide", "source": "v", "operand": "3", "target": "t", "decimals": -1}
    assert one(apply_ops, "math", args, {"v": 1})["t"] == 1 / 3


def test_it_reads_the_operand_from_the_record_with_a_dollar_path(apply_ops):
    args = {"operation": "multiply", "source": "price", "operand": "$line.qty", "target": "total"}
    assert one(apply_ops, "math", args, {"price": 2.5, "line": {"qty": 4}})["total"] == 10


@pytest.mark.parametrize("record", [{"v": 7}, {"v": 7, "o": "3"}, {"v": 7, "o": None}])
def test_it_copies_the_value_when_the_operand_path_is_not_a_number(apply_ops, record):
    args = {"operation": "add", "source": "v", "operand": "$o", "target": "t"}
    assert one(apply_ops, "math", args, record)["t"] == 7


def test_it_copies_the_value_without_an_operand(apply_ops):
    assert one(apply_ops, "math", {"operation": "add", "source": "v", "target": "t"}, {"v": 7})["t"] == 7


def test_it_accepts_a_number_operand(apply_ops):
    args = {"operation": "subtract", "source": "v", "operand": 1.5, "target": "t"}
    assert one(apply_ops, "math", args, {"v": 4})["t"] == 2.5


@pytest.mark.parametrize(
    ("operation", "value", "operand"),
    [("divide", 5, "0"), ("modulo", 5, "0"), ("power", 10, "400"), ("power", -8, "0.5"), ("power", 0, "-1")],
)
def test_it_keeps_the_value_where_the_result_would_not_be_finite(apply_ops, operation, value, operand):
    args = {"operation": operation, "source": "v", "operand": operand, "target": "t"}
    assert one(apply_ops, "math", args, {"v": value})["t"] == value


@pytest.mark.parametrize("record", NOT_NUMBERS)
def test_it_leaves_non_numbers_alone_in_math(apply_ops, record):
    args = {"operation": "add", "source": "v", "operand": "1", "target": "t"}
    assert one(apply_ops, "math", args, dict(record)) == record


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"source": "v", "target": "t"}, "operation"),
        ({"operation": "sqrt", "source": "v", "target": "t"}, "operation"),
        ({"operation": "add", "source": "v", "target": "t", "operand": "abc"}, "operand"),
        ({"operation": "add", "source": "v", "target": "t", "operand": "$"}, "operand"),
        ({"operation": "add", "source": "v"}, "target"),
    ],
)
def test_it_refuses_a_bad_math_config(args, field):
    assert field in refused("math", args)


# --- currency, toCents -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decimals", "mode", "value", "expected"),
    [(2, None, 19.99, 1999), (2, "round", 20, 2000), (0, None, 1234.5, 1235), (3, "floor", 1.2345, 1234),
     (2, "ceil", 0.011, 2), (2, "floor", -0.011, -2)],
)  # fmt: skip
def test_it_converts_to_minor_units(apply_ops, decimals, mode, value, expected):
    args = {"source": "v", "target": "t", "decimals": decimals}
    if mode:
        args["round"] = mode
    out = one(apply_ops, "currency", args, {"v": value})
    assert out["t"] == expected and type(out["t"]) is int


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    # 0.285 * 100 is 28.499999999999996 in floating point, so it rounds down (as in the plugin).
    [("round", 19.995, 2000), ("floor", 19.999, 1999), ("ceil", 19.001, 1901), (None, 0.285, 28)],
)
def test_it_converts_to_cents(apply_ops, mode, value, expected):
    args = {"source": "v", "target": "t"} | ({"round": mode} if mode else {})
    assert one(apply_ops, "toCents", args, {"v": value})["t"] == expected


@pytest.mark.parametrize("op", ["currency", "toCents"])
@pytest.mark.parametrize("record", NOT_NUMBERS)
def test_it_leaves_non_numbers_alone_in_minor_units(apply_ops, op, record):
    args = (
        {"source": "v", "target": "t", "decimals": 2} if op == "currency" else {"source": "v", "target": "t"}
    )
    assert one(apply_ops, op, args, dict(record)) == record


@pytest.mark.parametrize(
    "args",
    [{"source": "v", "target": "t"}, {"source": "v", "target": "t", "decimals": 2, "round": "up"},
     {"source": "v", "target": "t", "decimals": 21}],
)  # fmt: skip
def test_it_refuses_a_bad_currency_config(args):
    refused("currency", args)


def test_it_keeps_amounts_too_large_for_minor_units_as_floats(apply_ops):
    out = one(apply_ops, "currency", {"source": "v", "target": "t", "decimals": 2}, {"v": 1e17})
    assert out["t"] == 1e19 and type(out["t"]) is float
    orjson.dumps(out)  # an int this large would not serialise


# --- round -----------------------------------------------------------------------------------------------


def test_it_rounds_like_javascript_not_like_python(apply_ops):
    # 19.995 * 100 is exactly 1999.5 in binary floating point; Python's round(19.995, 2) gives 19.99.
    assert one(apply_ops, "round", {"source": "v", "target": "t", "decimals": 2}, {"v": 19.995})["t"] == 20


def test_it_rounds_in_place_to_an_integer_by_default(apply_ops):
    out = one(apply_ops, "round", {"source": "v"}, {"v": 2.5})
    assert out == {"v": 3} and type(out["v"]) is int


@pytest.mark.parametrize(("mode", "expected"), [("round", 1.24), ("floor", 1.23), ("ceil", 1.24)])
def test_it_rounds_by_mode(apply_ops, mode, expected):
    assert (
        one(apply_ops, "round", {"source": "v", "decimals": 2, "mode": mode}, {"v": 1.235})["v"] == expected
    )


@pytest.mark.parametrize(("decimals", "expected"), [(-3, 1235), (99, 1234.56789)])
def test_it_clamps_decimals_to_0_to_20(apply_ops, decimals, expected):
    assert one(apply_ops, "round", {"source": "v", "decimals": decimals}, {"v": 1234.56789})["v"] == expected


def test_it_leaves_huge_numbers_unchanged(apply_ops):
    assert one(apply_ops, "round", {"source": "v", "decimals": 20}, {"v": 1e300})["v"] == 1e300


@pytest.mark.parametrize("record", NOT_NUMBERS)
def test_it_leaves_non_numbers_unrounded(apply_ops, record):
    assert one(apply_ops, "round", {"source": "v", "target": "t"}, dict(record)) == record


def test_it_refuses_an_unknown_round_mode():
    assert "mode" in refused("round", {"source": "v", "mode": "half-even"})


# --- unit ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source_unit", "target_unit", "value", "expected"),
    [("g", "kg", 1500, 1.5), ("g", "kg", 250, 0.25), ("kg", "lb", 2, 4.40924), ("cm", "m", 250, 2.5),
     ("in", "cm", 10, 25.4), ("gal", "l", 2, 7.57082), ("ml", "ml", 5, 5)],
)  # fmt: skip
def test_it_converts_units(apply_ops, source_unit, target_unit, value, expected):
    args = {"source": "v", "target": "t", "from": source_unit, "to": target_unit}
    assert one(apply_ops, "unit", args, {"v": value})["t"] == pytest.approx(expected)


@pytest.mark.parametrize("record", NOT_NUMBERS)
def test_it_leaves_non_numbers_unconverted(apply_ops, record):
    assert (
        one(apply_ops, "unit", {"source": "v", "target": "t", "from": "g", "to": "kg"}, dict(record))
        == record
    )


def test_it_refuses_converting_across_kinds():
    assert refused("unit", {"source": "v", "target": "t", "from": "kg", "to": "m"}) == (
        "operators[0].args.to: cannot convert weight (kg) to length (m)"
    )


def test_it_refuses_an_unknown_unit():
    assert "from" in refused("unit", {"source": "v", "target": "t", "from": "stone", "to": "kg"})


# --- toNumber --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("19.995", 19.995), ("10", 10), (" 12abc", 12), (".5", 0.5), ("1e3", 1000), ("-0.0", 0), (7, 7),
     (2.5, 2.5), (True, 1), (False, 0)],
)  # fmt: skip
def test_it_converts_to_a_number(apply_ops, value, expected):
    out = one(apply_ops, "toNumber", {"source": "v", "target": "t"}, {"v": value})
    assert out["t"] == expected and type(out["t"]) is type(expected)


@pytest.mark.parametrize("record", [{}, {"v": None}, {"v": "abc"}, {"v": ""}, {"v": "Infinity"}, {"v": [1]}])
def test_it_writes_null_when_nothing_parses(apply_ops, record):
    assert one(apply_ops, "toNumber", {"source": "v", "target": "t"}, dict(record)) == {**record, "t": None}


@pytest.mark.parametrize("record", [{}, {"v": None}, {"v": "abc"}])
def test_it_writes_the_default_when_nothing_parses(apply_ops, record):
    assert one(apply_ops, "toNumber", {"source": "v", "target": "t", "default": -1}, dict(record))["t"] == -1


def test_it_keeps_zero_rather_than_the_default(apply_ops):
    assert one(apply_ops, "toNumber", {"source": "v", "target": "t", "default": -1}, {"v": 0})["t"] == 0


def test_it_converts_to_a_number_in_place_without_a_target(apply_ops):
    assert one(apply_ops, "toNumber", {"source": "v"}, {"v": "42"}) == {"v": 42}


def test_it_refuses_a_non_numeric_default():
    assert "default" in refused("toNumber", {"source": "v", "default": "zero"})


# --- toString --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(10, "10"), (20.0, "20"), (0.5, "0.5"), (True, "true"), ("x", "x"), (None, ""), ([1, None, "a"], "1,,a"),
     ({"a": 1}, "[object Object]")],
)  # fmt: skip
def test_it_converts_to_a_string_as_javascript_does(apply_ops, value, expected):
    assert one(apply_ops, "toString", {"source": "v", "target": "t"}, {"v": value})["t"] == expected


def test_it_writes_an_empty_string_for_a_missing_source(apply_ops):
    assert one(apply_ops, "toString", {"source": "v", "target": "t"}, {}) == {"t": ""}


def test_it_converts_to_a_string_in_place_without_a_target(apply_ops):
    assert one(apply_ops, "toString", {"source": "v"}, {"v": 3}) == {"v": "3"}


# --- parseNumber -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "text", "expected"),
    [
        (None, "1,234.56", 1234.56),
        ("en-US", "1,234.56", 1234.56),
        ("de-DE", "2.500,00", 2500),
        ("de-DE", "1 234,56", 1),  # the space is not de-DE's separator: parsing stops there, as in the plugin
        ("de", "1.234,5", 1234.5),
        ("de-AT", "1.234,5", 1234.5),
        ("fr-FR", "1" + NNBSP + "234,56", 1234.56),
        ("fr-FR", "1 234,56", 1234.56),
        ("sv-SE", "1" + NBSP + "234,5", 1234.5),
        ("es-ES", "1.234,5", 1234.5),
        ("it-IT", "-1.234,5 €", -1234.5),
        ("nl-NL", "12,5", 12.5),
        ("pt-BR", "R$ 3,5", None),
        ("de-CH", "1'234.5", 1234.5),
        ("ja-JP", "1,234", 1234),
        ("de_DE", "3,5", 3.5),
    ],
)
def test_it_parses_localized_numbers(apply_ops, locale, text, expected):
    args = {"source": "v", "target": "t"} | ({"locale": locale} if locale else {})
    assert one(apply_ops, "parseNumber", args, {"v": text})["t"] == expected


def test_it_keeps_a_number_and_falls_back_to_the_default(apply_ops):
    args = {"source": "v", "target": "t", "locale": "de-DE", "default": 0}
    assert one(apply_ops, "parseNumber", args, {"v": 5.5})["t"] == 5.5
    assert one(apply_ops, "parseNumber", args, {"v": "abc"})["t"] == 0
    assert one(apply_ops, "parseNumber", args, {})["t"] == 0
    assert one(apply_ops, "parseNumber", args, {"v": True})["t"] == 0


def test_it_writes_null_when_parsing_fails_without_a_default(apply_ops):
    assert one(apply_ops, "parseNumber", {"source": "v"}, {"v": None}) == {"v": None}
    assert one(apply_ops, "parseNumber", {"source": "v"}, {"v": "n/a"}) == {"v": None}


def test_it_falls_back_to_en_us_for_an_unknown_locale_with_a_warning():
    chain = OperatorChain([{"op": "parseNumber", "args": {"source": "v", "locale": "xx-YY"}}])
    assert chain.apply([{"v": "1,234.5"}]).records == [{"v": 1234.5}]
    assert "xx-YY" in chain.operators[0].ctx.warnings[0]


def test_it_refuses_a_malformed_locale():
    assert "locale" in refused("parseNumber", {"source": "v", "locale": "not a locale!"})


# --- formatNumber ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "value", "expected"),
    [
        ({}, 1234.5678, "1,234.568"),
        ({}, 0.1 + 0.2, "0.3"),
        ({"decimals": 2}, 1.005, "1.01"),  # Intl rounds the shortest decimal form, half away from zero
        ({"decimals": 2}, -1.005, "-1.01"),
        ({"decimals": 0}, 2.5, "3"),
        ({"useGrouping": False, "decimals": 1}, 1234567, "1234567.0"),
        ({"locale": "de-DE", "decimals": 2}, 1234567.891, "1.234.567,89"),
        ({"locale": "fr-FR"}, 1234.5, "1" + NNBSP + "234,5"),
        ({"locale": "es-ES"}, 1234.5, "1234,5"),
        ({"locale": "es-ES"}, 12345.5, "12.345,5"),
        ({"locale": "en-IN"}, 12345678, "1,23,45,678"),
        ({"locale": "sv-SE"}, -1234.5, "\u22121" + NBSP + "234,5"),
        ({"locale": "de-CH"}, 1234.5, "1’234.5"),
        ({"style": "percent"}, 0.256, "26%"),
        ({"style": "percent", "decimals": 1}, 0.0056, "0.6%"),
        ({"style": "percent", "locale": "de-DE"}, 0.25, "25" + NBSP + "%"),
        ({"style": "currency", "currency": "USD", "decimals": 2}, 20, "$20.00"),
        ({"style": "currency", "currency": "USD"}, 99.5, "$99.50"),
        ({"style": "currency", "currency": "usd"}, -1234.5, "-$1,234.50"),
        ({"style": "currency", "currency": "EUR"}, 1234.5, "€1,234.50"),
        ({"style": "currency", "currency": "JPY"}, 1234.5, "¥1,235"),
        ({"style": "currency", "currency": "CHF"}, 5, "CHF" + NBSP + "5.00"),
        ({"style": "currency", "currency": "USD", "locale": "en-GB"}, 5, "US$5.00"),
        ({"style": "currency", "currency": "EUR", "locale": "de-DE"}, 1234.5, "1.234,50" + NBSP + "€"),
        (
            {"style": "currency", "currency": "EUR", "locale": "fr-FR"},
            -1234.5,
            "-1" + NNBSP + "234,50" + NBSP + "€",
        ),
        ({"style": "currency", "currency": "EUR", "locale": "nl-NL"}, -5, "€" + NBSP + "-5,00"),
        ({"style": "currency", "currency": "BRL", "locale": "pt-BR"}, 1234.5, "R$" + NBSP + "1.234,50"),
        ({"style": "currency", "currency": "SEK", "locale": "sv-SE"}, 10, "10,00" + NBSP + "kr"),
        ({"style": "currency", "currency": "JPY", "locale": "ja-JP"}, 1000, "￥1,000"),
        ({"style": "currency", "currency": "KWD"}, 1, "KWD" + NBSP + "1.000"),
        ({"style": "currency"}, 1234.5, "1,234.5"),
        ({"locale": "xx"}, 1234.5, "1,234.5"),
    ],
)
def test_it_formats_numbers_like_intl(apply_ops, args, value, expected):
    out = one(apply_ops, "formatNumber", {"source": "v", "target": "t", **args}, {"v": value})
    assert out["t"] == expected


def test_it_formats_negative_zero_with_its_sign(apply_ops):
    assert (
        one(apply_ops, "formatNumber", {"source": "v", "target": "t", "decimals": 2}, {"v": -0.001})["t"]
        == "-0.00"
    )


@pytest.mark.parametrize("record", NOT_NUMBERS)
def test_it_leaves_non_numbers_unformatted(apply_ops, record):
    assert one(apply_ops, "formatNumber", {"source": "v", "target": "t"}, dict(record)) == record


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"style": "money"}, "style"),
        ({"style": "currency", "currency": "DOLLARS"}, "currency"),
        ({"decimals": 21}, "decimals"),
        ({"locale": "en US"}, "locale"),
        ({"useGrouping": "yes"}, "useGrouping"),
    ],
)
def test_it_refuses_a_bad_format_config(args, field):
    assert field in refused("formatNumber", {"source": "v", "target": "t", **args})


def test_it_warns_about_a_currency_style_without_a_currency():
    chain = OperatorChain(
        [{"op": "formatNumber", "args": {"source": "v", "target": "t", "style": "currency"}}]
    )
    assert "currency" in chain.operators[0].ctx.warnings[0]


# --- shared ----------------------------------------------------------------------------------------------


def test_it_does_not_change_the_input_records(apply_ops):
    records = [{"v": "2"}]
    apply_ops(
        [{"op": "toNumber", "args": {"source": "v"}}, {"op": "round", "args": {"source": "v"}}], records
    )
    assert records == [{"v": "2"}]
