"""Bad input gets a 4xx with a clear message, never a 500: malformed JSON, wrong types, unknown fields,
huge bodies, unknown codes, numbers too large for the database, NUL characters, other content types."""

import pytest

from runs.models import Run


def test_it_refuses_malformed_json(pipeline, as_alice):
    response = as_alice.generic("POST", "/api/runs/", '{"pipeline": "simple",', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")
    nan = as_alice.generic("POST", "/api/pipelines/validate/", '{"version": NaN}', content_type="application/json")
    assert nan.status_code == 400


def test_it_refuses_a_body_that_is_not_an_object(pipeline, as_alice):
    for body in ("[]", '"simple"', "3", "null"):
        response = as_alice.generic("POST", "/api/runs/", body, content_type="application/json")
        assert response.status_code == 400, body
        assert response.json()["problems"]


@pytest.mark.parametrize("body,field", [
    ({"pipeline": 3}, "pipeline"),
    ({"pipeline": "simple", "dryRun": "yes"}, "dryRun"),
    ({"pipeline": "simple", "dryRun": 1}, "dryRun"),
    ({"pipeline": "simple", "recordLimit": "10"}, "recordLimit"),
    ({"pipeline": "simple", "recordLimit": 0}, "recordLimit"),
    ({"pipeline": "simple", "recordLimit": 2**40}, "recordLimit"),
    ({"pipeline": "simple", "revision": True}, "revision"),
])
def test_it_refuses_wrong_types(pipeline, as_alice, body, field):
    response = as_alice.post("/api/runs/", body, format="json")
    assert response.status_code == 400
    assert [p["field"] for p in response.json()["problems"]] == [field]
    assert not Run.objects.exists()


def test_it_refuses_unknown_fields(pipeline, as_alice):
    response = as_alice.post("/api/runs/", {"pipeline": "simple", "dry_run": True}, format="json")
    assert response.status_code == 400
    problem = response.json()["problems"][0]
    assert problem["field"] == "dry_run" and "unknown field" in problem["message"] and "dryRun" in problem["message"]
    settings_change = as_alice.patch("/api/pipelines/simple/", {"enabled": False, "name": "x"}, format="json")
    assert settings_change.status_code == 400
    definition = as_alice.post("/api/pipelines/validate/", {"steps": [], "colour": "red"}, format="json")
    assert {"field": "colour", "step": None, "message": "unknown top-level key 'colour'",
            "code": "unknown_field"} in definition.json()["problems"]


def test_it_refuses_a_huge_body_with_413(pipeline, as_alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    huge = '{"definition": {"steps": [], "pad": "' + "x" * 20_000 + '"}}'
    response = as_alice.generic("PUT", "/api/pipelines/simple/", huge, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {"detail": "the request body is larger than 10000 bytes"}


def test_it_refuses_json_nested_too_deeply(as_alice, db):
    deep = "[" * 100_000 + "]" * 100_000
    response = as_alice.generic("POST", "/api/pipelines/validate/", deep, content_type="application/json")
    assert response.status_code == 400


def test_it_refuses_nul_characters(pipeline, as_alice):
    response = as_alice.post("/api/runs/", {"pipeline": "sim\x00ple"}, format="json")
    assert response.status_code == 400 and "NUL" in response.json()["detail"]
    assert as_alice.get("/api/runs/", {"pipeline": "a\x00"}).status_code == 400


def test_it_refuses_other_content_types(pipeline, as_alice):
    response = as_alice.post("/api/runs/", {"pipeline": "simple"})  # a multipart form
    assert response.status_code == 415
    assert "Unsupported media type" in response.json()["detail"]


def test_it_answers_404_for_ids_too_large_for_the_database(as_alice, db):
    big = 2**64
    assert as_alice.get(f"/api/runs/{big}/").status_code == 404
    assert as_alice.post(f"/api/runs/{big}/cancel/").status_code == 404
    replay = as_alice.post("/api/runs/1/record-errors/replay/", {"step": "x", "ids": [big]}, format="json")
    assert replay.status_code == 400
    assert as_alice.get("/api/runs/", {"offset": big}).status_code == 400
    assert as_alice.get("/api/runs/", {"limit": 10_000}).status_code == 400


def test_it_refuses_methods_an_endpoint_lacks(pipeline, as_alice):
    assert as_alice.delete("/api/runs/").status_code == 405
    assert as_alice.get("/api/pipelines/validate/").status_code == 405
