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


@pytest.mark.parametrize("query", ["limit=", "offset=", "search=", "limit=&search=x"])
def test_it_refuses_an_empty_query_parameter_instead_of_reading_the_default(pipeline, as_alice, query):
    response = as_alice.get(f"/api/pipelines/?{query}")
    assert response.status_code == 400
    assert all(p["message"].startswith("must not be empty") for p in response.json()["problems"])


def test_it_refuses_a_null_body_where_the_body_is_optional(failed_run, as_alice):
    """No body means "no options"; a JSON null is not an object and is refused (it was taken as {})."""
    response = as_alice.generic("POST", f"/api/runs/{failed_run.pk}/rerun/", "null", content_type="application/json")
    assert response.status_code == 400
    assert as_alice.post(f"/api/runs/{failed_run.pk}/rerun/").status_code == 201


def test_it_answers_404_for_a_run_filter_naming_no_pipeline(pipeline, as_alice):
    response = as_alice.get("/api/runs/?pipeline=nope")
    assert response.status_code == 404 and response.json()["detail"] == "no pipeline 'nope'"


@pytest.mark.django_db(transaction=True)
def test_it_refuses_a_chunked_body_without_content_length_with_411(live_server, alice):
    """Django reads a body only as far as Content-Length: a chunked one would be read as empty."""
    import http.client
    from urllib.parse import urlsplit

    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=alice).key
    host = urlsplit(live_server.url)
    connection = http.client.HTTPConnection(host.hostname, host.port, timeout=10)
    connection.putrequest("POST", "/api/pipelines/validate/")
    connection.putheader("Authorization", f"Token {token}")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    body = b'{"definition": {"steps": []}}'
    connection.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    response = connection.getresponse()
    assert response.status == 411
    assert b"Content-Length" in response.read()
    connection.close()
