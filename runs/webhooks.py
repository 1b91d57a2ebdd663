"""Webhook triggers: ``POST /hooks/<pipeline code>/`` starts a run with the request body as its input.

The pipeline needs an enabled TRIGGER step with ``config.type`` WEBHOOK (with several, POST to
``/hooks/<code>/<trigger key>/``). The body, a JSON object or an array of objects, becomes the records
of that TRIGGER step, and only the trigger and the steps after it run (a seeded run).

Authentication, ``config.authentication`` (there is no default: a trigger without one accepts nothing):

* ``API_KEY``: header ``apiKeyHeaderName`` (default ``x-api-key``) = ``apiKeyPrefix`` + the value of the
  secret ``apiKeySecretCode``.
* ``HMAC``: header ``hmacHeaderName`` (default ``x-datahub-signature``) = ``sha256=<hex>`` or bare hex of
  HMAC-SHA256 (``hmacAlgorithm`` SHA512: sha512) of the exact body with the secret ``secretCode``.
* ``BASIC``: ``Authorization: Basic ...`` matching the secret ``basicSecretCode`` (``user:password``).
* ``JWT``: ``Authorization: Bearer <token>``, checked by :mod:`runs.engine.webhook_jwt` (HS256 with the
  secret ``jwtSecretCode``; RS256 or ES256 with the PEM ``jwtPublicKey``; ``exp`` required). Its 401 says
  which check failed (expired, not yet valid, issuer, audience, signature, algorithm), never the token.
* ``NONE``: anyone may call; only when written explicitly.

Every comparison takes constant time. The trigger's secret is read in the web process (it has to be, to
check the request); it is never echoed.

Idempotency: a request with ``X-Idempotency-Key`` (``idempotencyKeyHeader``) starts one run per key
within ``idempotencyTtlSec`` (default 24 h). The same key with the same body answers 200 with the first
run; the same key with another body 409. ``requireIdempotencyKey: true`` refuses requests without one.

Answers: 202 ``{"accepted": true, "duplicate": false, "runId": N}``; 200 for a duplicate; 400 malformed
JSON (with line, column and position) or a body that is not an object or an array of objects; 401
authentication failed; 404 no such pipeline or no enabled webhook trigger; 405 not a POST; 409 pipeline
disabled, another run active (unless it allows concurrent runs), or an idempotency key reused with
another body; 413 body over ``DATAHUB_WEBHOOK_MAX_BYTES`` (10 MiB); 415 a compressed body; 429 with
``Retry-After`` over ``rateLimit`` requests per ``rateLimitWindow`` seconds from one client to one trigger
(default 100 per 60 s; 0 = no limit; counted in the database, see :mod:`runs.webhook_rate`), or from an
address locked out after repeated authentication failures (they count toward the login lock-out,
``datahub_project.lockout``); 503 the trigger's secret cannot be read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import timedelta

import jwt
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from datahub_project.lockout import is_locked_out, lockout_message, record_failure
from pipelines.errors import ConfigError, DatahubError
from pipelines.models import Pipeline
from runs import services, webhook_rate
from runs.engine import webhook_jwt
from runs.models import WebhookDelivery

log = logging.getLogger(__name__)

MAX_BYTES_DEFAULT = 10 * 1024 * 1024
AUTH_KINDS = ("NONE", "API_KEY", "HMAC", "BASIC", "JWT")
MAX_KEY_LENGTH = 200


@dataclass
class Refusal(Exception):
    status: int
    message: str
    headers: dict | None = None

    def response(self) -> JsonResponse:
        response = JsonResponse({"accepted": False, "error": self.message}, status=self.status)
        for name, value in (self.headers or {}).items():
            response[name] = value
        return response


@csrf_exempt  # a machine endpoint: no session, no cookie; the trigger's own authentication guards it
def receive(request: HttpRequest, code: str, trigger_key: str | None = None) -> JsonResponse:
    if request.method != "POST":
        return Refusal(405, "only POST starts a run", {"Allow": "POST"}).response()
    if is_locked_out(request):
        return Refusal(429, lockout_message()).response()
    try:
        pipeline, trigger = _find_trigger(code, trigger_key)
        config = trigger.get("config") or {}
        _rate_limit(request, pipeline, trigger["key"], config)
        body = _read_body(request)
        _authenticate(request, config, body)
        if not pipeline.enabled:
            raise Refusal(409, f"pipeline '{code}' is disabled")
        records = parse_records(body)
        return _start(request, pipeline, trigger["key"], config, body, records)
    except Refusal as refusal:
        return refusal.response()


def _find_trigger(code: str, trigger_key: str | None) -> tuple[Pipeline, dict]:
    pipeline = Pipeline.objects.select_related("current_revision").filter(code=code).first()
    if pipeline is None or pipeline.current_revision is None:
        raise Refusal(404, f"there is no pipeline '{code}'")
    triggers = [
        s for s in pipeline.current_revision.definition.get("steps") or []
        if s.get("type") == "TRIGGER" and not s.get("disabled")
        and str((s.get("config") or {}).get("type", "")).upper() == "WEBHOOK"
    ]
    if trigger_key is not None:
        triggers = [s for s in triggers if s.get("key") == trigger_key]
    if not triggers:
        where = f" '{trigger_key}'" if trigger_key else ""
        raise Refusal(404, f"pipeline '{code}' has no enabled webhook trigger{where}")
    if len(triggers) > 1:
        keys = ", ".join(s["key"] for s in triggers)
        raise Refusal(404, f"pipeline '{code}' has several webhook triggers ({keys}); POST to /hooks/{code}/<key>/")
    return pipeline, triggers[0]


def _rate_limit(request: HttpRequest, pipeline: Pipeline, trigger_key: str, config: dict) -> None:
    retry = webhook_rate.count_delivery(pipeline.pk, trigger_key, webhook_rate.client_of(request), config)
    if retry is not None:
        limit, window = webhook_rate.limits(config)
        raise Refusal(429, f"too many requests: at most {limit} per {window} s from one client; retry in {retry} s",
                      {"Retry-After": str(retry)})


def _read_body(request: HttpRequest) -> bytes:
    limit = int(getattr(settings, "DATAHUB_WEBHOOK_MAX_BYTES", MAX_BYTES_DEFAULT))
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise Refusal(415, f"compressed bodies are not accepted (Content-Encoding: {encoding}); send plain JSON")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise Refusal(400, "invalid Content-Length") from None
    if length > limit:
        raise Refusal(413, f"the body is {length} bytes; at most {limit} are accepted")
    # Read the stream ourselves: Django's request.body applies the (smaller) form upload limit.
    body = request.read(limit + 1)
    if len(body) > limit:
        raise Refusal(413, f"the body is larger than {limit} bytes")
    return body


def _secret(code) -> str:
    from pipelines.secrets import resolve_secret

    if not isinstance(code, str) or not code:
        raise ConfigError("no secret code configured")
    return resolve_secret(code)


def _authenticate(request: HttpRequest, config: dict, body: bytes) -> None:
    kind = str(config.get("authentication") or "").upper()
    if kind == "NONE":
        return
    if kind not in AUTH_KINDS:
        log.warning("webhook trigger refused a request: authentication %r is not configured or not supported "
                    "(use one of %s)", config.get("authentication"), ", ".join(AUTH_KINDS))
        raise Refusal(401, "this webhook trigger has no usable authentication configured")
    try:
        if kind == "JWT":
            _check_jwt(request, config)
            return
        if kind == "API_KEY":
            expected = str(config.get("apiKeyPrefix") or "") + _secret(config.get("apiKeySecretCode"))
            given = request.headers.get(config.get("apiKeyHeaderName") or "x-api-key") or ""
            ok = hmac.compare_digest(given.encode(), expected.encode())
        elif kind == "HMAC":
            algorithm = str(config.get("hmacAlgorithm") or "SHA256").lower()
            if algorithm not in ("sha256", "sha512"):
                raise ConfigError(f"hmacAlgorithm {algorithm!r} is not SHA256 or SHA512")
            digest = hmac.new(_secret(config.get("secretCode")).encode(), body, algorithm).hexdigest()
            given = (request.headers.get(config.get("hmacHeaderName") or "x-datahub-signature") or "").strip()
            if given.lower().startswith(algorithm + "="):
                given = given[len(algorithm) + 1:]
            ok = hmac.compare_digest(given.lower().encode(), digest.encode())
        else:  # BASIC
            expected = _secret(config.get("basicSecretCode"))
            given = _basic_credentials(request.headers.get("Authorization") or "")
            ok = given is not None and hmac.compare_digest(given.encode(), expected.encode())
    except ConfigError as exc:
        log.error("webhook trigger cannot check a request: %s", exc)
        raise Refusal(503, "this webhook trigger's authentication is misconfigured on the server") from None
    if not ok:
        record_failure(request, f"webhook authentication ({kind})")
        headers = {"WWW-Authenticate": 'Basic realm="datahub"'} if kind == "BASIC" else None
        raise Refusal(401, "authentication failed", headers)


def _check_jwt(request: HttpRequest, config: dict) -> None:
    if config.get("jwtAlgorithm") == "HS256":
        key = _secret(config.get("jwtSecretCode"))
    else:
        problem = webhook_jwt.public_key_problem(str(config.get("jwtAlgorithm")), config.get("jwtPublicKey"))
        if problem:  # a definition stored before the check, or an unknown algorithm
            raise ConfigError(problem)
        key = config["jwtPublicKey"]
    try:
        webhook_jwt.verify(webhook_jwt.bearer_token(request.headers.get("Authorization") or ""), config, key)
    except webhook_jwt.JwtRefused as refused:
        record_failure(request, "webhook authentication (JWT)")
        raise Refusal(401, f"authentication failed: {refused}",
                      {"WWW-Authenticate": f'Bearer realm="datahub", error="invalid_token", '
                                           f'error_description="{refused}"'}) from None
    except jwt.InvalidKeyError as exc:
        raise ConfigError(f"the JWT key cannot be used: {exc}") from None


def _basic_credentials(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        return base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _no_constants(name: str):
    raise ValueError(f"{name} is not valid JSON")


def parse_records(body: bytes) -> list[dict]:
    """The records a body carries: an object is one record, an array of objects many, empty none."""
    if not body.strip():
        return []
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Refusal(400, f"the body is not UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise Refusal(400, f"malformed JSON at line {exc.lineno}, column {exc.colno} (position {exc.pos}): "
                           f"{exc.msg}") from None
    except ValueError as exc:
        raise Refusal(400, f"malformed JSON: {exc}") from None
    except RecursionError:
        raise Refusal(400, "malformed JSON: nested too deeply") from None
    if isinstance(data, dict):
        return [data]
    if not isinstance(data, list):
        raise Refusal(400, f"the body must be a JSON object or an array of objects, not {_kind(data)}")
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise Refusal(400, f"item {i} of the array is {_kind(item)}, not an object")
    return data


def _kind(value) -> str:
    return {str: "a string", bool: "a boolean", int: "a number", float: "a number", list: "an array",
            type(None): "null"}.get(type(value), type(value).__name__)


def _start(request, pipeline: Pipeline, trigger_key: str, config: dict, body: bytes, records: list) -> JsonResponse:
    header = config.get("idempotencyKeyHeader") or "X-Idempotency-Key"
    key = (request.headers.get(header) or "").strip()
    if not key and config.get("requireIdempotencyKey"):
        raise Refusal(400, f"an idempotency key is required in the {header} header")
    if len(key) > MAX_KEY_LENGTH:
        raise Refusal(400, f"the idempotency key is longer than {MAX_KEY_LENGTH} characters")
    if not key:
        return _accepted(_create_run(pipeline, trigger_key, records).pk, duplicate=False)
    body_hash = hashlib.sha256(body).hexdigest()
    ttl = config.get("idempotencyTtlSec")
    ttl = ttl if isinstance(ttl, int) and not isinstance(ttl, bool) and ttl > 0 else 86_400
    WebhookDelivery.objects.filter(pipeline=pipeline, key=key,
                                   created_at__lt=timezone.now() - timedelta(seconds=ttl)).delete()
    previous = WebhookDelivery.objects.filter(pipeline=pipeline, key=key).first()
    if previous is not None:
        return _duplicate(previous, key, body_hash)
    try:
        with transaction.atomic():
            run = _create_run(pipeline, trigger_key, records)
            # Two deliveries racing with one key: the unique constraint fails the second one, and its
            # run rolls back with it.
            WebhookDelivery.objects.create(pipeline=pipeline, key=key, body_hash=body_hash, run=run)
    except (IntegrityError, Refusal) as exc:
        # Lost the race (or the winner's run now blocks ours): answer as for the winner's delivery.
        previous = WebhookDelivery.objects.filter(pipeline=pipeline, key=key).first()
        if previous is None:
            if isinstance(exc, Refusal):
                raise
            raise Refusal(409, "a delivery with this idempotency key is in progress; try again") from None
        return _duplicate(previous, key, body_hash)
    return _accepted(run.pk, duplicate=False)


def _duplicate(previous: WebhookDelivery, key: str, body_hash: str) -> JsonResponse:
    if not hmac.compare_digest(previous.body_hash, body_hash):
        raise Refusal(409, f"idempotency key '{key}' was already used with a different body")
    return _accepted(previous.run_id, duplicate=True)


def _create_run(pipeline: Pipeline, trigger_key: str, records: list):
    try:
        return services.start_run(pipeline, trigger="webhook", seed_step=trigger_key, seed_records=records)
    except DatahubError as exc:
        raise Refusal(409, str(exc)) from None


def _accepted(run_id: int | None, *, duplicate: bool) -> JsonResponse:
    return JsonResponse({"accepted": True, "duplicate": duplicate, "runId": run_id}, status=200 if duplicate else 202)
