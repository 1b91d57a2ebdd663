"""Every REST endpoint, for a user allowed to use it, a user without the permission, and nobody.

Reads need the view permissions (charlie has none), writes the add/change/delete/run ones (bob may only
look). Permissions are checked before anything is looked up: a refused user cannot tell what exists.
"""

import pytest

from pipelines.services import save_definition
from runs import services
from tests.api.conftest import client_for
from tests.fixtures import simple_definition

# name: (method, url, body, alice's status, who is refused)
ENDPOINTS = {
    "pipelines list": ("get", "/api/pipelines/", None, 200, "charlie"),
    "pipeline create": ("post", "/api/pipelines/", {"definition": simple_definition(code="new")}, 201, "bob"),
    "pipeline retrieve": ("get", "/api/pipelines/simple/", None, 200, "charlie"),
    "pipeline update": ("put", "/api/pipelines/simple/", {"definition": simple_definition(records=[])}, 200, "bob"),
    "pipeline settings": ("patch", "/api/pipelines/simple/", {"enabled": False}, 200, "bob"),
    "pipeline delete": ("delete", "/api/pipelines/lonely/", None, 204, "bob"),
    "revisions": ("get", "/api/pipelines/simple/revisions/", None, 200, "charlie"),
    "revision": ("get", "/api/pipelines/simple/revisions/1/", None, 200, "charlie"),
    "restore": ("post", "/api/pipelines/simple/revisions/1/restore/", None, 200, "bob"),
    "validate": ("post", "/api/pipelines/validate/", simple_definition(), 200, "charlie"),
    "export": ("get", "/api/pipelines/simple/export/", None, 200, "charlie"),
    "import": ("post", "/api/pipelines/import/", simple_definition(code="imported"), 201, "bob"),
    "runs list": ("get", "/api/runs/", None, 200, "charlie"),
    "run start": ("post", "/api/runs/", {"pipeline": "simple", "dryRun": True}, 201, "bob"),
    "run retrieve": ("get", "/api/runs/{failed}/", None, 200, "charlie"),
    "run cancel": ("post", "/api/runs/{pending}/cancel/", None, 200, "bob"),
    "run rerun": ("post", "/api/runs/{failed}/rerun/", None, 201, "bob"),
    "record errors": ("get", "/api/runs/{failed}/record-errors/", None, 200, "charlie"),
    "replay": ("post", "/api/runs/{failed}/record-errors/replay/", {"step": "clean"}, 201, "bob"),
    "adapters": ("get", "/api/adapters/", None, 200, "charlie"),
}


@pytest.fixture
def world(failed_run):
    save_definition(simple_definition(code="lonely"))
    pending = services.create_run(save_definition(simple_definition(code="busy")))
    return {"failed": failed_run.pk, "pending": pending.pk}


def call(client, name, world):
    method, url, body, _, _ = ENDPOINTS[name]
    return getattr(client, method)(url.format(**world), body, format="json")


@pytest.mark.parametrize("name", ENDPOINTS)
def test_it_serves_a_user_with_the_permission(name, world, alice):
    response = call(client_for(alice), name, world)
    assert response.status_code == ENDPOINTS[name][3], response.content


@pytest.mark.parametrize("name", ENDPOINTS)
def test_it_refuses_a_user_without_the_permission(name, world, bob, charlie):
    refused = {"bob": bob, "charlie": charlie}[ENDPOINTS[name][4]]
    response = call(client_for(refused), name, world)
    assert response.status_code == 403, response.content
    assert "permission" in response.json()["detail"]


@pytest.mark.parametrize("name", ENDPOINTS)
def test_it_asks_nobody_to_authenticate(name, world, anonymous):
    response = call(anonymous, name, world)
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == "Token"


def test_it_tells_a_refused_user_nothing_about_what_exists(pipeline, as_charlie, as_bob):
    for client, method, body in ((as_charlie, "get", None), (as_bob, "delete", None)):
        there = getattr(client, method)("/api/pipelines/simple/", body, format="json")
        missing = getattr(client, method)("/api/pipelines/nothing-here/", body, format="json")
        assert there.status_code == missing.status_code == 403
        assert there.json() == missing.json()
    assert as_charlie.get("/api/runs/1/").json() == as_charlie.get("/api/runs/999999/").json()


def test_it_rejects_a_wrong_token(db):
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get("/api/pipelines/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}
