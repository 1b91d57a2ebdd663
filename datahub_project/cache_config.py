"""The cache and where sessions live (``DATAHUB_CACHE_URL``).

Without ``DATAHUB_CACHE_URL`` every process has its own in-memory cache (Django's default) and sessions
stay in the database: one query per request. A per-process cache cannot hold sessions: gunicorn runs
several worker processes, and a logout answered by one of them would leave the session alive in the others'
caches until it expired.

With ``DATAHUB_CACHE_URL=redis://host:6379/1`` the cache is that Redis, shared by every process, and
sessions use Django's ``cached_db`` engine: written to the database and the cache, read from the cache (no
query), and a logout in any process deletes both. ``DATAHUB_CACHE_KEY_PREFIX`` (default ``datahub``) keeps
two Datahubs, or a Datahub and other programs, apart in one Redis. django-q2's cluster statistics and the
API's request rates (``DATAHUB_RATE_*``) then count across processes too.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

DB_SESSIONS = "django.contrib.sessions.backends.db"
CACHED_SESSIONS = "django.contrib.sessions.backends.cached_db"


def caches_and_sessions(url: str, prefix: str = "datahub") -> tuple[dict, str]:
    """``(CACHES, SESSION_ENGINE)`` for a cache URL (empty: the per-process defaults)."""
    if not url:
        return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}, DB_SESSIONS
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"DATAHUB_CACHE_URL must be a redis://, rediss:// or unix:// URL, not {url.split(':')[0]!r}")
    return {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url,
                        "KEY_PREFIX": prefix,
                        # A cache that hangs must not hang pages: fail fast (cached_db then reads the database).
                        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2}}}, CACHED_SESSIONS
