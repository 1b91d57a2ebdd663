"""An attacker guessing passwords, tokens and webhook keys is locked out on every way in; an admin unlocks.

Each test runs with django-axes and the request rates on (``@pytest.mark.lockout``), a failure limit of
3 and real requests through Django's test client (the whole middleware stack and the login views).
"""

import json
import logging

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client
from rest_framework.authtoken.models import Token

from pipelines.services import save_definition
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.lockout]
LIMIT = 3


@pytest.fixture(autouse=True)
def strict(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _login(client, username, password, url="/accounts/login/"):
    return client.post(url, {"username": username, "password": password})


def test_it_locks_out_the_login_page_after_the_limit_even_with_the_right_password(alice, caplog):
    client = Client()
    for _ in range(LIMIT - 1):
        assert _login(client, "alice", "wrong").status_code == 200  # the form again, with its error
    caplog.set_level(logging.WARNING, logger="datahub.security")
    locked = _login(client, "alice", "wrong")
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content
    assert "locked out: alice" in caplog.text

    right = _login(client, "alice", PASSWORD)
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session


def test_it_locks_out_the_admin_login(django_user_model):
    django_user_model.objects.create_superuser("root", password=PASSWORD)
    client = Client()
    for _ in range(LIMIT):
        response = _login(client, "root", "admin", url="/admin/login/")
    assert response.status_code == 429
    assert _login(client, "root", PASSWORD, url="/admin/login/").status_code == 429
    assert client.get("/admin/").status_code == 302  # still not logged in


def test_it_lets_a_person_in_who_stays_below_the_limit(alice):
    client = Client()
    for _ in range(LIMIT - 1):
        _login(client, "alice", "wrong")
    assert _login(client, "alice", PASSWORD).status_code == 302
    assert not AccessAttempt.objects.exists()  # a success resets the count


def test_it_counts_wrong_api_tokens_and_then_refuses_even_a_right_one(alice):
    good = Token.objects.create(user=alice).key
    client = Client()
    statuses = [client.get("/api/pipelines/", HTTP_AUTHORIZATION=f"Token {'0' * 39}{i}").status_code
                for i in range(LIMIT)]
    assert statuses == [401] * (LIMIT - 1) + [429]
    locked = client.get("/api/pipelines/", HTTP_AUTHORIZATION=f"Token {good}")
    assert locked.status_code == 429
    assert locked.json()["code"] == "LOCKED_OUT"
    assert "Too many failed logins" in locked.json()["error"]


def test_it_counts_wrong_tokens_on_graphql(alice):
    good = Token.objects.create(user=alice).key
    client = Client()
    query = json.dumps({"query": "{ pipelines { code } }"})
    statuses = [client.post("/graphql/", query, content_type="application/json",
                            HTTP_AUTHORIZATION="Token nope").status_code for _ in range(LIMIT)]
    assert statuses == [401] * (LIMIT - 1) + [429]
    locked = client.post("/graphql/", query, content_type="application/json", HTTP_AUTHORIZATION=f"Token {good}")
    assert locked.status_code == 429
    assert locked.json()["code"] == "LOCKED_OUT"


def test_it_counts_webhook_authentication_failures():
    save_definition({
        "version": 1, "code": "hooked", "name": "Hooked",
        "steps": [{"key": "in", "type": "TRIGGER", "config": {"type": "WEBHOOK", "authentication": "API_KEY",
                                                              "apiKeySecretCode": "hook-key"}},
                  {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}}],
        "edges": [], "context": {},
    })
    from pipelines.models import Secret
    from pipelines.secrets import set_secret_value

    secret = Secret(code="hook-key")
    set_secret_value(secret, "the-real-key")
    secret.save()
    client = Client()
    statuses = [client.post("/hooks/hooked/", "{}", content_type="application/json",
                            HTTP_X_API_KEY=f"guess-{i}").status_code for i in range(LIMIT)]
    assert statuses == [401] * (LIMIT - 1) + [429]
    locked = client.post("/hooks/hooked/", "{}", content_type="application/json", HTTP_X_API_KEY="the-real-key")
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.json()["error"]


def test_it_lets_an_admin_unlock_with_a_command(alice):
    client = Client()
    for _ in range(LIMIT):
        _login(client, "alice", "wrong")
    assert _login(client, "alice", PASSWORD).status_code == 429
    call_command("axes_reset_ip", "127.0.0.1")
    assert _login(client, "alice", PASSWORD).status_code == 302


def test_it_lets_an_admin_unlock_on_the_admin_page(alice, django_user_model):
    attacker = Client(REMOTE_ADDR="10.1.2.3")
    for _ in range(LIMIT):
        _login(attacker, "alice", "wrong")
    assert _login(attacker, "alice", PASSWORD).status_code == 429
    admin = Client()
    admin.force_login(django_user_model.objects.create_superuser("root", password=PASSWORD))
    attempt = AccessAttempt.objects.get(ip_address="10.1.2.3")
    response = admin.post("/admin/axes/accessattempt/", {
        "action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"})
    assert response.status_code == 302
    assert _login(attacker, "alice", PASSWORD).status_code == 302


def test_it_locks_out_by_address_so_other_addresses_still_log_in(alice):
    attacker = Client(REMOTE_ADDR="10.9.9.9")
    for _ in range(LIMIT):
        _login(attacker, "alice", "wrong")
    assert _login(Client(REMOTE_ADDR="10.0.0.1"), "alice", PASSWORD).status_code == 302


def test_it_takes_the_client_address_from_the_trusted_proxy_only(alice, settings):
    settings.DATAHUB_PROXY_COUNT = 1
    # The attacker forges a first X-Forwarded-For entry each time; the proxy appends the real address.
    for i in range(LIMIT):
        _login(Client(HTTP_X_FORWARDED_FOR=f"1.1.1.{i}, 203.0.113.7"), "alice", "wrong")
    assert _login(Client(HTTP_X_FORWARDED_FOR="1.1.1.99, 203.0.113.7"), "alice", PASSWORD).status_code == 429
    assert _login(Client(HTTP_X_FORWARDED_FOR="198.51.100.1"), "alice", PASSWORD).status_code == 302


def test_it_throttles_the_rest_api(alice, settings):
    settings.DATAHUB_RATE_LIMITS = {"user": "3/minute"}
    client = Client()
    client.force_login(alice)
    statuses = [client.get("/api/pipelines/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_it_throttles_anonymous_requests(settings):
    # The OpenAPI schema is the one API answer anonymous clients get (others answer 401 before any work).
    settings.DATAHUB_RATE_LIMITS = {"anon": "1/minute"}
    statuses = [Client().get("/api/schema/").status_code for _ in range(2)]
    assert statuses == [200, 429]


def test_it_throttles_graphql(alice, settings):
    settings.DATAHUB_RATE_LIMITS = {"user": "2/minute"}
    client = Client()
    client.force_login(alice)
    query = json.dumps({"query": "{ pipelines { code } }"})
    statuses = [client.post("/graphql/", query, content_type="application/json").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_it_throttles_token_creation(alice, settings):
    settings.DATAHUB_RATE_LIMITS = {"token": "2/hour"}
    client = Client()
    client.force_login(alice)
    statuses = [client.post("/api/tokens/", {"action": "create"}).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert b"Too many new tokens" in client.post("/api/tokens/", {"action": "create"}).content


def _settings_with(**env):
    import os
    import subprocess
    import sys

    code = ("import django; django.setup(); from django.conf import settings; "
            "print(settings.AXES_LOCKOUT_PARAMETERS, settings.DATAHUB_RATE_LIMITS['user'])")
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("DATAHUB_")},
            "DJANGO_SETTINGS_MODULE": "datahub_project.settings", **env}
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("env", "message"), [
    ({"DATAHUB_LOCKOUT_BY": "ip,username"}, "DATAHUB_LOCKOUT_BY: 'ip' is not ip_address"),
    ({"DATAHUB_RATE_USER": "lots"}, "DATAHUB_RATE_USER must look like 60/minute"),
    ({"DATAHUB_LOGIN_FAILURE_LIMIT": "0"}, "DATAHUB_LOGIN_FAILURE_LIMIT must be at least 1"),
])
def test_it_refuses_malformed_limits_by_name(env, message):
    done = _settings_with(**env)
    assert done.returncode != 0 and message in done.stderr


def test_it_reads_combined_lockout_parameters_and_no_rate():
    done = _settings_with(DATAHUB_LOCKOUT_BY="username+ip_address,ip_address", DATAHUB_RATE_USER="")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[['username', 'ip_address'], 'ip_address'] None"
