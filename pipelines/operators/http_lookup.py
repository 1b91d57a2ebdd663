"""The ``httpLookup`` operator: a value per record from an HTTP endpoint. [pure]

A batch operator, so that it can run its requests in parallel; what it does, and where it differs from
the plugin, is described on :func:`http_lookup`. Retries, Retry-After, the circuit breaker, the rate
limit and the credential-header check are :mod:`pipelines.http_policy`'s, as for every outbound request;
connections and secrets are resolved as the HTTP adapters resolve them
(:mod:`pipelines.adapters.http_auth`), through the operator context's ``connection`` and ``secret``.

Why one module of some 570 lines: its config, the per-step state (cache, breaker, limiter, resolved
target) and the batch that fans requests out are one operator; a fifth of it is the JSON schema.

Why one module of this size: it is one operator: its config, target resolution (connections and secrets),
cache, concurrency and the fetch are the parts of one lookup; the HTTP client and policy are pipelines.http's
and pipelines.http_policy's.
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from pipelines import js
from pipelines.adapters.http_auth import AuthSpec, apply_auth, connection_base, parse_auth
from pipelines.errors import ConfigError, HttpError, RecordError, StepCancelled
from pipelines.http_policy import (
    Backoff,
    CircuitBreaker,
    RateLimiter,
    check_headers,
    origin_of,
    request_with_retry,
)
from pipelines.operators._common import field_path
from pipelines.operators.base import OperatorContext, batch_operator
from pipelines.records import MISSING, Batch, Path, PathError, Record, deep_copy, dumps, path

CATEGORY = "enrichment"

DEFAULT_TIMEOUT_MS = 5_000
MAX_TIMEOUT_MS = 300_000
DEFAULT_CACHE_TTL_SEC = 300
MAX_CACHE_TTL_SEC = 7 * 24 * 60 * 60
DEFAULT_MAX_RETRIES = 2
MAX_RETRIES = 10
DEFAULT_BATCH_SIZE = 50
MAX_BATCH_SIZE = 500
DEFAULT_RATE_LIMIT = 100
MAX_RATE_LIMIT = 10_000
MAX_CACHE_ENTRIES = 10_000
# The wait before the first retry, doubled for each later one, at most MAX_RETRY_DELAY_MS (tests patch it).
RETRY_DELAY_MS = 500
MAX_RETRY_DELAY_MS = 30_000

_TEMPLATE = re.compile(r"\{\{([^}]+)\}\}")
# The plugin's secret fields and the auth each stands for.
_SECRET_FIELDS = {"bearerTokenSecretCode": "BEARER", "apiKeySecretCode": "API_KEY", "basicAuthSecretCode": "BASIC"}
_URI_SAFE = "!~*'()"  # what encodeURIComponent leaves alone besides letters, digits and -_.


def _int_arg(args: dict, name: str, default: int, low: int, high: int) -> int:
    value = args.get(name, default)
    if value is None:
        return default
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not float(value).is_integer()
        or not low <= value <= high
    ):
        raise ConfigError(f"must be an integer from {low} to {high}", field=name)
    return int(value)


def _auth_of(args: dict) -> AuthSpec | None:
    """The auth the plugin's secret fields ask for (resolved when the lookup runs, never here)."""
    given = {name: args[name] for name in _SECRET_FIELDS if args.get(name) is not None}
    if len(given) > 1:
        raise ConfigError(f"give one credential, not several ({', '.join(given)})", field=next(iter(given)))
    header = args.get("apiKeyHeader")
    if header is not None and "apiKeySecretCode" not in given:
        raise ConfigError("apiKeyHeader needs apiKeySecretCode", field="apiKeyHeader")
    if not given:
        return None
    name, code = next(iter(given.items()))
    if not isinstance(code, str) or not code.strip():
        raise ConfigError("must be a secret code", field=name)
    if header is not None:
        check_headers({header: "x"}, "apiKeyHeader", allow_credentials=True)
    return AuthSpec(_SECRET_FIELDS[name], code, header_name=header, field=name)


@dataclass(frozen=True)
class _LookupConfig:
    template: tuple  # literal strings and Paths, alternating
    method: str
    target: Path
    response_path: Path | None
    key_field: Path | None
    default: Any
    timeout: float
    cache_ttl: float
    headers: dict
    body_field: Path | None
    body: Any
    skip_on_404: bool
    fail_on_error: bool
    max_retries: int
    batch_size: int
    rate_limit: int
    connection_code: str | None
    auth: AuthSpec | None  # the step's own; the connection's auth applies when None

    @classmethod
    def from_args(cls, args: dict) -> _LookupConfig:
        url = args.get("url")
        if not isinstance(url, str) or not url.strip():
            raise ConfigError(
                "'url' is required (an http or https URL; {{field}} inserts a value)", field="url"
            )
        url = url.strip()
        code = args.get("connectionCode")
        if code is not None and (not isinstance(code, str) or not code.strip()):
            raise ConfigError("must be the code of a saved HTTP connection", field="connectionCode")
        try:
            parts = urlsplit(_TEMPLATE.sub("x", url))
        except ValueError:
            raise ConfigError("is not a valid URL", field="url") from None
        relative = bool(code) and not parts.scheme  # a path under the connection's baseUrl
        if not url.startswith("{{") and not relative:
            if parts.scheme.lower() not in ("http", "https"):
                raise ConfigError("must be an http or https URL", field="url")
            if parts.username or parts.password:
                raise ConfigError(
                    "must not contain credentials; use a secret code for authentication", field="url"
                )
        template: list = []
        position = 0
        for match in _TEMPLATE.finditer(url):
            template.append(url[position : match.start()])
            try:
                template.append(path(match.group(1).strip()))
            except PathError as exc:
                raise ConfigError(f"template field: {exc}", field="url") from None
            position = match.end()
        template.append(url[position:])
        auth = _auth_of(args)
        if auth is not None and not code:
            raise ConfigError(
                "credentials are sent only to a saved connection's origin: give connectionCode (its baseUrl "
                "binds where the secret may go) and a path or a URL of that origin",
                field=auth.field,
            )
        method = (args.get("method") or "GET").upper()
        if method not in ("GET", "POST"):
            raise ConfigError("must be GET or POST", field="method")
        return cls(
            template=tuple(template),
            method=method,
            target=field_path(args, "target"),
            response_path=field_path(args, "responsePath", required=False),
            key_field=field_path(args, "keyField", required=False),
            default=args.get("default"),
            timeout=_int_arg(args, "timeoutMs", DEFAULT_TIMEOUT_MS, 1, MAX_TIMEOUT_MS) / 1000,
            cache_ttl=_int_arg(args, "cacheTtlSec", DEFAULT_CACHE_TTL_SEC, 0, MAX_CACHE_TTL_SEC),
            headers={"Accept": "application/json, */*;q=0.5",
                     **check_headers(args.get("headers"), "headers",
                                     secret_hint="bearerTokenSecretCode, apiKeySecretCode or basicAuthSecretCode")},
            body_field=field_path(args, "bodyField", required=False),
            body=args.get("body", MISSING),
            skip_on_404=bool(args.get("skipOn404", False)),
            fail_on_error=bool(args.get("failOnError", False)),
            max_retries=_int_arg(args, "maxRetries", DEFAULT_MAX_RETRIES, 0, MAX_RETRIES),
            batch_size=_int_arg(args, "batchSize", DEFAULT_BATCH_SIZE, 1, MAX_BATCH_SIZE),
            rate_limit=_int_arg(args, "rateLimitPerSecond", DEFAULT_RATE_LIMIT, 1, MAX_RATE_LIMIT),
            connection_code=code or None,
            auth=auth,
        )

    def url_for(self, record: Record) -> str:
        out = []
        for part in self.template:
            if isinstance(part, str):
                out.append(part)
            else:
                value = part.get(record)
                if value is not MISSING and value is not None:
                    out.append(quote(js.string(value), safe=_URI_SAFE))
        return "".join(out)

    def body_for(self, record: Record) -> Any:
        if self.method != "POST":
            return MISSING
        if self.body_field is not None:
            return self.body_field.get(record)
        return self.body


@dataclass(frozen=True)
class _Request:
    url: str
    body: Any  # MISSING = no body


@dataclass(frozen=True)
class _Outcome:
    kind: str  # "ok", "not_found" or "error"
    value: Any = None  # for "ok": the value to write (MISSING: responsePath not found, write the default)
    message: str = ""
    retryable: bool = True  # for "error": whether asking again later may help (a timeout, a 503)


class _LookupState:
    """What one httpLookup keeps across the batches of one step run: cache, rate limit, circuit breaker,
    and the connection and credentials once resolved."""

    def __init__(self, cfg: _LookupConfig):
        self.lock = threading.Lock()
        self.cache: dict[Any, tuple[float, _Outcome]] = {}
        self.breaker = CircuitBreaker()
        self.limiter = RateLimiter(cfg.rate_limit)
        self.backoff = Backoff(attempts=cfg.max_retries + 1, initial_ms=RETRY_DELAY_MS,
                               max_ms=MAX_RETRY_DELAY_MS, multiplier=2)
        self.target: _Target | None = None

    def cached(self, key: Any) -> _Outcome | None:
        with self.lock:
            entry = self.cache.get(key)
            if entry is None:
                return None
            if entry[0] <= time.monotonic():
                del self.cache[key]
                return None
            return entry[1]

    def store(self, key: Any, outcome: _Outcome, ttl: float) -> None:
        with self.lock:
            if len(self.cache) >= MAX_CACHE_ENTRIES:
                self.cache.pop(next(iter(self.cache)))  # the oldest entry
            self.cache[key] = (time.monotonic() + ttl, outcome)


@dataclass(frozen=True)
class _Target:
    """Where a lookup's URL goes and what it carries: without a connection, the URL as rendered; with one,
    a path joined to its baseUrl (or a URL of its origin, checked per request), its headers and the
    credentials, which are sent to that origin only."""

    base: str | None
    headers: dict[str, str]

    def url(self, rendered: str) -> str:
        if self.base is None:
            return rendered
        try:
            absolute = bool(urlsplit(rendered).scheme)
        except ValueError:
            raise RecordError(f"'{rendered}' is not a valid URL", retryable=False) from None
        if not absolute:
            return self.base.rstrip("/") + ("/" + rendered.lstrip("/") if rendered else "")
        if origin_of(rendered) != origin_of(self.base):
            raise RecordError(f"{_shown(rendered)} leaves the origin of the connection ({origin_of(self.base)}); "
                              "its credentials are not sent there", retryable=False)
        return rendered


def _resolve_target(cfg: _LookupConfig, ctx: OperatorContext) -> _Target:
    """The connection and secrets of ``cfg``, read through ``ctx`` once per step run. ConfigError naming
    the field when one cannot be had; secret values go into headers only, never into a message."""
    headers = dict(cfg.headers)
    if not cfg.connection_code:
        return _Target(None, headers)
    code = cfg.connection_code
    conn, base = connection_base(ctx, code)
    headers.update(check_headers(conn.get("headers"), f"connection '{code}' headers"))
    auth = cfg.auth or parse_auth(conn, where=f"connection '{code}'")
    params: dict[str, Any] = {}
    apply_auth(auth, ctx, headers, params)
    if params:  # an API key the connection sends as a query parameter: not in a template we render
        raise ConfigError(f"connection '{code}' sends its API key as a query parameter, which httpLookup "
                          "cannot do; use a header", field="connectionCode")
    return _Target(base, headers)


def _shown(url: str) -> str:
    """The URL for messages: no user info, no query string (it may hold a key)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an invalid URL)"
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


_STATES: dict[int, _LookupState] = {}
_STATES_LOCK = threading.Lock()


def _state_for(ctx: OperatorContext, cfg: _LookupConfig) -> _LookupState:
    """The state of the operator at ``ctx``, kept as long as that context lives (one compiled chain)."""
    with _STATES_LOCK:
        state = _STATES.get(id(ctx))
        if state is None:
            state = _STATES[id(ctx)] = _LookupState(cfg)
            weakref.finalize(ctx, _STATES.pop, id(ctx), None)
    if state.target is None:
        state.target = _resolve_target(cfg, ctx)
    return state


def _fetch(client: Any, cfg: _LookupConfig, request: _Request, state: _LookupState, ctx: OperatorContext):
    origin = origin_of(request.url)
    refusal = state.breaker.refusal(origin)
    if refusal is not None:
        return _Outcome("error", message=refusal)
    body = None if request.body is MISSING else request.body
    try:
        response = request_with_retry(
            client, cfg.method, request.url, headers=state.target.headers, json=body, timeout=cfg.timeout,
            backoff=state.backoff, limiter=state.limiter, cancelled=ctx.cancelled,
        )
        if response.status == 404:
            state.breaker.success(origin)
            return _Outcome("not_found")
        response.raise_for_status()
        content_type = (response.headers.get("Content-Type") or "").lower()
        if "json" in content_type:
            data = response.json() if response.body.strip() else None
        else:
            data = response.text
        state.breaker.success(origin)
    except StepCancelled:
        return _Outcome("error", message="cancelled")
    except HttpError as exc:
        # Only a lookup that failed for the server's reasons (after its retries) counts against the origin's
        # circuit; a 400 or a refused address says nothing about its health.
        if exc.retryable:
            state.breaker.failure(origin, str(exc))
        return _Outcome("error", message=str(exc), retryable=exc.retryable)
    if cfg.response_path is not None:
        data = cfg.response_path.get(data) if type(data) in (dict, list) else MISSING
    return _Outcome("ok", value=data)


def lookup_each(records: Batch, args: dict, ctx: OperatorContext) -> list:
    """httpLookup, one outcome per input record: the record, None (dropped on a 404) or its RecordError."""
    if ctx.http is None:
        raise ConfigError("outbound HTTP is not available here", field="url")
    cfg = _LookupConfig.from_args(args)
    state = _state_for(ctx, cfg)

    requests_by_key: dict[Any, _Request] = {}
    record_keys: list[Any] = []
    out: list = [None] * len(records)
    for i, record in enumerate(records):
        try:
            request = _Request(state.target.url(cfg.url_for(record)), cfg.body_for(record))
        except RecordError as exc:
            out[i] = RecordError(f"httpLookup: {exc}", retryable=False)
            record_keys.append(None)
            continue
        body_key = None if request.body is MISSING else dumps(request.body)
        extra = None
        if cfg.key_field is not None:
            value = cfg.key_field.get(record)
            extra = js.string(None if value is MISSING else value)
        key = (request.url, body_key, extra)
        requests_by_key.setdefault(key, request)
        record_keys.append(key)

    outcomes: dict[Any, _Outcome] = {}
    pending: list[Any] = []
    for key in requests_by_key:
        hit = state.cached(key) if cfg.cache_ttl > 0 else None
        if hit is not None:
            outcomes[key] = hit
        else:
            pending.append(key)

    if pending:
        workers = min(cfg.batch_size, len(pending))
        if workers == 1:
            results = [_fetch(ctx.http, cfg, requests_by_key[k], state, ctx) for k in pending]
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="httpLookup") as pool:
                results = list(
                    pool.map(lambda k: _fetch(ctx.http, cfg, requests_by_key[k], state, ctx), pending)
                )
        for key, outcome in zip(pending, results, strict=True):
            outcomes[key] = outcome
            if outcome.kind == "ok" and cfg.cache_ttl > 0:
                state.store(key, outcome, cfg.cache_ttl)
            elif outcome.kind == "error" and not (cfg.fail_on_error or ctx.retrying_records):
                ctx.warn(f"httpLookup {requests_by_key[key].url}: {outcome.message}; wrote the default")

    for i, (record, key) in enumerate(zip(records, record_keys, strict=True)):
        if key is None:  # the URL itself was refused (it left the connection's origin)
            if cfg.fail_on_error or ctx.retrying_records:
                continue
            ctx.warn(f"httpLookup: {out[i]}; wrote the default")
            value = cfg.default
        else:
            outcome = outcomes[key]
            if outcome.kind == "ok":
                value = cfg.default if outcome.value is MISSING else outcome.value
            elif outcome.kind == "not_found":
                if cfg.skip_on_404:
                    out[i] = None
                    continue
                value = cfg.default
            else:
                if cfg.fail_on_error or ctx.retrying_records:
                    out[i] = RecordError(f"httpLookup {requests_by_key[key].url}: {outcome.message}",
                                         retryable=outcome.retryable)
                    continue
                value = cfg.default
        cfg.target.set(record, deep_copy(value))
        out[i] = record
    return out


@batch_operator(
    "httpLookup",
    name="HTTP lookup",
    category=CATEGORY,
    description="Fetch a value per record from an HTTP endpoint (URL template, cache, retries) into a field.",
    pure=False,
    each=lookup_each,
    schema={
        "type": "object",
        "properties": {
            "url": {
                "type": "string",
                "description": "http(s) URL; {{fieldPath}} inserts the record's value, URL-encoded "
                "(null or missing inserts nothing).",
            },
            "method": {
                "type": "string",
                "enum": ["GET", "POST"],
                "default": "GET",
                "description": "HTTP method.",
            },
            "target": {"type": "string", "description": "Field path to write the response (or its part) to."},
            "responsePath": {
                "type": "string",
                "description": "Path inside a JSON response to take (e.g. 'data.price'); the default is "
                "written when it is absent. Empty = the whole response.",
            },
            "keyField": {
                "type": "string",
                "description": "Field path whose value is added to the cache key (requests are cached by "
                "method, URL and body already).",
            },
            "default": {
                "description": "Written on a 404, a failure (without failOnError) or a missing responsePath."
            },
            "timeoutMs": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_TIMEOUT_MS,
                "default": DEFAULT_TIMEOUT_MS,
                "description": "Timeout of each request, in milliseconds.",
            },
            "cacheTtlSec": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_CACHE_TTL_SEC,
                "default": DEFAULT_CACHE_TTL_SEC,
                "description": "How long a response is reused within the run, in seconds; 0 = no cache.",
            },
            "headers": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Static, non-secret request headers. Credential headers (Authorization, "
                "API keys, cookies) are refused: use a secret code.",
            },
            "connectionCode": {
                "type": "string",
                "description": "A saved HTTP connection: url is then a path joined to its baseUrl (or a URL "
                "of its origin), and its headers and auth are sent. Needed for any secret code: "
                "credentials go to the connection's origin only.",
            },
            "bearerTokenSecretCode": {
                "type": "string",
                "description": "Secret code of a bearer token (sent as Authorization: Bearer; needs "
                "connectionCode).",
            },
            "apiKeySecretCode": {
                "type": "string",
                "description": "Secret code of an API key (sent in apiKeyHeader; needs connectionCode).",
            },
            "apiKeyHeader": {"type": "string", "description": "Header for the API key (default X-API-Key)."},
            "basicAuthSecretCode": {
                "type": "string",
                "description": "Secret code of 'username:password' for Basic auth (needs connectionCode).",
            },
            "bodyField": {
                "type": "string",
                "description": "POST: field path whose value is sent as the JSON body.",
            },
            "body": {"description": "POST: a static JSON body (when bodyField is not given)."},
            "skipOn404": {
                "type": "boolean",
                "default": False,
                "description": "Drop the record when the endpoint answers 404 (else the default is written).",
            },
            "maxRetries": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_RETRIES,
                "default": DEFAULT_MAX_RETRIES,
                "description": "Retries after a timeout, connection error, 408, 429 or 5xx but 501 "
                "(exponential backoff from 0.5 s, or the server's Retry-After).",
            },
            "batchSize": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_BATCH_SIZE,
                "default": DEFAULT_BATCH_SIZE,
                "description": "How many requests run in parallel.",
            },
            "rateLimitPerSecond": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_RATE_LIMIT,
                "default": DEFAULT_RATE_LIMIT,
                "description": "At most this many requests per second to one origin.",
            },
        },
        "required": ["url", "target"],
        "additionalProperties": False,
    },
)
def http_lookup(records: Batch, args: dict, ctx: OperatorContext) -> Batch:
    """One request per distinct (method, URL, body) in the batch, run ``batchSize`` at a time; output in
    input order.

    * 2xx: the JSON (or text) response, or its ``responsePath`` part, is written to ``target``.
    * 404: the record is dropped with ``skipOn404``, else ``default`` (or null) is written.
    * Anything else after the retries (timeouts, connection errors, 429 and 5xx are retried with
      exponential backoff or the server's Retry-After; other statuses and refused addresses are not):
      with ``failOnError`` the step fails (the error names the URL); when the step retries records
      (``retryPerRecord``) the record fails, is retried in the step's rounds and, after its last attempt,
      goes to the record errors; otherwise ``default`` is written and the failure is reported with
      ``ctx.warn``, as in the plugin, where such errors are only logged.
    * Responses are cached for ``cacheTtlSec`` for the rest of the step run (across its batches), keyed
      by method, URL, body and ``keyField``'s value. Five failures of one origin within a minute open a
      circuit breaker for 30 s: lookups to it then fail at once instead of waiting for timeouts.
    * Credentials, as in the plugin, come only from secret codes and go only to the origin of a saved
      connection (``connectionCode``): ``url`` is a path under its ``baseUrl`` or a URL of its origin; a
      rendered URL that leaves that origin fails its record instead of carrying the secret elsewhere (and
      the guarded client drops credentials on a redirect to another origin). The connection's headers and
      auth apply unless the step names its own secret. Static credential headers are refused.

    Differences from the plugin: a 4xx other than 404/408/429 is not retried, and timeouts are; a
    ``responsePath`` that is absent writes ``default`` rather than the whole response; the cache lives for
    the step run rather than the process.
    """
    out: Batch = []
    for outcome in lookup_each(records, args, ctx):
        if isinstance(outcome, RecordError):
            raise outcome
        if outcome is not None:
            out.append(outcome)
    return out
