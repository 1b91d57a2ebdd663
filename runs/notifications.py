"""Notices when a run ends: ``context.notifications`` of the run's revision (the plugin's names).

``{"onComplete": true, "onError": true, "emailTo": "ops@example.com" | [...], "webhookUrl": "https://...",
"webhookSecretCode": "notify-key"}``: when a run ends COMPLETED and ``onComplete`` is true, or FAILED and
``onError`` is true, an email (text and HTML: pipeline, status, counts per step, the first errors, a link
to the run page) goes to ``emailTo`` and a JSON summary is POSTed to ``webhookUrl``. The webhook is signed
like every outbound webhook here (``X-DataHub-Signature: sha256=<hex HMAC-SHA256 of the body>``) with the
secret ``webhookSecretCode``; without one it goes unsigned. ``"webhookFormat": "slack"`` or ``"teams"``
shapes the JSON for a Slack or Microsoft Teams incoming webhook (:mod:`pipelines.notice_formats`). Cancelled runs and dry runs send nothing.

Both are :class:`~runs.models.HookDelivery` rows of stage ``NOTIFICATION`` carried out by tasks, so the
webhook is retried like a hook's and a failure is kept on the run without touching its status. Mail goes
through Django's email backend (SMTP from ``EMAIL_URL``).
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template import Context, Engine

from pipelines.notice_formats import FORMATS, Notice, shape
from runs import hooks
from runs.models import HookStatus, Run

log = logging.getLogger(__name__)

STAGE = "NOTIFICATION"
FIRST_ERRORS = 10
_VALUE_CHARS = 500

_TEXT = """{{ pipeline.name }} ({{ pipeline.code }}): run {{ run.pk }} {{ run.status }}
{% if run.error %}
{{ run.error }}
{% endif %}
Started:  {{ run.started_at|date:"Y-m-d H:i:s T"|default:"-" }}
Finished: {{ run.finished_at|date:"Y-m-d H:i:s T"|default:"-" }}
Trigger:  {{ run.trigger }}

Steps (in / out / errors):
{% for s in steps %}  {{ s.step_key }}: {{ s.status }}  {{ s.records_in }} / {{ s.records_out }} / {{ s.records_error }}{% if s.error %}  - {{ s.error }}{% endif %}
{% endfor %}{% if errors %}
First {{ errors|length }} of {{ error_count }} failed records:
{% for e in errors %}  [{{ e.step_key }}] {{ e.message }}
    {{ e.value }}
{% endfor %}{% endif %}
{{ url }}
"""

_HTML = """<!doctype html>
<html><body style="font-family: sans-serif">
<h2>{{ pipeline.name }} <small>({{ pipeline.code }})</small>: run {{ run.pk }} {{ run.status }}</h2>
{% if run.error %}<p style="color:#b00">{{ run.error }}</p>{% endif %}
<p>Started {{ run.started_at|date:"Y-m-d H:i:s T"|default:"-" }}, finished
{{ run.finished_at|date:"Y-m-d H:i:s T"|default:"-" }}, trigger {{ run.trigger }}.</p>
<table border="1" cellpadding="4" cellspacing="0">
<tr><th>Step</th><th>Status</th><th>In</th><th>Out</th><th>Errors</th><th></th></tr>
{% for s in steps %}<tr><td>{{ s.step_key }}</td><td>{{ s.status }}</td><td>{{ s.records_in }}</td>
<td>{{ s.records_out }}</td><td>{{ s.records_error }}</td><td>{{ s.error }}</td></tr>
{% endfor %}</table>
{% if errors %}<h3>First {{ errors|length }} of {{ error_count }} failed records</h3>
<ul>{% for e in errors %}<li><b>{{ e.step_key }}</b>: {{ e.message }}<br><code>{{ e.value }}</code></li>
{% endfor %}</ul>{% endif %}
<p><a href="{{ url }}">Open run {{ run.pk }}</a></p>
</body></html>
"""

_engine = Engine(debug=False)
_text_template = _engine.from_string(_TEXT)
_html_template = _engine.from_string(_HTML)


def settings_of(run: Run) -> dict:
    context = (run.revision.definition or {}).get("context") or {}
    value = context.get("notifications")
    return value if isinstance(value, dict) else {}


def on_run_ended(sender, run: Run, **kwargs) -> None:
    """``runs.signals.run_ended`` receiver (connected in RunsConfig.ready)."""
    if run.dry_run:
        return
    cfg = settings_of(run)
    wanted = (run.status == "COMPLETED" and cfg.get("onComplete")) or (run.status == "FAILED" and cfg.get("onError"))
    if not wanted:
        return
    to = cfg.get("emailTo")
    recipients = [t.strip() for t in (to if isinstance(to, list) else str(to or "").split(",")) if str(t).strip()]
    if recipients:
        d = hooks.record(run, STAGE, "", {"type": "EMAIL", "name": "notification", "to": recipients}, summary(run))
        hooks.enqueue(d, "runs.notifications.send_notice")
    url = cfg.get("webhookUrl")
    if isinstance(url, str) and url:
        action = {"type": "WEBHOOK", "name": "notification", "url": url}
        if cfg.get("webhookSecretCode"):
            action["secretCode"] = cfg["webhookSecretCode"]
        fmt = cfg.get("webhookFormat") if cfg.get("webhookFormat") in FORMATS else "datahub"
        action["format"] = fmt
        d = hooks.record(run, STAGE, "", action, shape(fmt, notice(run), summary(run)))
        hooks.enqueue(d)


def summary(run: Run) -> dict:
    """The JSON a notification webhook carries."""
    steps = list(run.step_runs.order_by("position"))
    return {
        "event": "run.completed" if run.status == "COMPLETED" else "run.failed",
        "pipelineCode": run.pipeline.code,
        "pipelineName": run.pipeline.name,
        "runId": run.pk,
        "status": run.status,
        "error": run.error or None,
        "trigger": run.trigger,
        "startedAt": run.started_at.isoformat() if run.started_at else None,
        "finishedAt": run.finished_at.isoformat() if run.finished_at else None,
        "steps": {s.step_key: {"status": s.status, "recordsIn": s.records_in, "recordsOut": s.records_out,
                               "errors": s.records_error} for s in steps},
        "errorCount": run.record_errors.count(),
        "url": hooks.run_url(run.pk),
    }


def notice(run: Run) -> Notice:
    """The run's end told in words, for the chat formats (Slack, Teams)."""
    steps = list(run.step_runs.order_by("position"))
    name = run.pipeline.name or run.pipeline.code
    facts = [("Pipeline", f"{name} ({run.pipeline.code})"), ("Status", run.status), ("Trigger", run.trigger or "-")]
    facts += [(s.step_key, f"{s.status.lower()}: {s.records_in:,} in, {s.records_out:,} out, {s.records_error:,} errors")
              for s in steps[:8]]
    text = f"Run {run.pk} of {name} {run.status.lower()}."
    if run.error:
        text += f" {run.error[:500]}"
    return Notice(title=f"Run {run.pk} of {name}: {run.status.lower()}", text=text, facts=facts,
                  links=[("Open the run", hooks.run_url(run.pk))])


def render_notice(run: Run) -> tuple[str, str, str]:
    """(subject, text, html) of the email about ``run``. Record values are shown as JSON, cut at 500
    characters, and escaped in the HTML part (a record is data from outside)."""
    errors = []
    for e in run.record_errors.order_by("id")[:FIRST_ERRORS]:
        value = json.dumps(e.record, ensure_ascii=False, default=str)
        if len(value) > _VALUE_CHARS:
            value = value[:_VALUE_CHARS] + "…"
        errors.append({"step_key": e.step_key, "message": e.message[:_VALUE_CHARS], "value": value})
    data = {
        "run": run, "pipeline": run.pipeline, "steps": list(run.step_runs.order_by("position")),
        "errors": errors, "error_count": run.record_errors.count(), "url": hooks.run_url(run.pk),
    }
    text = _text_template.render(Context(data, autoescape=False))
    html = _html_template.render(Context(data, autoescape=True))
    subject = " ".join(f"[Datahub] {run.pipeline.name}: run {run.pk} {run.status.lower()}".split())[:200]
    return subject, text, html


def send_notice(delivery_id: int, attempt: int = 1) -> str:
    """Task: the notification email of a delivery row (built from the run when it is sent)."""
    d = hooks.claim_delivery(delivery_id, attempt)
    if d is None:
        return "skipped"
    recipients = d.action.get("to") or []
    try:
        subject, text, html = render_notice(d.run)
        message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, recipients)
        message.attach_alternative(html, "text/html")
        message.send()
    except Exception as exc:  # recorded on the run's deliveries; the run's status is not touched
        hooks.fail(d, f"email to {', '.join(recipients)} failed: {type(exc).__name__}: {exc}")
        return "failed"
    hooks.set_status(d, HookStatus.SENT, f"sent to {', '.join(recipients)}")
    return "sent"
