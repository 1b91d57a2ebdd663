"""Telling people a gate waits: a webhook (JSON) and an email (HTML and text).

A gate's notices are the run's deliveries like any other notice (:mod:`runs.hooks`): once a gate request
exists and the run is PAUSED with its records saved, :func:`notify` writes one
:class:`~runs.models.HookDelivery` row (stage ``GATE_WAITING``, the gate's step key) for the webhook and
one per email address, and queues their tasks. So a notice never holds the gate up (people and the timer
can decide while a slow webhook is still being tried), survives a worker's restart, is retried by the
queue (the webhook: as :mod:`pipelines.http_policy` says, :data:`WEBHOOK_RETRY` times), is signed like
every outbound webhook (``X-DataHub-Signature: sha256=<hex HMAC-SHA256 of the body>``, with the secret
``notifyWebhookSecretCode`` names), goes through the guarded HTTP client, and a failure is kept on the
delivery, with the run's other deliveries, never on the run's or the gate's status.

The webhook's JSON is Datahub's own (:func:`payload`), or a Slack or Microsoft Teams incoming-webhook
message when the step's ``notifyWebhookFormat`` says so (:mod:`pipelines.notice_formats`). Emails go one
per address, each with one-click Approve and Reject links bound to that address (:mod:`gates.action_links`),
rendered when the task sends them; a gate decided before its email went is not announced any more.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from gates import action_links, tables
from gates.models import GateRequest, GateStatus
from pipelines.notice_formats import Notice, shape
from runs import hooks
from runs.models import HookDelivery, HookStatus

log = logging.getLogger(__name__)

STAGE = "GATE_WAITING"
EVENT = "gate.waiting"
WEBHOOK_TIMEOUT_MS = 10_000
# Three tries, one second and then four apart (the queue's one-off schedules run them).
WEBHOOK_RETRY = {"maxAttempts": 3, "initialDelayMs": 1000, "maxDelayMs": 4000, "backoffMultiplier": 4}
EMAIL_TASK = "gates.notifications.send_email"


def base_url() -> str:
    return str(getattr(settings, "DATAHUB_BASE_URL", "http://127.0.0.1:8000")).rstrip("/")


def review_url(gate: GateRequest) -> str:
    return base_url() + reverse("gates:review", args=[gate.run_id, gate.step_key])


def run_url(gate: GateRequest) -> str:
    return f"{base_url()}/runs/{gate.run_id}/"


def notify(gate: GateRequest) -> None:
    """Queue the notices the gate asks for; never raises (a bug here must not cost the run or the gate)."""
    try:
        for delivery, func in deliveries(gate):
            if delivery.status == HookStatus.PENDING:
                hooks.enqueue(delivery, func)
    except Exception:
        log.exception("notices of gate %s could not be queued", gate.pk)


def deliveries(gate: GateRequest) -> list[tuple[HookDelivery, str | None]]:
    """The delivery rows of the gate's notices (written here) with the task that carries each out."""
    out: list[tuple[HookDelivery, str | None]] = []
    config = step_config(gate)
    if gate.notify_webhook:
        fmt = config.get("notifyWebhookFormat") or "datahub"
        action = {"type": "WEBHOOK", "name": "gate notice", "url": gate.notify_webhook, "format": fmt,
                  "headers": {"X-DataHub-Event": EVENT}, "timeoutMs": WEBHOOK_TIMEOUT_MS,
                  "retryConfig": WEBHOOK_RETRY}
        if config.get("notifyWebhookSecretCode"):
            action["secretCode"] = config["notifyWebhookSecretCode"]
        body = shape(fmt, notice(gate), payload(gate))
        out.append((hooks.record(gate.run, STAGE, gate.step_key, action, body), None))
    for addressee in gate.notify_email:
        action = {"type": "EMAIL", "name": "gate notice", "to": [addressee]}
        out.append((hooks.record(gate.run, STAGE, gate.step_key, action, {"event": EVENT}), EMAIL_TASK))
    return out


def payload(gate: GateRequest) -> dict:
    run = gate.run
    stats = gate.stats or {}
    return {
        "event": EVENT,
        "run": run.pk,
        "runUrl": run_url(gate),
        "pipeline": run.pipeline.code,
        "pipelineName": run.pipeline.name,
        "step": gate.step_key,
        "approvalType": gate.approval_type,
        "createdAt": gate.created_at.isoformat(),
        "timeoutAt": gate.timeout_at.isoformat() if gate.timeout_at else None,
        "counts": {
            "records": gate.record_count,
            "extracted": stats.get("extracted"),
            "errors": stats.get("errors"),
            "errorRatePercent": stats.get("errorRatePercent"),
        },
        "preview": gate.preview,
        "reviewUrl": review_url(gate),
    }


def step_config(gate: GateRequest) -> dict:
    """The gate step's config in the revision the run executes."""
    for step in (gate.run.revision.definition or {}).get("steps", []):
        if isinstance(step, dict) and step.get("key") == gate.step_key:
            return step.get("config") or {}
    return {}


def notice(gate: GateRequest) -> Notice:
    """The notice told in words, for the chat formats (Slack, Teams). No approve/reject links: a chat
    channel is not one addressee; the review page decides."""
    run, stats = gate.run, gate.stats or {}
    facts = [("Pipeline", f"{run.pipeline.name or run.pipeline.code} ({run.pipeline.code})"), ("Run", str(run.pk)),
             ("Step", gate.step_key), ("Approval", gate.approval_type), ("Records held", f"{gate.record_count:,}")]
    if stats.get("errorRatePercent") is not None:
        facts.append(("Error rate", f"{stats['errorRatePercent']:.2f} %"))
    if gate.timeout_at:
        facts.append(("Approves by itself at", gate.timeout_at.strftime("%Y-%m-%d %H:%M:%S %Z")))
    return Notice(title=f'Gate "{gate.step_key}" waits for approval',
                  text=f"{gate.record_count:,} record(s) of {run.pipeline.name or run.pipeline.code} wait for a "
                       "person to approve or reject them.",
                  facts=facts, links=[("Review, approve or reject", review_url(gate)), ("Open the run", run_url(gate))])


def email_context(gate: GateRequest, addressee: str | None = None) -> dict:
    """What the email templates show; with ``addressee``, their own one-click Approve and Reject links."""
    context = {
        "gate": gate,
        "run": gate.run,
        "pipeline": gate.run.pipeline,
        "stats": gate.stats or {},
        "table": tables.table(gate.preview),
        "text_table": tables.text_table(gate.preview),
        "review_url": review_url(gate),
        "run_url": run_url(gate),
    }
    if addressee:
        context["approve_url"] = action_links.link(gate, "approve", addressee, base_url())
        context["reject_url"] = action_links.link(gate, "reject", addressee, base_url())
        context["link_hours"] = action_links.max_age() // 3600
    return context


def send_email(delivery_id: int, attempt: int = 1) -> str:
    """Task: the email of one addressee of a gate notice, with Approve and Reject links bound to them."""
    d = hooks.claim_delivery(delivery_id, attempt)
    if d is None:
        return "skipped"
    gate = GateRequest.objects.select_related("run", "run__pipeline").filter(run_id=d.run_id,
                                                                           step_key=d.step_key).first()
    if gate is None or gate.status != GateStatus.PENDING:
        hooks.set_status(d, HookStatus.SKIPPED, "the gate was decided before its notice was sent")
        return "skipped"
    [addressee] = d.action["to"]
    pipeline = gate.run.pipeline
    subject = f'[Datahub] Gate "{gate.step_key}" of {pipeline.name or pipeline.code} waits for approval (run {gate.run_id})'
    context = email_context(gate, addressee)
    message = EmailMultiAlternatives(
        subject=subject.replace("\n", " ").replace("\r", " ")[:250],
        body=render_to_string("gates/email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[addressee],
    )
    message.attach_alternative(render_to_string("gates/email.html", context), "text/html")
    try:
        message.send(fail_silently=False)
    except Exception as exc:  # SMTP refused, unreachable: kept on the delivery, never raised into the worker
        hooks.fail(d, f"email to {addressee} failed: {type(exc).__name__}: {exc}")
        return "failed"
    hooks.set_status(d, HookStatus.SENT, f"sent to {addressee}")
    return "sent"
