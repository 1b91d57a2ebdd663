"""Revisions, restore, validate without saving, export and import over REST."""

from pipelines.models import Pipeline
from pipelines.services import save_definition
from tests.fixtures import simple_definition


def test_it_lists_revisions_newest_first_and_shows_one(pipeline, as_alice, alice):
    save_definition(simple_definition(records=[]), user=alice, message="empty")
    body = as_alice.get("/api/pipelines/simple/revisions/").json()
    assert [(r["number"], r["message"], r["createdBy"]) for r in body["results"]] == [
        (2, "empty", "alice"), (1, "first", None)]
    one = as_alice.get("/api/pipelines/simple/revisions/1/").json()
    assert one["definition"]["steps"][0]["config"]["data"] == [{"sku": " a "}, {"sku": "b"}]
    assert as_alice.get("/api/pipelines/simple/revisions/9/").status_code == 404
    assert as_alice.get(f"/api/pipelines/simple/revisions/{2**70}/").status_code == 404


def test_it_restores_an_old_revision_as_a_new_one(pipeline, as_alice):
    save_definition(simple_definition(records=[]))
    response = as_alice.post("/api/pipelines/simple/revisions/1/restore/")
    assert response.status_code == 200
    assert response.json()["revision"] == 3
    assert response.json()["definition"]["steps"][0]["config"]["data"] == [{"sku": " a "}, {"sku": "b"}]
    assert as_alice.post("/api/pipelines/simple/revisions/7/restore/").status_code == 404


def test_it_validates_without_saving(as_alice, db):
    good = as_alice.post("/api/pipelines/validate/", simple_definition(code="never"), format="json")
    assert good.json() == {"valid": True, "problems": []}
    bad = simple_definition(code="never")
    bad["steps"][0]["type"] = "EXTRCT"
    body = as_alice.post("/api/pipelines/validate/", bad, format="json").json()
    assert body["valid"] is False
    assert body["problems"][0]["step"] == "src" and body["problems"][0]["field"] == "type"
    assert "did you mean 'EXTRACT'" in body["problems"][0]["message"]
    assert not Pipeline.objects.exists()


def test_it_exports_the_definition_as_a_file(pipeline, as_alice):
    save_definition(simple_definition(records=[]))
    response = as_alice.get("/api/pipelines/simple/export/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="simple.json"'
    assert response.json() == pipeline.revisions.get(number=2).definition
    old = as_alice.get("/api/pipelines/simple/export/", {"revision": 1}).json()
    assert old == pipeline.revisions.get(number=1).definition
    assert as_alice.get("/api/pipelines/simple/export/", {"revision": 5}).status_code == 404
    assert as_alice.get("/api/pipelines/simple/export/", {"revision": "x"}).status_code == 400


def test_it_imports_what_it_exports(pipeline, as_alice):
    exported = as_alice.get("/api/pipelines/simple/export/").json()
    again = as_alice.post("/api/pipelines/import/", exported, format="json")
    assert again.status_code == 200 and again.json()["revision"] == 1  # unchanged: no new revision
    copy = as_alice.post("/api/pipelines/import/?code=copy", exported, format="json")
    assert copy.status_code == 201 and copy.json()["code"] == "copy"


def test_it_imports_the_plugins_export_form(as_alice, db):
    response = as_alice.post("/api/pipelines/import/", {"definition": simple_definition(code="wrapped")},
                             format="json")
    assert response.status_code == 201 and response.json()["code"] == "wrapped"


def test_it_refuses_an_invalid_import(as_alice, db):
    response = as_alice.post("/api/pipelines/import/", {"code": "x", "steps": []}, format="json")
    assert response.status_code == 400
    assert response.json()["problems"][0]["field"] == "steps"


def test_it_needs_change_to_import_over_an_existing_pipeline(pipeline, django_user_model):
    from django.contrib.auth.models import Permission

    from tests.api.conftest import client_for

    adder = django_user_model.objects.create_user("adder")
    adder.user_permissions.add(Permission.objects.get(codename="add_pipeline"))
    client = client_for(adder)
    assert client.post("/api/pipelines/import/", simple_definition(code="mine"), format="json").status_code == 201
    refused = client.post("/api/pipelines/import/", simple_definition(code="simple"), format="json")
    assert refused.status_code == 403
    assert "pipelines.change_pipeline" in refused.json()["detail"]
