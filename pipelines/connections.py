"""Resolving a connection code to its settings, inside the worker.

A connection holds non-secret settings (base URL, host, database, user) and names its secrets by code
(``passwordSecretCode``, ``bearerTokenSecretCode``); adapters resolve those through ``ctx.secret``. So a
definition never carries a credential, and a page that shows a connection shows no secret.
"""

from __future__ import annotations

from pipelines.errors import ConfigError


def resolve_connection(code: str) -> dict:
    """``{"code", "type", **config}`` of the connection, or ConfigError naming the known codes."""
    from pipelines.models import Connection

    try:
        conn = Connection.objects.get(code=code)
    except Connection.DoesNotExist:
        known = ", ".join(Connection.objects.values_list("code", flat=True)[:20]) or "none"
        raise ConfigError(f"unknown connection '{code}' (known: {known})", field="connectionCode") from None
    return {**conn.config, "code": conn.code, "type": conn.type}
