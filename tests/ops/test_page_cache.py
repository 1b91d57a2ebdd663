"""The page cache (datahub_project.page_cache): a hit runs no query, every way of writing shows at once, and
nobody is served what another reader may see.

Transactional tests: the generations are bumped after the commit (an ``on_commit``), which the ``db``
fixture's wrapping transaction would never reach.
"""

import os
import re
import subprocess
import sys
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from datahub_project import generations
from gates import services as gate_services
from pipelines.models import Pipeline
from pipelines.services import save_definition
from runs import retention, services
from runs.engine.events import StepRetrying
from runs.models import RecordError, Run, StepRun
from runs.store import DjangoRunStore
from tests.conftest import PASSWORD
from tests.fixtures import simple_definition
from tests.ops.test_query_counts import paused_gates

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def page_cache(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.DATAHUB_PAGE_CACHE = True
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "page-cache-tests"}}
    cache.clear()
    yield
    cache.clear()


def login(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    client.get("/runs/")  # the CSRF cookie: a page is stored only for a request that brought one
    return client


def get(client, url, expect=200, **headers):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **headers)
    assert response.status_code == expect, response.content[:300]
    return response, len(captured)


def hit(client, url, expect=200, **headers):
    """The page, asked twice: the second answer must come from the cache (no query at all)."""
    first, _ = get(client, url, expect, **headers)
    second, queries = get(client, url, expect, **headers)
    assert queries == 0, f"{url}: {queries} queries on the second request"
    assert second.content == first.content
    return second


def completed(code="cached"):
    pipeline = save_definition(simple_definition(code))
    return services.run_now(services.create_run(pipeline, allow_concurrent=True)).run


POLL = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "run-progress"}


def test_it_serves_each_page_and_list_again_without_a_query(alice):
    run = completed()
    gate_run = paused_gates("gated", 1)[0]
    client = login(alice)
    for url, headers in [("/runs/", {}), (f"/runs/{run.pk}/", {}), (f"/gates/{gate_run.pk}/gate/", {}),
                         ("/gates/", {}), ("/api/runs/", {}), ("/api/pipelines/", {}), ("/api/gates/", {}),
                         (f"/api/runs/{run.pk}/record-errors/", {})]:
        hit(client, url, **headers)
    hit(client, f"/runs/{run.pk}/", 286, **POLL)  # an ended run's poll: htmx's "stop polling"
    # the htmx partial and the page are different entries
    assert b"<html" not in client.get(f"/runs/{run.pk}/", **POLL).content
    assert b"<html" in client.get(f"/runs/{run.pk}/").content


def _status_text(run):
    return Run.objects.get(pk=run.pk).get_status_display()


# Each way the code base writes runs and what hangs off them: model saves (signals), queryset updates and
# bulk inserts (no signals), the run store the workers write progress through, gates, retention, raw SQL.
def _save(run):
    run.error = "changed by save()"
    run.save(update_fields=["error"])
    return "changed by save()"


def _update(run):
    Run.objects.filter(pk=run.pk).update(error="changed by update()")
    return "changed by update()"


def _bulk_create(run):
    RecordError.objects.bulk_create([RecordError(run=run, step_key="clean", record={"sku": "zz"},
                                                 message="added by bulk_create")])
    return "added by bulk_create"


def _run_store(run):
    DjangoRunStore(run).emit(StepRetrying(step_key="clean", attempt=1, error="retried through the store", delay_ms=10))
    return "retried through the store"


def _raw_sql(run):
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {Run._meta.db_table} SET error = %s WHERE id = %s", ["changed by raw SQL", run.pk])
    return "changed by raw SQL"


def _in_a_transaction(run):
    with transaction.atomic():
        StepRun.objects.filter(run=run, step_key="clean").update(error="changed in a transaction")
        Run.objects.filter(pk=run.pk).update(error="changed in a transaction")
    return "changed in a transaction"


@pytest.mark.parametrize("write", [_save, _update, _bulk_create, _run_store, _raw_sql, _in_a_transaction])
def test_it_shows_what_each_write_path_changed_on_the_next_request(alice, write):
    run = completed()
    client = login(alice)
    before = hit(client, f"/runs/{run.pk}/")
    text = write(run)
    after, queries = get(client, f"/runs/{run.pk}/")
    assert queries > 0 and after.content != before.content
    assert text.encode() in after.content


def test_it_shows_a_cancelled_run_and_an_approved_gate(alice):
    gate_run = paused_gates("gated", 1)[0]
    client = login(alice)
    assert b"Approve" in hit(client, f"/gates/{gate_run.pk}/gate/").content
    waiting = hit(client, "/gates/").content
    gate_services.approve(gate_run, "gate", alice)
    assert b"Approve</button>" not in client.get(f"/gates/{gate_run.pk}/gate/").content
    assert client.get("/gates/").content != waiting

    run = completed("to-cancel")
    Run.objects.filter(pk=run.pk).update(status="RUNNING", finished_at=None)
    listing = hit(client, "/runs/").content  # a running run's own page is never stored: its list is
    services.cancel_run(Run.objects.get(pk=run.pk))
    assert b"cancelling\xe2\x80\xa6" in client.get(f"/runs/{run.pk}/").content  # a RUNNING run: cancel_requested
    assert client.get("/runs/").content != listing


def test_retention_shows_on_the_run_list(alice, settings):
    old, kept = completed("old"), completed("kept")
    Run.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=40))
    client = login(alice)
    assert f"/runs/{old.pk}/".encode() in hit(client, "/runs/").content
    retention.prune(keep_runs_days=30)
    page = client.get("/runs/").content
    assert f"/runs/{old.pk}/".encode() not in page and f"/runs/{kept.pk}/".encode() in page
    assert client.get(f"/runs/{old.pk}/").status_code == 404


def test_a_rolled_back_write_bumps_nothing_and_a_committed_one_only_at_the_commit():
    before = generations.current(generations.SCOPES)
    with pytest.raises(RuntimeError), transaction.atomic():
        Pipeline.objects.update(name="never")
        raise RuntimeError
    assert generations.current(generations.SCOPES) == before
    with transaction.atomic():
        Pipeline.objects.update(name="renamed")
        assert generations.current(generations.SCOPES) == before
    after = generations.current(generations.SCOPES)
    assert after[2] != before[2] and after[:2] == before[:2]  # config changed, runs did not


def test_readers_see_their_own_runs_and_nobody_elses(alice, bob):
    mine, theirs = completed("alices"), completed("bobs")
    Pipeline.objects.get(code="alices").owners.add(alice)
    team = Group.objects.create(name="bobs-team")
    team.user_set.add(bob)
    Pipeline.objects.get(code="bobs").teams.add(team)
    as_alice, as_bob = login(alice), login(bob)
    alices, bobs = hit(as_alice, "/runs/").content, hit(as_bob, "/runs/").content
    assert f"/runs/{mine.pk}/".encode() in alices and f"/runs/{theirs.pk}/".encode() not in alices
    assert f"/runs/{theirs.pk}/".encode() in bobs and f"/runs/{mine.pk}/".encode() not in bobs
    get(as_bob, f"/runs/{mine.pk}/", expect=404)
    api = hit(as_alice, "/api/runs/").json()
    assert [r["id"] for r in api["results"]] == [mine.pk]


def test_what_a_reader_may_see_changes_the_key(alice, bob):
    run = completed()
    client = login(bob)
    hit(client, f"/runs/{run.pk}/")
    bob.user_permissions.remove(Permission.objects.get(codename="view_run"))
    get(client, f"/runs/{run.pk}/", expect=403)
    team = Group.objects.create(name="others")
    Pipeline.objects.get(code="cached").teams.add(team)  # no longer open: only its team
    as_alice = login(alice)
    get(as_alice, f"/runs/{run.pk}/", expect=404)


def test_a_logged_out_session_and_an_old_password_get_no_cached_page(alice):
    run = completed()
    client = login(alice)
    hit(client, f"/runs/{run.pk}/")
    other = login(alice)
    alice.set_password("another-long-password")
    alice.save()
    response = other.get(f"/runs/{run.pk}/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.post("/accounts/logout/")
    assert client.get(f"/runs/{run.pk}/").status_code == 302


def test_it_stores_no_error_no_message_no_anonymous_answer(alice, charlie):
    run = completed()
    get(Client(), f"/runs/{run.pk}/", expect=302)
    get(Client(), f"/runs/{run.pk}/", expect=302)
    outsider = login(charlie)
    for _ in range(2):
        _, queries = get(outsider, f"/runs/{run.pk}/", expect=403)
        assert queries > 0
    client = login(alice)
    for _ in range(2):
        _, queries = get(client, "/runs/999999/", expect=404)
        assert queries > 0
    hit(client, f"/runs/{run.pk}/")
    client.post(f"/runs/{run.pk}/rerun/")  # leaves a message for the next page
    page, queries = get(client, f"/runs/{run.pk}/")
    assert queries > 0 and b'class="message ' in page.content


def test_a_page_needs_the_csrf_cookie_it_was_rendered_for(alice):
    client = Client()
    assert client.login(username="alice", password=PASSWORD)
    run = completed()
    first, _ = get(client, f"/runs/{run.pk}/")  # no CSRF cookie yet: it makes one, nothing is stored
    _, queries = get(client, f"/runs/{run.pk}/")
    assert queries > 0
    hit(client, f"/runs/{run.pk}/")
    client.cookies.pop("csrftoken")
    _, queries = get(client, f"/runs/{run.pk}/")
    assert queries > 0


def test_every_table_is_in_a_scope_or_named_as_never_shown():
    from django.apps import apps

    tables = {m._meta.db_table for m in apps.get_models(include_auto_created=True)}
    assert generations.IGNORED <= tables, generations.IGNORED - tables
    for table in tables - generations.IGNORED:
        assert generations.scopes_of(f'UPDATE "{table}" SET x = 1') in ({"runs", "any-run"}, {"config"})


@pytest.mark.parametrize(("sql", "scopes"), [
    ('SELECT "runs_run"."id" FROM "runs_run"', set()),
    ('INSERT INTO "runs_steprun" ("run_id") VALUES (%s)', {"runs", "any-run"}),
    ("UPDATE `gates_gaterequest` SET `status` = %s", {"runs", "any-run"}),
    ('DELETE FROM "auth_user_groups" WHERE id = 1', {"config"}),
    ('UPDATE "django_session" SET session_data = %s', set()),
    ("WITH moved AS (DELETE FROM runs_run RETURNING *) SELECT 1", {"runs", "any-run", "config"}),
    ("ALTER TABLE runs_run ADD COLUMN x int", {"runs", "any-run", "config"}),
    ("  update runs_run set error = ''", {"runs", "any-run"}),
])
def test_it_reads_each_statement_as_a_read_a_write_or_unknown(sql, scopes):
    assert generations.scopes_of(sql) == scopes


def test_each_browser_gets_a_token_for_its_own_csrf_secret(alice):
    run = completed()
    browsers = []
    for _ in range(2):
        browser = Client(enforce_csrf_checks=True)
        assert browser.login(username="alice", password=PASSWORD)
        browser.get("/runs/")
        browsers.append(browser)
    assert browsers[0].cookies["csrftoken"].value != browsers[1].cookies["csrftoken"].value
    hit(browsers[0], f"/runs/{run.pk}/")
    page = hit(browsers[1], f"/runs/{run.pk}/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = browsers[1].post(f"/runs/{run.pk}/rerun/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302


def test_an_api_token_alone_is_an_identity_until_it_is_revoked(alice):
    from rest_framework.authtoken.models import Token

    completed()
    token = Token.objects.create(user=alice)
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    hit(client, "/api/runs/")
    get(Client(HTTP_AUTHORIZATION="Token wrong"), "/api/runs/", expect=401)
    token.delete()
    get(client, "/api/runs/", expect=401)


def test_the_api_request_rate_counts_answers_from_the_cache(alice, settings):
    from rest_framework.authtoken.models import Token

    settings.DATAHUB_RATE_LIMITS = {"anon": None, "user": "3/minute", "token": None}
    client = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=alice).key}")
    statuses = [client.get("/api/pipelines/").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


def test_a_poll_that_ends_by_the_clock_is_not_stored(alice):
    run = completed()
    Run.objects.filter(pk=run.pk).update(output_sample=None, finished_at=timezone.now())
    client = login(alice)
    for _ in range(2):
        response, queries = get(client, f"/runs/{run.pk}/", **POLL)  # settling: polls once more, a 200
        assert queries > 0 and "no-store" in response["Cache-Control"]


@pytest.mark.parametrize(("env", "expect"), [
    ({}, "False"),
    ({"DATAHUB_CACHE_URL": "redis://127.0.0.1:6379/0"}, "True"),
    ({"DATAHUB_CACHE_URL": "redis://127.0.0.1:6379/0", "DATAHUB_PAGE_CACHE": "false"}, "False"),
    ({"DATAHUB_PAGE_CACHE": "true"}, "DATAHUB_PAGE_CACHE needs DATAHUB_CACHE_URL"),
])
def test_it_is_on_only_with_a_shared_cache(env, expect):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATAHUB_PAGE", "DATAHUB_CACHE"))}
    done = subprocess.run([sys.executable, "-c", "from datahub_project import settings; print(settings.DATAHUB_PAGE_CACHE)"],
                          env={**clean, **env}, capture_output=True, text=True, timeout=60)
    assert expect in done.stdout + done.stderr


def test_a_running_runs_progress_leaves_other_runs_pages_in_the_cache(alice):
    running, other = completed("running"), completed("other")
    client = login(alice)
    hit(client, f"/runs/{running.pk}/")
    hit(client, f"/runs/{other.pk}/")
    listing = hit(client, "/runs/").content
    Run.objects.filter(pk=running.pk).update(status="RUNNING", lease="me")
    assert get(client, f"/runs/{other.pk}/")[1] > 0  # a write outside the run store: every run's page goes
    hit(client, f"/runs/{other.pk}/")
    store = DjangoRunStore(Run.objects.get(pk=running.pk))
    store.emit(StepRetrying(step_key="clean", attempt=1, error="retried through the store", delay_ms=10))
    assert store.heartbeat()
    _, queries = get(client, f"/runs/{other.pk}/")
    assert queries == 0
    page, queries = get(client, f"/runs/{running.pk}/")
    assert queries > 0 and b"retried through the store" in page.content
    assert get(client, "/runs/")[0].content != listing


def test_a_deploy_that_changes_a_template_or_the_code_starts_with_new_keys(settings, tmp_path):
    from datahub_project.page_cache import code_version

    settings.BASE_DIR, settings.STATIC_ROOT = tmp_path, tmp_path / "static"
    (tmp_path / "templates").mkdir()
    (tmp_path / "runs").mkdir()
    (tmp_path / "templates" / "page.html").write_text("<p>one</p>")
    (tmp_path / "runs" / "views.py").write_text("A = 1\n")
    try:
        versions = []
        for path, text in [(None, None), ("templates/page.html", "<p>two</p>"), ("runs/views.py", "A = 2\n")]:
            if path:
                (tmp_path / path).write_text(text)
            code_version.cache_clear()
            versions.append(code_version())
        assert len(set(versions)) == 3
    finally:
        code_version.cache_clear()


@pytest.mark.parametrize("status", ["RUNNING", "PAUSED"])
def test_a_live_runs_page_changes_by_the_clock_and_is_not_stored(alice, status):
    run = completed()
    Run.objects.filter(pk=run.pk).update(status=status, finished_at=None)
    client = login(alice)
    for headers in ({}, POLL):
        for _ in range(2):
            response, queries = get(client, f"/runs/{run.pk}/", **headers)
            assert queries > 0 and "no-store" in response["Cache-Control"]


def test_a_token_and_a_session_together_are_one_identity(alice, bob):
    from rest_framework.authtoken.models import Token

    completed()
    Pipeline.objects.get(code="cached").owners.add(bob)  # bob's run: alice may not see it
    token = Token.objects.create(user=alice).key
    as_bob, as_alice = login(bob), login(alice)  # (a login writes last_login: it changes every key)
    for client in (as_bob, as_alice):
        client.defaults["HTTP_AUTHORIZATION"] = f"Token {token}"
    as_alice.cookies["csrftoken"] = as_bob.cookies["csrftoken"].value  # all else the same as bob's request
    assert b"Pipeline cached" in hit(as_bob, "/runs/").content  # the page answers as the session's user
    assert b"Pipeline cached" not in get(as_alice, "/runs/")[0].content
