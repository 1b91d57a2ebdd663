"""/api/connections/ and /api/secrets/, and the GraphQL fields for them: the same rules as the pages,
Django's permissions, problems named by field, 409 for what is in use, and no secret value in any answer."""

import json

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from pipelines.credentials import save_connection, save_secret
from pipelines.models import Connection, Secret
from pipelines.secrets import resolve_secret
from pipelines.services import save_definition
from tests.credentials.conftest import SECRET_VALUE


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def gql(client, query, **variables):
    response = client.post("/graphql/", {"query": query, "variables": variables}, format="json")
    return response.json()


@pytest.fixture
def api(olga):
    return client_for(olga)


def test_it_creates_reads_changes_and_deletes_over_rest(api):
    created = api.post("/api/secrets/", {"code": "tok", "value": SECRET_VALUE, "description": "d"}, format="json")
    assert created.status_code == 201
    assert created.json()["source"] == "stored" and created.json()["isSet"] is True
    assert resolve_secret("tok") == SECRET_VALUE
    config = {"baseUrl": "https://api.example.com", "auth": {"type": "BEARER", "secretCode": "tok"}}
    created = api.post("/api/connections/", {"code": "shop", "type": "HTTP", "config": config}, format="json")
    assert created.status_code == 201 and created.json()["secretCodes"] == ["tok"]
    assert api.get("/api/secrets/tok/").json()["usedBy"] == {"connections": ["shop"], "pipelines": []}
    listed = api.get("/api/connections/?limit=1").json()
    assert listed["count"] == 1 and [c["code"] for c in listed["results"]] == ["shop"] and listed["next"] is None
    assert api.get("/api/secrets/?limit=0").status_code == 400
    changed = api.put("/api/connections/shop/", {"type": "HTTP", "name": "Shop", "config": config}, format="json")
    assert changed.status_code == 200 and changed.json()["name"] == "Shop"
    assert api.put("/api/secrets/tok/", {"description": "new"}, format="json").status_code == 200
    assert resolve_secret("tok") == SECRET_VALUE  # no value sent: kept
    assert api.delete("/api/secrets/tok/").status_code == 409  # the connection names it
    assert api.delete("/api/connections/shop/").status_code == 204
    assert api.delete("/api/secrets/tok/").status_code == 204
    assert not Secret.objects.exists() and not Connection.objects.exists()


def test_it_names_each_bad_field(api):
    response = api.post("/api/connections/", {"code": "c", "type": "HTTP", "extra": 1}, format="json")
    assert response.status_code == 400 and response.json()["problems"][0]["field"] == "extra"
    response = api.post("/api/connections/", {"code": "c", "type": "ORACLE"}, format="json")
    assert response.status_code == 400 and response.json()["problems"][0]["field"] == "type"
    response = api.post("/api/connections/", {"code": "Bad Code", "type": "HTTP",
                                              "config": {"password": "x", "passwordSecretCode": "nope"}},
                        format="json")
    fields = [p["field"] for p in response.json()["problems"]]
    assert response.status_code == 400 and fields == ["code", "config.password", "config"]
    response = api.post("/api/secrets/", {"code": "s", "value": 5}, format="json")
    assert response.status_code == 400 and response.json()["problems"][0]["field"] == "value"
    response = api.post("/api/secrets/", {"code": "s"}, format="json")
    assert response.status_code == 400 and "needs a value" in response.json()["detail"]
    save_secret(code="s", value="x")
    assert api.post("/api/secrets/", {"code": "s", "value": "y"}, format="json").status_code == 409
    assert api.put("/api/secrets/s/", {"code": "other"}, format="json").status_code == 400
    assert api.get("/api/secrets/nope/").status_code == 404
    assert api.get("/api/connections/NO%20PE/").status_code == 404


def test_it_checks_permissions(db, vera, charlie):
    save_secret(code="s", value=SECRET_VALUE)
    save_connection(code="c", type="SQLITE", config={"path": "x.db"})
    assert client_for().get("/api/secrets/").status_code == 401
    assert client_for(charlie).get("/api/secrets/").status_code == 403
    assert client_for(charlie).get("/api/connections/c/").status_code == 403
    looker = client_for(vera)
    assert looker.get("/api/secrets/s/").status_code == 200
    assert looker.put("/api/secrets/s/", {"value": "new"}, format="json").status_code == 403
    assert looker.post("/api/connections/c/test/").status_code == 403
    assert looker.delete("/api/connections/c/").status_code == 403
    assert resolve_secret("s") == SECRET_VALUE
    assert gql(looker, 'mutation { saveSecret(code: "s", value: "new") { ok } }')["errors"][0]["extensions"][
        "code"] == "FORBIDDEN"
    assert gql(client_for(charlie), "{ secrets { code } }")["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_it_tests_a_connection_over_rest_and_graphql(api, settings, tmp_path):
    import sqlite3

    settings.DATAHUB_SQLITE_DIRS = [str(tmp_path)]
    sqlite3.connect(tmp_path / "a.db").close()
    save_connection(code="local", type="SQLITE", config={"path": str(tmp_path / "a.db")})
    answer = api.post("/api/connections/local/test/").json()
    assert answer["ok"] is True and "SELECT 1" in answer["message"]
    answer = gql(api, 'mutation { testConnection(code: "local") { ok message elapsedMs } }')
    assert answer["data"]["testConnection"]["ok"] is True


def test_it_manages_them_over_graphql(api):
    answer = gql(api, 'mutation($v: String) { saveSecret(code: "g-tok", value: $v) { ok secret { code source isSet } } }',
                 v=SECRET_VALUE)
    assert answer["data"]["saveSecret"] == {"ok": True, "secret": {"code": "g-tok", "source": "stored", "isSet": True}}
    answer = gql(api, 'mutation($c: GenericScalar) { saveConnection(code: "g", type: "REDIS", config: $c) '
                      '{ ok problems { field message } connection { code secretCodes usedBy { pipelines } } } }',
                 c={"host": "127.0.0.1", "passwordSecretCode": "g-tok"})
    assert answer["data"]["saveConnection"]["ok"] is True
    assert answer["data"]["saveConnection"]["connection"]["secretCodes"] == ["g-tok"]
    answer = gql(api, 'mutation { saveConnection(code: "bad", type: "REDIS", config: {token: "x"}) '
                      '{ ok problems { field } } }')
    assert answer["data"]["saveConnection"] == {"ok": False, "problems": [{"field": "config.token"}]}
    answer = gql(api, '{ secrets { code usedBy { connections } } connections { code typeLabel } }')
    assert answer["data"]["secrets"] == [{"code": "g-tok", "usedBy": {"connections": ["g"]}}]
    assert answer["data"]["connections"] == [{"code": "g", "typeLabel": "Redis"}]
    assert gql(api, 'mutation { deleteSecret(code: "g-tok") { ok } }')["errors"][0]["extensions"]["code"] == "CONFLICT"
    assert gql(api, 'mutation { deleteConnection(code: "g") { ok } }')["data"]["deleteConnection"]["ok"]
    assert gql(api, 'mutation { deleteSecret(code: "g-tok") { ok } }')["data"]["deleteSecret"]["ok"]


def test_it_never_answers_a_secret_value_anywhere(api, olga, settings, tmp_path):
    """Every read interface, after every way of writing, holds neither the value nor its ciphertext."""
    settings.DATAHUB_SQLITE_DIRS = [str(tmp_path)]
    api.post("/api/secrets/", {"code": "rest-s", "value": SECRET_VALUE}, format="json")
    gql(api, 'mutation($v: String) { saveSecret(code: "gql-s", value: $v) { ok } }', v=SECRET_VALUE)
    save_secret(code="url-s", value=f"sqlite:///{tmp_path}/{SECRET_VALUE}.db")
    api.post("/api/connections/", {"code": "c", "type": "SQLITE",
                                   "config": {"connectionStringSecretCode": "url-s"}}, format="json")
    save_definition({"version": 1, "code": "p", "name": "P", "steps": [
        {"key": "in", "type": "EXTRACT", "adapterCode": "database",
         "config": {"connectionCode": "c", "query": "SELECT 1 AS x"}}]})
    ciphertexts = list(Secret.objects.values_list("ciphertext", flat=True))
    browser = api.__class__()
    browser.force_login(olga)
    answers = [
        api.get("/api/secrets/"), api.get("/api/secrets/rest-s/"), api.get("/api/secrets/gql-s/"),
        api.get("/api/connections/"), api.get("/api/connections/c/"), api.post("/api/connections/c/test/"),
        api.put("/api/secrets/rest-s/", {"value": SECRET_VALUE}, format="json"),
        api.post("/graphql/", {"query": "{ secrets { code description source envName isSet usedBy { connections pipelines } "
                                        "updatedAt } connections { code config secretCodes } }"}, format="json"),
        api.post("/graphql/", {"query": 'mutation { testConnection(code: "c") { ok message } }'}, format="json"),
        api.get("/api/schema/"),
        browser.get("/secrets/"), browser.get("/secrets/rest-s/"), browser.get("/connections/"),
        browser.get("/connections/c/"), browser.post("/connections/c/test/"),
    ]
    for response in answers:
        body = response.content.decode()
        assert response.status_code in (200, 201), (response.request["PATH_INFO"], response.status_code)
        assert SECRET_VALUE not in body, response.request["PATH_INFO"]
        assert not any(c and c in body for c in ciphertexts), response.request["PATH_INFO"]
    # and the GraphQL type has no field that could hold it
    fields = gql(api, '{ __type(name: "Secret") { fields { name } } }')["data"]["__type"]["fields"]
    assert not {f["name"] for f in fields} & {"value", "ciphertext", "plaintext"}
    assert json.loads(answers[5].content)["ok"] is False  # the file does not exist; the message hides its path


def test_a_credential_written_into_a_config_before_the_rule_is_not_shown(api, olga):
    Connection.objects.create(code="old", type="POSTGRES", config={
        "host": "db", "password": SECRET_VALUE, "nested": {"apiKey": SECRET_VALUE},
        "url": f"postgres://app:{SECRET_VALUE}@db/x"})
    browser = api.__class__()
    browser.force_login(olga)
    for response in (api.get("/api/connections/old/"), api.get("/api/connections/"),
                     browser.get("/connections/old/"),
                     api.post("/graphql/", {"query": '{ connection(code: "old") { config } }'}, format="json")):
        assert SECRET_VALUE not in response.content.decode()
    config = api.get("/api/connections/old/").json()["config"]
    assert config == {"host": "db", "password": "***", "nested": {"apiKey": "***"}, "url": "postgres://app:***@db/x"}
