import pytest

from pipelines.models import Pipeline
from pipelines.services import save_definition
from tests.fixtures import simple_definition
from tests.web.conftest import form_data, htmx, working

pytestmark = pytest.mark.django_db


def new_form(client, query, code="simple"):
    response = client.get(f"/pipelines/{code}/new-step/?{query}", **htmx(target="new-step-slot"))
    assert response.status_code == 200
    return response.content.decode()


def test_it_opens_a_form_for_the_palette_entry(as_alice, pipeline):
    html = new_form(as_alice, "type=TRANSFORM&op=trim")
    assert html.lstrip().startswith('<div id="new-step"')
    data = form_data(html, "new-step-form")
    assert data["type"] == "TRANSFORM" and data["key"] == "trim" and data["config.operators.0.op"] == "trim"
    assert "Add step" in html


def test_it_adds_a_step_to_the_draft(as_alice, pipeline):
    data = form_data(new_form(as_alice, "type=TRANSFORM&op=uppercase"), "new-step-form",
                     **{"config.operators.0.args.path": "sku", "_action": "save"})
    response = as_alice.post("/pipelines/simple/new-step/", data, **htmx())
    assert response["HX-Retarget"] == "#workspace" and "Added step uppercase." in response.content.decode()
    d = working("simple")
    assert d["steps"][-1] == {"key": "uppercase", "type": "TRANSFORM",
                              "config": {"operators": [{"op": "uppercase", "args": {"path": "sku"}}]}}
    assert Pipeline.objects.get(code="simple").revisions.count() == 1  # a revision only when published


def test_it_answers_a_missing_argument_at_its_field_and_keeps_the_form(as_alice, pipeline):
    data = form_data(new_form(as_alice, "type=TRANSFORM&op=rename"), "new-step-form",
                     key="renamer", **{"config.operators.0.args.from": "sku", "_action": "save"})
    response = as_alice.post("/pipelines/simple/new-step/", data, **htmx())
    html = response.content.decode()
    assert response["HX-Retarget"] == "#new-step"
    assert 'value="renamer"' in html and 'name="config.operators.0.args.from" value="sku"' in html
    to_field = html.split('name="config.operators.0.args.to"')[1].split("</div>")[0]
    assert "is required" in to_field
    assert len(working("simple")["steps"]) == 3


def test_it_adds_a_sink_from_the_palette(as_alice, pipeline):
    data = form_data(new_form(as_alice, "type=SINK&adapter=records"), "new-step-form", _action="save")
    assert data["adapterCode"] == "records" and data["key"] == "records"
    assert as_alice.post("/pipelines/simple/new-step/", data).status_code == 302
    assert working("simple")["steps"][-1]["adapterCode"] == "records"


def test_it_connects_the_new_step_in_a_pipeline_with_edges(as_alice, db):
    d = simple_definition("g")
    d["edges"] = [{"from": "src", "to": "clean"}, {"from": "clean", "to": "out"}]
    save_definition(d)
    html = new_form(as_alice, "type=SINK&adapter=records", code="g")
    data = form_data(html, "new-step-form", _action="save")
    assert data["_connect_from"] == "out"  # the last step, by default
    data["_connect_from"] = "clean"
    assert as_alice.post("/pipelines/g/new-step/", data).status_code == 302
    assert working("g")["edges"][-1] == {"from": "clean", "to": "records"}


def test_it_explains_a_step_left_unconnected(as_alice, db):
    d = simple_definition("g")
    d["edges"] = [{"from": "src", "to": "clean"}, {"from": "clean", "to": "out"}]
    save_definition(d)
    data = form_data(new_form(as_alice, "type=SINK&adapter=records", code="g"), "new-step-form",
                     _action="save", _connect_from="")
    html = as_alice.post("/pipelines/g/new-step/", data, **htmx()).content.decode()
    assert "this step has no edge" in html


def test_it_adds_a_route_with_its_connections(as_alice, pipeline):
    html = new_form(as_alice, "type=ROUTE")
    data = form_data(html, "new-step-form", _action="save")
    assert data["_connect_from"] == "out" and data["config.branches.0.name"] == ""
    html = as_alice.post("/pipelines/simple/new-step/", data, **htmx()).content.decode()
    name_field = html.split('name="config.branches.0.name"')[1].split("</div>")[0]
    assert "is required" in name_field
    data = form_data(html, "new-step-form", _action="save", _connect_from="clean", _connect_to="out",
                     **{"config.branches.0.name": "big"})
    data = {**data, "_action": "add:config.branches.0.when"}
    html = as_alice.post("/pipelines/simple/new-step/", data, **htmx()).content.decode()
    data = form_data(html, "new-step-form", _action="save", **{
        "config.branches.0.when.0.field": "n", "config.branches.0.when.0.cmp": "gt",
        "config.branches.0.when.0.value": "5"})
    assert as_alice.post("/pipelines/simple/new-step/", data).status_code == 302
    d = working("simple")
    assert d["steps"][-1] == {"key": "route", "type": "ROUTE", "config": {"branches": [
        {"name": "big", "when": [{"field": "n", "cmp": "gt", "value": 5}]}]}}
    assert d["edges"] == [{"from": "src", "to": "clean"}, {"from": "clean", "to": "out"},
                          {"from": "clean", "to": "route"}, {"from": "route", "to": "out"}]


def test_it_refuses_an_unknown_step_type(as_alice, pipeline):
    assert as_alice.get("/pipelines/simple/new-step/?type=NOPE").status_code == 404
    assert as_alice.post("/pipelines/simple/new-step/", {"type": "NOPE"}).status_code == 404


def test_it_shows_the_form_on_the_page_without_htmx(as_alice, pipeline):
    page = as_alice.get("/pipelines/simple/new-step/?type=SINK&adapter=records").content.decode()
    assert "<html" in page and 'id="new-step"' in page


def test_it_has_a_working_form_for_every_palette_entry(as_alice, pipeline):
    """Every step type, adapter and operator in the registries gets a form that renders and is answered."""
    from pipelines.forms.palette import palette

    entries = [item for group in palette() for _, items in group.sections for item in items]
    assert len(entries) > 60
    for item in entries:
        query = f"type={item.type}&adapter={item.adapter}&op={item.op}"
        html = new_form(as_alice, query)
        data = form_data(html, "new-step-form", _action="save")
        response = as_alice.post("/pipelines/simple/new-step/", data, **htmx())
        assert response.status_code == 200, (query, response.status_code)
        assert response["HX-Retarget"] in ("#workspace", "#new-step"), query
        if response["HX-Retarget"] == "#workspace":  # it was added: take it out again for the next one
            key = data["key"]
            assert as_alice.post(f"/pipelines/simple/steps/{key}/remove/").status_code == 302
