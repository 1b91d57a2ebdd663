"""Telling people a gate waits: a webhook (JSON) and an email (HTML and text).

Called once a gate request exists and the run is PAUSED with its records saved, so a notice never holds
the gate up: people (and the timer) can decide while a slow webhook is still being tried. Nothing here
raises: a failure is retried (the webhook: transport errors, 429 and 5xx), then written on the gate
request (``webhook_error``, ``email_error``) and logged; the run and the gate go on either way.

The webhook's JSON is Datahub's own (:func:`payload`), or a Slack or Microsoft Teams incoming-webhook
message when the step's ``notifyWebhookFormat`` says so (:mod:`pipelines.notice_formats`). Emails go one
per address, each with one-click Approve and Reject links bound to that address (:mod:`gates.action_links`).

The webhook goes through the guarded HTTP client (no private or loopback targets unless
``DATAHUB_HTTP_ALLOW`` lists them; read when the notice is sent), with a timeout per attempt.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from gates import action_links, tables
from gates.models import GateRequest
from pipelines.notice_formats import Notice, shape

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 10.0
# Pauses before the second and third attempt; a webhook is tried len(...) + 1 times at most.
WEBHOOK_RETRY_DELAYS: tuple[float, ...] = (1.0, 4.0)
EVENT = "gate.waiting"


def base_url() -> str:
    return str(getattr(settings, "DATAHUB_BASE_URL", "http://127.0.0.1:8000")).rstrip("/")


def review_url(gate: GateRequest) -> str:
    return base_url() + reverse("gates:review", args=[gate.run_id, gate.step_key])


def run_url(gate: GateRequest) -> str:
    return f"{base_url()}/runs/{gate.run_id}/"


def notify(gate: GateRequest) -> None:
    """Send the notices the gate asks for; never raises."""
    if gate.notify_webhook:
        try:
            send_webhook(gate)
        except Exception:  # a bug here must not cost the run or the gate
            log.exception("webhook notice of gate %s failed", gate.pk)
    if gate.notify_email:
        try:
            send_email(gate)
        except Exception:
            log.exception("email notice of gate %s failed", gate.pk)


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


def webhook_format(gate: GateRequest) -> str:
    """The gate step's ``notifyWebhookFormat`` in the revision the run executes (default ``datahub``)."""
    for step in (gate.run.revision.definition or {}).get("steps", []):
        if isinstance(step, dict) and step.get("key") == gate.step_key:
            return (step.get("config") or {}).get("notifyWebhookFormat") or "datahub"
    return "datahub"


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


def send_webhook(gate: GateRequest) -> bool:
    from pipelines.http import HttpClient, HttpError, HttpPolicy

    policy = HttpPolicy(allow=tuple(getattr(settings, "DATAHUB_HTTP_ALLOW", ())), timeout=WEBHOOK_TIMEOUT_SECONDS,
                        max_bytes=1024 * 1024, max_redirects=0)
    client = HttpClient(policy)
    body = shape(webhook_format(gate), notice(gate), payload(gate))
    attempts = 0
    error = ""
    status = None
    try:
        for delay in (0.0, *WEBHOOK_RETRY_DELAYS):
            if delay:
                time.sleep(delay)
            attempts += 1
            try:
                response = client.request("POST", gate.notify_webhook, json=body,
                                          headers={"X-Datahub-Event": EVENT})
            except HttpError as exc:
                status, error = exc.status, str(exc)
                if not exc.retryable:
                    break
                continue
            status = response.status
            if response.ok:
                error = ""
                break
            error = f"the webhook answered HTTP {status}"
            if status != 429 and status < 500:
                break  # the receiver refused the notice; sending it again will not change its mind
    finally:
        client.close()
    ok = not error
    GateRequest.objects.filter(pk=gate.pk).update(
        webhook_attempts=attempts, webhook_status=status, webhook_error=error[:2000],
        webhook_sent_at=timezone.now() if ok else None,
    )
    if not ok:
        log.warning("webhook notice of gate %s (run %s) failed after %s attempts: %s", gate.pk, gate.run_id,
                    attempts, error)
    return ok


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


def send_email(gate: GateRequest) -> bool:
    """One email per address: each carries Approve and Reject links bound to its addressee."""
    pipeline = gate.run.pipeline
    subject = f'[Datahub] Gate "{gate.step_key}" of {pipeline.name or pipeline.code} waits for approval (run {gate.run_id})'
    failures = []
    for addressee in gate.notify_email:
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
        except Exception as exc:
            failures.append(f"{addressee}: {type(exc).__name__}: {exc}")
            log.warning("email notice of gate %s (run %s) to %s failed: %s", gate.pk, gate.run_id, addressee, exc)
    if failures:
        GateRequest.objects.filter(pk=gate.pk).update(email_error="; ".join(failures)[:2000])
        return False
    GateRequest.objects.filter(pk=gate.pk).update(email_sent_at=timezone.now(), email_error="")
    return True
