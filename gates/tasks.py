"""django-q2 entry points of the gates app. They take ids, never objects."""

from __future__ import annotations

import logging

from django.utils import timezone

from gates import services
from gates.models import GateRequest, GateStatus

log = logging.getLogger(__name__)


def auto_approve(gate_id: int) -> str:
    """The TIMEOUT timer: approve the gate unless a person decided first (then this is a no-op: the
    decision is a conditional UPDATE from PENDING, so the timer cannot undo or repeat it)."""
    gate = GateRequest.objects.select_related("run").filter(pk=gate_id).first()
    if gate is None:
        return "gone"
    if gate.status != GateStatus.PENDING:
        return f"already {gate.status.lower()}"
    now = timezone.now()
    if gate.timeout_at is None:
        return "no timeout"
    if gate.timeout_at > now:
        # Fired early (a clock ahead of the database's): put the timer back for the right moment.
        services.schedule_timer(gate)
        return "not due"
    try:
        services.approve_by_timeout(gate)
    except services.GateConflict as exc:
        # A person decided first, or the run ended. (While the run is busy after another gate, the approval
        # is queued on the run by runs.services.release_paused_step, so there is nothing to retry.)
        log.info("timeout of gate %s not applied: %s", gate_id, exc)
        return "conflict"
    return "approved"
