import pytest

from pipelines.models import Pipeline
from pipelines.services import definition_of, save_definition
from tests.fixtures import simple_definition
from tests.web.conftest import csrf_token, form_data, htmx, working

pytestmark = pytest.mark.django_db


def editor(client, code="simple"):
    return client.get(f"/pipelines/{code}/").content.decode()


def steps(code="simple"):
    return {s["key"]: s for s in working(code)["steps"]}


def test_it_saves_a_changed_step_into_the_draft(as_alice, pipeline):
    data = form_data(editor(as_alice), "step-clean", **{"config.operators.0.args.path": "name", "name": "Clean"})
    response = as_alice.post("/pipelines/simple/steps/clean/", {**data, "_action": "save"})
    assert response.status_code == 302 and response["Location"].startswith("/pipelines/simple/?open=clean")
    assert steps()["clean"]["config"]["operators"] == [{"op": "trim", "args": {"path": "name"}}]
    assert steps()["clean"]["name"] == "Clean"
    assert Pipeline.objects.get(code="simple").revisions.count() == 1
    assert definition_of(Pipeline.objects.get(code="simple"))["steps"][1].get("name") is None  # not published


def test_it_answers_htmx_with_its_card_only(as_alice, pipeline):
    data = form_data(editor(as_alice), "step-clean", **{"config.operators.0.args.mode": "start"})
    response = as_alice.post("/pipelines/simple/steps/clean/", {**data, "_action": "save"}, **htmx())
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#card-clean" and response["HX-Reswap"] == "outerHTML"
    html = response.content.decode()
    assert html.lstrip().startswith('<details class="step-card') and "Saved step clean to your draft." in html
    assert 'id="workspace"' not in html and 'id="step-src"' not in html  # other cards keep their input
    assert '<div class="graph-box" id="graph-box" hx-swap-oob="true"><svg class="graph"' in html
    assert 'id="draft-status" class="draft-status is-dirty"' in html
    assert steps()["clean"]["config"]["operators"][0]["args"] == {"path": "sku", "mode": "start"}


def test_it_keeps_what_was_typed_when_a_number_is_not_a_number(as_alice, pipeline):
    data = form_data(editor(as_alice), "step-clean", retries="three", **{"config.operators.0.args.path": "title"})
    response = as_alice.post("/pipelines/simple/steps/clean/", {**data, "_action": "save"}, **htmx())
    html = response.content.decode()
    assert response["HX-Retarget"] == "#card-clean"
    assert html.lstrip().startswith('<details class="step-card has-error')
    assert 'value="three"' in html and "enter a whole number" in html
    assert 'value="title"' in html  # the other field keeps what was typed too
    assert Pipeline.objects.get(code="simple").revisions.count() == 1


def test_it_shows_validation_problems_at_their_field(as_alice, pipeline):
    data = form_data(editor(as_alice), "step-clean", **{"config.operators.0.args.path": None,
                                                         "config.operators.0.args.mode": "sideways"})
    html = as_alice.post("/pipelines/simple/steps/clean/", {**data, "_action": "save"}, **htmx()).content.decode()
    path_field = html.split('name="config.operators.0.args.path"')[1].split("</div>")[0]
    assert "is required" in path_field
    mode_field = html.split('name="config.operators.0.args.mode"')[1].split("</div>")[0]
    assert "must be one of" in mode_field
    assert Pipeline.objects.get(code="simple").revisions.count() == 1


def test_it_answers_without_htmx_with_the_page_and_status_400(as_alice, pipeline):
    data = form_data(editor(as_alice), "step-clean", key="bad key!")
    response = as_alice.post("/pipelines/simple/steps/clean/", {**data, "_action": "save"})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'value="bad key!"' in html and "a step key is required" in html


def test_it_refuses_a_duplicate_key_at_the_key_field(as_alice, pipeline):
    data = form_data(editor(as_alice), "step-clean", key="src")
    html = as_alice.post("/pipelines/simple/steps/clean/", {**data, "_action": "save"}, **htmx()).content.decode()
    key_field = html.split('name="key"')[1].split("</div>")[0]
    assert "duplicate step key" in key_field


def test_it_renames_a_step_in_its_edges(as_alice, db):
    d = simple_definition("g")
    d["edges"] = [{"from": "src", "to": "clean"}, {"from": "clean", "to": "out"}]
    save_definition(d)
    data = form_data(editor(as_alice, "g"), "step-clean", key="tidy")
    assert as_alice.post("/pipelines/g/steps/clean/", {**data, "_action": "save"}).status_code == 302
    edges = working("g")["edges"]
    assert edges == [{"from": "src", "to": "tidy"}, {"from": "tidy", "to": "out"}]


def test_it_adds_moves_and_removes_operators_in_the_form_before_saving(as_alice, pipeline):
    data = form_data(editor(as_alice), "step-clean")
    html = as_alice.post("/pipelines/simple/steps/clean/", {**data, "_action": "add:config.operators",
                                                             "_add_op:config.operators": "uppercase"},
                         **htmx()).content.decode()
    assert 'name="config.operators.1.op"' in html and "uppercase" in html
    assert Pipeline.objects.get(code="simple").revisions.count() == 1  # nothing saved yet
    # the browser now shows two operators; fill the new one and move it up
    data = form_data(html, "step-clean", **{"config.operators.1.args.path": "sku"})
    html = as_alice.post("/pipelines/simple/steps/clean/", {**data, "_action": "up:config.operators.1"},
                         **htmx()).content.decode()
    data = form_data(html, "step-clean")
    assert data["config.operators.0.op"] == "uppercase" and data["config.operators.1.op"] == "trim"
    as_alice.post("/pipelines/simple/steps/clean/", {**data, "_action": "save"})
    assert [o["op"] for o in steps()["clean"]["config"]["operators"]] == ["uppercase", "trim"]
    data = form_data(editor(as_alice), "step-clean")
    html = as_alice.post("/pipelines/simple/steps/clean/", {**data, "_action": "remove:config.operators.0"},
                         **htmx()).content.decode()
    data = form_data(html, "step-clean")
    assert data["config.operators.0.op"] == "trim" and "config.operators.1.op" not in data


def test_it_changes_the_args_form_when_the_operator_changes(as_alice, pipeline):
    data = form_data(editor(as_alice), "step-clean", **{"config.operators.0.op": "rename"})
    html = as_alice.post("/pipelines/simple/steps/clean/", {**data, "_action": "refresh"}, **htmx()).content.decode()
    assert 'name="config.operators.0.args.from"' in html and 'name="config.operators.0.args.to"' in html
    assert "is required" not in html  # a refresh shows no errors yet


def test_it_saves_per_record_retry_settings(as_alice, pipeline):
    data = form_data(editor(as_alice), "step-clean", **{
        "config.retryPerRecord.maxRetries": "3", "config.retryPerRecord.retryDelayMs": "50",
        "config.retryPerRecord.backoff": "EXPONENTIAL",
        "config.retryPerRecord.retryableErrors": "timeout\n503\n"})
    assert as_alice.post("/pipelines/simple/steps/clean/", {**data, "_action": "save"}).status_code == 302
    assert steps()["clean"]["config"]["retryPerRecord"] == {
        "maxRetries": 3, "retryDelayMs": 50, "backoff": "EXPONENTIAL", "retryableErrors": ["timeout", "503"]}
    data = form_data(editor(as_alice), "step-clean", **{"config.retryPerRecord.maxRetries": "99"})
    html = as_alice.post("/pipelines/simple/steps/clean/", {**data, "_action": "save"}, **htmx()).content.decode()
    field = html.split('name="config.retryPerRecord.maxRetries"')[1].split("</div>")[0]
    assert 'value="99"' in html and "99 is greater than the maximum of 20" in field


def test_it_edits_inline_records_as_json_and_points_at_broken_json(as_alice, pipeline):
    data = form_data(editor(as_alice), "step-src", **{"config.data": '[{"sku": "x"}'})
    html = as_alice.post("/pipelines/simple/steps/src/", {**data, "_action": "save"}, **htmx()).content.decode()
    assert "not valid JSON" in html and "(line 1, column 14)" in html and "[{&quot;sku&quot;: &quot;x&quot;}" in html
    data["config.data"] = '[{"sku": "x"}, {"sku": "y"}]'
    assert as_alice.post("/pipelines/simple/steps/src/", {**data, "_action": "save"}).status_code == 302
    assert steps()["src"]["config"]["data"] == [{"sku": "x"}, {"sku": "y"}]


def test_it_enforces_csrf(csrf_alice, pipeline):
    data = form_data(editor(csrf_alice), "step-clean", _action="save", csrfmiddlewaretoken=None)
    assert csrf_alice.post("/pipelines/simple/steps/clean/", data).status_code == 403
    token = csrf_token(csrf_alice, "/pipelines/simple/")
    assert csrf_alice.post("/pipelines/simple/steps/clean/", data, HTTP_X_CSRFTOKEN=token).status_code == 302


def test_it_answers_404_for_an_unknown_step(as_alice, pipeline):
    assert as_alice.post("/pipelines/simple/steps/nope/", {"_action": "save"}).status_code == 404


def test_it_edits_key_value_maps(as_alice, db):
    d = simple_definition("m")
    d["steps"].insert(2, {"key": "add", "type": "ENRICH", "config": {"set": {"code": "42", "price": 10}}})
    save_definition(d)
    data = form_data(editor(as_alice, "m"), "step-add")
    assert (data["config.set.k.0"], data["config.set.v.0"]) == ("code", '"42"')  # text that would read as a number
    assert (data["config.set.k.1"], data["config.set.v.1"]) == ("price", "10")
    data.update({"config.set.k.2": "tags", "config.set.v.2": '["a", "b"]', "_action": "save"})
    assert as_alice.post("/pipelines/m/steps/add/", data).status_code == 302
    assert steps("m")["add"]["config"]["set"] == {"code": "42", "price": 10, "tags": ["a", "b"]}
    data = form_data(editor(as_alice, "m"), "step-add", **{"config.set.k.0": "", "_action": "save"})
    html = as_alice.post("/pipelines/m/steps/add/", data, **htmx()).content.decode()
    assert "row 1: a name is required" in html and 'value="&quot;42&quot;"' in html
