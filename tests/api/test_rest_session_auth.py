"""The browser's way in: the session, with CSRF on writes; a token needs no CSRF."""

import pytest
from django.test import Client

from tests.conftest import PASSWORD


@pytest.fixture
def browser(alice):
    client = Client(enforce_csrf_checks=True)
    assert client.login(username="alice", password=PASSWORD)
    return client


def test_it_reads_with_a_session(pipeline, browser):
    assert browser.get("/api/pipelines/simple/").status_code == 200


def test_it_needs_the_csrf_token_to_write_with_a_session(pipeline, browser):
    body = {"pipeline": "simple", "dryRun": True}
    refused = browser.post("/api/runs/", body, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    browser.get("/api/tokens/")  # any page sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    accepted = browser.post("/api/runs/", body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201


def test_it_needs_no_csrf_token_with_an_api_token(pipeline, alice):
    from rest_framework.authtoken.models import Token

    client = Client(enforce_csrf_checks=True)
    key = Token.objects.create(user=alice).key
    response = client.post("/api/runs/", {"pipeline": "simple"}, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 201
