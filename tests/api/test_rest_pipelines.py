"""Pipelines over REST: list, retrieve, create, update, settings, delete; definitions validated as in
the editor, with every problem naming its step and field."""

from pipelines.models import Pipeline
from pipelines.services import save_definition
from runs import services
from tests.fixtures import simple_definition


def test_it_lists_pipelines_a_page_at_a_time(as_alice):
    for code in ("a", "b", "c"):
        save_definition(simple_definition(code=code))
    first = as_alice.get("/api/pipelines/", {"limit": 2}).json()
    assert first["count"] == 3 and [p["code"] for p in first["results"]] == ["a", "b"]
    assert first["previous"] is None and "offset=2" in first["next"]
    second = as_alice.get(first["next"]).json()
    assert [p["code"] for p in second["results"]] == ["c"] and second["next"] is None
    assert as_alice.get("/api/pipelines/", {"search": "b"}).json()["count"] == 1


def test_it_shows_a_pipeline_with_its_current_definition(pipeline, as_alice):
    body = as_alice.get("/api/pipelines/simple/").json()
    assert body["code"] == "simple" and body["name"] == "Pipeline simple" and body["revision"] == 1
    assert body["enabled"] is True and body["allowConcurrentRuns"] is False
    assert body["definition"] == pipeline.current_revision.definition
    assert [s["key"] for s in body["definition"]["steps"]] == ["src", "clean", "out"]


def test_it_creates_a_pipeline_and_freezes_its_first_revision(as_alice, alice):
    response = as_alice.post("/api/pipelines/", {"definition": simple_definition(code="fresh"),
                                                  "message": "hello"}, format="json")
    assert response.status_code == 201
    assert response.json()["revision"] == 1
    revision = Pipeline.objects.get(code="fresh").current_revision
    assert revision.created_by == alice and revision.message == "hello"


def test_it_refuses_an_invalid_definition_with_every_problem_at_its_step_and_field(as_alice):
    definition = simple_definition(code="broken")
    definition["steps"][1]["config"]["operators"][0]["op"] = "trm"
    definition["steps"][2]["adapterCode"] = "nowhere"
    response = as_alice.post("/api/pipelines/", {"definition": definition}, format="json")
    assert response.status_code == 400
    body = response.json()
    places = {(p["step"], p["field"]) for p in body["problems"]}
    assert ("clean", "config.operators[0].op") in places
    assert ("out", "adapterCode") in places
    assert any("did you mean 'trim'" in p["message"] for p in body["problems"])
    assert body["detail"].startswith("the definition is invalid")
    assert not Pipeline.objects.filter(code="broken").exists()


def test_it_refuses_to_create_a_pipeline_that_exists(pipeline, as_alice):
    response = as_alice.post("/api/pipelines/", {"definition": simple_definition(code="simple")}, format="json")
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]


def test_it_needs_a_code_to_create(as_alice):
    definition = simple_definition()
    del definition["code"]
    response = as_alice.post("/api/pipelines/", {"definition": definition}, format="json")
    assert response.status_code == 400
    assert response.json()["problems"][0]["field"] == "code"
    ok = as_alice.post("/api/pipelines/", {"definition": definition, "code": "given"}, format="json")
    assert ok.status_code == 201 and ok.json()["code"] == "given"


def test_it_updates_a_definition_as_a_new_revision_only_when_it_changed(pipeline, as_alice):
    changed = simple_definition(records=[{"sku": "z"}])
    response = as_alice.put("/api/pipelines/simple/", {"definition": changed, "message": "z"}, format="json")
    assert response.status_code == 200 and response.json()["revision"] == 2
    again = as_alice.put("/api/pipelines/simple/", {"definition": changed}, format="json")
    assert again.status_code == 200 and again.json()["revision"] == 2
    assert pipeline.revisions.count() == 2


def test_it_refuses_an_update_naming_another_pipeline(pipeline, as_alice):
    response = as_alice.put("/api/pipelines/simple/", {"definition": simple_definition(code="other")}, format="json")
    assert response.status_code == 400
    assert response.json()["problems"][0]["field"] == "definition.code"


def test_it_refuses_an_invalid_update_and_keeps_the_old_definition(pipeline, as_alice):
    broken = simple_definition()
    broken["edges"] = [{"from": "src", "to": "nowhere"}]
    response = as_alice.put("/api/pipelines/simple/", {"definition": broken}, format="json")
    assert response.status_code == 400
    problems = response.json()["problems"]
    assert problems[0] == {"step": None, "field": "edges[0]", "message": "'to' names unknown step 'nowhere'",
                           "code": "unknown_step"}
    # every problem at once: the steps the edges leave out are named too
    assert [(p["step"], p["code"]) for p in problems[1:]] == [("clean", "disconnected"), ("out", "disconnected")]
    assert pipeline.revisions.count() == 1


def test_it_answers_404_for_an_unknown_pipeline(as_alice, db):
    assert as_alice.get("/api/pipelines/nope/").status_code == 404
    assert as_alice.put("/api/pipelines/nope/", {"definition": simple_definition()}, format="json").status_code == 404
    assert as_alice.get("/api/pipelines/NOT A CODE/").json() == {"detail": "no pipeline 'NOT A CODE'"}


def test_it_changes_settings_beside_the_definition(pipeline, as_alice):
    response = as_alice.patch("/api/pipelines/simple/", {"enabled": False, "allowConcurrentRuns": True},
                              format="json")
    assert response.status_code == 200
    pipeline.refresh_from_db()
    assert pipeline.enabled is False and pipeline.allow_concurrent_runs is True
    assert pipeline.revisions.count() == 1


def test_it_deletes_a_pipeline_that_never_ran(pipeline, as_alice):
    assert as_alice.delete("/api/pipelines/simple/").status_code == 204
    assert not Pipeline.objects.filter(code="simple").exists()


def test_it_keeps_a_pipeline_that_has_runs(pipeline, as_alice):
    services.create_run(pipeline)
    response = as_alice.delete("/api/pipelines/simple/")
    assert response.status_code == 409
    assert "disable it instead" in response.json()["detail"]
    assert Pipeline.objects.filter(code="simple").exists()
