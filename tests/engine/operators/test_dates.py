"""Date operators (research/vendure-data-hub.md §2.2): dateFormat, dateParse, dateAdd, dateDiff, now. All UTC."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from pipelines.operators.base import OperatorContext
from pipelines.operators.chain import OperatorChain
from pipelines.operators.dates import days_from_civil, iso_string, parse_iso, split_ms
from tests.engine.operators.helpers import one, refused

JAN_15 = 1705276800000  # 2024-01-15T00:00:00.000Z in epoch ms


NOT_DATES = [
    pytest.param({}, id="missing"),
    pytest.param({"v": None}, id="null"),
    pytest.param({"v": "yesterday"}, id="text"),
    pytest.param({"v": "2024-02-30"}, id="impossible"),
    pytest.param({"v": True}, id="bool"),
    pytest.param({"v": {"y": 2024}}, id="object"),
]


# --- calendar helpers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "day", [date(1970, 1, 1), date(2024, 2, 29), date(1, 1, 1), date(9999, 12, 31), date(1600, 3, 1)]
)
def test_it_counts_days_like_the_proleptic_gregorian_calendar(day):
    days = days_from_civil(day.year, day.month, day.day)
    assert days == (day - date(1970, 1, 1)).days
    assert split_ms(days * 86_400_000)[:3] == (day.year, day.month, day.day)


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2024-01-15", "2024-01-15T00:00:00.000Z"),
        ("2024-01-15T10:30", "2024-01-15T10:30:00.000Z"),
        ("2024-01-15T10:30:45.1234Z", "2024-01-15T10:30:45.123Z"),
        ("2024-01-15T10:30:00+02:00", "2024-01-15T08:30:00.000Z"),
        ("2024-01-15T00:30:00-0130", "2024-01-15T02:00:00.000Z"),
    ],
)
def test_it_parses_iso_strings_in_utc(text, iso):
    assert iso_string(parse_iso(text)) == iso


@pytest.mark.parametrize(
    "text",
    [
        "2024-02-30",
        "2024-13-01",
        "2024-01-15T24:00",
        "2024-01-15 10:30",
        "15/01/2024",
        "2024-01-15T10:30:00+25:00",
        "2024-1-5",
        "",
    ],
)
def test_it_rejects_strings_that_are_not_valid_iso_dates(text):
    assert parse_iso(text) is None


# --- dateFormat ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        ("2024-01-15", "DD/MM/YYYY", "15/01/2024"),
        ("2024-06-01T05:04:03.000Z", "DD/MM/YYYY HH:mm:ss", "01/06/2024 05:04:03"),
        ("2024-06-01T23:30:00-02:00", "YYYY-MM-DD HH:mm", "2024-06-02 01:30"),
        (JAN_15 + 3_600_000, "YYYY-MM-DDTHH", "2024-01-15T01"),
        (float(JAN_15), "DD.MM.YYYY", "15.01.2024"),
        (datetime(2024, 1, 15, 12, tzinfo=timezone(timedelta(hours=5))), "HH:mm", "07:00"),
        (datetime(2024, 1, 15, 12), "HH", "12"),
        (date(2024, 1, 15), "YYYYMMDD", "20240115"),
        ("2024-01-15", "Q1 100% [YYYY]", "Q1 100% [2024]"),
        ("2024-01-15", "YYYY YYYY", "2024 2024"),
    ],
)
def test_it_formats_dates(apply_ops, value, fmt, expected):
    assert (
        one(apply_ops, "dateFormat", {"source": "v", "target": "t", "format": fmt}, {"v": value})["t"]
        == expected
    )


def test_it_reads_the_source_with_an_input_format(apply_ops):
    args = {"source": "v", "target": "t", "format": "YYYY-MM-DD", "inputFormat": "DD.MM.YYYY HH:mm"}
    assert one(apply_ops, "dateFormat", args, {"v": "31.12.2024 23:59"})["t"] == "2024-12-31"


def test_it_prefers_the_input_format_and_falls_back_to_iso(apply_ops):
    args = {"source": "v", "target": "t", "format": "DD/MM/YYYY", "inputFormat": "YYYY-DD-MM"}
    assert one(apply_ops, "dateFormat", args, {"v": "2024-05-06"})["t"] == "05/06/2024"
    assert one(apply_ops, "dateFormat", args, {"v": "2024-01-31T10:00:00Z"})["t"] == "31/01/2024"


def test_it_formats_repeated_values_the_same_way(apply_ops):
    result = apply_ops(
        [{"op": "dateFormat", "args": {"source": "v", "target": "t", "format": "DD/MM"}}],
        [{"v": "2024-01-15"}, {"v": "bad"}, {"v": "2024-01-15"}, {"v": "bad"}],
    )
    assert [r.get("t") for r in result.records] == ["15/01", None, "15/01", None]


@pytest.mark.parametrize("record", NOT_DATES)
def test_it_leaves_unparseable_dates_unformatted(apply_ops, record):
    assert (
        one(apply_ops, "dateFormat", {"source": "v", "target": "t", "format": "YYYY"}, dict(record)) == record
    )


def test_it_leaves_dates_outside_four_digit_years_unformatted(apply_ops):
    assert one(apply_ops, "dateFormat", {"source": "v", "target": "t", "format": "YYYY"}, {"v": -1e14}) == {
        "v": -1e14
    }


def test_it_warns_that_a_timezone_is_ignored():
    chain = OperatorChain(
        [
            {
                "op": "dateFormat",
                "args": {"source": "v", "target": "t", "format": "HH", "timezone": "Europe/Berlin"},
            }
        ]
    )
    assert chain.apply([{"v": "2024-01-15T10:00:00Z"}]).records[0]["t"] == "10"
    assert "Europe/Berlin" in chain.operators[0].ctx.warnings[0]
    assert (
        OperatorChain([{"op": "now", "args": {"target": "t", "timezone": "UTC"}}]).operators[0].ctx.warnings
        == []
    )


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"source": "v", "target": "t"}, "format"),
        ({"source": "v", "target": "t", "format": ""}, "format"),
        ({"source": "v", "target": "t", "format": "Y" * 65}, "format"),
        ({"source": "v", "target": "t", "format": "DD", "inputFormat": "YYYY-YYYY"}, "inputFormat"),
        ({"source": "v", "target": "t", "format": "DD", "inputFormat": "nothing"}, "inputFormat"),
        ({"source": "v", "target": "t", "format": "DD", "locale": "de"}, "locale"),
    ],
)
def test_it_refuses_a_bad_date_format_config(args, field):
    assert field in refused("dateFormat", args)


# --- dateParse -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fmt", "iso"),
    [
        ("15/03/2024", "DD/MM/YYYY", "2024-03-15T00:00:00.000Z"),
        ("31.12.2024 23:59:58", "DD.MM.YYYY HH:mm:ss", "2024-12-31T23:59:58.000Z"),
        ("2024-02-29", "YYYY-MM-DD", "2024-02-29T00:00:00.000Z"),
        ("10:30", "HH:mm", "1970-01-01T10:30:00.000Z"),
        ("(2024) 07", "(YYYY) MM", "2024-07-01T00:00:00.000Z"),
    ],
)
def test_it_parses_a_string_with_its_format_into_iso(apply_ops, text, fmt, iso):
    assert one(apply_ops, "dateParse", {"source": "v", "target": "t", "format": fmt}, {"v": text})["t"] == iso


@pytest.mark.parametrize(
    ("text", "fmt"),
    [("2024-02-31", "YYYY-MM-DD"), ("2024/02/29", "YYYY-MM-DD"), ("24:00:00", "HH:mm:ss"),
     ("2024-01-15", "DD/MM/YYYY"), ("2024-01-15T00:00:00Z", "YYYY-MM-DD"), ("١٢/٠١/٢٠٢٤", "DD/MM/YYYY")],
)  # fmt: skip
def test_it_does_not_fall_back_to_other_formats(apply_ops, text, fmt):
    assert one(apply_ops, "dateParse", {"source": "v", "target": "t", "format": fmt}, {"v": text}) == {
        "v": text
    }


@pytest.mark.parametrize("record", [{}, {"v": None}, {"v": JAN_15}, {"v": ["15/03/2024"]}])
def test_it_leaves_non_strings_unparsed(apply_ops, record):
    assert (
        one(apply_ops, "dateParse", {"source": "v", "target": "t", "format": "DD/MM/YYYY"}, dict(record))
        == record
    )


@pytest.mark.parametrize("fmt", ["YYYY-YYYY", "no tokens", "DD/MM/YYYY" * 10])
def test_it_refuses_a_format_it_cannot_parse_with(fmt):
    assert "format" in refused("dateParse", {"source": "v", "target": "t", "format": fmt})


# --- dateAdd ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "amount", "unit", "iso"),
    [
        ("2024-01-15", 30, "days", "2024-02-14T00:00:00.000Z"),
        ("2025-06-30", -7, "days", "2025-06-23T00:00:00.000Z"),
        ("2024-01-15", 1, "years", "2025-01-15T00:00:00.000Z"),
        ("2024-02-29", 1, "years", "2025-03-01T00:00:00.000Z"),
        ("2024-01-31", 1, "months", "2024-03-02T00:00:00.000Z"),
        ("2024-03-31", -1, "months", "2024-03-02T00:00:00.000Z"),
        ("2024-11-15T10:00:00Z", 14, "months", "2026-01-15T10:00:00.000Z"),
        ("2024-01-15", -13, "months", "2022-12-15T00:00:00.000Z"),
        ("2024-01-15", 2, "weeks", "2024-01-29T00:00:00.000Z"),
        ("2024-01-15", 36, "hours", "2024-01-16T12:00:00.000Z"),
        ("2024-01-15", -1, "minutes", "2024-01-14T23:59:00.000Z"),
        ("2024-01-15", 90, "seconds", "2024-01-15T00:01:30.000Z"),
        (JAN_15, 1, "days", "2024-01-16T00:00:00.000Z"),
        ("2024-01-15", 1.5, "days", "2024-01-16T00:00:00.000Z"),
        ("2024-01-15", 0.5, "weeks", "2024-01-18T00:00:00.000Z"),
    ],
)
def test_it_adds_time_in_utc(apply_ops, value, amount, unit, iso):
    args = {"source": "v", "target": "t", "amount": amount, "unit": unit}
    assert one(apply_ops, "dateAdd", args, {"v": value})["t"] == iso


@pytest.mark.parametrize("record", NOT_DATES)
def test_it_leaves_unparseable_dates_unadded(apply_ops, record):
    args = {"source": "v", "target": "t", "amount": 1, "unit": "days"}
    assert one(apply_ops, "dateAdd", args, dict(record)) == record


def test_it_leaves_a_result_outside_the_date_range_unwritten(apply_ops):
    args = {"source": "v", "target": "t", "amount": 1e9, "unit": "years"}
    assert one(apply_ops, "dateAdd", args, {"v": "2024-01-15"}) == {"v": "2024-01-15"}


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"amount": 1}, "unit"),
        ({"amount": 1, "unit": "day"}, "unit"),
        ({"unit": "days"}, "amount"),
        ({"amount": "1", "unit": "days"}, "amount"),
    ],
)
def test_it_refuses_a_bad_date_add_config(args, field):
    assert field in refused("dateAdd", {"source": "v", "target": "t", **args})


# --- dateDiff --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "expected"),
    [("days", 532), ("months", 17.47700394218134), ("weeks", 76), ("hours", 12768), ("minutes", 766080),
     ("seconds", 45964800), ("years", 532 / 365.25)],
)  # fmt: skip
def test_it_measures_the_difference_in_a_unit(apply_ops, unit, expected):
    args = {"startDate": "a", "endDate": "b", "target": "t", "unit": unit}
    out = one(apply_ops, "dateDiff", args, {"a": "2024-01-15", "b": "2025-06-30"})
    assert out["t"] == pytest.approx(expected, rel=1e-12)


def test_it_writes_whole_differences_as_integers(apply_ops):
    args = {"startDate": "a", "endDate": "b", "target": "t", "unit": "days"}
    out = one(apply_ops, "dateDiff", args, {"a": "2024-01-15", "b": JAN_15 + 86_400_000})
    assert out["t"] == 1 and type(out["t"]) is int


def test_it_keeps_the_sign_unless_absolute(apply_ops):
    args = {"startDate": "a", "endDate": "b", "target": "t", "unit": "hours"}
    record = {"a": "2024-01-15T12:00:00Z", "b": "2024-01-15T00:00:00Z"}
    assert one(apply_ops, "dateDiff", args, dict(record))["t"] == -12
    assert one(apply_ops, "dateDiff", {**args, "absolute": True}, dict(record))["t"] == 12


@pytest.mark.parametrize(
    "record", [{"a": "2024-01-15"}, {"a": "2024-01-15", "b": None}, {"a": "bad", "b": "2024-01-15"}]
)
def test_it_writes_null_when_a_date_is_missing_or_invalid(apply_ops, record):
    args = {"startDate": "a", "endDate": "b", "target": "t", "unit": "days"}
    assert one(apply_ops, "dateDiff", args, dict(record)) == {**record, "t": None}


@pytest.mark.parametrize("missing", ["startDate", "endDate", "target", "unit"])
def test_it_refuses_a_date_diff_without_a_required_arg(missing):
    args = {"startDate": "a", "endDate": "b", "target": "t", "unit": "days"}
    del args[missing]
    assert f"'{missing}' is required" in refused("dateDiff", args)


# --- now -------------------------------------------------------------------------------------------------

FIXED = datetime(2024, 3, 5, 7, 8, 9, 123456, tzinfo=UTC)


def run_now(apply_ops, args, records, clock=lambda: FIXED):
    return apply_ops(
        [{"op": "now", "args": args}], records, context_for=lambda i: OperatorContext(op_index=i, now=clock)
    ).records


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (None, "2024-03-05T07:08:09.123Z"),
        ("ISO", "2024-03-05T07:08:09.123Z"),
        ("timestamp", 1709622489123),
        ("date", "2024-03-05"),
        ("datetime", "2024-03-05 07:08:09"),
        ("YYYY/MM/DD", "2024/03/05"),
    ],
)
def test_it_writes_the_run_clock(apply_ops, fmt, expected):
    args = {"target": "t"} | ({"format": fmt} if fmt else {})
    assert run_now(apply_ops, args, [{"a": 1}]) == [{"a": 1, "t": expected}]


def test_it_reads_a_naive_clock_as_utc_and_converts_offsets(apply_ops):
    assert run_now(apply_ops, {"target": "t"}, [{}], clock=lambda: datetime(2024, 1, 1, 12))[0]["t"] == (
        "2024-01-01T12:00:00.000Z"
    )
    offset = datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=-3)))
    assert (
        run_now(apply_ops, {"target": "t"}, [{}], clock=lambda: offset)[0]["t"] == "2024-01-01T15:00:00.000Z"
    )


def test_it_follows_a_moving_clock(apply_ops):
    ticks = iter([FIXED, FIXED + timedelta(seconds=1)])
    out = run_now(apply_ops, {"target": "t", "format": "timestamp"}, [{}, {}], clock=lambda: next(ticks))
    assert [r["t"] for r in out] == [1709622489123, 1709622490123]


def test_it_overwrites_an_existing_value_with_now(apply_ops):
    assert run_now(apply_ops, {"target": "a.t", "format": "date"}, [{"a": {"t": None}}]) == [
        {"a": {"t": "2024-03-05"}}
    ]


def test_it_marks_now_as_impure():
    from pipelines.registry import operators

    assert operators.get("now").impl.pure is False
    assert operators.get("dateAdd").impl.pure is True


def test_it_refuses_a_now_without_a_target_or_with_a_too_long_format():
    assert "'target' is required" in refused("now", {})
    assert "format" in refused("now", {"target": "t", "format": "Y" * 65})
