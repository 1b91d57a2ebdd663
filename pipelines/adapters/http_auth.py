"""What the HTTP adapters share: target and auth resolution, secrets, messages, config schemas. [pure]

Used by :mod:`pipelines.adapters.http_api` (the ``httpApi`` and ``graphql`` extractors) and
:mod:`pipelines.adapters.rest` (``restPost``, ``restPostExport``, ``webhookExport``, ``webhook``);
:mod:`pipelines.adapters.graphql_mutation` and the ``httpLookup`` operator take their connection lookup,
URL check and auth from here.
Every request goes through ``ctx.http`` (:class:`pipelines.http.HttpClient`): the private-address
guard, the size cap and the timeouts are its job; retries, Retry-After, the circuit breaker, pacing and
the credential-header check are :mod:`pipelines.http_policy`'s; this module adds what an adapter needs
on top.

* **Targets.** A step gives a full ``url`` (or ``endpoint``), or a ``connectionCode`` and a path that is
  joined to the connection's ``baseUrl``. An absolute URL given together with a connection must keep the
  connection's origin, so the connection's credentials are never sent elsewhere.
* **Auth.** ``auth`` is a preset name (``"BEARER"``, the plugin's loader form, with the secret named by
  the flat ``bearerTokenSecretCode`` / ``basicSecretCode`` / ``apiKeySecretCode`` / ``hmacSecretCode``
  fields) or an object ``{type, secretCode, headerName, queryParam, username}``. Without ``auth`` the flat
  fields alone choose the type. Secrets are read only through ``ctx.secret(code)``; a step's auth replaces
  its connection's.
* **No inline credentials.** ``headers`` (step or connection) may not set ``Authorization``, ``Cookie``,
  ``X-Api-Key`` and similar (:func:`pipelines.http_policy.check_headers`): those values belong in a
  secret (``auth`` or ``headerSecretCodes``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pipelines.adapters.base import AdapterContext
from pipelines.errors import ConfigError
from pipelines.http import HttpResponse
from pipelines.http_policy import HEADER_NAME, check_headers, origin_of

__all__ = [
    "AuthSpec",
    "Target",
    "apply_auth",
    "display_url",
    "excerpt",
    "hmac_sha256_hex",
    "resolve_secret",
    "resolve_target",
]

DEFAULT_TIMEOUT_MS = 30_000
MAX_TIMEOUT_MS = 300_000
# Query parameter names whose values are hidden in messages.
_SENSITIVE_PARAM = re.compile(r"key|token|secret|passw|signature|sig$|auth|credential|session", re.I)
AUTH_TYPES = ("NONE", "BEARER", "BASIC", "API_KEY")
DEFAULT_API_KEY_HEADER = "X-API-Key"


# -- schema fragments ----------------------------------------------------------------------------

def auth_schema(*, hmac_allowed: bool = False) -> dict:
    types = list(AUTH_TYPES) + (["HMAC"] if hmac_allowed else [])
    hmac_text = (" HMAC signs each request body with the secret (see hmacSecretCode)." if hmac_allowed else "")
    return {
        "description": "How to authenticate: a preset name (" + ", ".join(types) + ") whose secret is named by "
        "the matching *SecretCode field, or an object {type, secretCode, headerName, queryParam, username}. "
        "Replaces the connection's auth." + hmac_text,
        "anyOf": [
            {"enum": types},
            {
                "type": "object",
                "properties": {
                    "type": {"enum": types, "default": "NONE", "description": "The scheme."},
                    "secretCode": {"type": "string", "minLength": 1,
                                   "description": "Secret holding the bearer token, 'user:password' for BASIC "
                                   "(or the password when username is given), or the API key."},
                    "headerName": {"type": "string", "minLength": 1, "default": DEFAULT_API_KEY_HEADER,
                                   "description": "API_KEY: the header that carries the key."},
                    "queryParam": {"type": "string", "minLength": 1,
                                   "description": "API_KEY: send the key as this query parameter instead of a "
                                   "header (hidden in messages)."},
                    "username": {"type": "string", "minLength": 1,
                                 "description": "BASIC: the user name; the secret then holds the password only."},
                },
                "required": ["type"],
                "additionalProperties": False,
            },
        ],
    }


PLUGIN_AUTH_PROPERTIES: dict[str, dict] = {
    "bearerTokenSecretCode": {"type": "string", "minLength": 1,
                              "description": "Secret holding a bearer token (the plugin's name; same as "
                              "auth {type: BEARER, secretCode})."},
    "basicSecretCode": {"type": "string", "minLength": 1,
                        "description": "Secret holding 'user:password' for basic auth (the plugin's name)."},
    "apiKeySecretCode": {"type": "string", "minLength": 1,
                         "description": "Secret holding an API key (the plugin's name)."},
    "apiKeyHeaderName": {"type": "string", "minLength": 1, "default": DEFAULT_API_KEY_HEADER,
                         "description": "Header carrying the API key of apiKeySecretCode."},
    "apiKeyHeader": {"type": "string", "minLength": 1,
                     "description": "Same as apiKeyHeaderName (the plugin's webhook sink spells it so)."},
}

HEADERS_SCHEMA = {
    "type": "object",
    "description": "Extra request headers (not secret). Credential headers such as Authorization, Cookie or "
    "X-Api-Key are refused here: name a secret in auth or headerSecretCodes instead.",
    "additionalProperties": {"type": ["string", "number", "boolean"]},
}
HEADER_SECRET_CODES_SCHEMA = {
    "type": "object",
    "description": "Header name -> secret code: headers whose values are read from secrets.",
    "additionalProperties": {"type": "string", "minLength": 1},
}
CONNECTION_CODE_SCHEMA = {
    "type": "string", "minLength": 1,
    "description": "An HTTP connection: its baseUrl is joined with the path given here, and its headers and "
    "auth are used unless this step sets its own.",
}
TIMEOUT_SCHEMA = {
    "type": "integer", "minimum": 1, "maximum": MAX_TIMEOUT_MS, "default": DEFAULT_TIMEOUT_MS,
    "description": "Timeout of one request in milliseconds (connect, each read and the whole download).",
}


# -- secrets and headers -------------------------------------------------------------------------

def resolve_secret(ctx: AdapterContext, code: str, field: str) -> str:
    """The value of secret ``code``; ConfigError (naming ``field``) when it cannot be had."""
    if not isinstance(code, str) or not code:
        raise ConfigError("a secret code is required", field=field)
    if ctx.secret is None:
        raise ConfigError(f"secret '{code}' cannot be resolved here (no secret store)", field=field)
    try:
        value = ctx.secret(code)
    except ConfigError as exc:
        raise ConfigError(str(exc), field=field) from None
    except LookupError:
        raise ConfigError(f"unknown secret '{code}'", field=field) from None
    if not value:
        raise ConfigError(f"secret '{code}' is empty", field=field)
    return value


def secret_headers(ctx: AdapterContext, codes: Any, field: str = "headerSecretCodes") -> dict[str, str]:
    """Headers whose values come from secrets (``{"X-Partner-Key": "partner-key"}``)."""
    if not codes:
        return {}
    if not isinstance(codes, Mapping):
        raise ConfigError("headerSecretCodes must be an object of header name -> secret code", field=field)
    out = {}
    for name, code in codes.items():
        if not isinstance(name, str) or not HEADER_NAME.match(name):
            raise ConfigError(f"'{name}' is not a valid header name", field=f"{field}.{name}")
        value = resolve_secret(ctx, code, f"{field}.{name}")
        if "\r" in value or "\n" in value:
            raise ConfigError(f"secret '{code}' contains a line break and cannot be a header", field=f"{field}.{name}")
        out[name] = value
    return out


# -- auth ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AuthSpec:
    """An auth scheme and where its secret is. ``type`` NONE switches a connection's auth off."""

    type: str
    secret_code: str | None = None
    header_name: str | None = None
    query_param: str | None = None
    username: str | None = None
    field: str = "auth"
    # HMAC (restPost): the signed payload template, ${method} ${path} ${timestamp} ${body}; None = the body.
    payload_template: str | None = None


_FLAT_BY_TYPE = {"BEARER": "bearerTokenSecretCode", "BASIC": "basicSecretCode", "API_KEY": "apiKeySecretCode",
                 "HMAC": "hmacSecretCode"}


def parse_auth(config: Mapping, *, hmac_allowed: bool = False, where: str = "",
               types: tuple[str, ...] = AUTH_TYPES) -> AuthSpec | None:
    """The auth ``config`` asks for (step config or a connection's), or None when it names none; ``types`` are
    the kinds this step may use (HMAC besides them when ``hmac_allowed``)."""
    raw = config.get("auth")
    allowed = types + (("HMAC",) if hmac_allowed else ())
    flat = {t: config.get(name) for t, name in _FLAT_BY_TYPE.items() if config.get(name) and t in allowed}
    header = config.get("apiKeyHeaderName") or config.get("apiKeyHeader")
    prefix = f"{where}." if where else ""
    if isinstance(raw, Mapping):
        kind = str(raw.get("type", "NONE")).upper().replace("-", "_")
        code = raw.get("secretCode") or flat.get(kind)
        spec = AuthSpec(kind, code, raw.get("headerName") or header, raw.get("queryParam"), raw.get("username"),
                        field=f"{prefix}auth.secretCode" if raw.get("secretCode") else f"{prefix}auth")
    elif isinstance(raw, str) and raw:
        kind = raw.upper().replace("-", "_")
        spec = AuthSpec(kind, flat.get(kind), header, field=f"{prefix}{_FLAT_BY_TYPE.get(kind, 'auth')}")
    elif raw is None or raw == "":
        if not flat:
            return None
        if len(flat) > 1:
            names = ", ".join(_FLAT_BY_TYPE[t] for t in flat)
            raise ConfigError(f"give one credential, not several ({names}); or set auth to choose",
                              field=f"{prefix}auth")
        kind, code = next(iter(flat.items()))
        spec = AuthSpec(kind, code, header, field=f"{prefix}{_FLAT_BY_TYPE[kind]}")
    else:
        raise ConfigError("auth must be a preset name or an object {type, secretCode, ...}", field=f"{prefix}auth")
    if spec.type not in allowed:
        raise ConfigError(f"unknown auth type '{spec.type}' (one of {', '.join(allowed)})", field=f"{prefix}auth")
    if spec.type == "NONE":
        return spec
    if not spec.secret_code:
        needs = _FLAT_BY_TYPE[spec.type]
        raise ConfigError(f"{spec.type} auth needs a secret code (auth.secretCode or {needs})",
                          field=f"{prefix}auth")
    if spec.type == "HMAC":
        header = config.get("hmacHeader") or (raw.get("headerName") if isinstance(raw, Mapping) else None)
        spec = AuthSpec("HMAC", spec.secret_code, header or "X-DataHub-Signature", field=f"{prefix}hmacSecretCode",
                        payload_template=config.get("hmacPayloadTemplate"))
    if spec.header_name is not None and not HEADER_NAME.match(spec.header_name):
        raise ConfigError(f"'{spec.header_name}' is not a valid header name", field=f"{prefix}auth.headerName")
    return spec


def apply_auth(spec: AuthSpec | None, ctx: AdapterContext, headers: dict[str, str], params: dict[str, Any]) -> None:
    """Add the credentials of ``spec`` to ``headers`` or ``params`` (HMAC is per request: see Signer)."""
    if spec is None or spec.type in ("NONE", "HMAC"):
        return
    value = resolve_secret(ctx, spec.secret_code, spec.field)
    if "\r" in value or "\n" in value:
        raise ConfigError(f"secret '{spec.secret_code}' contains a line break", field=spec.field)
    if spec.type == "BEARER":
        headers["Authorization"] = f"Bearer {value}"
    elif spec.type == "BASIC":
        if spec.username:
            pair = f"{spec.username}:{value}"
        else:
            user, sep, password = value.partition(":")
            if not sep or not user:
                raise ConfigError(f"secret '{spec.secret_code}' must hold 'user:password' for BASIC auth "
                                  "(or set auth.username)", field=spec.field)
            pair = value
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
    elif spec.type == "API_KEY":
        if spec.query_param:
            params[spec.query_param] = value
        else:
            headers[spec.header_name or DEFAULT_API_KEY_HEADER] = value


def hmac_sha256_hex(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()


# -- targets -------------------------------------------------------------------------------------

@dataclass
class Target:
    """Where requests go and what they carry by default (connection headers under step headers)."""

    url: str
    headers: dict[str, str]
    auth: AuthSpec | None


def check_url(url: str, field: str, *, hint: str = "") -> None:
    """ConfigError (naming ``field``) unless ``url`` is an absolute http(s) URL without credentials in it;
    ``hint`` ends the message for a URL that is not http(s)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as exc:
        raise ConfigError(f"invalid URL: {exc}", field=field) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"'{url}' is not an http(s) URL{hint}", field=field)
    if parts.username or parts.password:
        raise ConfigError("credentials may not be written into the URL; use auth with a secret code", field=field)


_PATH_HINT = " (or give connectionCode and a path)"


def connection_of(ctx: AdapterContext, code: str) -> Mapping:
    """The settings of connection ``code``; a ConfigError naming connectionCode when they cannot be had."""
    if ctx.connection is None:
        raise ConfigError(f"connection '{code}' cannot be resolved here (no connection store)",
                          field="connectionCode")
    try:
        return ctx.connection(code)
    except ConfigError as exc:
        raise ConfigError(str(exc), field="connectionCode") from None


HTTP_CONNECTION_TYPES = ("HTTP", "GRAPHQL", "CUSTOM")


def connection_base(ctx: AdapterContext, code: str, *, hint: str = "",
                    base_keys: tuple[str, ...] = ("baseUrl", "url", "endpoint")) -> tuple[Mapping, str]:
    """The settings of HTTP connection ``code`` and its checked base URL (the first of ``base_keys`` it has);
    a ConfigError naming connectionCode when it is another kind or has none."""
    conn = connection_of(ctx, code)
    if str(conn.get("type", "HTTP")).upper() not in HTTP_CONNECTION_TYPES:
        raise ConfigError(f"connection '{code}' is a {conn.get('type')} connection; an HTTP or GraphQL one is "
                          "needed", field="connectionCode")
    base = next((conn[k] for k in base_keys if conn.get(k)), None)
    if not base or not isinstance(base, str):
        raise ConfigError(f"connection '{code}' has no {' or '.join(base_keys[:2])}", field="connectionCode")
    check_url(base, "connectionCode", hint=hint)
    return conn, base


def resolve_target(config: Mapping, ctx: AdapterContext, *, url_keys: tuple[str, ...] = ("url",),
                   hmac_allowed: bool = False, auth_types: tuple[str, ...] = AUTH_TYPES,
                   base_keys: tuple[str, ...] = ("baseUrl", "url", "endpoint")) -> Target:
    """The URL, default headers and auth of a step: its own, or joined with its connection's (whose base URL is
    the first of ``base_keys`` it has); ``auth_types`` are the auth kinds the step takes."""
    key = next((k for k in url_keys if config.get(k)), url_keys[0])
    path = config.get(key) or ""
    if not isinstance(path, str):
        raise ConfigError("must be a string", field=key)
    headers: dict[str, str] = {}
    auth: AuthSpec | None = None
    code = config.get("connectionCode")
    if code:
        conn, base = connection_base(ctx, code, hint=_PATH_HINT, base_keys=base_keys)
        if urlsplit(path).scheme:
            check_url(path, key, hint=_PATH_HINT)
            if origin_of(path) != origin_of(base):
                raise ConfigError(f"'{path}' leaves the origin of connection '{code}' ({base}); give a path, "
                                  "or drop connectionCode", field=key)
            url = path
        else:
            url = base.rstrip("/") + ("/" + path.lstrip("/") if path else "")
        headers.update(check_headers(conn.get("headers"), f"connection '{code}' headers"))
        auth = parse_auth(conn, hmac_allowed=hmac_allowed, where=f"connection '{code}'", types=auth_types)
    else:
        if not path:
            raise ConfigError(f"'{key}' is required (a full URL, or a path with connectionCode)", field=key)
        check_url(path, key, hint=_PATH_HINT)
        url = path
    headers.update(check_headers(config.get("headers"), "headers"))
    own = parse_auth(config, hmac_allowed=hmac_allowed, types=auth_types)
    if own is not None:
        auth = own
    return Target(url, headers, auth)


# -- messages ------------------------------------------------------------------------------------

def display_url(url: str, params: Mapping[str, Any] | None = None, hidden: tuple[str, ...] = ()) -> str:
    """``url`` with ``params`` added, for messages: no user info, sensitive query values replaced by ***."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    for name, value in (params or {}).items():
        values = value if isinstance(value, list | tuple) else [value]
        pairs.extend((name, str(v)) for v in values)
    hidden_lower = {h.lower() for h in hidden}
    shown = [(k, "***" if (k.lower() in hidden_lower or _SENSITIVE_PARAM.search(k)) else v) for k, v in pairs]
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(shown, safe="*"), ""))


def excerpt(response: HttpResponse, limit: int = 200) -> str:
    """The start of a response body, whitespace collapsed, for error messages."""
    text = " ".join(response.text.split())
    if len(text) > limit:
        text = text[:limit] + "…"
    return text or "(empty body)"


# -- the client and the retry schemas --------------------------------------------------------------------------

def http_client(ctx: AdapterContext):
    if ctx.http is None:
        raise ConfigError("outbound HTTP is not available here (no HTTP client)")
    return ctx.http


RETRY_SCHEMA = {
    "type": "object",
    "description": "Retries of one request on network errors, timeouts, 408, 429 (honouring Retry-After) and "
    "5xx but 501; other 4xx are not retried.",
    "properties": {
        "maxAttempts": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3,
                        "description": "Tries in all, the first included."},
        "initialDelayMs": {"type": "integer", "minimum": 0, "maximum": MAX_TIMEOUT_MS, "default": 1000,
                           "description": "Wait before the second try; each later wait is multiplied."},
        "maxDelayMs": {"type": "integer", "minimum": 0, "maximum": MAX_TIMEOUT_MS, "default": 30_000,
                       "description": "The longest wait between tries."},
        "backoffMultiplier": {"type": "number", "minimum": 1, "maximum": 10, "default": 2,
                              "description": "Factor between consecutive waits."},
    },
    "additionalProperties": False,
}
RATE_LIMIT_SCHEMA = {
    "type": "object",
    "description": "Pacing of this step's requests.",
    "properties": {
        "requestsPerSecond": {"type": "number", "exclusiveMinimum": 0, "maximum": 1000,
                              "description": "At most this many requests a second (retries included)."},
    },
    "additionalProperties": False,
}
