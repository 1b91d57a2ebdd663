"""The page cache across processes: another process (a worker, a ``manage.py`` command) writes, this one serves
the change on its next request. Needs the local Redis (the cache every process shares); the database is
the test database, which the other process opens too (SQLite file or PostgreSQL)."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection

from tests.ops.test_page_cache import completed, get, hit, login

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
def shared_cache(settings, tmp_path):
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {REDIS}: {exc}")
    prefix = f"page-cache-test-{os.getpid()}-{secrets.token_hex(4)}"
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.DATAHUB_PAGE_CACHE = True
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS,
                                   "KEY_PREFIX": prefix}}
    yield prefix
    client = redis.Redis.from_url(REDIS)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    if connection.vendor == "postgresql":
        return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    pytest.skip(f"no URL written for {connection.vendor} here")


def in_another_process(prefix: str, code: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAHUB_", "DJANGO_"))}
    env.update({"DATABASE_URL": _database_url(), "DATAHUB_CACHE_URL": REDIS, "DATAHUB_CACHE_KEY_PREFIX": prefix,
                "DJANGO_SETTINGS_MODULE": "datahub_project.settings", "DATAHUB_LOG_LEVEL": "WARNING",
                "DATAHUB_VAR_DIR": os.environ.get("DATAHUB_VAR_DIR", str(ROOT / "var"))})
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_write_in_another_process_shows_on_the_next_request(alice, shared_cache):
    assert cache.get("page-cache-probe") is None
    run = completed()
    client = login(alice)
    page = hit(client, f"/runs/{run.pk}/").content
    listing = hit(client, "/runs/").content
    in_another_process(shared_cache, f"from runs.models import Run\n"
                                     f"Run.objects.filter(pk={run.pk}).update(error='written by another process')")
    fresh, queries = get(client, f"/runs/{run.pk}/")
    assert queries > 0 and fresh.content != page and b"written by another process" in fresh.content
    # a run executed by the worker code path in the other process (bulk inserts and updates, no signals)
    in_another_process(shared_cache, "from pipelines.models import Pipeline\nfrom runs import services\n"
                                     "services.run_now(services.create_run(Pipeline.objects.get(code='cached'), "
                                     "allow_concurrent=True))")
    newer = get(client, "/runs/")[0].content
    assert newer != listing and f"/runs/{run.pk + 1}/".encode() in newer
