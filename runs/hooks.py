"""Carrying out hook actions: the Django side of ``definition.hooks`` (see :mod:`pipelines.hooks`).

The executor emits :class:`~runs.engine.events.HookFired`; :class:`runs.store.DjangoRunStore` hands it to
:func:`dispatch`, which runs in the executor's main thread and so does only quick database work:

* LOG: the Python log (logger ``datahub.hooks``) and, at a step, that step's warnings.
* WEBHOOK, EMAIL, TRIGGER_PIPELINE: a :class:`~runs.models.HookDelivery` row and a django-q2 task that takes
  its id. In a dry run the row is written SKIPPED and nothing is sent.

WEBHOOK: a POST of the payload as JSON, signed when ``secretCode`` is set (``X-DataHub-Signature:
sha256=<hex HMAC-SHA256 of the exact body>``, the header the webhook adapters use), through the guarded
HTTP client. What is tried again and when is :mod:`pipelines.http_policy`'s: network errors, 408, 429 and
5xx but 501, after ``initialDelayMs`` x ``backoffMultiplier`` ^ (attempt - 1), at most ``maxDelayMs``, or
the server's Retry-After (up to two minutes), until ``maxAttempts``; a later attempt is a one-off django-q2
Schedule. After the last failure the delivery is
FAILED with the reason, the step gets a warning, the log an entry; the run's status never changes.

TRIGGER_PIPELINE starts a run of another pipeline: seeded into its TRIGGER step (``triggerKey`` or its
first one) with the payload's records when the stage had records, a plain run otherwise. The child run
keeps ``parent_run``; a pipeline that would start itself, directly or through the chain of parent runs,
is refused, and so is a chain deeper than :data:`MAX_CHAIN`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.utils import timezone

from pipelines.errors import ConfigError, DatahubError
from pipelines.hooks import render
from pipelines.http import HttpClient, HttpError, HttpPolicy, HttpResponse
from pipelines.http_policy import Backoff, is_retryable_status, retry_after_seconds
from pipelines.models import Pipeline
from runs.engine.events import HookFired
from runs.engine.status import ENDED_STEP_STATUSES
from runs.launch import start_run
from runs.models import HookDelivery, HookStatus, Run, StepRun

log = logging.getLogger(__name__)
hook_log = logging.getLogger("datahub.hooks")

MAX_CHAIN = 10
SIGNATURE_HEADER = "X-DataHub-Signature"
DEFAULT_RETRY = {"maxAttempts": 5, "initialDelayMs": 1000, "maxDelayMs": 300_000, "backoffMultiplier": 2}
_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING, "WARNING": logging.WARNING,
           "ERROR": logging.ERROR}
_TASKS = {
    "WEBHOOK": "runs.hooks.deliver_webhook",
    "EMAIL": "runs.hooks.send_email",
    "TRIGGER_PIPELINE": "runs.hooks.trigger_pipeline",
}


def dispatch(store, event: HookFired) -> None:
    """Carry out one hook event for ``store.run``. Never raises: a hook must not break the run."""
    try:
        _dispatch(store, event)
    except Exception:
        log.exception("hook %s %s of run %s could not be dispatched", event.stage, event.action.get("type"),
                      store.run.pk)


def _dispatch(store, event: HookFired) -> None:
    run: Run = store.run
    action = event.action
    kind = action.get("type")
    if kind == "LOG":
        level = _LEVELS.get(str(action.get("level", "INFO")).upper(), logging.INFO)
        message = render(action.get("message") or "hook ${stage}", event.payload)
        hook_log.log(level, "[%s run %s] %s: %s", run.pipeline.code, run.pk, event.stage, message,
                     extra={"run_id": run.pk, "stage": event.stage, "step_key": event.step_key})
        if event.step_key:
            store.add_step_warning(event.step_key, f"{event.stage} {logging.getLevelName(level)}: {message}")
        return
    delivery = record(run, event.stage, event.step_key or "", action, event.payload)
    if delivery.status == HookStatus.PENDING:
        enqueue(delivery)


def record(run: Run, stage: str, step_key: str, action: dict, payload: dict) -> HookDelivery:
    """A delivery row for ``action``; SKIPPED at once in a dry run."""
    dry = run.dry_run
    return HookDelivery.objects.create(
        run=run, stage=stage, step_key=step_key, action_type=action.get("type", ""),
        name=str(action.get("name") or "")[:200], action=action, payload=_jsonable(payload),
        status=HookStatus.SKIPPED if dry else HookStatus.PENDING,
        detail="dry run: nothing was sent" if dry else "",
    )


def enqueue(delivery: HookDelivery, func: str | None = None) -> None:
    """Queue the first attempt of ``delivery``: the task of its action type, or ``func`` (a notice that
    renders its own message, such as a gate's email)."""
    from django_q.tasks import async_task

    async_task(func or _TASKS[delivery.action_type], delivery.pk, 1, task_name=f"hook-{delivery.pk}-1",
               group="hooks")


# --- the tasks (they take ids) ------------------------------------------------------------------


def claim_delivery(delivery_id: int, attempt: int) -> HookDelivery | None:
    """Attempt ``attempt`` of the delivery for exactly one caller (a task delivered twice sends once)."""
    claimed = HookDelivery.objects.filter(
        pk=delivery_id, attempts=attempt - 1, status__in=[HookStatus.PENDING, HookStatus.RETRYING]
    ).update(status=HookStatus.SENDING, attempts=attempt)
    if not claimed:
        log.info("hook delivery %s attempt %s was already handled; duplicate ignored", delivery_id, attempt)
        return None
    return HookDelivery.objects.select_related("run", "run__pipeline").get(pk=delivery_id)


def deliver_webhook(delivery_id: int, attempt: int = 1) -> str:
    """POST the delivery's payload; on a passing failure, plan the next attempt."""
    d = claim_delivery(delivery_id, attempt)
    if d is None:
        return "skipped"
    cfg = d.action
    backoff = Backoff.from_retry_config({**DEFAULT_RETRY, **(cfg.get("retryConfig") or {})})
    # Datahub's own JSON names the delivery; a chat message (Slack, Teams) is sent exactly as shaped.
    body = {"deliveryId": d.pk, **d.payload} if cfg.get("format", "datahub") == "datahub" else d.payload
    retry_after = None
    try:
        response = post_json(cfg["url"], body, headers=cfg.get("headers") or {},
                           header_secrets=cfg.get("headerSecretCodes") or {}, secret_code=cfg.get("secretCode"),
                           signature_header=cfg.get("signatureHeader") or SIGNATURE_HEADER,
                           timeout=int(cfg.get("timeoutMs") or 10_000) / 1000,
                           extra={"X-DataHub-Event": d.stage, "X-DataHub-Delivery": str(d.pk),
                                  "X-DataHub-Attempt": str(attempt)})
        status, error, retryable = response.status, None, False
        if not 200 <= status < 300:
            error, retryable = f"HTTP {status}", is_retryable_status(status)
            retry_after = retry_after_seconds(response.headers.get("Retry-After")) if retryable else None
    except ConfigError as exc:  # a missing secret: trying again gives the same answer
        error, retryable = str(exc), False
    except HttpError as exc:
        error, retryable, retry_after = str(exc), exc.retryable, exc.retry_after
    if error is None:
        set_status(d, HookStatus.SENT, f"HTTP {status} on attempt {attempt}")
        return "sent"
    if retryable and attempt < backoff.attempts:
        wait = backoff.wait(attempt, retry_after)
        set_status(d, HookStatus.RETRYING, f"attempt {attempt} failed: {error}; next attempt in {wait:g} s")
        later("runs.hooks.deliver_webhook", (d.pk, attempt + 1), wait, name=f"hook {d.pk} attempt {attempt + 1}")
        return "retrying"
    fail(d, f"failed after {attempt} attempt{'s' if attempt > 1 else ''}: {error}")
    return "failed"


def post_json(url: str, body: Any, *, headers: dict, header_secrets: dict | None = None,
              secret_code: str | None = None, signature_header: str = SIGNATURE_HEADER, timeout: float = 10.0,
              extra: dict | None = None) -> HttpResponse:
    """POST ``body`` as JSON through the guarded client, signed when ``secret_code`` is given; the response."""
    from pipelines.secrets import resolve_secret

    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")
    send = {"Content-Type": "application/json", **(extra or {}), **{str(k): str(v) for k, v in headers.items()}}
    for header, code in (header_secrets or {}).items():
        send[header] = resolve_secret(code)
    if secret_code:
        send[signature_header] = "sha256=" + sign(resolve_secret(secret_code), raw)
    policy = HttpPolicy(allow=tuple(settings.DATAHUB_HTTP_ALLOW), max_bytes=settings.DATAHUB_HTTP_MAX_BYTES,
                        timeout=timeout)
    client = HttpClient(policy)
    try:
        return client.post(url, data=raw, headers=send)
    finally:
        client.close()


def sign(secret: str, raw: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), raw, hashlib.sha256).hexdigest()


def send_email(delivery_id: int, attempt: int = 1) -> str:
    """An EMAIL action: ``subject`` and ``body`` with ``${...}`` placeholders, or a plain summary."""
    d = claim_delivery(delivery_id, attempt)
    if d is None:
        return "skipped"
    cfg, payload = d.action, d.payload
    to = cfg.get("to")
    recipients = [t.strip() for t in (to if isinstance(to, list) else str(to or "").split(",")) if t.strip()]
    subject = render(cfg.get("subject") or "[Datahub] ${pipelineCode}: ${stage}", payload)
    subject = " ".join(subject.split())[:200]  # no header injection through a value
    if cfg.get("body"):
        text = render(cfg["body"], payload)
    else:
        lines = [f"{k}: {v}" for k, v in payload.items() if not isinstance(v, dict | list) and v is not None]
        text = "\n".join(lines) + f"\n\n{run_url(d.run_id)}\n"
    try:
        EmailMultiAlternatives(subject, text, None, recipients).send()
    except Exception as exc:  # SMTP refused, unreachable: recorded, never raised into the worker
        fail(d, f"email to {', '.join(recipients)} failed: {type(exc).__name__}: {exc}")
        return "failed"
    set_status(d, HookStatus.SENT, f"sent to {', '.join(recipients)}")
    return "sent"


def trigger_pipeline(delivery_id: int, attempt: int = 1) -> str:
    """A TRIGGER_PIPELINE action: start the other pipeline, refusing loops."""
    d = claim_delivery(delivery_id, attempt)
    if d is None:
        return "skipped"
    cfg, run = d.action, d.run
    code = cfg.get("pipelineCode")
    target = Pipeline.objects.filter(code=code).select_related("current_revision").first()
    if target is None:
        fail(d, f"there is no pipeline '{code}'")
        return "failed"
    if not target.enabled:
        fail(d, f"pipeline '{code}' is disabled")
        return "failed"
    chain = _chain(run)
    if target.pk in [r.pipeline_id for r in chain]:
        path = " → ".join([*(r.pipeline.code for r in reversed(chain)), code])
        fail(d, f"refused: a trigger loop ({path})")
        return "failed"
    if len(chain) >= MAX_CHAIN:
        fail(d, f"refused: {len(chain)} runs already started each other (at most {MAX_CHAIN})")
        return "failed"
    steps = (target.current_revision.definition.get("steps") if target.current_revision else None) or []
    triggers = [s["key"] for s in steps if s.get("type") == "TRIGGER"]
    key = cfg.get("triggerKey")
    if key and key not in triggers:
        fail(d, f"pipeline '{code}' has no TRIGGER step '{key}'")
        return "failed"
    key = key or (triggers[0] if triggers else "")
    records = d.payload.get("records")
    seeded = records is not None and bool(key)
    try:
        with transaction.atomic():
            child = start_run(target, trigger="hook", seed_step=key if seeded else "",
                                       seed_records=records if seeded else None)
            Run.objects.filter(pk=child.pk).update(parent_run=run)
    except DatahubError as exc:
        fail(d, f"could not start '{code}': {exc}")
        return "failed"
    how = f"with {len(records)} records into '{key}'" if seeded else "(a plain run)"
    set_status(d, HookStatus.SENT, f"started run {child.pk} of '{code}' {how}")
    return "sent"


def _chain(run: Run) -> list[Run]:
    """``run`` and its parent runs, nearest first (bounded: a cycle in the data cannot hang us)."""
    chain = [run]
    seen = {run.pk}
    current = run
    while current.parent_run_id and len(chain) <= MAX_CHAIN:
        parent = Run.objects.select_related("pipeline").filter(pk=current.parent_run_id).first()
        if parent is None or parent.pk in seen:
            break
        chain.append(parent)
        seen.add(parent.pk)
        current = parent
    return chain


# --- helpers ------------------------------------------------------------------------------------


def later(func: str, args: tuple, delay_seconds: float, *, name: str) -> None:
    """Run ``func(*args)`` after ``delay_seconds``: a one-off django-q2 schedule (the scheduler looks about
    every 30 s), or a task at once when there is no delay."""
    from django_q.models import Schedule
    from django_q.tasks import async_task

    if delay_seconds <= 0:
        async_task(func, *args, group="hooks")
        return
    Schedule.objects.create(name=name[:100], func=func, args=repr(tuple(args)), schedule_type=Schedule.ONCE,
                            repeats=-1, next_run=timezone.now() + timedelta(seconds=delay_seconds))


def fail(d: HookDelivery, message: str) -> None:
    """The delivery failed for good: on the delivery, in the log, and in its step's warnings once that
    step has ended (while it runs the executor owns the row and would overwrite them)."""
    set_status(d, HookStatus.FAILED, message)
    log.warning("hook %s %s of run %s (%s): %s", d.stage, d.action_type, d.run_id, d.name or "unnamed", message)
    if d.step_key:
        with transaction.atomic():
            step = StepRun.objects.select_for_update().filter(run_id=d.run_id, step_key=d.step_key,
                                                              status__in=ENDED_STEP_STATUSES).first()
            if step is not None:
                step.warnings = [*(step.warnings or []), f"{d.stage} {d.action_type}: {message}"][:1000]
                step.save(update_fields=["warnings"])


def set_status(d: HookDelivery, status: str, detail: str) -> None:
    HookDelivery.objects.filter(pk=d.pk).update(status=status, detail=detail[:5000], updated_at=timezone.now())
    d.status, d.detail = status, detail


def run_url(run_id: int) -> str:
    return f"{settings.DATAHUB_BASE_URL}/runs/{run_id}/"


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
