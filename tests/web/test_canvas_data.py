"""What the canvas is drawn from: a node per step with its ports (a ROUTE step's branches, default and all
records), the definition's edges with their index (what removing one sends), list order drawn but not
removable, and every name left for the browser to escape as text."""

import json

import pytest

from pipelines.canvas import canvas_data
from tests.fixtures import simple_definition

pytestmark = pytest.mark.django_db


def test_list_order_is_drawn_without_edge_indexes():
    data = canvas_data(simple_definition("c"))
    assert [(n["key"], n["inputs"], n["x"] < data["nodes"][-1]["x"]) for n in data["nodes"]] == [
        ("src", 1, True), ("clean", 1, True), ("out", 1, False)]
    assert [(e["from"], e["to"], e["index"]) for e in data["edges"]] == [("src", "clean", None), ("clean", "out", None)]


def test_route_branches_are_labelled_ports_and_edges_keep_their_index():
    d = simple_definition("c")
    d["steps"].insert(2, {"key": "r", "type": "ROUTE", "config": {"branches": [{"name": "big"}]}})
    d["edges"] = [{"from": "src", "to": "clean"}, {"from": "clean", "to": "r"},
                  {"from": "r", "to": "out", "branch": "big"}]
    data = canvas_data(d)
    route = next(n for n in data["nodes"] if n["key"] == "r")
    assert route["outputs"] == [{"label": "big", "branch": "big"}, {"label": "default", "branch": "default"},
                                {"label": "all records", "branch": None}]
    assert data["edges"][2] == {"from": "r", "to": "out", "branch": "big", "index": 2, "dependencyOnly": False}


def test_the_editor_page_carries_it_escaped_to_editors_only(as_alice, as_bob, db):
    from pipelines.services import save_definition

    d = simple_definition("c")
    d["steps"][0]["name"] = "<b>src</b>"
    save_definition(d)
    page = as_alice.get("/pipelines/c/").content.decode()
    attribute = page.split('data-graph="')[1].split('"')[0]
    assert "<b>" not in attribute and "&lt;b&gt;src&lt;/b&gt;" in attribute
    import html
    assert json.loads(html.unescape(attribute))["nodes"][0]["name"] == "<b>src</b>"
    assert 'id="canvas-panel"' not in as_bob.get("/pipelines/c/").content.decode()  # bob may only look
