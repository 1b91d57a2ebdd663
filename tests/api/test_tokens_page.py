"""/api/tokens/: a logged-in person creates (shown once), replaces and revokes their API token."""

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from tests.conftest import PASSWORD


@pytest.fixture
def browser(alice):
    client = Client()
    assert client.login(username="alice", password=PASSWORD)
    return client


def test_it_sends_nobody_to_the_login_page(db):
    response = Client().get("/api/tokens/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_it_creates_a_token_and_shows_it_once(browser, alice):
    page = browser.get("/api/tokens/").content.decode()
    assert "You have no API token." in page and "one token at a time" in page
    created = browser.post("/api/tokens/", {"action": "create"})
    key = Token.objects.get(user=alice).key
    assert key in created.content.decode() and "shown only this once" in created.content.decode()
    assert "no-store" in created["Cache-Control"]
    later = browser.get("/api/tokens/").content.decode()
    assert key not in later and f"starts with <code>{key[:4]}" in later


def test_it_works_as_the_api_token(browser, alice):
    browser.post("/api/tokens/", {"action": "create"})
    key = Token.objects.get(user=alice).key
    response = Client().get("/api/pipelines/", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200


def test_it_replaces_the_old_token(browser, alice):
    browser.post("/api/tokens/", {"action": "create"})
    old = Token.objects.get(user=alice).key
    browser.post("/api/tokens/", {"action": "create"})
    assert Token.objects.get(user=alice).key != old
    assert Client().get("/api/pipelines/", HTTP_AUTHORIZATION=f"Token {old}").status_code == 401


def test_it_revokes_the_token(browser, alice):
    browser.post("/api/tokens/", {"action": "create"})
    key = Token.objects.get(user=alice).key
    response = browser.post("/api/tokens/", {"action": "revoke"}, follow=True)
    assert "Your API token was revoked." in response.content.decode()
    assert not Token.objects.filter(user=alice).exists()
    assert Client().get("/api/pipelines/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 401


def test_it_refuses_an_unknown_action_and_a_post_without_csrf(alice):
    client = Client(enforce_csrf_checks=True)
    client.login(username="alice", password=PASSWORD)
    assert client.post("/api/tokens/", {"action": "create"}).status_code == 403
    assert not Token.objects.filter(user=alice).exists()
    plain = Client()
    plain.login(username="alice", password=PASSWORD)
    assert plain.post("/api/tokens/", {"action": "explode"}).status_code == 400
