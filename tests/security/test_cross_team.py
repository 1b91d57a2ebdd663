"""A member of team A, holding every model permission, tries to reach team B's pipeline, run, gate,
connection and secret through every interface (pages, REST, GraphQL, the CLI) and is refused each time
with "not found"; team B's own member is the control that the same requests work for the owner."""

import io
import json

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from rest_framework.authtoken.models import Token

from gates.models import GateRequest, GateStatus
from pipelines.models import Connection, Pipeline, Secret
from pipelines.secrets import set_secret_value
from pipelines.services import save_definition
from runs import services as run_services
from runs.models import Run, RunStatus
from tests.conftest import PASSWORD
from tests.fixtures import simple_definition

pytestmark = pytest.mark.django_db
EVERYTHING = ["view_pipeline", "add_pipeline", "change_pipeline", "delete_pipeline", "run_pipeline", "view_run",
              "change_run", "approve_gate", "view_connection", "add_connection", "change_connection",
              "delete_connection", "view_secret", "add_secret", "change_secret", "delete_secret"]


def _member(django_user_model, name, team):
    user = django_user_model.objects.create_user(name, password=PASSWORD)
    user.user_permissions.add(*Permission.objects.filter(codename__in=EVERYTHING))
    user.groups.add(Group.objects.get_or_create(name=team)[0])
    return django_user_model.objects.get(pk=user.pk)


@pytest.fixture
def world(django_user_model, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    mallory = _member(django_user_model, "mallory", "team-a")
    bea = _member(django_user_model, "bea", "team-b")
    team_b = Group.objects.get(name="team-b")
    definition = simple_definition("b-orders")
    definition["steps"].insert(2, {"key": "gate", "type": "GATE", "config": {"approvalType": "MANUAL"}})
    pipeline = save_definition(definition)
    pipeline.teams.add(team_b)
    run = run_services.run_now(run_services.create_run(pipeline)).run
    assert run.status == RunStatus.PAUSED
    secret = Secret.objects.create(code="b-key")
    set_secret_value(secret, "team-b-only")
    secret.save()
    secret.teams.add(team_b)
    connection = Connection.objects.create(code="b-api", type="HTTP", config={"baseUrl": "https://b.example"})
    connection.owners.add(bea)
    save_definition(simple_definition("a-orders")).teams.add(Group.objects.get(name="team-a"))
    save_definition(simple_definition("shared"))  # no owner, no team: everyone with permissions
    return {"mallory": mallory, "bea": bea, "run": run}


def _page_client(user):
    client = Client()
    client.force_login(user)
    return client


def _api_client(user):
    return Client(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")


def _graphql(client, query, **variables):
    response = client.post("/graphql/", json.dumps({"query": query, "variables": variables}),
                           content_type="application/json")
    return response.json()


def test_it_hides_team_b_from_team_a_on_the_pages(world):
    run = world["run"]
    for user, visible in ((world["mallory"], False), (world["bea"], True)):
        client = _page_client(user)
        pipelines = client.get("/pipelines/").content
        assert (b"b-orders" in pipelines) is visible and b"shared" in pipelines
        assert (b"a-orders" in pipelines) is not visible
        assert (b"b-orders" in client.get("/").content) is visible
        assert (b"b-orders" in client.get("/runs/").content) is visible
        assert (b"b-orders" in client.get("/gates/").content) is visible
        assert (b"b-key" in client.get("/secrets/").content) is visible
        assert (b"b-api" in client.get("/connections/").content) is visible
        expected = 200 if visible else 404
        for path in ("/pipelines/b-orders/", f"/runs/{run.pk}/", f"/gates/{run.pk}/gate/", "/secrets/b-key/",
                     "/connections/b-api/", "/pipelines/b-orders/json/"):
            assert client.get(path).status_code == expected, (user.username, path)


def test_it_refuses_team_a_acting_on_team_b_through_pages(world):
    run = world["run"]
    client = _page_client(world["mallory"])
    assert client.post(f"/gates/{run.pk}/gate/approve/").status_code == 404
    assert client.post(f"/runs/{run.pk}/cancel/").status_code == 404
    assert client.post("/pipelines/b-orders/run/").status_code == 404
    assert client.post("/secrets/b-key/delete/").status_code == 404
    assert GateRequest.objects.get(run=run).status == GateStatus.PENDING
    assert Run.objects.get(pk=run.pk).status == RunStatus.PAUSED
    assert Secret.objects.filter(code="b-key").exists()


def test_it_refuses_team_a_through_rest(world):
    run = world["run"]
    api = _api_client(world["mallory"])
    assert "b-orders" not in json.dumps(api.get("/api/pipelines/").json())
    assert "b-orders" not in json.dumps(api.get("/api/runs/").json())
    assert "b-orders" not in json.dumps(api.get("/api/gates/").json())
    assert "b-key" not in json.dumps(api.get("/api/secrets/").json())
    assert "b-api" not in json.dumps(api.get("/api/connections/").json())
    for path in ("/api/pipelines/b-orders/", f"/api/runs/{run.pk}/", f"/api/gates/{run.pk}/gate/",
                 "/api/secrets/b-key/", "/api/connections/b-api/"):
        assert api.get(path).status_code == 404, path
    assert api.post(f"/api/gates/{run.pk}/gate/approve/").status_code == 404
    assert api.post(f"/api/runs/{run.pk}/cancel/").status_code == 404
    assert api.delete("/api/pipelines/b-orders/").status_code == 404
    started = api.post("/api/runs/", {"pipeline": "b-orders"}, content_type="application/json")
    assert started.status_code == 404 and "no pipeline 'b-orders'" in started.content.decode()
    overwrite = api.post("/api/pipelines/import/", json.dumps(simple_definition("b-orders")),
                         content_type="application/json")
    assert overwrite.status_code in (400, 403, 409), overwrite.content
    assert Pipeline.objects.get(code="b-orders").revisions.count() == 1
    assert GateRequest.objects.get(run=run).status == GateStatus.PENDING
    # the control: team B's member reaches the same objects
    own = _api_client(world["bea"])
    assert own.get(f"/api/runs/{run.pk}/").status_code == 200
    assert own.get("/api/secrets/b-key/").status_code == 200


def test_it_refuses_team_a_through_graphql(world):
    run = world["run"]
    client = _api_client(world["mallory"])
    data = _graphql(client, "{ pipelines { code } pendingGates { runId } }")["data"]
    assert "b-orders" not in json.dumps(data) and str(run.pk) not in json.dumps(data["pendingGates"])
    assert _graphql(client, "query($c: String!) { pipeline(code: $c) { code } }", c="b-orders")["data"] == {
        "pipeline": None}
    assert _graphql(client, "query($i: ID!) { run(id: $i) { id } }", i=str(run.pk))["data"] == {"run": None}
    approve = _graphql(client, "mutation($r: ID!) { approveGate(runId: $r, stepKey: \"gate\") { ok } }",
                       r=str(run.pk))
    assert approve["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert GateRequest.objects.get(run=run).status == GateStatus.PENDING
    secret = _graphql(client, "query { secret(code: \"b-key\") { code } }")
    assert secret["data"] == {"secret": None}


def test_it_refuses_a_pipeline_that_uses_another_teams_connection_or_secret(world):
    definition = simple_definition("a-thief")
    definition["steps"][0] = {"key": "src", "type": "EXTRACT", "adapterCode": "httpApi",
                              "config": {"connectionCode": "b-api", "url": "/orders"}}
    definition["hooks"] = {"PIPELINE_COMPLETED": [{"type": "WEBHOOK", "url": "https://a.example/done",
                                                   "secretCode": "b-key"}]}
    response = _api_client(world["mallory"]).post("/api/pipelines/", json.dumps({"definition": definition}),
                                                  content_type="application/json")
    assert response.status_code == 400, response.content
    text = response.content.decode()
    assert "connection 'b-api' is not yours to use" in text and "secret 'b-key' is not yours to use" in text
    assert not Pipeline.objects.filter(code="a-thief").exists()


def test_it_runs_from_the_cli_only_what_the_person_may(world):
    with pytest.raises(CommandError, match="no pipeline 'b-orders'"):
        call_command("run_pipeline", "b-orders", "--as", "mallory", stdout=io.StringIO())
    out = io.StringIO()
    call_command("run_pipeline", "a-orders", "--as", "mallory", "--sync", stdout=out)
    assert "COMPLETED" in out.getvalue()
    assert Run.objects.filter(pipeline__code="a-orders", triggered_by=world["mallory"]).exists()


def test_it_refuses_an_email_approve_link_to_someone_outside_the_team(world):
    from gates import action_links

    run = world["run"]
    mallory = world["mallory"]
    mallory.email = "mallory@example.com"
    mallory.save()
    gate = GateRequest.objects.get(run=run)
    client = _page_client(mallory)
    path = f"/gates/act/{action_links.make_token(gate, 'approve', 'mallory@example.com')}/"
    for response in (client.get(path), client.post(path)):
        assert response.status_code == 403
        assert b"belongs to other people" in response.content
    assert GateRequest.objects.get(run=run).status == GateStatus.PENDING


def test_it_hides_team_b_in_the_admin_from_team_a_staff(world):
    mallory = world["mallory"]
    mallory.is_staff = True
    mallory.save()
    client = _page_client(mallory)
    assert b"b-orders" not in client.get("/admin/pipelines/pipeline/").content
    assert b"b-key" not in client.get("/admin/pipelines/secret/").content
    pk = Pipeline.objects.get(code="b-orders").pk
    assert client.get(f"/admin/pipelines/pipeline/{pk}/change/").status_code in (302, 404)


def test_team_a_cannot_overwrite_or_diff_team_bs_pipeline_through_graphql(world):
    """savePipeline with baseRevision compared team B's definition with the caller's before the access
    check (a stale answer carried its diff); it is refused first, and nothing is saved."""
    changed = simple_definition("b-orders", records=[{"sku": "team-b-secret-sku"}])
    pipeline = save_definition(changed, user=world["bea"], message="second")  # revision 2: base 1 is stale
    before = pipeline.current_revision_id
    client = _api_client(world["mallory"])
    mutation = ("mutation($d: GenericScalar!, $b: Int) { savePipeline(definition: $d, baseRevision: $b) "
                "{ ok problems { message code } stale { diff } } }")
    for base in (None, 1):
        answer = _graphql(client, mutation, d=simple_definition("b-orders"), b=base)["data"]["savePipeline"]
        assert answer["ok"] is False and answer["stale"] is None, answer
        assert "team-b-secret-sku" not in json.dumps(answer)
        assert answer["problems"][0]["code"] == "forbidden"
    assert Pipeline.objects.get(code="b-orders").current_revision_id == before
    own = _graphql(_api_client(world["bea"]), mutation, d=simple_definition("b-orders"), b=None)
    assert own["data"]["savePipeline"]["ok"] is True
