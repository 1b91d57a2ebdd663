"""The csv extractor reads rows a slice at a time and makes records of a clean slice in one pass: it still
names the line of every bad row and every line csv.reader refuses (after values holding line breaks of every
kind, and blank lines), keeps the records around them, gives batches of exactly the batch size and reads
nothing past the record limit."""

from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.adapters.base import AdapterContext
from pipelines.adapters.files import CsvExtractor
from pipelines.errors import StepError

# Cells as written in the file, with the line breaks each one holds inside its quotes.
CELLS = {"x": 0, "two words": 0, '"a,b"': 0, '"say ""hi"""': 0, '"two\nlines"': 1, '"two\r\nlines"': 1,
         '"two\rlines"': 1, '"three\n\r\nlines"': 2, '""': 0}
BLANK = None
BROKEN = '"bad"quote'  # a line csv.reader refuses (strict): ',' expected after '"'
ROWS = st.lists(st.one_of(st.just(BLANK), st.just(BROKEN),
                          st.lists(st.sampled_from(sorted(CELLS)), min_size=1, max_size=4)), max_size=60)


def text_and_expected(rows: list, width: int, newline: str) -> tuple[str, list[dict], list[str]]:
    """The file, and what reading it with onBadRow: skip must give: records, then the warnings."""
    names = [f"h{i}" for i in range(width)]
    lines = [",".join(names)]
    records, warnings = [], []
    line = 1
    for row in rows:
        if row is BLANK:
            lines.append("")
            line += 1
            continue
        if row is BROKEN:
            lines.append(BROKEN)
            line += 1
            warnings.append(f"line {line}: ',' expected after '\"' (skipped)")
            continue
        lines.append(",".join(row))
        line += 1 + sum(CELLS[c] for c in row)  # the line the row ends on: csv.reader's line_num
        if len(row) != width:
            warnings.append(f"line {line}: expected {width} fields, got {len(row)} (skipped)")
            continue
        values = [c[1:-1].replace('""', '"') if c.startswith('"') else c for c in row]
        records.append(dict(zip(names, values, strict=True)))
    if warnings:
        warnings.append(f"{len(warnings)} bad rows skipped")
    return newline.join(lines) + newline, records, warnings


def read(config: dict, batch_size: int, storage=None, **ctx) -> tuple[list[list[dict]], list[str]]:
    warnings: list[str] = []
    extractor = CsvExtractor(config, AdapterContext(batch_size=batch_size, storage=storage, warnings=warnings, **ctx))
    try:
        return list(extractor.batches()), warnings
    finally:
        extractor.close()


@settings(max_examples=150, deadline=None)
@given(rows=ROWS, width=st.integers(min_value=1, max_value=3), newline=st.sampled_from(["\n", "\r\n", "\r"]),
       batch_size=st.sampled_from([1, 3, 1000]))
def test_it_names_the_line_of_each_bad_row_and_keeps_the_rest(rows, width, newline, batch_size):
    text, records, warnings = text_and_expected(rows, width, newline)
    batches, got_warnings = read({"csvText": text, "onBadRow": "skip"}, batch_size)
    assert [r for b in batches for r in b] == records
    assert got_warnings == warnings
    assert all(len(b) == batch_size for b in batches[:-1])
    if warnings:  # failing instead names the first bad row's line
        try:
            read({"csvText": text}, batch_size)
        except StepError as exc:
            assert str(exc) == warnings[0].removesuffix(" (skipped)") + " (inline csvText)"
        else:
            raise AssertionError("a bad row did not fail the step")


def test_it_names_the_line_of_a_bad_row_deep_in_a_file(tmp_path):
    """A file read through its text stream, bad rows past the first slices of a batch, after quoted line
    breaks of each kind."""
    rows = [["x", '"two\r\nlines"'], ["x", '"two\rlines"'], ["x", '"two\nlines"'], BLANK] * 150
    rows[301] = ["x"]
    rows[554] = ["x", "x", '"a,b"']
    text, records, warnings = text_and_expected(rows, 2, "\r\n")
    storage = FileSystemStorage(location=tmp_path)
    storage.save("deep.csv", ContentFile(text.encode()))
    batches, got = read({"fileId": "deep.csv", "onBadRow": "skip"}, 1000, storage)
    assert got == warnings and warnings[:2] == ["line 529: expected 2 fields, got 1 (skipped)",
                                                "line 971: expected 2 fields, got 3 (skipped)"]
    assert batches == [records] and len(records) == 448


def test_it_reads_nothing_past_the_record_limit():
    text = "n\n" + "".join(f"{i}\n" for i in range(500)) + "bad,row\n"
    batches, _ = read({"csvText": text}, 1000, record_limit=3)
    assert batches == [[{"n": "0"}, {"n": "1"}, {"n": "2"}]]
