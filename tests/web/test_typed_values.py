"""Typed value inputs: a value whose schema allows several JSON types (the `set` operator's value, a
condition's value) has a type beside it, so "42" is the text or the number on purpose, and a value that is
not of the chosen type is refused at its field and kept as typed."""

import pytest

from pipelines.services import save_definition
from tests.fixtures import simple_definition
from tests.web.conftest import form_data, htmx, working

pytestmark = pytest.mark.django_db


@pytest.fixture
def with_set(db):
    d = simple_definition("simple")
    d["steps"][1]["config"]["operators"] = [{"op": "set", "args": {"path": "qty", "value": 42}}]
    return save_definition(d)


def save(client, **fields):
    data = {**form_data(client.get("/pipelines/simple/").content.decode(), "step-clean"), **fields}
    return client.post("/pipelines/simple/steps/clean/", {**data, "_action": "save"}, **htmx())


def args():
    return working("simple")["steps"][1]["config"]["operators"][0]["args"]


def test_it_shows_a_value_with_its_type(as_alice, with_set):
    html = as_alice.get("/pipelines/simple/").content.decode()
    select = html.split('name="config.operators.0.args.value.__as"')[1].split("</select>")[0]
    assert '<option value="number" selected>' in select
    assert 'name="config.operators.0.args.value" value="42"' in html


@pytest.mark.parametrize(("as_type", "typed", "stored"), [
    ("text", "42", "42"), ("number", "42", 42), ("number", "1.5", 1.5), ("boolean", "true", True),
    ("json", '{"a": [1, null]}', {"a": [1, None]}), ("", "abc", "abc"), ("", "7", 7)])
def test_it_reads_the_value_as_the_type_chosen(as_alice, with_set, as_type, typed, stored):
    save(as_alice, **{"config.operators.0.args.value": typed, "config.operators.0.args.value.__as": as_type})
    assert args()["value"] == stored and type(args()["value"]) is type(stored)


def test_it_refuses_a_value_that_is_not_of_its_type_at_the_field(as_alice, with_set):
    html = save(as_alice, **{"config.operators.0.args.value": "lots",
                             "config.operators.0.args.value.__as": "number"}).content.decode()
    field = html.split('name="config.operators.0.args.value.__as"')[1].split("</div>")[1]
    assert "enter a number" in field
    assert 'value="lots"' in html and '<option value="number" selected>' in html  # kept as typed, type too
    assert args()["value"] == 42
