"""A record may hold an exact integer beyond 64 bits (Python arithmetic, a NUMERIC column); orjson can
neither write nor read one back exactly. Spilling, durable outputs and exports keep it, instead of failing
the step ("Integer exceeds 64-bit range") or turning it into a float."""

import io

from pipelines.adapters.base import AdapterContext
from pipelines.adapters.exports import CsvFormat
from pipelines.records import dumps, json_text, loads
from runs.engine.buffers import RecordBuffer

BIG = 2**70 + 1
RECORDS = [{"id": 1, "n": BIG, "nested": {"m": [-BIG, 1.5, float("nan")]}}, {"id": 2, "n": 3}]


def test_it_reads_back_exactly_what_it_wrote():
    assert loads(dumps(RECORDS)) == [{**RECORDS[0], "nested": {"m": [-BIG, 1.5, None]}}, RECORDS[1]]
    assert loads(dumps(RECORDS[1])) == RECORDS[1]  # the common case is orjson's, unmarked
    assert not dumps(RECORDS[1]).startswith(b"\x1e")


def test_a_spilled_output_keeps_the_exact_integer():
    buffer = RecordBuffer(spill_records=1)
    buffer.append([dict(RECORDS[0])])
    buffer.append([dict(RECORDS[1])])
    assert buffer.spilled
    back = [r for batch in buffer.batches() for r in batch]
    assert back[0]["n"] == BIG and type(back[0]["n"]) is int and back[1] == RECORDS[1]
    lines = buffer.open_lines().read().splitlines()  # what durable storage keeps
    assert [loads(line) for line in lines][0][0]["n"] == BIG


def test_exports_write_it_as_plain_json_text():
    assert json_text({"n": BIG}) == f'{{"n":{BIG}}}'
    out = io.StringIO()
    fmt = CsvFormat(out, AdapterContext(), columns=["id", "n", "nested"])
    fmt.begin()
    fmt.write([dict(r) for r in RECORDS])
    fmt.end()
    assert f"1,{BIG}," in out.getvalue() and f'[-{BIG},1.5,null]' in out.getvalue()
