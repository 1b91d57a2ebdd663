"""HTTP writers: loader ``restPost``, exporters ``restPostExport`` and ``webhookExport``, sink ``webhook``. [pure]

All four send JSON through ``ctx.http`` (the guarded client) with auth from secrets, retries with backoff
and a per-request timeout, as :mod:`pipelines.http_policy` says (network errors, timeouts, 408, 429
honouring Retry-After, 5xx but 501; never another 4xx). What they do with failures:

* A request that fails (a 4xx, or a 5xx / network error after the retries) fails the records it carried;
  they go to the run's record errors with ``HTTP 422: <start of the body>`` and the rest go on.
* A failure no retry can cure — a private or loopback target refused by the HTTP guard, a bad URL, a TLS
  error, a missing secret — fails the step at once.
* The endpoint's circuit breaker (:class:`pipelines.http_policy.CircuitBreaker`, the plugin's numbers):
  after 5 deliveries failed for a retryable reason within 60 s, the next records fail at once for 30 s
  ("not sent: ..."); it keeps a dead endpoint from costing timeout x retries per record.

Dry runs never reach these writers (the engine passes the records on instead); they also check
``ctx.dry_run`` themselves and send nothing.

Signatures:

* ``restPost`` with auth HMAC: header ``hmacHeader`` (default ``X-DataHub-Signature``) = hex HMAC-SHA256
  with the secret ``hmacSecretCode`` over the exact body bytes sent, and ``x-timestamp`` = Unix seconds.
  ``hmacPayloadTemplate`` signs another string instead, with ``${method}``, ``${path}``, ``${timestamp}``
  and ``${body}`` (the exact body) replaced. Differs from the plugin, whose default template
  ``${method}:${path}:${timestamp}`` leaves the body unsigned; give that template to get its signatures.
* ``webhook`` and ``webhookExport`` with ``hmacSecretCode`` (``signatureSecretCode``): header
  ``signatureHeaderName`` (default ``X-DataHub-Signature``) = ``sha256=<hex HMAC-SHA256 of the raw body>``,
  the form Datahub's own webhook trigger (and the plugin's) verifies.

Why one module of some 570 lines: the four writers are one delivery loop (:class:`HttpWriter`) with four
thin bodies around it, and their schemas share every delivery field; apart, each would re-import the
same dozen pieces.

Why one module of this size: the four HTTP writers are registrations over one delivery machine (HttpWriter,
Delivery: batching, signing, retries per pipelines.http_policy); each registration is a few lines over it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pipelines.adapters.base import Writer, WriteResult
from pipelines.adapters.http_auth import (
    CONNECTION_CODE_SCHEMA,
    HEADER_SECRET_CODES_SCHEMA,
    HEADERS_SCHEMA,
    PLUGIN_AUTH_PROPERTIES,
    TIMEOUT_SCHEMA,
    apply_auth,
    auth_schema,
    display_url,
    excerpt,
    hmac_sha256_hex,
    http_client,
    resolve_secret,
    resolve_target,
    secret_headers,
)
from pipelines.errors import ConfigError, StepCancelled, StepError
from pipelines.http import HttpError, HttpResponse
from pipelines.http_policy import Backoff, CircuitBreaker, is_retryable_status, origin_of, request_with_retry
from pipelines.records import MISSING, Batch, PathError, Record, chunked, deep_copy, dumps, path
from pipelines.registry import exporters, loaders, sinks

SIGNATURE_HEADER = "X-DataHub-Signature"


# -- delivery ------------------------------------------------------------------------------------

@dataclass
class Delivery:
    ok: bool
    response: HttpResponse | None
    message: str = ""

    def json(self) -> Any:
        if self.response is None or not self.response.body.strip():
            return None
        try:
            return self.response.json()
        except HttpError:
            return None


def _records(n: int) -> str:
    return f"{n} record" if n == 1 else f"{n} records"


def _int(config: dict, *names: str, default: int) -> int:
    for name in names:
        if config.get(name) is not None:
            return int(config[name])
    return default


class HttpWriter(Writer):
    """A writer that sends JSON bodies to one endpoint. Set up on the first batch (secrets are read then)."""

    URL_KEYS: tuple[str, ...] = ("url",)
    HMAC_AUTH = False
    RETRY_NAMES: tuple[str, ...] = ("retries",)
    DEFAULT_RETRIES = 0
    DEFAULT_RETRY_DELAY_MS = 0

    def __init__(self, config: dict, ctx):
        super().__init__(config, ctx)
        self._ready = False

    # subclasses add a signature here
    def _signer(self) -> Callable[[dict[str, str], str, str, bytes], dict[str, str]] | None:
        return None

    def _setup(self) -> None:
        if self._ready:
            return
        cfg, ctx = self.config, self.ctx
        self.target = resolve_target(cfg, ctx, url_keys=self.URL_KEYS, hmac_allowed=self.HMAC_AUTH)
        self.url = self.target.url
        self.method = str(cfg.get("method") or "POST").upper()
        headers = {"Content-Type": "application/json", "Accept": "application/json", **self.target.headers}
        headers.update(secret_headers(ctx, cfg.get("headerSecretCodes")))
        self.params: dict[str, Any] = {}
        apply_auth(self.target.auth, ctx, headers, self.params)
        self.headers = headers
        auth = self.target.auth
        self.hidden = (auth.query_param,) if auth and auth.query_param else ()
        self.timeout_s = _int(cfg, "timeoutMs", default=30_000) / 1000
        retries = _int(cfg, *self.RETRY_NAMES, default=self.DEFAULT_RETRIES)
        delay = _int(cfg, "retryDelayMs", default=self.DEFAULT_RETRY_DELAY_MS)
        max_delay = _int(cfg, "maxRetryDelayMs", default=30_000)
        if max_delay < delay:
            raise ConfigError("maxRetryDelayMs cannot be less than retryDelayMs", field="maxRetryDelayMs")
        self.backoff = Backoff(attempts=retries + 1, initial_ms=delay, max_ms=max_delay,
                               multiplier=float(cfg.get("backoffMultiplier") or 2))
        self.sign = self._signer()
        self.breaker = CircuitBreaker()
        self._ready = True

    def shown(self, url: str | None = None) -> str:
        return display_url(url or self.url, self.params, self.hidden)

    def deliver(self, method: str, body: bytes, url: str | None = None) -> Delivery:
        """Send one body; a failed Delivery for a 4xx or a retryable failure that outlived the retries,
        StepError when trying again cannot help."""
        url = url or self.url
        if self.ctx.cancelled.is_set():
            raise StepCancelled()
        origin = origin_of(url)
        refusal = self.breaker.refusal(origin)
        if refusal:
            return Delivery(False, None, refusal)
        sign = self.sign
        prepare = (lambda h: sign(h, method, url, body)) if sign else None
        shown = self.shown(url)
        try:
            response = request_with_retry(
                http_client(self.ctx), method, url, headers=self.headers, params=self.params or None, data=body,
                timeout=self.timeout_s, backoff=self.backoff, prepare=prepare, cancelled=self.ctx.cancelled,
                on_retry=lambda n, why, _wait: self.ctx.warn(f"{method} {shown}: {why}; retrying (try {n + 1})"),
            )
        except HttpError as exc:
            if not exc.retryable:
                raise StepError(f"{method} {shown}: {exc}") from None
            self.breaker.failure(origin, str(exc))
            return Delivery(False, None, str(exc))
        if response.status >= 400:
            message = f"HTTP {response.status}: {excerpt(response)}"
            if is_retryable_status(response.status):
                self.breaker.failure(origin, f"HTTP {response.status}")
            else:
                self.breaker.success(origin)
            return Delivery(False, response, message)
        self.breaker.success(origin)
        return Delivery(True, response)


def _webhook_signer(ctx, config: dict, *codes: str):
    """``sha256=<hex>`` of the raw body in ``signatureHeaderName``, when a signing secret is named."""
    name = next((n for n in codes if config.get(n)), None)
    if name is None:
        return None
    secret = resolve_secret(ctx, config[name], name)
    header = config.get("signatureHeaderName") or SIGNATURE_HEADER

    def sign(headers: dict[str, str], method: str, url: str, body: bytes) -> dict[str, str]:
        headers[header] = "sha256=" + hmac_sha256_hex(secret, body)
        return headers

    return sign


# -- shared schema parts ---------------------------------------------------------------------------

def _delivery_properties(*, retries_name: str = "retries", default_retries: int = 0,
                         default_delay_ms: int = 0) -> dict:
    return {
        retries_name: {"type": "integer", "minimum": 0, "maximum": 10, "default": default_retries,
                       "description": "Retries of a failed request (network error, timeout, 408, 429, 5xx but 501); "
                       "other 4xx are final."},
        "retryDelayMs": {"type": "integer", "minimum": 0, "maximum": 300_000, "default": default_delay_ms,
                         "description": "Wait before the first retry (a Retry-After header wins)."},
        "maxRetryDelayMs": {"type": "integer", "minimum": 0, "maximum": 300_000, "default": 30_000,
                            "description": "The longest wait between retries."},
        "backoffMultiplier": {"type": "number", "minimum": 1, "maximum": 10, "default": 2,
                              "description": "Factor between consecutive waits."},
        "timeoutMs": TIMEOUT_SCHEMA,
    }


def _common_properties() -> dict:
    return {
        "connectionCode": CONNECTION_CODE_SCHEMA,
        "method": {"enum": ["POST", "PUT", "PATCH"], "default": "POST", "description": "HTTP method."},
        "headers": HEADERS_SCHEMA,
        "headerSecretCodes": HEADER_SECRET_CODES_SCHEMA,
        **PLUGIN_AUTH_PROPERTIES,
    }


# -- restPost ------------------------------------------------------------------------------------

_FAILED_WORDS = frozenset({"error", "failed", "failure", "rejected", "invalid", "fail"})


def _item_error(item: Any) -> str | None:
    """Why one item of a per-item result array failed, or None when it did not."""
    if not isinstance(item, dict):
        return None
    error = item.get("error") or item.get("errors")
    if error:
        if isinstance(error, dict):
            return str(error.get("message") or dumps(error).decode())
        if isinstance(error, list):
            return "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in error)
        return str(error)
    status = item.get("status")
    if isinstance(status, bool):
        return None if status else "status false"
    if isinstance(status, int | float) and status >= 400:
        return f"status {status:g}"
    if isinstance(status, str):
        if status.isdigit() and int(status) >= 400:
            return f"status {status}"
        if status.lower() in _FAILED_WORDS:
            return f"status {status}"
    return None


def _result_items(payload: Any, size: int) -> list | None:
    """The per-item array of an array-mode response: a list (or ``{"results": [...]}``) of ``size`` items."""
    if isinstance(payload, dict) and isinstance(payload.get("results"), list):
        payload = payload["results"]
    if isinstance(payload, list) and len(payload) == size:
        return payload
    return None


RESPONSE_ITEMS_TEXT = (
    "array mode: one request per chunk of maxBatchSize records, and the chunk fails or succeeds as a whole "
    "(every record of a failed chunk is recorded with the error) - unless the response is a JSON array (or "
    "{\"results\": [...]}) with one object per record, in order, that has a status or error field: then each "
    "record fails or passes by its own item (error non-empty, or status >= 400, or status "
    "error/failed/rejected/invalid, fails it)."
)

REST_POST_SCHEMA = {
    "type": "object",
    "properties": {
        "endpoint": {"type": "string", "description": "The endpoint: a full http(s) URL, or a path joined to "
                     "the connection's baseUrl when connectionCode is set."},
        **_common_properties(),
        "auth": auth_schema(hmac_allowed=True),
        "hmacSecretCode": {"type": "string", "minLength": 1,
                           "description": "HMAC: secret whose value signs each request (SHA-256)."},
        "hmacHeader": {"type": "string", "minLength": 1, "default": SIGNATURE_HEADER,
                       "description": "HMAC: header carrying the hex signature; x-timestamp carries the time."},
        "hmacPayloadTemplate": {"type": "string", "minLength": 1,
                                "description": "HMAC: what is signed, with ${method}, ${path}, ${timestamp} and "
                                "${body} replaced; default the exact body bytes."},
        "batchMode": {"enum": ["single", "array", "batch"], "default": "single",
                      "description": "single: one request per record, each record passes or fails alone. "
                      + RESPONSE_ITEMS_TEXT + " (batch is the same as array.)"},
        "maxBatchSize": {"type": "integer", "minimum": 0, "maximum": 100_000, "default": 0,
                         "description": "array mode: records per request; 0 sends each incoming batch whole."},
        "responseField": {"type": "string", "minLength": 1,
                          "description": "Write a value of the response (responseIdPath) into this field of "
                          "the record passed on, e.g. the id the endpoint created."},
        "responseIdPath": {"type": "string", "minLength": 1, "default": "id",
                           "description": "Dot path of the value to keep, in the response (single) or in the "
                           "record's item of the response array (array)."},
        **_delivery_properties(),
    },
    "additionalProperties": False,
}


@loaders.register(
    "restPost",
    name="REST POST/PUT/PATCH",
    category="api",
    builtin=True,
    description="Sends records to a REST endpoint, one per request or as JSON arrays, with auth from secrets "
    "(bearer, basic, API key, HMAC signature), retries, and a result per record.",
    schema=REST_POST_SCHEMA,
)
class RestPostLoader(HttpWriter):
    URL_KEYS = ("endpoint",)
    HMAC_AUTH = True

    def _setup(self) -> None:
        if self._ready:
            return
        cfg = self.config
        self.mode = "array" if cfg.get("batchMode") in ("array", "batch") else "single"
        self.chunk = int(cfg.get("maxBatchSize") or 0)
        self.response_field = None
        self.response_path = None
        if cfg.get("responseField"):
            try:
                self.response_field = path(cfg["responseField"])
                self.response_path = path(cfg.get("responseIdPath") or "id")
            except PathError as exc:
                raise ConfigError(str(exc), field="responseField") from None
        self._warned_missing = False
        super()._setup()

    def _signer(self):
        auth = self.target.auth
        if auth is None or auth.type != "HMAC":
            return None
        secret = resolve_secret(self.ctx, auth.secret_code, auth.field)
        header, template = auth.header_name, auth.payload_template
        now = self.ctx.now

        def sign(headers: dict[str, str], method: str, url: str, body: bytes) -> dict[str, str]:
            stamp = str(int(now().timestamp()))
            if template:
                text = (template.replace("${method}", method).replace("${path}", urlsplit(url).path or "/")
                        .replace("${timestamp}", stamp).replace("${body}", body.decode("utf-8")))
                payload = text.encode("utf-8")
            else:
                payload = body
            headers[header] = hmac_sha256_hex(secret, payload)
            headers["x-timestamp"] = stamp
            return headers

        return sign

    def _kept(self, record: Record, item: Any) -> Record:
        out = deep_copy(record)
        value = self.response_path.get(item) if isinstance(item, dict | list) else MISSING
        if value is MISSING:
            if not self._warned_missing:
                self._warned_missing = True
                self.ctx.warn(f"restPost: responseIdPath '{self.response_path.text}' is not in the response; "
                              f"{self.response_field.text} left unset")
            return out
        self.response_field.set(out, value)
        return out

    def write(self, batch: Batch) -> WriteResult:
        if self.ctx.dry_run:
            return WriteResult(0, [], list(batch))
        self._setup()
        keep = self.response_field is not None
        output: Batch | None = [] if keep else None
        failed: list[tuple[Record, str]] = []
        written = 0
        if self.mode == "single":
            for record in batch:
                result = self.deliver(self.method, dumps(record))
                if result.ok:
                    written += 1
                    if keep:
                        output.append(self._kept(record, result.json()))
                else:
                    failed.append((record, result.message))
            return WriteResult(written, failed, output)

        for chunk in chunked(batch, self.chunk or max(len(batch), 1)):
            result = self.deliver(self.method, dumps(chunk))
            payload = result.json() if result.response is not None else None
            items = _result_items(payload, len(chunk))
            per_item = items is not None and any(
                isinstance(i, dict) and ("status" in i or "error" in i or "errors" in i) for i in items)
            if per_item and result.response is not None:
                for index, (record, item) in enumerate(zip(chunk, items, strict=True)):
                    why = _item_error(item)
                    if why:
                        failed.append((record, f"HTTP {result.response.status}, item {index} of the array: {why}"))
                    else:
                        written += 1
                        if keep:
                            output.append(self._kept(record, item))
            elif result.ok:
                written += len(chunk)
                if keep:
                    output.extend(self._kept(r, items[i] if items else None) for i, r in enumerate(chunk))
            else:
                message = f"{result.message} (array of {_records(len(chunk))} failed together)"
                failed.extend((record, message) for record in chunk)
        return WriteResult(written, failed, output)


# -- exporters -----------------------------------------------------------------------------------

def _export_schema(signed: bool) -> dict:
    properties = {
        "url": {"type": "string", "description": "The endpoint: a full http(s) URL, or a path joined to the "
                "connection's baseUrl when connectionCode is set."},
        "endpoint": {"type": "string", "description": "Same as url."},
        **_common_properties(),
        "auth": auth_schema(),
        "batchSize": {"type": "integer", "minimum": 1, "maximum": 10_000, "default": 100,
                      "description": "Records per request (a JSON array); a failed request fails its records."},
        **_delivery_properties(retries_name="retryCount"),
        "retries": {"type": "integer", "minimum": 0, "maximum": 10, "description": "Same as retryCount."},
    }
    if signed:
        properties.update({
            "signatureSecretCode": {"type": "string", "minLength": 1,
                                    "description": "Secret that signs each body: signatureHeaderName = "
                                    "sha256=<hex HMAC-SHA256 of the raw body>."},
            "hmacSecretCode": {"type": "string", "minLength": 1, "description": "Same as signatureSecretCode."},
            "signatureHeaderName": {"type": "string", "minLength": 1, "default": SIGNATURE_HEADER,
                                    "description": "Header carrying the signature."},
        })
    return {"type": "object", "properties": properties, "additionalProperties": False}


class _BatchPoster(HttpWriter):
    URL_KEYS = ("url", "endpoint")
    RETRY_NAMES = ("retryCount", "retries")

    def write(self, batch: Batch) -> WriteResult:
        if self.ctx.dry_run:
            return WriteResult(0, [], None)
        self._setup()
        size = int(self.config.get("batchSize") or 100)
        written = 0
        failed: list[tuple[Record, str]] = []
        for chunk in chunked(batch, size):
            result = self.deliver(self.method, dumps(chunk))
            if result.ok:
                written += len(chunk)
            else:
                message = f"{result.message} (batch of {_records(len(chunk))})"
                failed.extend((record, message) for record in chunk)
        return WriteResult(written, failed, None)


@exporters.register(
    "restPostExport",
    name="REST export",
    category="api",
    builtin=True,
    description="Posts records as JSON arrays of batchSize to an endpoint, with auth from secrets and retries.",
    schema=_export_schema(signed=False),
)
class RestPostExporter(_BatchPoster):
    pass


@exporters.register(
    "webhookExport",
    name="Webhook export",
    category="api",
    builtin=True,
    description="Posts records as JSON arrays of batchSize to a webhook, signed with an HMAC-SHA256 header "
    "when a signing secret is named.",
    schema=_export_schema(signed=True),
)
class WebhookExporter(_BatchPoster):
    def _signer(self):
        return _webhook_signer(self.ctx, self.config, "signatureSecretCode", "hmacSecretCode")


# -- webhook sink --------------------------------------------------------------------------------

_OPERATIONS = ("UPSERT", "DELETE")

WEBHOOK_SINK_SCHEMA = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "description": "The webhook: a full http(s) URL, or a path joined to the "
                "connection's baseUrl when connectionCode is set."},
        **_common_properties(),
        "auth": auth_schema(),
        "batchSize": {"type": "integer", "minimum": 1, "maximum": 10_000, "default": 100,
                      "description": "Records per request (a JSON array), sent one request after another."},
        **_delivery_properties(default_retries=3, default_delay_ms=1000),
        "hmacSecretCode": {"type": "string", "minLength": 1,
                           "description": "Secret that signs each body: signatureHeaderName = sha256=<hex "
                           "HMAC-SHA256 of the raw body bytes>."},
        "signatureHeaderName": {"type": "string", "minLength": 1, "default": SIGNATURE_HEADER,
                                "description": "Header carrying the signature."},
        "defaultOperation": {"enum": list(_OPERATIONS), "default": "UPSERT",
                             "description": "What a record without __operation is. UPSERT records are sent "
                             "with method; DELETE records are reduced to {idField: id} and sent as an HTTP "
                             "DELETE to the same URL. A record's __operation field overrides this and is removed "
                             "before sending; another value fails that record."},
        "idField": {"type": "string", "minLength": 1, "default": "id",
                    "description": "Dot path of the record id, sent for DELETE records."},
    },
    "additionalProperties": False,
}


@sinks.register(
    "webhook",
    name="Webhook",
    category="api",
    builtin=True,
    description="Pushes records in batches to a webhook URL, signed with X-DataHub-Signature: sha256=<hex> "
    "when hmacSecretCode is set; per-record __operation UPSERT or DELETE.",
    schema=WEBHOOK_SINK_SCHEMA,
)
class WebhookSink(HttpWriter):
    URL_KEYS = ("url",)
    DEFAULT_RETRIES = 3
    DEFAULT_RETRY_DELAY_MS = 1000

    def _signer(self):
        return _webhook_signer(self.ctx, self.config, "hmacSecretCode")

    def _setup(self) -> None:
        if self._ready:
            return
        cfg = self.config
        self.default_op = str(cfg.get("defaultOperation") or "UPSERT").upper()
        try:
            self.id_path = path(cfg.get("idField") or "id")
        except PathError as exc:
            raise ConfigError(str(exc), field="idField") from None
        self.size = int(cfg.get("batchSize") or 100)
        super()._setup()

    def _send(self, op: str, group: list[tuple[Record, Record]], failed: list) -> int:
        written = 0
        method = "DELETE" if op == "DELETE" else self.method
        for chunk in chunked(group, self.size):
            result = self.deliver(method, dumps([body for _, body in chunk]))
            if result.ok:
                written += len(chunk)
            else:
                message = f"{result.message} ({op} batch of {_records(len(chunk))})"
                failed.extend((record, message) for record, _ in chunk)
        return written

    def write(self, batch: Batch) -> WriteResult:
        if self.ctx.dry_run:
            return WriteResult(0, [], None)
        self._setup()
        failed: list[tuple[Record, str]] = []
        written = 0
        # Runs of consecutive records with one operation keep the order of upserts and deletes.
        run_op: str | None = None
        run: list[tuple[Record, Record]] = []
        for record in batch:
            op = record.get("__operation")
            op = self.default_op if op in (None, "") else (op.upper() if isinstance(op, str) else op)
            if op not in _OPERATIONS:
                failed.append((record, f"invalid __operation {op!r} (UPSERT or DELETE)"))
                continue
            if op == "DELETE":
                ident = self.id_path.get(record)
                if ident is MISSING or ident is None:
                    failed.append((record, f"a DELETE record needs its id in '{self.id_path.text}'"))
                    continue
                body = {self.id_path.text: ident}
            else:
                body = {k: v for k, v in record.items() if k != "__operation"}
            if op != run_op and run:
                written += self._send(run_op, run, failed)
                run = []
            run_op = op
            run.append((record, body))
        if run:
            written += self._send(run_op, run, failed)
        return WriteResult(written, failed, None)
