"""Clients for the personas (token and session), and pipelines and runs to look at."""

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from pipelines.services import save_definition
from runs import services
from runs.models import RecordError
from tests.fixtures import simple_definition


def client_for(user=None) -> APIClient:
    """A program's client: the user's API token in the Authorization header (anonymous without a user)."""
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def as_alice(alice):
    return client_for(alice)


@pytest.fixture
def as_bob(bob):
    return client_for(bob)


@pytest.fixture
def as_charlie(charlie):
    return client_for(charlie)


@pytest.fixture
def anonymous(db):
    return client_for(None)


@pytest.fixture
def pipeline(db):
    return save_definition(simple_definition(code="simple"), message="first")


@pytest.fixture
def failed_run(pipeline):
    """An ended run of ``pipeline`` whose 'clean' step sent two records to the dead-letter list."""
    run = services.create_run(pipeline)
    type(run).objects.filter(pk=run.pk).update(status="FAILED", error="2 records failed")
    RecordError.objects.create(run=run, step_key="clean", record={"sku": 1}, message="not a string")
    RecordError.objects.create(run=run, step_key="clean", record={"sku": 2}, message="not a string")
    run.refresh_from_db()
    return run


@pytest.fixture
def alice_token(alice):
    """alice's API token, with a pipeline and a run of it for generated requests to find."""
    services.create_run(save_definition(simple_definition(code="simple")))
    return Token.objects.create(user=alice).key


@pytest.fixture
def wsgi_app():
    """Django's WSGI app, leaving the test's database connection open between requests (as Django's test
    client does): otherwise every request would close it and lose the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield WSGIHandler()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """The personas' passwords are hashed with a fast hasher here: the API tests make many users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def gql(client, query: str, variables: dict | None = None, **extra):
    """POST a GraphQL request as JSON; returns (status code, body)."""
    response = client.post("/graphql/", {"query": query, "variables": variables or {}}, format="json", **extra)
    return response.status_code, response.json()


def codes(body: dict) -> list[str]:
    """The extensions.code of each error in a GraphQL answer."""
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
