import pytest

from pipelines.services import save_definition
from tests.fixtures import simple_definition
from tests.web.conftest import htmx, working

pytestmark = pytest.mark.django_db


def keys(code="simple"):
    return [s["key"] for s in working(code)["steps"]]


def test_it_moves_a_step_up_and_down(as_alice, pipeline):
    assert as_alice.post("/pipelines/simple/steps/out/move/", {"direction": "up"}).status_code == 302
    assert keys() == ["src", "out", "clean"]
    response = as_alice.post("/pipelines/simple/steps/src/move/", {"direction": "down"}, **htmx())
    assert response["HX-Retarget"] == "#workspace" and "Moved src." in response.content.decode()
    assert keys() == ["out", "src", "clean"]


def test_it_removes_a_step_and_reconnects_its_neighbours(as_alice, db):
    d = simple_definition("g")
    d["edges"] = [{"from": "src", "to": "clean"}, {"from": "clean", "to": "out"}]
    save_definition(d)
    assert as_alice.post("/pipelines/g/steps/clean/remove/").status_code == 302
    d = working("g")
    assert [s["key"] for s in d["steps"]] == ["src", "out"]
    assert d["edges"] == [{"from": "src", "to": "out"}]


def test_it_refuses_to_remove_the_last_step_and_says_why(as_alice, db):
    save_definition({**simple_definition("one"), "steps": simple_definition()["steps"][:1]})
    response = as_alice.post("/pipelines/one/steps/src/remove/", **htmx())
    html = response.content.decode()
    assert "That change was not saved" in html and "a pipeline needs a non-empty list of steps" in html
    assert keys("one") == ["src"]
    response = as_alice.post("/pipelines/one/steps/src/remove/")
    assert response.status_code == 302
    assert "That change was not saved" in as_alice.get(response["Location"]).content.decode()


def test_it_answers_an_unknown_step(as_alice, pipeline):
    html = as_alice.post("/pipelines/simple/steps/nope/remove/", **htmx()).content.decode()
    assert "there is no step &#x27;nope&#x27;" in html
