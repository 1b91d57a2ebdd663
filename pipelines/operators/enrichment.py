"""Enrichment operators: lookup, enrich, coalesce, default, httpLookup. [pure]

The first four are per-record and follow the plugin exactly (research §2.7). ``httpLookup`` is a batch
operator so that it can run its requests in parallel; what it does, and where it differs from the
plugin, is described on :func:`http_lookup`.
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from pipelines import js
from pipelines.errors import ConfigError, RecordError
from pipelines.http import HttpError
from pipelines.operators._common import field_path
from pipelines.operators.base import OperatorContext, batch_operator, record_operator
from pipelines.records import MISSING, Batch, Path, PathError, Record, deep_copy, dumps, path

CATEGORY = "enrichment"





# -- lookup, enrich, coalesce, default -----------------------------------------------------------


@record_operator(
    "lookup",
    name="Lookup",
    category=CATEGORY,
    description="Map a field's value through a dictionary and write the result (or a default).",
    schema={
        "type": "object",
        "properties": {
            "source": {"type": "string", "description": "Field path of the value to look up."},
            "map": {
                "type": "object",
                "description": "The dictionary: keys are the value as text (true, 42, 'US'), values are "
                "what to write.",
            },
            "target": {"type": "string", "description": "Field path to write the result to."},
            "default": {
                "description": "Written when the value is missing, null or not in the map (else null)."
            },
        },
        "required": ["source", "map", "target"],
        "additionalProperties": False,
    },
)
def lookup(args: dict, ctx: OperatorContext):
    source, target = field_path(args, "source"), field_path(args, "target")
    table = args.get("map")
    if not isinstance(table, dict):
        raise ConfigError("must be an object", field="map")
    default = args.get("default")

    def fn(record: Record) -> Record:
        value = source.get(record)
        hit = None
        if value is not MISSING and value is not None:
            hit = table.get(js.string(value))
        target.set(record, deep_copy(default if hit is None else hit))
        return record

    return fn


def _path_map(args: dict, name: str) -> list[tuple[Path, Any]]:
    value = args.get(name)
    if value is None:
        return []
    if not isinstance(value, dict):
        raise ConfigError("must be an object of {fieldPath: value}", field=name)
    out = []
    for key, v in value.items():
        try:
            out.append((path(key), v))
        except PathError as exc:
            raise ConfigError(str(exc), field=f"{name}.{key}") from None
    return out


@record_operator(
    "enrich",
    name="Enrich",
    category=CATEGORY,
    description="Fill missing or null fields from defaults, then overwrite fields from set.",
    schema={
        "type": "object",
        "properties": {
            "set": {
                "type": "object",
                "description": "Fields to write on every record, {fieldPath: value}; dotted paths create "
                "nested objects. Applied after defaults.",
            },
            "defaults": {
                "type": "object",
                "description": "Fields to write only where missing or null (false, 0 and '' are kept), "
                "{fieldPath: value}.",
            },
        },
        "additionalProperties": False,
    },
)
def enrich(args: dict, ctx: OperatorContext):
    defaults = _path_map(args, "defaults")
    overrides = _path_map(args, "set")

    def fn(record: Record) -> Record:
        for p, value in defaults:
            current = p.get(record)
            if current is MISSING or current is None:
                p.set(record, deep_copy(value))
        for p, value in overrides:
            p.set(record, deep_copy(value))
        return record

    return fn


@record_operator(
    "coalesce",
    name="Coalesce",
    category=CATEGORY,
    description="Write the first value among several fields that is not null, missing or empty.",
    schema={
        "type": "object",
        "properties": {
            "paths": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Field paths to try, in order.",
            },
            "target": {"type": "string", "description": "Field path to write the value to."},
            "default": {"description": "Written when every path is null, missing or '' (else null)."},
        },
        "required": ["paths", "target"],
        "additionalProperties": False,
    },
)
def coalesce(args: dict, ctx: OperatorContext):
    target = field_path(args, "target")
    texts = args.get("paths")
    if not isinstance(texts, list):
        raise ConfigError("must be a list of field paths", field="paths")
    try:
        paths = [path(t) for t in texts]
    except (PathError, TypeError) as exc:
        raise ConfigError(str(exc), field="paths") from None
    has_default = "default" in args
    default = args.get("default")

    def fn(record: Record) -> Record:
        for p in paths:
            value = p.get(record)
            if value is not MISSING and value is not None and value != "":
                target.set(record, deep_copy(value))
                return record
        target.set(record, deep_copy(default) if has_default else None)
        return record

    return fn


@record_operator(
    "default",
    name="Default value",
    category=CATEGORY,
    description="Set a field to a value where it is missing or null (an empty string is kept).",
    schema={
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "Field path to fill."},
            "value": {"description": "The value to write where the field is missing or null."},
        },
        "required": ["path", "value"],
        "additionalProperties": False,
    },
)
def default(args: dict, ctx: OperatorContext):
    target = field_path(args, "path")
    value = args.get("value")

    def fn(record: Record) -> Record:
        current = target.get(record)
        if current is MISSING or current is None:
            target.set(record, deep_copy(value))
        return record

    return fn


# -- httpLookup ----------------------------------------------------------------------------------

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
MAX_HEADERS = 50
# Backoff between retries: BACKOFF_BASE_SECONDS * 2**attempt, at most MAX_BACKOFF_SECONDS (tests patch it).
BACKOFF_BASE_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
# Circuit breaker, per origin: this many failures within the window open it for CIRCUIT_OPEN_SECONDS.
CIRCUIT_FAILURES = 5
CIRCUIT_WINDOW_SECONDS = 60.0
CIRCUIT_OPEN_SECONDS = 30.0

_TEMPLATE = re.compile(r"\{\{([^}]+)\}\}")
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_SENSITIVE_HEADER = re.compile(
    r"(?:^|[-_])(?:authorization|api[-_]?key|auth[-_]?token|access[-_]?token|refresh[-_]?token|"
    r"security[-_]?token|client[-_]?secret|private[-_]?key|secret|signature|cookie)(?:$|[-_])",
    re.IGNORECASE,
)
_FORBIDDEN_HEADERS = frozenset(
    {
        "connection",
        "content-length",
        "host",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_SECRET_FIELDS = ("bearerTokenSecretCode", "apiKeySecretCode", "basicAuthSecretCode")
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


def _headers(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError("must be an object of {name: value}", field="headers")
    if len(value) > MAX_HEADERS:
        raise ConfigError(f"at most {MAX_HEADERS} static headers", field="headers")
    seen: set[str] = set()
    for name, v in value.items():
        where = f"headers.{name}"
        if not _HEADER_NAME.match(name):
            raise ConfigError(f"'{name}' is not a valid header name", field=where)
        lowered = name.lower()
        if lowered in seen:
            raise ConfigError(f"header '{name}' is given twice", field=where)
        seen.add(lowered)
        if lowered in _FORBIDDEN_HEADERS:
            raise ConfigError(
                f"header '{name}' is set by the HTTP client and cannot be configured", field=where
            )
        if _SENSITIVE_HEADER.search(lowered):
            raise ConfigError(
                f"static header '{name}' carries credentials and is not allowed here; store the credential "
                "as a secret and name its secret code (bearerTokenSecretCode, apiKeySecretCode or "
                "basicAuthSecretCode) instead",
                field=where,
            )
        if not isinstance(v, str) or "\r" in v or "\n" in v or len(v) > 8192:
            raise ConfigError(
                "header values must be single-line strings of at most 8192 characters", field=where
            )
    return dict(value)


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

    @classmethod
    def from_args(cls, args: dict) -> _LookupConfig:
        url = args.get("url")
        if not isinstance(url, str) or not url.strip():
            raise ConfigError(
                "'url' is required (an http or https URL; {{field}} inserts a value)", field="url"
            )
        url = url.strip()
        if not url.startswith("{{"):
            try:
                parts = urlsplit(_TEMPLATE.sub("x", url))
            except ValueError:
                raise ConfigError("is not a valid URL", field="url") from None
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
        for name in _SECRET_FIELDS:
            if args.get(name) is not None:
                raise ConfigError(
                    "secret codes cannot be resolved by httpLookup yet; remove it or call an endpoint "
                    "that needs no credentials",
                    field=name,
                )
        if args.get("apiKeyHeader") is not None:
            raise ConfigError("apiKeyHeader needs apiKeySecretCode", field="apiKeyHeader")
        if args.get("connectionCode") is not None:
            raise ConfigError(
                "saved connections cannot be used by httpLookup yet; give the full URL instead",
                field="connectionCode",
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
            headers={"Accept": "application/json, */*;q=0.5", **_headers(args.get("headers"))},
            body_field=field_path(args, "bodyField", required=False),
            body=args.get("body", MISSING),
            skip_on_404=bool(args.get("skipOn404", False)),
            fail_on_error=bool(args.get("failOnError", False)),
            max_retries=_int_arg(args, "maxRetries", DEFAULT_MAX_RETRIES, 0, MAX_RETRIES),
            batch_size=_int_arg(args, "batchSize", DEFAULT_BATCH_SIZE, 1, MAX_BATCH_SIZE),
            rate_limit=_int_arg(args, "rateLimitPerSecond", DEFAULT_RATE_LIMIT, 1, MAX_RATE_LIMIT),
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
    """What one httpLookup keeps across the batches of one step run: cache, rate limit, circuit breaker."""

    def __init__(self):
        self.lock = threading.Lock()
        self.cache: dict[Any, tuple[float, _Outcome]] = {}
        self.next_slot: dict[str, float] = {}
        self.failures: dict[str, deque] = {}
        self.open_until: dict[str, float] = {}

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

    def wait_for_slot(self, origin: str, per_second: int, cancelled: threading.Event) -> None:
        with self.lock:
            now = time.monotonic()
            slot = max(now, self.next_slot.get(origin, now))
            self.next_slot[origin] = slot + 1.0 / per_second
        if slot > now:
            cancelled.wait(slot - now)

    def circuit_open(self, origin: str) -> bool:
        with self.lock:
            return self.open_until.get(origin, 0.0) > time.monotonic()

    def record(self, origin: str, *, healthy: bool) -> None:
        with self.lock:
            if healthy:
                self.failures.pop(origin, None)
                return
            now = time.monotonic()
            recent = self.failures.setdefault(origin, deque())
            recent.append(now)
            while recent and recent[0] < now - CIRCUIT_WINDOW_SECONDS:
                recent.popleft()
            if len(recent) >= CIRCUIT_FAILURES:
                self.open_until[origin] = now + CIRCUIT_OPEN_SECONDS
                recent.clear()


_STATES: dict[int, _LookupState] = {}
_STATES_LOCK = threading.Lock()


def _state_for(ctx: OperatorContext) -> _LookupState:
    """The state of the operator at ``ctx``, kept as long as that context lives (one compiled chain)."""
    with _STATES_LOCK:
        state = _STATES.get(id(ctx))
        if state is None:
            state = _STATES[id(ctx)] = _LookupState()
            weakref.finalize(ctx, _STATES.pop, id(ctx), None)
        return state


def _origin(url: str) -> str:
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}".lower()
    except ValueError:
        return url


def _fetch(client: Any, cfg: _LookupConfig, request: _Request, state: _LookupState, ctx: OperatorContext):
    origin = _origin(request.url)
    if state.circuit_open(origin):
        return _Outcome("error", message=f"circuit open for {origin} after repeated failures; not calling it")
    body = None if request.body is MISSING else request.body
    for attempt in range(cfg.max_retries + 1):
        if ctx.cancelled.is_set():
            return _Outcome("error", message="cancelled")
        state.wait_for_slot(origin, cfg.rate_limit, ctx.cancelled)
        try:
            response = client.request(
                cfg.method, request.url, headers=cfg.headers, json=body, timeout=cfg.timeout
            )
            if response.status == 404:
                state.record(origin, healthy=True)
                return _Outcome("not_found")
            response.raise_for_status()
            content_type = (response.headers.get("Content-Type") or "").lower()
            if "json" in content_type:
                data = response.json() if response.body.strip() else None
            else:
                data = response.text
            state.record(origin, healthy=True)
        except HttpError as exc:
            if not exc.retryable or attempt == cfg.max_retries:
                # Only a lookup that failed for the server's reasons (after its retries) counts against the
                # origin's circuit; a 400 or a refused address says nothing about its health.
                if exc.retryable:
                    state.record(origin, healthy=False)
                return _Outcome("error", message=str(exc), retryable=exc.retryable)
            delay = exc.retry_after if exc.retry_after is not None else BACKOFF_BASE_SECONDS * 2**attempt
            if ctx.cancelled.wait(min(delay, MAX_BACKOFF_SECONDS)):
                return _Outcome("error", message="cancelled")
            continue
        if cfg.response_path is not None:
            data = cfg.response_path.get(data) if type(data) in (dict, list) else MISSING
        return _Outcome("ok", value=data)
    return _Outcome("error", message="HTTP lookup failed")  # pragma: no cover - the loop always returns


def lookup_each(records: Batch, args: dict, ctx: OperatorContext) -> list:
    """httpLookup, one outcome per input record: the record, None (dropped on a 404) or its RecordError."""
    if ctx.http is None:
        raise ConfigError("outbound HTTP is not available here", field="url")
    cfg = _LookupConfig.from_args(args)
    state = _state_for(ctx)

    requests_by_key: dict[Any, _Request] = {}
    record_keys: list[Any] = []
    for record in records:
        request = _Request(cfg.url_for(record), cfg.body_for(record))
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

    out: list = []
    for record, key in zip(records, record_keys, strict=True):
        outcome = outcomes[key]
        if outcome.kind == "ok":
            value = cfg.default if outcome.value is MISSING else outcome.value
        elif outcome.kind == "not_found":
            if cfg.skip_on_404:
                out.append(None)
                continue
            value = cfg.default
        else:
            if cfg.fail_on_error or ctx.retrying_records:
                out.append(RecordError(f"httpLookup {requests_by_key[key].url}: {outcome.message}",
                                       retryable=outcome.retryable))
                continue
            value = cfg.default
        cfg.target.set(record, deep_copy(value))
        out.append(record)
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
                "description": "A saved HTTP connection (not supported yet).",
            },
            "bearerTokenSecretCode": {
                "type": "string",
                "description": "Secret code of a bearer token (not supported yet).",
            },
            "apiKeySecretCode": {
                "type": "string",
                "description": "Secret code of an API key (not supported yet).",
            },
            "apiKeyHeader": {"type": "string", "description": "Header for the API key (default X-API-Key)."},
            "basicAuthSecretCode": {
                "type": "string",
                "description": "Secret code of 'username:password' for Basic auth (not supported yet).",
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
                "description": "Retries after a timeout, connection error, 429 or 5xx (exponential backoff).",
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

    Differences from the plugin: a 4xx other than 404/408/429 is not retried, and timeouts are; a
    ``responsePath`` that is absent writes ``default`` rather than the whole response; the cache lives for
    the step run rather than the process; secret codes and saved connections are refused until Datahub
    resolves them (static credential headers are refused for good).
    """
    out: Batch = []
    for outcome in lookup_each(records, args, ctx):
        if isinstance(outcome, RecordError):
            raise outcome
        if outcome is not None:
            out.append(outcome)
    return out
