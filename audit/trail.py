"""Recording into the audit trail: :func:`record`, and the middleware that tells it who and where.

The middleware keeps the current request in a context variable, so that model signals (a token saved by
the admin, a secret changed by the API) know the person and the address without every caller passing
them. Outside a request (workers, timers, ``manage.py``) the actor is "system" unless a user is given.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging

from audit.models import AuditEvent

log = logging.getLogger("datahub.audit")
_request: contextvars.ContextVar = contextvars.ContextVar("datahub_audit_request", default=None)

ACTIONS = {
    "login.succeeded": "Logged in",
    "login.failed": "Failed login (password, API token or webhook key)",
    "login.locked_out": "Locked out after repeated failures",
    "token.created": "API token created",
    "token.revoked": "API token revoked",
    "pipeline.published": "Pipeline saved as a new revision",
    "pipeline.restored": "Pipeline revision restored",
    "pipeline.deleted": "Pipeline deleted",
    "pipeline.review_submitted": "Pipeline change submitted for review",
    "pipeline.review_approved": "Pipeline change approved and published",
    "pipeline.review_rejected": "Pipeline change rejected",
    "pipeline.review_setting": "Review before publish switched on or off",
    "secret.created": "Secret created",
    "secret.changed": "Secret changed",
    "secret.deleted": "Secret deleted",
    "connection.created": "Connection created",
    "connection.changed": "Connection changed",
    "connection.deleted": "Connection deleted",
    "gate.approved": "Gate approved",
    "gate.rejected": "Gate rejected",
    "run.started": "Run started",
    "run.replayed": "Failed records replayed",
    "run.cancelled": "Run cancelled",
    "access.changed": "Owners or teams changed",
}


def audit_middleware(get_response):
    def middleware(request):
        token = _request.set(request)
        try:
            return get_response(request)
        finally:
            _request.reset(token)

    return middleware


def _ip(request) -> str | None:
    if request is None:
        return None
    from datahub_project.lockout import client_ip

    address = client_ip(request)
    try:
        return str(ipaddress.ip_address(address)) if address else None
    except ValueError:
        return None


def record(action: str, target: str = "", *, user=None, request=None, **details) -> AuditEvent:
    """Write one event. ``user`` defaults to the request's (if logged in); ``request`` to the current one."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; add it to audit.trail.ACTIONS")
    request = request if request is not None else _request.get()
    request = getattr(request, "_request", request)  # a DRF request
    if user is None and request is not None:
        candidate = getattr(request, "user", None)
        user = candidate if getattr(candidate, "is_authenticated", False) else None
    name = user.get_username() if user is not None else details.pop("actor_name", "") or "system"
    if request is not None:
        details.setdefault("path", request.path[:300])
    event = AuditEvent.objects.create(actor=user, actor_name=name[:150], ip=_ip(request), action=action,
                                      target=target[:300], details=details)
    log.info("audit: %s %s %s from %s", name, action, target, event.ip or "-")
    return event
