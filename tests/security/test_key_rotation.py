"""Master keys rotate: the newest encrypts, every listed key decrypts, rotate_secrets moves all values to the
newest; a stale or missing key is named (never a value), and production never falls back to SECRET_KEY."""

import io
import os
import secrets
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from datahub_project.checks import check_stored_secrets_decrypt
from pipelines.errors import ConfigError
from pipelines.models import Secret
from pipelines.secrets import resolve_secret, set_secret_value

pytestmark = pytest.mark.django_db
OLD, NEW = "old-master-key-0123456789", "new-master-key-9876543210"


def _store(code, value):
    secret = Secret(code=code)
    set_secret_value(secret, value)
    secret.save()
    return secret


def test_it_decrypts_with_any_listed_key_and_encrypts_with_the_newest(settings):
    settings.DATAHUB_MASTER_KEYS = [OLD]
    stored_old = _store("db-password", "hunter2-long").ciphertext
    settings.DATAHUB_MASTER_KEYS = [NEW, OLD]
    assert resolve_secret("db-password") == "hunter2-long"
    _store("api-token", "tok-123")
    settings.DATAHUB_MASTER_KEYS = [NEW]
    assert resolve_secret("api-token") == "tok-123"  # written under the newest
    with pytest.raises(ConfigError, match="'db-password' cannot be decrypted by any master key"):
        resolve_secret("db-password")
    assert Secret.objects.get(code="db-password").ciphertext == stored_old


def test_it_rotates_every_stored_secret_to_the_newest_key(settings):
    settings.DATAHUB_MASTER_KEYS = [OLD]
    for i in range(3):
        _store(f"s{i}", f"value-{i}")
    _store("from-env", "env:SOME_VARIABLE")  # a reference, nothing to re-encrypt
    settings.DATAHUB_MASTER_KEYS = [NEW, OLD]
    out = io.StringIO()
    call_command("rotate_secrets", stdout=out)
    assert "re-encrypted 3 secret(s)" in out.getvalue()
    assert "value-" not in out.getvalue()
    settings.DATAHUB_MASTER_KEYS = [NEW]  # the old key is gone: everything still reads
    assert [resolve_secret(f"s{i}") for i in range(3)] == ["value-0", "value-1", "value-2"]
    assert check_stored_secrets_decrypt(None) == []


def test_it_names_a_stale_secret_in_rotation_and_at_worker_start_and_leaves_it_alone(settings):
    settings.DATAHUB_MASTER_KEYS = ["a-key-nobody-kept-anymore"]
    stale = _store("stale", "lost-value").ciphertext
    settings.DATAHUB_MASTER_KEYS = [NEW]
    _store("fresh", "kept")
    with pytest.raises(CommandError, match="cannot be decrypted by any master key and were left as they are: stale"):
        call_command("rotate_secrets", stdout=io.StringIO())
    assert Secret.objects.get(code="stale").ciphertext == stale
    warnings = check_stored_secrets_decrypt(None)
    assert [w.id for w in warnings] == ["datahub.W011"]
    assert "stale" in warnings[0].msg and "fresh" not in warnings[0].msg and "lost-value" not in warnings[0].msg


def test_it_warns_when_the_worker_starts(settings, tmp_path):
    # manage.py worker runs the system checks before it starts; `check` is the same list.
    settings.DATAHUB_MASTER_KEYS = ["gone-key-000000000000"]
    _store("stale", "x")
    settings.DATAHUB_MASTER_KEYS = [NEW]
    err = io.StringIO()
    call_command("check", stdout=io.StringIO(), stderr=err)
    assert "datahub.W011" in err.getvalue()


def _production(**env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATAHUB_", "DJANGO_", "DATABASE_URL"))}
    base.update({"DJANGO_SETTINGS_MODULE": "datahub_project.settings_production",
                 "DATAHUB_SECRET_KEY": secrets.token_urlsafe(50), "DATAHUB_ALLOWED_HOSTS": "example.com"})
    base.update(env)
    code = "import django; django.setup(); from django.conf import settings; print(settings.DATAHUB_MASTER_KEYS)"
    return subprocess.run([sys.executable, "-c", code], env={k: v for k, v in base.items() if v is not None},
                          capture_output=True, text=True, timeout=60)


def test_it_refuses_production_without_its_own_master_key():
    missing = _production()
    assert missing.returncode != 0 and "DATAHUB_MASTER_KEY must be set in production" in missing.stderr
    same = _production(DATAHUB_SECRET_KEY="s" * 50, DATAHUB_MASTER_KEY="s" * 50)
    assert same.returncode != 0 and "must not be DATAHUB_SECRET_KEY" in same.stderr
    ok = _production(DATAHUB_MASTER_KEY=f"{NEW},{OLD}")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == str([NEW, OLD])
