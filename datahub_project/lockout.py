"""Login lock-out and request throttling on every way in.

django-axes counts failed logins and refuses a locked-out client before any password is checked. Its
backend and middleware cover the login page and the admin login (both go through ``authenticate``);
this module brings the other ways in under the same count:

* a wrong API token (REST and GraphQL: :class:`LockoutTokenAuthentication`),
* a webhook request whose authentication fails (``runs.webhooks``),

so that guessing tokens or webhook keys locks the client out like guessing passwords. The limits are
settings (``DATAHUB_LOGIN_FAILURE_LIMIT``, ``DATAHUB_LOGIN_COOLOFF_MINUTES``, ``DATAHUB_LOCKOUT_BY``);
``manage.py axes_reset_ip ADDRESS`` / ``axes_reset_username NAME`` / ``axes_reset`` or the admin's
"Access attempts" page (delete the row) unlock.

Request rates (``DATAHUB_RATE_LIMITS``) are DRF throttles, read from settings when a request comes so
that a changed setting applies at once; GraphQL and the token page apply the same classes by hand.
"""

from __future__ import annotations

import logging

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off, get_lockout_message
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework import exceptions, throttling
from rest_framework.authentication import TokenAuthentication, get_authorization_header

log = logging.getLogger("datahub.security")

# Answers under these paths are JSON (machines read them); elsewhere the lock-out page.
_MACHINE_PATHS = ("/api/", "/graphql/", "/hooks/")


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or behind DATAHUB_PROXY_COUNT proxies the entry of
    X-Forwarded-For that the nearest trusted proxy wrote (a client can only prepend entries)."""
    request = getattr(request, "_request", request)
    remote = request.META.get("REMOTE_ADDR")
    proxies = int(getattr(settings, "DATAHUB_PROXY_COUNT", 0))
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    return forwarded[-proxies] if len(forwarded) >= proxies else remote


def is_locked_out(request: HttpRequest, username: str | None = None) -> bool:
    """Whether this client is locked out; if so, axes' middleware answers with :func:`lockout_response`
    whatever the view returns."""
    if not settings.AXES_ENABLED:
        return False
    request = getattr(request, "_request", request)
    locked = not AxesProxyHandler.is_allowed(request, {"username": username} if username else None)
    if locked:
        request.axes_locked_out = True
    return locked


def record_failure(request: HttpRequest, what: str, username: str | None = None) -> None:
    """Count a failed authentication that did not go through ``authenticate`` (a token, a webhook key)."""
    if not settings.AXES_ENABLED:
        return
    request = getattr(request, "_request", request)
    log.info("authentication failed: %s from %s", what, client_ip(request))
    user_login_failed.send(sender=__name__, credentials={"username": username}, request=request)


def lockout_message() -> str:
    cool_off = get_cool_off()
    if cool_off:
        minutes = max(1, int(cool_off.total_seconds() // 60))
        return (f"Too many failed logins from here: locked out for {minutes} minute{'s' if minutes != 1 else ''}. "
                "Try again later, or ask an administrator to unlock you.")
    return str(get_lockout_message())


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the answer to a locked-out client, logged."""
    request = getattr(request, "_request", request)
    username = (credentials or {}).get("username") or ""
    log.warning("locked out: %s from %s (%s)", username or "-", client_ip(request), request.path)
    message = lockout_message()
    headers = {}
    cool_off = get_cool_off(request)
    if cool_off:
        headers["Retry-After"] = str(int(cool_off.total_seconds()))
    if request.path.startswith(_MACHINE_PATHS) or "json" in request.headers.get("Accept", ""):
        response = JsonResponse({"error": message, "code": "LOCKED_OUT"}, status=429)
    else:
        response = render(request, "registration/locked_out.html", {"message": message}, status=429)
    for name, value in headers.items():
        response[name] = value
    return response


class LockoutTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, refusing a locked-out client and counting wrong tokens."""

    def authenticate(self, request):
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() != self.keyword.lower().encode():
            return None  # not a token request: the session (or nothing) decides
        if is_locked_out(request):
            raise exceptions.Throttled(detail=lockout_message())
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            record_failure(request, "API token")
            raise


class _RateFromSettings:
    """Takes its rate from settings.DATAHUB_RATE_LIMITS[scope] when a request comes (None: no limit)."""

    def get_rate(self):
        return (getattr(settings, "DATAHUB_RATE_LIMITS", {}) or {}).get(self.scope)

    def get_ident(self, request):
        return client_ip(request) or "unknown"


class AnonRateThrottle(_RateFromSettings, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(_RateFromSettings, throttling.UserRateThrottle):
    pass


class TokenCreateThrottle(_RateFromSettings, throttling.UserRateThrottle):
    scope = "token"


def throttle_wait(request: HttpRequest, classes=(AnonRateThrottle, UserRateThrottle)) -> float | None:
    """For views outside DRF: None when the request is within every rate, else seconds to wait."""
    waits = []
    for cls in classes:
        throttle = cls()
        if not throttle.allow_request(request, None):
            waits.append(throttle.wait() or 1)
    return max(waits) if waits else None
