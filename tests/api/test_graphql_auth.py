"""How people and programs get into /graphql/: a token (no CSRF), or a session (CSRF on POST); GraphiQL
only for logged-in people; bad bodies answered with 4xx."""

import json

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from tests.api.conftest import codes
from tests.conftest import PASSWORD

QUERY = json.dumps({"query": "{ pipelines { code } }"})


@pytest.fixture
def browser(alice):
    client = Client(enforce_csrf_checks=True)
    assert client.login(username="alice", password=PASSWORD)
    return client


def test_it_accepts_a_token_without_csrf(pipeline, alice):
    key = Token.objects.create(user=alice).key
    client = Client(enforce_csrf_checks=True)
    response = client.post("/graphql/", QUERY, content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200
    assert response.json() == {"data": {"pipelines": [{"code": "simple"}]}}


def test_it_refuses_a_wrong_token(db):
    response = Client().post("/graphql/", QUERY, content_type="application/json", HTTP_AUTHORIZATION="Token nope")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert codes(response.json()) == ["UNAUTHENTICATED"]


def test_it_needs_csrf_for_a_session_post(pipeline, browser):
    refused = browser.post("/graphql/", QUERY, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["errors"][0]["message"]
    browser.get("/graphql/", HTTP_ACCEPT="text/html")  # sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    accepted = browser.post("/graphql/", QUERY, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 200 and accepted.json()["data"]["pipelines"] == [{"code": "simple"}]


def test_it_answers_a_session_get_query_without_csrf(pipeline, browser):
    response = browser.get("/graphql/", {"query": "{ pipelines { code } }"}, HTTP_ACCEPT="application/json")
    assert response.json() == {"data": {"pipelines": [{"code": "simple"}]}}


def test_it_shows_graphiql_to_logged_in_people_only(browser, db):
    page = browser.get("/graphql/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and b"graphiql" in page.content.lower()
    nobody = Client().get("/graphql/", HTTP_ACCEPT="text/html")
    assert nobody.status_code == 302 and nobody["Location"].startswith("/accounts/login/?next=/graphql/")


def test_it_refuses_mutations_over_get(browser, db):
    response = browser.get("/graphql/", {"query": 'mutation { startRun(pipeline: "x") { run { id } } }'},
                           HTTP_ACCEPT="application/json")
    assert response.status_code == 405


def test_it_answers_bad_bodies_with_4xx(as_alice, settings):
    def post(body, content_type="application/json"):
        return as_alice.generic("POST", "/graphql/", body, content_type=content_type)

    assert post('{"query": ').status_code == 400
    assert post("[1, 2]").status_code == 400
    assert post('{"query": 5}').status_code == 400
    assert post('{"query": "{ pipelines { code } }", "variables": [1]}').status_code == 400
    assert post("{}").status_code == 400  # no query
    assert post('{"query": "{ pipeline(code: \\"a\\u0000\\") { code } }"}').status_code == 400
    assert post("[" * 50_000 + "]" * 50_000).status_code == 400
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    huge = post(json.dumps({"query": "{ pipelines { code } }", "variables": {"pad": "x" * 20_000}}))
    assert huge.status_code == 413 and "larger than 10000 bytes" in huge.json()["errors"][0]["message"]
