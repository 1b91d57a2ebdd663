"""The connection and secret pages: list, create, edit, test, delete; bad input answered at the field;
permissions and CSRF; and a secret's value never sent back to the browser."""

import json

import pytest
from django.test import Client

from pipelines.credentials import save_connection, save_secret
from pipelines.models import Connection, Secret
from pipelines.secrets import resolve_secret
from pipelines.services import save_definition
from tests.credentials.conftest import SECRET_VALUE


def _page(response) -> str:
    return response.content.decode()


def test_it_sends_nobody_to_the_login_page(db):
    for url in ("/connections/", "/connections/new/", "/secrets/", "/secrets/new/"):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


def test_it_refuses_people_without_the_permissions(charlie, vera):
    save_secret(code="pw", value=SECRET_VALUE)
    save_connection(code="api", type="HTTP", config={"baseUrl": "https://api.example.com"})
    outsider = Client()
    outsider.force_login(charlie)
    for url in ("/connections/", "/connections/api/", "/secrets/", "/secrets/pw/"):
        assert outsider.get(url).status_code == 403, url
    looker = Client()
    looker.force_login(vera)
    assert looker.get("/connections/api/").status_code == 200
    assert looker.get("/connections/new/").status_code == 403
    for url in ("/connections/api/", "/connections/api/test/", "/connections/api/delete/", "/secrets/pw/",
                "/secrets/pw/delete/"):
        assert looker.post(url, {"type": "HTTP", "config": "{}", "value": "x"}).status_code == 403, url
    assert Connection.objects.filter(code="api").exists() and resolve_secret("pw") == SECRET_VALUE


def test_it_refuses_a_post_without_csrf(olga):
    client = Client(enforce_csrf_checks=True)
    client.force_login(olga)
    assert client.post("/secrets/new/", {"code": "pw", "value": "x"}).status_code == 403
    assert not Secret.objects.exists()


def test_it_creates_a_secret_and_never_shows_its_value(as_olga):
    response = as_olga.post("/secrets/new/", {"code": "shop-pw", "description": "shop DB", "value": SECRET_VALUE},
                            follow=True)
    page = _page(response)
    assert "Secret shop-pw saved. Its value will not be shown again." in page
    assert "stored encrypted" in page
    assert resolve_secret("shop-pw") == SECRET_VALUE
    assert SECRET_VALUE not in Secret.objects.get(code="shop-pw").ciphertext
    for url in ("/secrets/", "/secrets/shop-pw/", "/connections/"):
        assert SECRET_VALUE not in _page(as_olga.get(url)), url
    # a refused form does not send the typed value back either
    refused = as_olga.post("/secrets/new/", {"code": "Bad Code", "value": SECRET_VALUE})
    assert refused.status_code == 200 and "is not a valid code" in _page(refused)
    assert SECRET_VALUE not in _page(refused)


def test_it_changes_a_secret_keeping_the_value_when_none_is_typed(as_olga):
    save_secret(code="pw", value=SECRET_VALUE)
    as_olga.post("/secrets/pw/", {"description": "now described", "value": ""})
    assert resolve_secret("pw") == SECRET_VALUE
    assert Secret.objects.get(code="pw").description == "now described"
    as_olga.post("/secrets/pw/", {"value": "env:SHOP_PW"})
    page = _page(as_olga.get("/secrets/pw/"))
    assert "from $SHOP_PW" in page
    bad = as_olga.post("/secrets/pw/", {"value": "env:9-bad"})
    assert bad.status_code == 200 and "env: must be followed by" in _page(bad)


def test_it_creates_edits_and_deletes_a_connection(as_olga):
    save_secret(code="api-token", value=SECRET_VALUE)
    config = {"baseUrl": "https://api.example.com", "auth": {"type": "BEARER", "secretCode": "api-token"}}
    response = as_olga.post("/connections/new/", {"code": "shop-api", "name": "Shop", "type": "HTTP",
                                                   "config": json.dumps(config)}, follow=True)
    assert "Connection shop-api created." in _page(response)
    assert Connection.objects.get(code="shop-api").config == config
    page = _page(as_olga.get("/connections/"))
    assert "shop-api" in page and "api-token" in page
    as_olga.post("/connections/shop-api/", {"name": "Shop v2", "type": "HTTP", "config": '{"baseUrl": "https://x.example"}'})
    assert Connection.objects.get(code="shop-api").name == "Shop v2"
    response = as_olga.post("/connections/shop-api/delete/", follow=True)
    assert "Connection shop-api deleted." in _page(response)
    assert not Connection.objects.exists()


@pytest.mark.parametrize("config, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"host": "db", "password": "hunter2"}', "password: a credential may not be written into a connection"),
    ('{"url": "postgres://app:hunter2@db/x"}', "url: this URL holds a password"),
    ('{"passwordSecretCode": "missing"}', "names secret &#x27;missing&#x27;, which does not exist"),
])
def test_it_answers_bad_config_at_the_field(as_olga, config, message):
    response = as_olga.post("/connections/new/", {"code": "db", "type": "POSTGRES", "config": config})
    page = _page(response)
    assert response.status_code == 200 and message in page
    assert "no-store" in response["Cache-Control"]  # what was typed comes back, and is not cached
    assert not Connection.objects.exists()


def test_it_refuses_a_duplicate_code_and_an_unknown_type(as_olga):
    save_connection(code="db", type="SQLITE", config={"path": "x.db"})
    page = _page(as_olga.post("/connections/new/", {"code": "db", "type": "SQLITE", "config": "{}"}))
    assert "a connection &#x27;db&#x27; exists already" in page
    page = _page(as_olga.post("/connections/new/", {"code": "db2", "type": "ORACLE", "config": "{}"}))
    assert "Select a valid choice" in page


def test_it_shows_where_a_secret_is_used_and_refuses_to_delete_it(as_olga):
    save_secret(code="db-pw", value=SECRET_VALUE)
    save_secret(code="hook-key", value=SECRET_VALUE)
    save_connection(code="shop-db", type="POSTGRES", config={"host": "db", "passwordSecretCode": "db-pw"})
    save_definition({"version": 1, "code": "orders", "name": "Orders", "steps": [
        {"key": "in", "type": "EXTRACT", "adapterCode": "database",
         "config": {"connectionCode": "shop-db", "query": "SELECT 1 AS x"}}]})
    page = _page(as_olga.get("/secrets/db-pw/"))
    assert 'href="/connections/shop-db/"' in page and 'href="/pipelines/orders/"' in page
    response = as_olga.post("/secrets/db-pw/delete/", follow=True)
    assert "secret &#x27;db-pw&#x27; is used by connections shop-db and pipelines orders" in _page(response)
    assert Secret.objects.filter(code="db-pw").exists()
    response = as_olga.post("/connections/shop-db/delete/", follow=True)
    assert "connection &#x27;shop-db&#x27; is used by pipelines orders" in _page(response)
    as_olga.post("/secrets/hook-key/delete/")
    assert not Secret.objects.filter(code="hook-key").exists()


def test_it_tests_a_connection_from_its_page(as_olga, settings, tmp_path):
    import sqlite3

    settings.DATAHUB_SQLITE_DIRS = [str(tmp_path)]
    sqlite3.connect(tmp_path / "a.db").close()
    save_connection(code="local", type="SQLITE", config={"path": str(tmp_path / "a.db")})
    page = _page(as_olga.post("/connections/local/test/"))
    assert "Connected" in page and "ran SELECT 1" in page
    save_connection(code="gone", type="SQLITE", config={"path": str(tmp_path / "gone.db")})
    page = _page(as_olga.post("/connections/gone/test/"))
    assert "Failed" in page and "does not exist" in page
