"""The GATE step: hold the records that reach it until a person approves them. [pure]

The handler only decides *whether* to wait; everything that makes the wait durable lives elsewhere. When it
returns ``paused=True`` the executor holds back what depends on the gate (independent branches go on), the
run ends PAUSED, ``runs.resume`` writes the held records to storage and ``runs.signals.step_paused`` tells
:mod:`gates.services`, which opens the gate request, sends the notices and (TIMEOUT) schedules the timer.

Approval types:

* ``MANUAL``: always waits for a person.
* ``TIMEOUT``: waits; approves by itself ``timeoutSeconds`` after the gate parked unless a person decided
  first (a django-q2 schedule does it, :func:`gates.tasks.auto_approve`).
* ``THRESHOLD``: approves by itself when the run's error rate so far is *below* ``errorThresholdPercent``,
  and waits for a person otherwise. The rule, exactly:

  - ``extracted`` = records put out by the EXTRACT steps that have ended so far, ``errors`` = record errors
    (dead-letter records) of every step that has ended so far, in any branch of the run;
  - error rate = ``errors / extracted × 100``, capped at 100; with nothing extracted it is 0 % when there
    are no errors and 100 % when there are (records came in some other way, a trigger's body, and some
    failed: we cannot tell how many, so the gate does not approve on its own);
  - ``rate < errorThresholdPercent`` → approved, the records pass on and the decision is written to the
    step's warnings; ``rate >= errorThresholdPercent`` → waits (equal waits; 0 always waits).

  Steps still running in a parallel branch when the gate is reached are not counted: the rate is of the
  records so far, as the gate sees them.

A dry run never waits: the gate passes its records on with a warning saying what it would have done.
"""

from __future__ import annotations

from pipelines import registry
from pipelines.notice_formats import FORMAT_SCHEMA
from runs.engine.context import StepContext, StepHandler, StepInput, StepOutcome

APPROVAL_TYPES = ("MANUAL", "THRESHOLD", "TIMEOUT")
MAX_TIMEOUT_SECONDS = 31_536_000  # one year
DEFAULT_PREVIEW_COUNT = 10
MAX_EMAILS = 20

# Kept short: a value that does not match is reported with the pattern itself.
_URL = r"^https?://[^\s/?#]+([/?#]\S*)?$"
_EMAIL = r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$"

THRESHOLD_RULE = (
    "THRESHOLD approves by itself when the run's error rate so far is below errorThresholdPercent, and waits "
    "for a person otherwise (equal waits; 0 always waits). Error rate = record errors of the steps ended so "
    "far / records extracted by the EXTRACT steps ended so far x 100 (capped at 100); with nothing extracted "
    "it is 0 % without errors and 100 % with errors."
)

GATE_SCHEMA = {
    "type": "object",
    "description": "Pauses the run until a person approves (MANUAL), until a timeout passes (TIMEOUT) or unless "
    "the error rate is low enough (THRESHOLD). " + THRESHOLD_RULE,
    "properties": {
        "approvalType": {
            "enum": list(APPROVAL_TYPES),
            "description": "MANUAL: a person approves. TIMEOUT: approved by itself after timeoutSeconds unless "
            "a person decided first. THRESHOLD: approved by itself when the error rate is below "
            "errorThresholdPercent.",
        },
        "timeoutSeconds": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_TIMEOUT_SECONDS,
            "description": "TIMEOUT: seconds after the gate is reached before it approves by itself.",
        },
        "errorThresholdPercent": {
            "type": "number",
            "minimum": 0,
            "maximum": 100,
            "description": "THRESHOLD: approve by itself when the error rate (%) is below this. " + THRESHOLD_RULE,
        },
        "notifyWebhook": {
            "type": "string",
            "maxLength": 2048,
            "pattern": _URL,
            "description": "An http(s) URL that receives a JSON notice when the gate waits.",
        },
        "notifyWebhookFormat": FORMAT_SCHEMA,
        "notifyWebhookSecretCode": {
            "type": "string",
            "minLength": 1,
            "description": "A secret that signs the webhook notice: X-DataHub-Signature: sha256=<hex HMAC-SHA256 "
            "of the body>, as every Datahub webhook. Without it the notice goes unsigned.",
        },
        "notifyEmail": {
            "type": ["string", "array"],
            "x-widget": "lines",
            "maxLength": 320,
            "pattern": _EMAIL,
            "minItems": 1,
            "maxItems": MAX_EMAILS,
            "items": {"type": "string", "maxLength": 320, "pattern": _EMAIL},
            "description": "An email address, or a list of them, told when the gate waits.",
        },
        "previewCount": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
            "default": DEFAULT_PREVIEW_COUNT,
            "description": "How many of the held records the notices and the review page show first.",
        },
    },
    "required": ["approvalType"],
    "additionalProperties": False,
    "allOf": [
        {
            "if": {"properties": {"approvalType": {"const": "TIMEOUT"}}, "required": ["approvalType"]},
            "then": {"required": ["timeoutSeconds"]},
        },
        {
            "if": {"properties": {"approvalType": {"const": "THRESHOLD"}}, "required": ["approvalType"]},
            "then": {"required": ["errorThresholdPercent"]},
        },
    ],
}


def error_rate(extracted: int, errors: int) -> float:
    """The THRESHOLD rule's error rate in percent (see the module docstring)."""
    if extracted <= 0:
        return 100.0 if errors > 0 else 0.0
    return min(100.0, errors * 100.0 / extracted)


def emails(value) -> list[str]:
    """``notifyEmail`` as a list of addresses (it may be one address or a list)."""
    if not value:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


class GateHandler(StepHandler):
    """Holds its records until approved: MANUAL, THRESHOLD or TIMEOUT."""

    def run(self, step, inputs: StepInput, ctx: StepContext) -> StepOutcome:
        config = step.config
        approval = config["approvalType"]
        held = ctx.new_buffer()
        for batch in inputs.batches(ctx.batch_size):
            held.append(batch)
        count = len(held)
        stats = ctx.run_stats()
        extracted, errors = int(stats.get("extracted", 0)), int(stats.get("errors", 0))
        rate = error_rate(extracted, errors)
        threshold = config.get("errorThresholdPercent")

        if ctx.options.dry_run:
            ctx.warn(f"dry run: the {approval} gate passed {count} records on without waiting for approval")
            return StepOutcome({None: held}, count, count)
        if approval == "THRESHOLD" and rate < float(threshold):
            ctx.warn(
                f"approved by itself: error rate {rate:.2f} % ({errors} record errors over {extracted} records "
                f"extracted) is below the threshold of {threshold} %"
            )
            return StepOutcome({None: held}, count, count)
        if approval == "THRESHOLD":
            ctx.warn(
                f"waiting for a person: error rate {rate:.2f} % ({errors} record errors over {extracted} records "
                f"extracted) is not below the threshold of {threshold} %"
            )
        # records_out counts the held records: they are what goes on once the gate is approved.
        return StepOutcome(
            {None: held},
            count,
            count,
            paused=True,
            pause_info={
                "approvalType": approval,
                "timeoutSeconds": config.get("timeoutSeconds") if approval == "TIMEOUT" else None,
                "previewCount": int(config.get("previewCount") or DEFAULT_PREVIEW_COUNT),
                "notifyWebhook": config.get("notifyWebhook") or None,
                "notifyEmail": emails(config.get("notifyEmail")),
                "errorRatePercent": round(rate, 4),
                "errorThresholdPercent": threshold if approval == "THRESHOLD" else None,
                "extracted": extracted,
                "errors": errors,
                "recordCount": count,
            },
        )


registry.step_types.register(
    "GATE",
    GateHandler(),
    name="Gate",
    category="step",
    description="Pauses the run for approval: MANUAL, THRESHOLD or TIMEOUT, with webhook and email notices.",
    schema=GATE_SCHEMA,
    builtin=True,
)
