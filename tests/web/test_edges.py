import pytest

from pipelines.services import save_definition
from tests.fixtures import simple_definition
from tests.web.conftest import htmx, working

pytestmark = pytest.mark.django_db


def edges(code="simple"):
    return working(code)["edges"]


def route_pipeline():
    d = simple_definition("r")
    d["steps"].insert(1, {"key": "split", "type": "ROUTE", "config": {"branches": [
        {"name": "big", "when": [{"field": "n", "cmp": "gt", "value": 5}]}]}})
    d["edges"] = [{"from": "src", "to": "split"}, {"from": "split", "to": "clean", "branch": "big"},
                  {"from": "split", "to": "out", "branch": "default"}]
    return save_definition(d)


def test_it_writes_down_the_list_order_when_the_first_edge_is_added(as_alice, pipeline):
    response = as_alice.post("/pipelines/simple/edges/", {"from": "src", "to": "out", "dependencyOnly": "1"})
    assert response.status_code == 302
    assert edges() == [{"from": "src", "to": "clean"}, {"from": "clean", "to": "out"},
                       {"from": "src", "to": "out", "dependencyOnly": True}]


def test_it_answers_missing_ends_and_a_cycle_inline(as_alice, pipeline):
    html = as_alice.post("/pipelines/simple/edges/", {"from": "src", "to": ""}, **htmx()).content.decode()
    assert "choose a step" in html and 'value="src" selected' in html
    response = as_alice.post("/pipelines/simple/edges/", {"from": "out", "to": "src"}, **htmx())
    assert response["HX-Retarget"] == "#edges"
    assert "cycle" in response.content.decode()
    assert edges() == []


def test_it_answers_an_unknown_branch_at_the_branch_field(as_alice, db):
    route_pipeline()
    html = as_alice.post("/pipelines/r/edges/", {"from": "split", "to": "out", "branch": "huge"},
                         **htmx()).content.decode()
    branch_field = html.split('name="branch"')[1].split("</div>")[0]
    assert "has no branch &#x27;huge&#x27;" in branch_field and 'value="huge"' in html
    assert "<datalist id=\"route-branches\"><option value=\"big\"><option value=\"default\">" in html


def test_it_removes_an_edge_and_goes_back_to_list_order(as_alice, db):
    d = simple_definition("g")
    d["edges"] = [{"from": "src", "to": "clean"}, {"from": "clean", "to": "out"},
                  {"from": "src", "to": "out", "dependencyOnly": True}]
    save_definition(d)
    assert as_alice.post("/pipelines/g/edges/2/remove/").status_code == 302
    assert len(edges("g")) == 2
    html = as_alice.post("/pipelines/g/edges/9/remove/", **htmx()).content.decode()
    assert "there is no edge number 10" in html
    assert as_alice.post("/pipelines/g/edges/clear/").status_code == 302
    assert edges("g") == []


def test_it_draws_branches_on_the_graph(as_alice, db):
    route_pipeline()
    page = as_alice.get("/pipelines/r/").content.decode()
    assert 'class="edge-label"' in page and ">big</text>" in page
