"""Who may open what: anonymous → login, charlie (no permissions) → 403, bob (viewer) reads but every change
is 403, alice may do everything. Behaviour of each page is in its own file."""

import pytest
from django.test import Client

from runs.services import create_run

pytestmark = pytest.mark.django_db

PAGES = [  # (url, who may see it besides alice)
    ("/", "bob"),
    ("/pipelines/", "bob"),
    ("/pipelines/simple/", "bob"),
    ("/pipelines/simple/json/", "bob"),
    ("/pipelines/simple/export/", "bob"),
    ("/pipelines/simple/revisions/1/", "bob"),
    ("/runs/", "bob"),
    ("/runs/{run}/", "bob"),
    ("/pipelines/new/", None),
    ("/pipelines/import/", None),
    ("/pipelines/simple/duplicate/", None),
    ("/pipelines/simple/new-step/?type=SINK&adapter=records", None),
    ("/pipelines/simple/preview/", None),
]
CHANGES = [
    "/pipelines/new/",
    "/pipelines/import/",
    "/pipelines/simple/toggle/",
    "/pipelines/simple/duplicate/",
    "/pipelines/simple/json/",
    "/pipelines/simple/settings/",
    "/pipelines/simple/new-step/",
    "/pipelines/simple/steps/clean/",
    "/pipelines/simple/steps/clean/move/",
    "/pipelines/simple/steps/clean/remove/",
    "/pipelines/simple/edges/",
    "/pipelines/simple/edges/clear/",
    "/pipelines/simple/edges/0/remove/",
    "/pipelines/simple/revisions/1/restore/",
    "/pipelines/simple/run/",
    "/pipelines/simple/preview/",
    "/runs/{run}/cancel/",
    "/runs/{run}/rerun/",
    "/runs/{run}/replay/",
]


@pytest.fixture
def run(pipeline):
    return create_run(pipeline)


@pytest.mark.parametrize("url", sorted({u for u, _ in PAGES} | set(CHANGES)))
def test_it_sends_anonymous_visitors_to_the_login_page(client: Client, run, url):
    page = url in {u for u, _ in PAGES}
    url = url.format(run=run.pk)
    response = client.get(url) if page else client.post(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("url", [u for u, _ in PAGES])
def test_it_refuses_users_without_permissions(as_charlie, run, url):
    assert as_charlie.get(url.format(run=run.pk)).status_code == 403


@pytest.mark.parametrize("url,who", PAGES)
def test_it_shows_pages_to_viewers_and_owners(as_alice, as_bob, run, url, who):
    url = url.format(run=run.pk)
    assert as_alice.get(url).status_code == 200
    assert as_bob.get(url).status_code == (200 if who == "bob" else 403)


@pytest.mark.parametrize("url", CHANGES)
def test_it_refuses_every_change_to_a_viewer(as_bob, as_charlie, run, url):
    url = url.format(run=run.pk)
    assert as_bob.post(url, {"key": "x", "type": "SINK"}).status_code == 403
    assert as_charlie.post(url, {"key": "x", "type": "SINK"}).status_code == 403


def test_it_shows_a_friendly_page_when_refusing(as_charlie):
    response = as_charlie.get("/pipelines/")
    assert b"You are not allowed to do this" in response.content


def test_it_logs_in_and_returns_to_the_page_asked_for(client, alice):
    from tests.conftest import PASSWORD

    page = client.get("/accounts/login/?next=/runs/")
    assert page.status_code == 200 and b'name="password"' in page.content
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD, "next": "/runs/"})
    assert response.status_code == 302 and response["Location"] == "/runs/"


def test_it_answers_a_wrong_password_on_the_login_form(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    assert b'value="alice"' in response.content


def test_it_enforces_csrf_on_changes(csrf_alice, pipeline):
    assert csrf_alice.post("/pipelines/simple/toggle/").status_code == 403
    from tests.web.conftest import csrf_token

    token = csrf_token(csrf_alice, "/pipelines/")
    assert csrf_alice.post("/pipelines/simple/toggle/", HTTP_X_CSRFTOKEN=token).status_code == 302
