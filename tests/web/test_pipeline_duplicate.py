import pytest

from pipelines.models import Pipeline
from pipelines.services import definition_of

pytestmark = pytest.mark.django_db


def test_it_proposes_a_free_code(as_alice, pipeline):
    page = as_alice.get("/pipelines/simple/duplicate/").content.decode()
    assert 'value="simple-copy"' in page and 'value="Copy of Pipeline simple"' in page


def test_it_copies_steps_edges_and_settings(as_alice, pipeline):
    response = as_alice.post("/pipelines/simple/duplicate/", {"code": "simple-2", "name": "Second"})
    assert response.status_code == 302 and response["Location"] == "/pipelines/simple-2/"
    copy = definition_of(Pipeline.objects.get(code="simple-2"))
    original = definition_of(pipeline)
    assert copy["steps"] == original["steps"] and copy["name"] == "Second"
    assert Pipeline.objects.get(code="simple-2").revisions.count() == 1


def test_it_answers_bad_codes_inline(as_alice, pipeline):
    page = as_alice.post("/pipelines/simple/duplicate/", {"code": "simple", "name": "n"}).content.decode()
    assert "exists already" in page
    response = as_alice.post("/pipelines/simple/duplicate/", {"code": "UPPER", "name": ""})
    assert response.status_code == 400
    assert "Use lower-case letters" in response.content.decode() and 'value="UPPER"' in response.content.decode()
