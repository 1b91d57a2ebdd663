"""The gate queue: one GateRequest per (run, GATE step) that paused.

The held records themselves are not copied here: they are the file ``runs.resume`` saved for the paused
step (``run.resume_state["steps"][step_key]["outputs"]["_main"]``), which the resume reads. The request
keeps what people decide on and what stays after the records are gone: a preview, the counts, the
decision (who, when, why) and how the notices went.

A decision is a conditional UPDATE from PENDING (see :mod:`gates.services`): whoever changes the row first
decides, and every later attempt (a second tab, a retry, the timeout timer) finds it decided.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from runs.models import Run


class GateStatus(models.TextChoices):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    # The run stopped waiting without a decision here (cancelled, or it ended some other way).
    CANCELLED = "CANCELLED"


class GateRequest(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="gate_requests")
    step_key = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=GateStatus.choices, default=GateStatus.PENDING, db_index=True)
    approval_type = models.CharField(max_length=10)
    record_count = models.PositiveBigIntegerField(default=0)
    preview_count = models.PositiveSmallIntegerField(default=10)
    # The first ``preview_count`` held records, kept after the held file is gone.
    preview = models.JSONField(default=list, blank=True)
    # The run's counts when the gate was reached: extracted, errors, errorRatePercent, errorThresholdPercent.
    stats = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # TIMEOUT: when the gate approves by itself (counted from when it parked, not from when notices went out).
    timeout_at = models.DateTimeField(null=True, blank=True)

    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="gate_decisions")
    decided_at = models.DateTimeField(null=True, blank=True)
    # Approved by the TIMEOUT timer rather than a person.
    decided_automatically = models.BooleanField(default=False)
    reason = models.TextField(blank=True, default="")

    # Where the notices go; how each went is its HookDelivery row (stage GATE_WAITING, see gates.notifications).
    notify_webhook = models.URLField(max_length=2048, blank=True, default="")
    notify_email = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "step_key"], name="gaterequest_unique_per_step")]
        permissions = [("approve_gate", "Can approve or reject gates")]

    def __str__(self) -> str:
        return f"gate {self.step_key} of run {self.run_id} ({self.status})"

    @property
    def is_pending(self) -> bool:
        return self.status == GateStatus.PENDING

    @property
    def decider(self) -> str:
        """Who decided, in words: a user name, or the timer."""
        if self.decided_automatically:
            return "the timeout"
        if self.decided_by is not None:
            return self.decided_by.get_username()
        return "nobody" if self.is_pending else "a deleted user"

    @property
    def pipeline(self) -> str:
        """The pipeline's code (what listings, the API and GraphQL's PendingGate show)."""
        return self.run.pipeline.code

    @property
    def details(self) -> dict:
        """What else the gate tells, in the API's camelCase: approval type, counts, error rate, timeout."""
        stats = self.stats or {}
        return {
            "approvalType": self.approval_type,
            "status": self.status,
            "recordCount": self.record_count,
            "extracted": stats.get("extracted"),
            "errors": stats.get("errors"),
            "errorRatePercent": stats.get("errorRatePercent"),
            "errorThresholdPercent": stats.get("errorThresholdPercent"),
            "timeoutAt": self.timeout_at.isoformat() if self.timeout_at else None,
        }

    @property
    def held_file(self) -> str | None:
        """The storage name of the held records while the run keeps them (None once they are gone)."""
        steps = (self.run.resume_state or {}).get("steps", {})
        return (steps.get(self.step_key) or {}).get("outputs", {}).get("_main")
