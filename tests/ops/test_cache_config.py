"""DATAHUB_CACHE_URL: a shared Redis cache with sessions read from it; without it, sessions stay in the
database (a per-process cache cannot hold them: a logout in one gunicorn worker would not reach the others)."""

import secrets

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from datahub_project.cache_config import CACHED_SESSIONS, DB_SESSIONS, caches_and_sessions

REDIS = "redis://127.0.0.1:6379/0"


def test_without_a_url_sessions_stay_in_the_database():
    caches, engine = caches_and_sessions("")
    assert engine == DB_SESSIONS and "LocMemCache" in caches["default"]["BACKEND"]


def test_a_redis_url_shares_the_cache_and_caches_sessions():
    caches, engine = caches_and_sessions("redis://cache:6379/2", "hub-a")
    assert engine == CACHED_SESSIONS
    assert caches["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert caches["default"]["LOCATION"] == "redis://cache:6379/2" and caches["default"]["KEY_PREFIX"] == "hub-a"


@pytest.mark.parametrize("url", ["memcached://cache:11211", "locmem://", "cache:6379"])
def test_another_kind_of_url_is_refused_with_the_setting_named(url):
    with pytest.raises(ImproperlyConfigured, match="DATAHUB_CACHE_URL must be a redis://"):
        caches_and_sessions(url)


def _redis_or_skip():
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis at 127.0.0.1:6379")


@pytest.fixture
def shared_cache(settings):
    _redis_or_skip()
    prefix = f"datahub-test-{secrets.token_hex(4)}"
    settings.CACHES, settings.SESSION_ENGINE = caches_and_sessions(REDIS, prefix)
    from django.core.cache import caches

    yield caches["default"]
    import redis

    client = redis.Redis.from_url(REDIS)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


@pytest.mark.django_db
def test_sessions_are_read_from_redis_and_a_logout_anywhere_ends_them(shared_cache, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw-long-enough")
    browser = Client()
    browser.force_login(user)
    assert browser.get("/runs/").status_code == 200
    with CaptureQueriesContext(connection) as captured:
        assert browser.get("/runs/").status_code == 200
    assert not [q for q in captured if "django_session" in q["sql"]]  # read from the cache
    # A logout (any worker process would answer it against the same Redis): the row and the cache entry go.
    other = Client()
    other.cookies = browser.cookies
    assert other.post("/accounts/logout/").status_code == 302
    response = browser.get("/runs/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
