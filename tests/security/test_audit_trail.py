"""The audit trail records who did what, when and from where (never a secret's value); staff read, filter
and export it; retention prunes it."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from gates import services as gate_services
from pipelines.models import Connection, Pipeline, Secret
from pipelines.secrets import set_secret_value
from pipelines.services import restore_revision, save_definition
from runs import retention
from runs import services as run_services
from tests.conftest import PASSWORD
from tests.fixtures import simple_definition

pytestmark = pytest.mark.django_db


def _events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("pk"))


@pytest.fixture(autouse=True)
def fast_hashes(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("auditor", password=PASSWORD, is_staff=True)


def test_it_records_logins_and_failures_with_the_address(alice):
    Client(REMOTE_ADDR="198.51.100.7").post("/accounts/login/", {"username": "alice", "password": "nope"})
    Client(REMOTE_ADDR="198.51.100.8").post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    failed, = _events("login.failed")
    assert (failed.actor_name, failed.ip, failed.target) == ("anonymous", "198.51.100.7", "user:alice")
    assert "nope" not in json.dumps(failed.details)
    ok, = _events("login.succeeded")
    assert (ok.actor, ok.ip) == (alice, "198.51.100.8")


def test_it_records_tokens_created_and_revoked_by_whom(alice):
    client = Client(REMOTE_ADDR="203.0.113.5")
    client.force_login(alice)
    response = client.post("/api/tokens/", {"action": "create"})
    key = response.context["new_key"]
    client.post("/api/tokens/", {"action": "revoke"})
    created, = _events("token.created")
    revoked, = _events("token.revoked")
    assert (created.actor, created.ip, created.target) == (alice, "203.0.113.5", "user:alice")
    assert revoked.actor == alice
    assert not AuditEvent.objects.filter(details__icontains=key).exists()


def test_it_records_pipelines_published_restored_and_deleted(alice):
    save_definition(simple_definition("orders"), user=alice)
    save_definition({**simple_definition("orders"), "name": "Orders v2"}, user=alice)
    restore_revision(Pipeline.objects.get(code="orders"), 1, user=alice)
    Pipeline.objects.get(code="orders").delete()
    assert [e.details["revision"] for e in _events("pipeline.published")] == [1, 2]
    restored, = _events("pipeline.restored")
    assert (restored.actor, restored.target, restored.details["revision"]) == (alice, "pipeline:orders", 3)
    deleted, = _events("pipeline.deleted")
    assert deleted.target == "pipeline:orders"


def test_it_records_secret_and_connection_changes_never_the_value():
    secret = Secret(code="crm-key")
    set_secret_value(secret, "s3cr3t-value-XYZ")
    secret.save()
    ciphertexts = [secret.ciphertext]
    set_secret_value(secret, "another-s3cr3t-ABC")
    secret.save()
    ciphertexts.append(secret.ciphertext)
    set_secret_value(secret, "env:CRM_KEY")
    secret.save()
    Connection.objects.create(code="crm", type="HTTP", config={"baseUrl": "https://crm.example"})
    secret.delete()
    actions = [e.action for e in AuditEvent.objects.order_by("pk")]
    assert actions == ["secret.created", "secret.changed", "secret.changed", "connection.created", "secret.deleted"]
    assert _events("secret.changed")[-1].details["stored"] == "env:CRM_KEY"
    dump = json.dumps([e.details for e in AuditEvent.objects.all()])
    assert "s3cr3t" not in dump and not any(c[:20] in dump for c in ciphertexts)
    assert _events("connection.created")[0].details == {"type": "HTTP", "configKeys": ["baseUrl"]}


def test_it_records_runs_started_cancelled_replayed_and_gates_decided(alice, django_user_model):
    from django.contrib.auth.models import Permission

    alice.user_permissions.add(Permission.objects.get(codename="approve_gate"))
    alice = django_user_model.objects.get(pk=alice.pk)
    definition = simple_definition("gated")
    definition["steps"].insert(1, {"key": "gate", "type": "GATE", "config": {"approvalType": "MANUAL"}})
    pipeline = save_definition(definition)
    run = run_services.run_now(run_services.create_run(pipeline, user=alice)).run
    gate_services.reject(run.pk, "gate", alice, "numbers look wrong")
    other = run_services.create_run(pipeline, user=alice)
    run_services.cancel_run(other, "not today")

    started = _events("run.started")
    assert [(e.target, e.actor, e.details["trigger"]) for e in started] == [
        (f"run:{run.pk}", alice, "manual"), (f"run:{other.pk}", alice, "manual")]
    rejected, = _events("gate.rejected")
    assert (rejected.actor, rejected.target, rejected.details["reason"]) == (
        alice, f"run:{run.pk}/gate:gate", "numbers look wrong")
    # the rejection cancelled the first run; the second was cancelled by hand
    assert [(e.target, e.details["reason"] == "not today") for e in _events("run.cancelled")] == [
        (f"run:{run.pk}", False), (f"run:{other.pk}", True)]


def test_it_records_replays():
    definition = simple_definition("replay", records=[{"sku": "a"}, {"sku": None}])
    definition["steps"].insert(2, {"key": "check", "type": "VALIDATE",
                                   "config": {"fields": {"sku": {"required": True}}}})
    run = run_services.run_now(run_services.create_run(save_definition(definition))).run
    replay = run_services.replay_record_errors(run, "check")
    event, = _events("run.replayed")
    assert (event.target, event.details["replayOf"]) == (f"run:{replay.pk}", run.pk)


def test_it_shows_filters_and_exports_the_trail_to_staff_only(staff, alice):
    save_definition(simple_definition("a"), user=alice)
    save_definition(simple_definition("b"), user=staff)
    client = Client()
    client.force_login(staff)
    page = client.get("/audit/", {"actor": "alice"})
    assert page.status_code == 200
    assert b"pipeline:a" in page.content and b"pipeline:b" not in page.content

    exported = client.get("/audit/", {"action": "pipeline.", "format": "csv"})
    assert exported["Content-Disposition"].endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert [(r["actor"], r["target"]) for r in rows] == [("auditor", "pipeline:b"), ("alice", "pipeline:a")]

    as_json = json.loads(b"".join(client.get("/audit/", {"target": "pipeline:a", "format": "json"})
                                  .streaming_content))
    assert [e["action"] for e in as_json] == ["pipeline.published"]

    bad = client.get("/audit/", {"since": "yesterday", "format": "xml"})
    assert bad.status_code == 400
    assert b"since: &#x27;yesterday&#x27; is not a date" in bad.content and b"format: &#x27;xml&#x27;" in bad.content

    other = Client()
    other.force_login(alice)
    assert other.get("/audit/").status_code == 403
    assert other.get("/audit/", {"format": "csv"}).status_code == 403
    assert Client().get("/audit/").status_code == 302


def test_it_quotes_values_a_spreadsheet_would_run_as_formulas(staff):
    Client().post("/accounts/login/", {"username": "x", "password": "y"})
    AuditEvent.objects.filter(action="login.failed").update(target='=HYPERLINK("http://evil")')
    client = Client()
    client.force_login(staff)
    body = b"".join(client.get("/audit/", {"format": "csv"}).streaming_content).decode()
    row = next(r for r in csv.DictReader(io.StringIO(body)) if r["action"] == "login.failed")
    assert row["target"] == "'=HYPERLINK(\"http://evil\")"


def test_it_prunes_the_trail_after_the_retention(settings):
    settings.DATAHUB_KEEP_AUDIT_DAYS = 30
    Secret.objects.create(code="old")
    Secret.objects.create(code="new")
    AuditEvent.objects.filter(target="secret:old").update(at=timezone.now() - timedelta(days=31))
    counts = retention.prune(keep_runs_days=0, keep_record_errors_days=0)
    assert counts["audit_events"] == 1
    assert list(AuditEvent.objects.values_list("target", flat=True)) == ["secret:new"]


def test_it_records_who_changed_owners_and_teams(alice, staff):
    from django.contrib.auth.models import Group

    pipeline = save_definition(simple_definition("owned"))
    team = Group.objects.create(name="team-a")
    pipeline.owners.add(alice)
    pipeline.teams.add(team)
    pipeline.owners.remove(alice)
    changes = [(e.target, e.details["field"], e.details["change"], e.details["who"]) for e in _events("access.changed")]
    assert changes == [("pipeline:owned", "owners", "add", ["alice"]), ("pipeline:owned", "teams", "add", ["team-a"]),
                       ("pipeline:owned", "owners", "remove", ["alice"])]
