"""A message body to records, or the reason it is a dead letter (plain Python, no Django, no broker)."""

import subprocess
import sys

import pytest

from runs.consumers.decode import Malformed, decode


def test_it_reads_an_object_as_one_record_and_an_array_as_several():
    assert decode(b'{"sku": "A-1"}') == [{"sku": "A-1"}]
    assert decode('\ufeff[{"a": 1}, {"a": 2}]'.encode()) == [{"a": 1}, {"a": 2}]
    assert decode(b"[]") == []


def test_it_marks_the_records_of_a_delete_message():
    assert decode(b'[{"id": 1}, {"id": 2}]', operation="delete") == [
        {"id": 1, "__operation": "DELETE"}, {"id": 2, "__operation": "DELETE"}]
    assert decode(b'{"id": 1}', operation="UPSERT") == [{"id": 1}]


@pytest.mark.parametrize(("body", "reason"), [
    (b"  ", "the message is empty"),
    (b"NaN", "not JSON: NaN is not valid JSON"),
    (b'"text"', "the message must be a JSON object or an array of objects, not a string"),
    (b"null", "the message must be a JSON object or an array of objects, not null"),
    (b"[1]", "item 0 of the array is a number, not an object"),
    (b"[" * 100_000, "not JSON: nested too deeply"),
    (b'[{"a": {"b": ["x\\u0000"]}}]', "the message holds a NUL character (\\u0000), which the database cannot store"),
    (b'{"a": 1', "not JSON: Expecting ',' delimiter at line 1, column 8 (starts '{\"a\": 1')"),
])
def test_it_says_why_a_body_cannot_be_records(body, reason):
    with pytest.raises(Malformed) as caught:
        decode(body)
    assert str(caught.value) == reason


def test_the_config_and_decoding_import_no_django():
    code = ("import sys; import runs.consumers.config, runs.consumers.decode; "
            "assert not any(m.startswith('django') for m in sys.modules), 'django imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PATH": ""})
    assert done.returncode == 0, done.stderr
