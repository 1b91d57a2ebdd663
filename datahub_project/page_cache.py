"""A shared cache of the busiest pages and API lists, as each reader sees them (issue 18).

``@cached_page(RUNS)`` on a GET view stores its answer in Django's cache and serves it again without
running the view, and without loading the user or their permissions, while nothing it shows has changed.

**What an entry is keyed by** (a SHA-256 of all of it):

* the code that rendered it (:func:`code_version`: a deploy starts afresh);
* who asks, as the session says (the user id and the session's password hash: a session that outlived a
  password change, or a logged-out one, never matches) and the API token (hashed); nothing is cached for
  anonymous requests;
* the CSRF secret of the request, so a form in a cached page carries a token valid for whoever gets it
  (a page that used the token is stored only for a request that brought its secret);
* the full URL with its query string, the host and scheme (DRF writes absolute links), ``Accept``
  (content negotiation) and the htmx headers (``HX-Request``, ``HX-Target``, ...: they pick a partial);
* the current token of every scope the view shows (:mod:`datahub_project.generations`), and of
  ``config``: users, groups, permissions, teams and tokens are in it, so what a reader may see, and
  whether they still may, changes the key.

**What is never stored:** an answer other than 200 (and htmx's 286 "stop polling", which is the run
page's poll answer for an ended run), an answer marked ``Cache-Control: no-store`` (the page of a run
still running or paused, whose duration goes on by the clock, or whose output sample settles), one that sets a cookie or changes the
session, one rendered while Django messages were waiting or were added, one that used a CSP nonce, a
streaming answer, and any answer to a request without an identity.

**When.** On only with a shared cache (``DATAHUB_CACHE_URL``: then ``DATAHUB_PAGE_CACHE`` defaults to on):
without one every process has its own cache, and a write by a worker could not reach the web processes'
entries. Entries expire after ``DATAHUB_PAGE_CACHE_SECONDS`` (30) whatever happens: relative times
("3 minutes ago") move on, and a write the database saw but Django did not is shown by then.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path
from types import SimpleNamespace

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from datahub_project import generations
from datahub_project.generations import ANY_RUN, CONFIG, RUNS, bump_everything, run_scope  # noqa: F401  (views name scopes here)
from datahub_project.lockout import UserRateThrottle

log = logging.getLogger(__name__)

CACHEABLE_STATUS = (200, 286)
CODE_DIRS = ("datahub_project", "audit", "pipelines", "runs", "gates")
VARY_HEADERS = ("HTTP_ACCEPT", "HTTP_HX_REQUEST", "HTTP_HX_TARGET", "HTTP_HX_TRIGGER", "HTTP_HX_TRIGGER_NAME",
                "HTTP_HX_BOOSTED", "HTTP_HX_HISTORY_RESTORE_REQUEST")


def enabled() -> bool:
    return settings.DATAHUB_PAGE_CACHE


def _identity(request: HttpRequest) -> tuple | None:
    """Who asks, read without loading the user: the API token's hash and the session's user id and password
    hash, both when a request brings both (the API answers as the token's user, a page as the session's:
    an entry is only ever served to a request that brings the same of each); None for neither, or for
    another Authorization scheme (the view decides)."""
    token = None
    authorization = request.META.get("HTTP_AUTHORIZATION", "")
    if authorization:
        kind, _, credential = authorization.partition(" ")
        if kind.lower() != "token" or not credential:
            return None
        token = hashlib.sha256(credential.strip().encode()).hexdigest()
    user = None
    session = getattr(request, "session", None)
    if session is not None and session.session_key is not None and session.get(SESSION_KEY):
        user = (session.get(SESSION_KEY), session.get(HASH_SESSION_KEY, ""))
    return (token, user) if token or user else None


def _pending_messages(request: HttpRequest) -> int:
    storage = getattr(request, "_messages", None)
    return len(get_messages(request)) if storage is not None else 0


@functools.cache
def code_version() -> str:
    """A digest of the code and templates that render the pages, and of the static files' manifest: a
    deploy that changes any of them starts with new keys (entries of the old code are not served by the
    new). Read once per process."""
    digest = hashlib.sha256()
    base = Path(settings.BASE_DIR)
    files = [*sorted((base / "templates").rglob("*.html")),
             *sorted(p for app in CODE_DIRS for p in (base / app).rglob("*.py") if "migrations" not in p.parts),
             Path(settings.STATIC_ROOT) / "staticfiles.json"]
    for path in files:
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _key(request: HttpRequest, identity: tuple, scopes: tuple) -> str:
    parts = [code_version(), repr(identity), request.META.get("CSRF_COOKIE", ""), request.scheme, request.get_host(),
             request.get_full_path(), *(request.META.get(name, "") for name in VARY_HEADERS),
             *generations.current((CONFIG, *scopes))]
    return "page:" + hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()


def _storable(request: HttpRequest, response: HttpResponse, had_csrf: bool) -> bool:
    # A page that used the CSRF token is stored only when the request brought its secret: otherwise the
    # page made a new one, which its key does not hold.
    csrf_ok = had_csrf or not request.META.get("CSRF_COOKIE_NEEDS_UPDATE")
    return (response.status_code in CACHEABLE_STATUS and not response.streaming and not response.cookies
            and "no-store" not in response.get("Cache-Control", "")
            and csrf_ok and not getattr(request, "session", SimpleNamespace(modified=False)).modified
            and getattr(request, "_csp_nonce", None) is None and not _pending_messages(request))


def _throttled(request: HttpRequest, user_id) -> HttpResponse | None:
    """The API's per-user request rate applies to answers from the cache too."""
    throttle = UserRateThrottle()
    if throttle.rate is None:
        return None
    stand_in = SimpleNamespace(user=SimpleNamespace(pk=user_id, is_authenticated=True), META=request.META)
    if throttle.allow_request(stand_in, None):
        return None
    wait = throttle.wait() or 1
    response = HttpResponse('{"detail":"Request was throttled."}', status=429, content_type="application/json")
    response["Retry-After"] = str(int(wait))
    return response


def cached_page(*scopes: str, run: str = "", api: bool = False):
    """Serve a GET view's answer from the shared cache while the scopes it shows (and ``config``) are
    unchanged. Put it outside the login and permission decorators: a hit needs neither. ``run``: the name
    of the view's argument that holds the one run it shows (its scope is added; the view should name
    ``ANY_RUN`` rather than ``RUNS``). ``api``: the view is a REST endpoint (its per-user request rate is
    applied to hits)."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if not enabled() or request.method != "GET":
                return view(request, *args, **kwargs)
            identity = _identity(request)
            if identity is None or _pending_messages(request):
                return view(request, *args, **kwargs)
            try:
                key = _key(request, identity, (*scopes, run_scope(kwargs[run])) if run else scopes)
                hit = cache.get(key)
            except Exception:  # a cache that fails must not fail the page
                log.exception("page cache: could not read")
                return view(request, *args, **kwargs)
            if hit is not None:
                status, headers, content, user_id = hit
                if api and (refused := _throttled(request, user_id)):
                    return refused
                response = HttpResponse(content, status=status)
                for name, value in headers:
                    response[name] = value
                return response
            had_csrf = "CSRF_COOKIE" in request.META
            response = view(request, *args, **kwargs)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
            if _storable(request, response, had_csrf):
                user = getattr(request, "user", None)  # DRF's request set it on this one too
                entry = (response.status_code, list(response.items()), response.content,
                         getattr(user, "pk", None))
                try:
                    cache.set(key, entry, settings.DATAHUB_PAGE_CACHE_SECONDS)
                except Exception:
                    log.exception("page cache: could not store")
            return response

        return wrapper

    return decorate
