import pytest

from pipelines.models import Pipeline

pytestmark = pytest.mark.django_db


def test_it_offers_a_first_step_from_the_registries(as_alice):
    page = as_alice.get("/pipelines/new/").content.decode()
    assert 'value="TRIGGER"' in page and 'value="EXTRACT:inMemory"' in page


def test_it_creates_a_pipeline_and_opens_the_editor(as_alice):
    response = as_alice.post("/pipelines/new/", {"code": "fresh", "name": "Fresh", "description": "d",
                                                 "start": "EXTRACT:inMemory"})
    assert response.status_code == 302 and response["Location"] == "/pipelines/fresh/"
    pipeline = Pipeline.objects.get(code="fresh")
    revision = pipeline.current_revision
    assert revision.number == 1 and revision.message == "created"
    assert revision.definition["steps"] == [{"key": "inmemory", "type": "EXTRACT", "adapterCode": "inMemory",
                                             "config": {}}]
    assert revision.created_by.username == "alice"


def test_it_answers_bad_input_inline_and_keeps_it(as_alice, pipeline):
    response = as_alice.post("/pipelines/new/", {"code": "Bad Code!", "name": "", "description": "kept text",
                                                 "start": "nope"})
    page = response.content.decode()
    assert response.status_code == 400
    assert "Use lower-case letters" in page
    assert "This field is required." in page
    assert "Select a valid choice" in page
    assert "kept text" in page and 'value="Bad Code!"' in page
    response = as_alice.post("/pipelines/new/", {"code": "simple", "name": "x", "start": "TRIGGER"})
    assert "a pipeline with the code &#x27;simple&#x27; exists already" in response.content.decode()
