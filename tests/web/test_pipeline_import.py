import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from pipelines.forms.pages import IMPORT_MAX_BYTES
from pipelines.models import Pipeline
from tests.fixtures import simple_definition

pytestmark = pytest.mark.django_db


def upload(text, name="p.json"):
    return SimpleUploadedFile(name, text.encode() if isinstance(text, str) else text, "application/json")


def test_it_imports_a_definition_file(as_alice):
    response = as_alice.post("/pipelines/import/", {"file": upload(json.dumps(simple_definition("imp")))})
    assert response.status_code == 302 and response["Location"] == "/pipelines/imp/"
    assert Pipeline.objects.get(code="imp").current_revision.message == "imported"


def test_it_takes_another_code(as_alice):
    as_alice.post("/pipelines/import/", {"file": upload(json.dumps(simple_definition("imp"))), "code": "other"})
    assert Pipeline.objects.filter(code="other").exists()


def test_it_points_at_the_line_and_column_of_broken_json(as_alice):
    response = as_alice.post("/pipelines/import/", {"file": upload('{\n  "version": 1,\n  "steps": [,]\n}')})
    page = response.content.decode()
    assert response.status_code == 400
    assert "not valid JSON: Expecting value (line 3, column 13)" in page


def test_it_refuses_a_file_over_the_size_limit(as_alice):
    big = '{"pad": "' + "x" * (IMPORT_MAX_BYTES + 10) + '"}'
    page = as_alice.post("/pipelines/import/", {"file": upload(big)}).content.decode()
    assert "at most 1024 KiB is accepted" in page


def test_it_lists_every_problem_of_an_invalid_definition(as_alice):
    d = simple_definition("bad")
    d["steps"][1]["config"]["operators"][0]["op"] = "trimm"
    d["steps"][2]["adapterCode"] = "nowhere"
    page = as_alice.post("/pipelines/import/", {"file": upload(json.dumps(d))}).content.decode()
    assert "2 problems; nothing was imported" in page
    assert "unknown operator &#x27;trimm&#x27;; did you mean &#x27;trim&#x27;?" in page
    assert "unknown sink &#x27;nowhere&#x27;" in page
    assert not Pipeline.objects.filter(code="bad").exists()


def test_it_refuses_to_overwrite_unless_asked(as_alice, pipeline):
    text = json.dumps(simple_definition("simple", records=[{"sku": "new"}]))
    page = as_alice.post("/pipelines/import/", {"file": upload(text)}).content.decode()
    assert "exists; choose another code or tick" in page
    assert as_alice.post("/pipelines/import/", {"file": upload(text), "replace": "on"}).status_code == 302
    assert Pipeline.objects.get(code="simple").current_revision.number == 2


def test_it_needs_a_code(as_alice):
    d = simple_definition("x")
    del d["code"]
    page = as_alice.post("/pipelines/import/", {"file": upload(json.dumps(d))}).content.decode()
    assert "the file has no code: enter one" in page


def test_it_refuses_what_is_not_a_json_object(as_alice):
    assert "must hold one JSON object" in as_alice.post(
        "/pipelines/import/", {"file": upload("[1, 2]")}).content.decode()
    assert "not UTF-8" in as_alice.post("/pipelines/import/", {"file": upload(b"\xff\xfe\x00")}).content.decode()
