"""The production profile: check --deploy is clean, the required settings are required, and gunicorn
serves the app with WhiteNoise's static files, https redirects and HSTS."""

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = "datahub_project.settings_production"


def production_env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAHUB_", "DJANGO_", "DATABASE_URL",
                                                                    "REDIS_URL"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": PRODUCTION,
        "DATAHUB_SECRET_KEY": secrets.token_urlsafe(50),
        "DATAHUB_MASTER_KEY": secrets.token_urlsafe(32),
        "DATAHUB_ALLOWED_HOSTS": "datahub.example.com,127.0.0.1",
        "DATAHUB_VAR_DIR": str(tmp_path / "var"),
    })
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def manage(env, *args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_check_deploy_is_clean_with_the_production_profile(tmp_path):
    done = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout


@pytest.mark.parametrize("key", [None, "", "insecure-development-key-set-DATAHUB_SECRET_KEY-in-production"])
def test_it_refuses_to_start_without_a_real_secret_key(tmp_path, key):
    env = production_env(tmp_path)
    env.pop("DATAHUB_SECRET_KEY")
    if key is not None:
        env["DATAHUB_SECRET_KEY"] = key
    done = manage(env, "check")
    assert done.returncode != 0
    assert "ImproperlyConfigured: DATAHUB_SECRET_KEY must be set" in done.stderr


def test_it_refuses_to_start_without_allowed_hosts(tmp_path):
    env = production_env(tmp_path)
    env.pop("DATAHUB_ALLOWED_HOSTS")
    done = manage(env, "check")
    assert done.returncode != 0 and "DATAHUB_ALLOWED_HOSTS must list" in done.stderr


def test_whitenoise_is_in_the_production_profile_only(tmp_path):
    code = "from django.conf import settings; print(settings.MIDDLEWARE[:2], settings.DEBUG)"
    done = subprocess.run([sys.executable, "-c", f"import django; django.setup(); {code}"], cwd=ROOT,
                          env=production_env(tmp_path, DATAHUB_DEBUG="true"), capture_output=True, text=True)
    assert done.stdout.strip() == ("['django.middleware.security.SecurityMiddleware', "
                                   "'whitenoise.middleware.WhiteNoiseMiddleware'] False"), done.stderr
    from django.conf import settings

    assert not any("whitenoise" in m for m in settings.MIDDLEWARE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, headers=None):
    """(status, headers, body) without following redirects."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_gunicorn_serves_the_production_profile(tmp_path):
    env = production_env(tmp_path, DATAHUB_PROXY_SSL_HEADER="true")
    # The profile's own collectstatic also writes gzip and brotli copies (about 45 s here, mostly Swagger
    # UI's bundles); the manifest, which is what serving needs, is the same without them.
    (tmp_path / "fast_static.py").write_text(
        f"from {PRODUCTION} import *  # noqa\n"
        "STORAGES = {**STORAGES, 'staticfiles': "
        "{'BACKEND': 'django.contrib.staticfiles.storage.ManifestStaticFilesStorage'}}\n")
    done = manage({**env, "PYTHONPATH": str(tmp_path), "DJANGO_SETTINGS_MODULE": "fast_static"},
                  "collectstatic", "--noinput")
    assert done.returncode == 0, done.stderr
    port = free_port()
    log = open(tmp_path / "gunicorn.log", "w")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--config", str(ROOT / "deploy" / "gunicorn.conf.py"), "datahub_project.wsgi:application"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _, body = get(f"{base}/healthz")
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
                time.sleep(0.2)
        # Not redirected to https; answers JSON (503 here: nothing is migrated and no worker runs).
        assert status in (200, 503) and body.startswith(b'{"status"')

        status, headers, _ = get(f"{base}/accounts/login/")
        assert status == 301 and headers["Location"] == f"https://127.0.0.1:{port}/accounts/login/"

        status, headers, body = get(f"{base}/static/css/app.css", {"X-Forwarded-Proto": "https"})
        assert status == 200 and b"{" in body
        assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"

        status, headers, body = get(f"{base}/accounts/login/", {"X-Forwarded-Proto": "https"})
        assert status in (200, 500)  # the page itself needs the database; the headers are what we check here
        assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait(5)
        log.close()


def test_gunicorn_forks_its_workers_without_a_database_connection(tmp_path):
    """The master runs the system checks before it forks; a connection they leave open would be shared by
    every worker (each reading the others' query results under load)."""
    script = tmp_path / "starting.py"
    script.write_text(
        "import runpy\n"
        f"runpy.run_path({str(ROOT / 'deploy' / 'gunicorn.conf.py')!r})['on_starting'](None)\n"
        "from django.db import connections\n"
        "print('open' if any(c.connection is not None for c in connections.all(initialized_only=True)) "
        "else 'closed')\n")
    env = production_env(tmp_path, PYTHONPATH=str(ROOT), DATAHUB_DB_CONN_MAX_AGE="60",
                         DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "closed"
