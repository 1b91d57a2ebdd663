import json

import pytest

from pipelines.models import Pipeline
from pipelines.services import definition_of
from tests.web.conftest import htmx, working

pytestmark = pytest.mark.django_db


def test_it_shows_the_definition_as_json(as_bob, pipeline):
    page = as_bob.get("/pipelines/simple/json/").content.decode()
    assert "&quot;version&quot;: 1" in page and "readonly" in page and 'value="save"' not in page


def test_it_saves_edited_json_into_the_draft_and_shows_the_draft(as_alice, pipeline):
    d = definition_of(pipeline)
    d["steps"][1]["config"]["operators"][0]["args"]["path"] = "title"
    response = as_alice.post("/pipelines/simple/json/", {"definition": json.dumps(d), "_action": "save"})
    assert response.status_code == 302
    assert "Saved the definition to your draft" in as_alice.get(response["Location"]).content.decode()
    assert Pipeline.objects.get(code="simple").revisions.count() == 1  # published only by Publish
    assert working("simple")["steps"][1]["config"]["operators"][0]["args"]["path"] == "title"
    assert "&quot;path&quot;: &quot;title&quot;" in as_alice.get("/pipelines/simple/json/").content.decode()
    as_alice.post("/pipelines/simple/publish/", {"message": "edited as JSON", "_action": "publish"})
    p = Pipeline.objects.get(code="simple")
    assert (p.current_revision.number, p.current_revision.message) == (2, "edited as JSON")
    assert definition_of(p)["steps"][1]["config"]["operators"][0]["args"]["path"] == "title"


def test_it_points_at_broken_json_and_keeps_the_text(as_alice, pipeline):
    text = '{\n  "version": 1,\n  "steps": [}\n'
    response = as_alice.post("/pipelines/simple/json/", {"definition": text, "_action": "save"})
    page = response.content.decode()
    assert response.status_code == 400
    assert "(line 3, column 13)" in page and "&quot;steps&quot;: [}" in page


def test_it_lists_validation_problems_with_step_and_field(as_alice, pipeline):
    d = definition_of(pipeline)
    d["steps"][1]["config"]["operators"][0]["op"] = "trimm"
    page = as_alice.post("/pipelines/simple/json/", {"definition": json.dumps(d)}).content.decode()
    assert "step &#x27;clean&#x27;, config.operators[0].op" in page
    assert "did you mean &#x27;trim&#x27;?" in page
    assert Pipeline.objects.get(code="simple").revisions.count() == 1


def test_it_checks_without_saving(as_alice, pipeline):
    text = json.dumps(definition_of(pipeline))
    html = as_alice.post("/pipelines/simple/json/", {"definition": text, "_action": "validate"},
                         **htmx(target="json-result")).content.decode()
    assert html.lstrip().startswith('<div id="json-result">') and "The definition is valid" in html


def test_it_keeps_the_code(as_alice, pipeline):
    d = {**definition_of(pipeline), "code": "other"}
    page = as_alice.post("/pipelines/simple/json/", {"definition": json.dumps(d)}).content.decode()
    assert "the code stays &#x27;simple&#x27;" in page
    page = as_alice.post("/pipelines/simple/json/", {"definition": "[]"}).content.decode()
    assert "must be a JSON object" in page
