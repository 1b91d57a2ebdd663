"""CsvFormat writes a batch column by column in one csv.writer pass, and the file is byte for byte what
writing every value through its own cell rule gives, for every kind of value and every mode."""

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.adapters.base import AdapterContext
from pipelines.adapters.exports import CsvFormat

COLUMNS = ["a", "b", "c"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
    st.sampled_from(["=1+1", "+x", "-5", "@a", "\tx", "\rx", "", "a,b", 'q"q', "line\nbreak", "'"]),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=2), st.dictionaries(st.text(max_size=2), SCALARS, max_size=2))
RECORDS = st.lists(st.dictionaries(st.sampled_from(COLUMNS + ["extra"]), VALUES), min_size=1, max_size=8)
MODES = [
    {},
    {"formula_safe": False},
    {"delimiter": "\t"},
    {"delimiter": "\t", "formula_safe": False, "plain_tsv": True},
]


def by_cell(records, **mode) -> str:
    """The reference: every value through the format's own cell rule, one row at a time."""
    out = io.StringIO()
    fmt = CsvFormat(out, AdapterContext(), columns=COLUMNS, **mode)
    writer = csv.writer(out, delimiter=mode.get("delimiter", ","), lineterminator="\r\n")
    fmt.begin()
    for r in records:
        writer.writerow([fmt._cell(r.get(c)) for c in COLUMNS])
    return out.getvalue()


def one_pass(batches, **mode) -> tuple[str, list[str]]:
    out = io.StringIO()
    ctx = AdapterContext()
    fmt = CsvFormat(out, ctx, columns=COLUMNS, **mode)
    fmt.begin()
    for batch in batches:
        fmt.write(batch)
    fmt.end()
    return out.getvalue(), ctx.warnings


@settings(max_examples=60, deadline=None)
@given(records=RECORDS, split=st.integers(min_value=1, max_value=8), mode=st.sampled_from(MODES))
def test_it_writes_what_the_cell_rule_gives(records, split, mode):
    batches = [records[i:i + split] for i in range(0, len(records), split)]
    text, _warnings = one_pass(batches, **mode)
    assert text == by_cell(records, **mode)


@pytest.mark.parametrize("column, expected", [
    ([1, -5, None, 2**65], ["1", "-5", "", str(2**65)]),           # written as they are
    (["x", "", None, "-5"], ["x", "", "", "'-5"]),                   # a formula-like string is escaped
    ([1.5, None, float("nan")], ["1.5", "", "nan"]),                 # non-integral floats as they are
    ([1.5, 2.0, None], ["1.5", "2", ""]),                            # an integral float as an integer
    ([True, 0, {"k": [1]}], ["true", "0", '{""k"":[1]}']),          # booleans and nested values
])
def test_it_prepares_each_kind_of_column(column, expected):
    out = io.StringIO()
    fmt = CsvFormat(out, AdapterContext(), columns=["v"], include_header=False)
    fmt.write([{"v": v} for v in column])
    cells = [line.strip('"') for line in out.getvalue().split("\r\n")[:-1]]
    assert [c.replace('""', '"') for c in cells] == [e.replace('""', '"') for e in expected]


def test_it_warns_once_about_fields_outside_the_header():
    text, warnings = one_pass([[{"a": 1}, {"a": 2, "zz": 3}], [{"a": 3, "yy": 1}]])
    assert text == "a,b,c\r\n1,,\r\n2,,\r\n3,,\r\n"
    assert len(warnings) == 1 and "zz" in warnings[0] and "yy" not in warnings[0]


COMPLETE = st.lists(st.fixed_dictionaries({c: SCALARS for c in COLUMNS}, optional={"extra": SCALARS}),
                    min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(records=st.one_of(RECORDS, COMPLETE), columns=st.sampled_from([COLUMNS, COLUMNS + ["a"], ["c", "a"]]))
def test_it_warns_about_fields_outside_the_header_exactly_when_a_record_has_one(records, columns):
    """Records that hold every column are told apart by their length; the others by their keys."""
    ctx = AdapterContext()
    fmt = CsvFormat(io.StringIO(), ctx, columns=columns)
    fmt.write(records)
    outside = {k for r in records for k in r} - set(columns)
    assert len(ctx.warnings) == (1 if outside else 0)
    if outside:
        named = ", ".join(dict.fromkeys(k for r in records for k in r if k in outside))
        assert f"are left out: {named}; list every column" in ctx.warnings[0]
