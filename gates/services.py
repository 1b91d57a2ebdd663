"""Gate requests: opening them when a run pauses, deciding them once, and reading what they hold.

Pages, the REST API, GraphQL and the TIMEOUT timer all decide through :func:`approve` / :func:`reject`
(the timer through :func:`approve_by_timeout`). The invariant they share: **a gate is decided once.**
The decision is a conditional UPDATE of the request row from PENDING, in the same transaction as what it
sets off (``runs.services.release_paused_step`` or ``cancel_run``). Whoever updates the row first wins;
on PostgreSQL a second UPDATE waits on the first one's row lock and then finds the status changed, on
SQLite the IMMEDIATE transactions queue; either way every other attempt (two tabs, two people, a retried
request, the timer firing after a person decided) gets :class:`GateConflict` naming who decided and when.
If what the decision sets off fails (the run is no longer waiting), the whole transaction rolls back and
the request stays as it was. Locks are always taken gate row first, run row second, so an approval, a
rejection and the timer cannot deadlock each other.

The held records stay in the file ``runs.resume`` wrote for the paused step; :func:`held_records` pages
through it line by line, never loading it whole.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.trail import record
from gates.models import GateRequest, GateStatus
from gates.step import DEFAULT_PREVIEW_COUNT, emails
from pipelines import access
from pipelines.errors import DatahubError
from pipelines.records import loads
from runs import services as run_services
from runs.models import ENDED_STATUSES, Run, RunStatus
from runs.models import LIST_DEFERRED as LIST_DEFERRED_OF_RUNS

log = logging.getLogger(__name__)

APPROVE_PERMISSION = "gates.approve_gate"
VIEW_PERMISSIONS = ("runs.view_run", APPROVE_PERMISSION)
MAX_REASON = 2000
RECORDS_PER_PAGE = 25
# When the timer fires while the run is busy continuing after another gate, it tries again this much later.


class GateError(DatahubError):
    """Base of what deciding a gate may raise (besides django's PermissionDenied). A DatahubError, so the
    GraphQL error middleware reports its message instead of hiding it as an internal error."""


class GateNotFound(GateError, LookupError):
    """No gate request for this run and step."""


class GateConflict(GateError):
    """The gate cannot be decided now: it was decided already, or the run is not waiting at it."""

    def __init__(self, message: str, gate: GateRequest | None = None):
        super().__init__(message)
        self.gate = gate


class InvalidDecision(GateError, ValueError):
    """The decision itself is incomplete (a rejection without a reason)."""


# --- who may do what ----------------------------------------------------------------------------------


def can_view(user) -> bool:
    return bool(user and user.is_authenticated and any(user.has_perm(p) for p in VIEW_PERMISSIONS))


def can_decide(user) -> bool:
    return bool(user and user.is_authenticated and user.has_perm(APPROVE_PERMISSION))


def _require_decider(user) -> None:
    if not can_decide(user):
        raise PermissionDenied(f"you need the '{APPROVE_PERMISSION}' permission to approve or reject gates")


# --- opening a gate (runs.signals.step_paused) -----------------------------------------------------------


def on_step_paused(sender, run: Run, step_key: str, info: dict, **kwargs) -> None:
    """A run paused at a step: if it is a GATE, open its request and start its timer in the transaction
    that saves the pause (see runs.signals), and send its notices once that has committed. A repeated
    delivery finds the request and does nothing."""
    if _step_type(run, step_key) != "GATE":
        return
    gate, created = open_gate(run, step_key, info or {})
    if created:
        from gates import notifications

        transaction.on_commit(lambda: notifications.notify(gate), robust=True)


def _step_type(run: Run, step_key: str) -> str | None:
    for step in (run.revision.definition or {}).get("steps", []):
        if isinstance(step, dict) and step.get("key") == step_key:
            return step.get("type")
    return None


def open_gate(run: Run, step_key: str, info: dict) -> tuple[GateRequest, bool]:
    """The request of this paused gate, created with its preview and (TIMEOUT) its timer in one transaction,
    so a crash cannot leave a timed gate without a timer."""
    existing = GateRequest.objects.filter(run=run, step_key=step_key).first()
    if existing is not None:
        return existing, False
    preview_count = int(info.get("previewCount") or DEFAULT_PREVIEW_COUNT)
    name = _held_file_of(run, step_key)
    preview = _read_records(name, 0, preview_count) if name else []
    record_count = info.get("recordCount")
    if record_count is None:
        record_count = _count_records(name) if name else 0
    approval = info.get("approvalType") or "MANUAL"
    now = timezone.now()
    timeout = info.get("timeoutSeconds") if approval == "TIMEOUT" else None
    stats = {k: info.get(k) for k in ("extracted", "errors", "errorRatePercent", "errorThresholdPercent")
             if info.get(k) is not None}
    try:
        with transaction.atomic():
            gate = GateRequest.objects.create(
                run=run,
                step_key=step_key,
                approval_type=approval,
                record_count=int(record_count),
                preview_count=preview_count,
                preview=preview,
                stats=stats,
                timeout_at=now + timedelta(seconds=int(timeout)) if timeout else None,
                notify_webhook=info.get("notifyWebhook") or "",
                notify_email=emails(info.get("notifyEmail")),
            )
            if gate.timeout_at is not None:
                schedule_timer(gate)
    except IntegrityError:  # the same pause announced twice at the same moment
        return GateRequest.objects.get(run=run, step_key=step_key), False
    return gate, True


# --- the TIMEOUT timer --------------------------------------------------------------------------------


def timer_name(gate: GateRequest) -> str:
    return f"datahub: gate {gate.pk} timeout"


def schedule_timer(gate: GateRequest, when=None) -> None:
    """A django-q2 ONCE schedule that calls ``gates.tasks.auto_approve(gate_id)`` at ``timeout_at``. It is a
    database row, so it fires after restarts of every process; django-q2 deletes it once it fired."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=timer_name(gate),
        defaults={
            "func": "gates.tasks.auto_approve",
            "args": repr((gate.pk,)),
            "schedule_type": Schedule.ONCE,
            "repeats": -1,
            "next_run": when or gate.timeout_at,
        },
    )


def _drop_timers(gates: list[GateRequest]) -> None:
    from django_q.models import Schedule

    names = [timer_name(g) for g in gates if g.timeout_at is not None]
    if names:
        Schedule.objects.filter(name__in=names).delete()


# --- deciding -----------------------------------------------------------------------------------------


def approve(run: Run | int, step_key: str, user) -> GateRequest:
    """Approve a waiting gate: its records go on and the run continues on a worker, from the gate."""
    _require_decider(user)
    get_gate(_run_id(run), step_key, user)  # GateNotFound when the pipeline is not theirs
    return _approve(_run_id(run), step_key, user=user)


def approve_by_timeout(gate: GateRequest) -> GateRequest:
    """The TIMEOUT timer's approval (no person, no permission check)."""
    seconds = int((gate.timeout_at - gate.created_at).total_seconds()) if gate.timeout_at else 0
    return _approve(gate.run_id, gate.step_key, user=None, automatically=True,
                    reason=f"approved automatically after {seconds} s without a decision")


def reject(run: Run | int, step_key: str, user, reason: str) -> GateRequest:
    """Reject a waiting gate: the run is cancelled with the reason, its held records are dropped and
    nothing after the gate runs."""
    _require_decider(user)
    get_gate(_run_id(run), step_key, user)  # GateNotFound when the pipeline is not theirs
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not reason:
        raise InvalidDecision("a rejection needs a reason")
    if len(reason) > MAX_REASON:
        raise InvalidDecision(f"the reason is too long (at most {MAX_REASON} characters)")
    run_id = _run_id(run)
    try:
        with transaction.atomic():
            gate = _decide(run_id, step_key, GateStatus.REJECTED, user=user, reason=reason)
            locked = Run.objects.select_for_update().get(pk=run_id)
            if locked.status != RunStatus.PAUSED:
                raise run_services.RunConflict(f"run {run_id} is not paused (it is {locked.status})")
            run_services.cancel_run(locked, reason=f'Gate step "{step_key}" rejected by {user}: {reason}')
            others = list(GateRequest.objects.filter(run_id=run_id, status=GateStatus.PENDING).exclude(pk=gate.pk))
            GateRequest.objects.filter(pk__in=[o.pk for o in others]).update(
                status=GateStatus.CANCELLED, reason=f'the run was cancelled: gate "{step_key}" was rejected')
    except run_services.RunConflict as exc:
        raise _not_waiting(run_id, step_key, exc) from None
    _drop_timers([gate, *others])
    return _get(run_id, step_key)


def _approve(run_id: int, step_key: str, *, user, automatically: bool = False, reason: str = "") -> GateRequest:
    try:
        with transaction.atomic():
            gate = _decide(run_id, step_key, GateStatus.APPROVED, user=user, reason=reason,
                           automatically=automatically)
            run_services.release_paused_step(gate.run, step_key)
    except run_services.RunConflict as exc:
        raise _not_waiting(run_id, step_key, exc) from None
    _drop_timers([gate])
    return _get(run_id, step_key)


def _decide(run_id: int, step_key: str, status: str, *, user, reason: str = "",
            automatically: bool = False) -> GateRequest:
    """PENDING -> ``status`` for exactly one caller; everyone else gets GateConflict (or GateNotFound)."""
    updated = GateRequest.objects.filter(run_id=run_id, step_key=step_key, status=GateStatus.PENDING).update(
        status=status, decided_by=user, decided_at=timezone.now(), reason=reason,
        decided_automatically=automatically,
    )
    gate = GateRequest.objects.select_related("run", "run__pipeline", "decided_by").filter(
        run_id=run_id, step_key=step_key).first()
    if gate is None:
        raise GateNotFound(f"run {run_id} has no gate at step '{step_key}'")
    if not updated:
        raise GateConflict(describe_decision(gate), gate)
    record("gate.approved" if status == GateStatus.APPROVED else "gate.rejected", f"run:{run_id}/gate:{step_key}",
           user=user if getattr(user, "is_authenticated", False) else None, pipeline=gate.run.pipeline.code,
           reason=reason[:500], automatically=automatically)
    return gate


def _not_waiting(run_id: int, step_key: str, exc: Exception) -> GateConflict:
    """The run is not waiting at the gate. If it ended (cancelled from the runs page, say), the request is
    closed for good; if it is busy continuing after another gate, the request stays open for later."""
    status = Run.objects.filter(pk=run_id).values_list("status", flat=True).first()
    if status in ENDED_STATUSES:
        GateRequest.objects.filter(run_id=run_id, step_key=step_key, status=GateStatus.PENDING).update(
            status=GateStatus.CANCELLED, reason=f"the run ended ({status}) before anyone decided")
        gate = GateRequest.objects.filter(run_id=run_id, step_key=step_key).first()
        if gate is not None:
            _drop_timers([gate])
        return GateConflict(f"run {run_id} is {status}: it no longer waits at gate '{step_key}'", gate)
    if status == RunStatus.RUNNING:
        return GateConflict(
            f"run {run_id} is running (it continues after another gate); decide gate '{step_key}' once it "
            "is paused again")
    return GateConflict(f"run {run_id} is not waiting at gate '{step_key}': {exc}")


def describe_decision(gate: GateRequest) -> str:
    if gate.status == GateStatus.PENDING:
        return f"gate '{gate.step_key}' of run {gate.run_id} is waiting for a decision"
    if gate.status == GateStatus.CANCELLED:
        return f"gate '{gate.step_key}' of run {gate.run_id} was closed without a decision: {gate.reason}"
    when = timezone.localtime(gate.decided_at).strftime("%Y-%m-%d %H:%M:%S %Z") if gate.decided_at else "?"
    return f"gate '{gate.step_key}' of run {gate.run_id} was already {gate.status.lower()} by {gate.decider} at {when}"


def _run_id(run: Run | int) -> int:
    return int(run.pk if isinstance(run, Run) else run)


def _get(run_id: int, step_key: str) -> GateRequest:
    return GateRequest.objects.select_related("run", "run__pipeline", "run__revision", "decided_by").get(
        run_id=run_id, step_key=step_key)


# --- reading ------------------------------------------------------------------------------------------


# What lists of gates leave out: the held records' preview and the run's JSON (a paused run's executor
# state is the largest of it), which only the review page and the worker read.
LIST_DEFERRED = ("preview", *(f"run__{name}" for name in LIST_DEFERRED_OF_RUNS if not name.startswith("revision__")))


def pending_gates(user):
    """The gates waiting for a decision, oldest first, that ``user`` may see (none without permission).
    A gate whose run stopped waiting (cancelled from the runs page) is not listed."""
    qs = (access.visible(user, GateRequest.objects, via="run__pipeline")
          .filter(status=GateStatus.PENDING, run__status=RunStatus.PAUSED)
          .select_related("run", "run__pipeline").defer(*LIST_DEFERRED).order_by("created_at", "id"))
    return qs if can_view(user) else qs.none()


def waiting_count(user) -> int:
    """How many gates of the pipelines ``user`` may see wait for a decision (the dashboard's figure)."""
    waiting = GateRequest.objects.filter(status=GateStatus.PENDING, run__status=RunStatus.PAUSED)
    return access.visible(user, waiting, via="run__pipeline").count()


def recent_decisions(user, limit: int = 20):
    qs = (access.visible(user, GateRequest.objects, via="run__pipeline").exclude(status=GateStatus.PENDING)
          .select_related("run", "run__pipeline", "decided_by").defer(*LIST_DEFERRED).order_by("-decided_at", "-id"))
    return qs[:limit] if can_view(user) else qs.none()


def get_gate(run_id: int, step_key: str, user=None) -> GateRequest:
    """The gate; GateNotFound when there is none or (given ``user``) its pipeline is not theirs. Whether it is
    theirs is asked in the same query (pipelines.access.visible: the rule ``access.may`` answers), not in a
    second one: the review page and its polls ask on every request."""
    queryset = GateRequest.objects.select_related("run", "run__pipeline", "run__revision", "decided_by")
    if user is not None:
        queryset = access.visible(user, queryset, via="run__pipeline")
    gate = queryset.filter(run_id=run_id, step_key=step_key).first()
    if gate is None:
        raise GateNotFound(f"run {run_id} has no gate at step '{step_key}'")
    return gate


@dataclass
class RecordsPage:
    records: list
    number: int
    per_page: int
    total: int
    held: bool  # False once the run dropped the records (decided): only the preview is left

    @property
    def start(self) -> int:
        return (self.number - 1) * self.per_page

    @property
    def num_pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.num_pages

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1


def held_records(gate: GateRequest, page: int = 1, per_page: int = RECORDS_PER_PAGE) -> RecordsPage:
    """Page ``page`` of the held records, read from the held file line by line (memory: one page)."""
    name = gate.held_file
    if not name or not default_storage.exists(name):
        total = len(gate.preview)
        pages = max(1, -(-total // per_page))
        page = min(max(1, page), pages)
        start = (page - 1) * per_page
        return RecordsPage(gate.preview[start:start + per_page], page, per_page, total, held=False)
    total = gate.record_count
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    return RecordsPage(_read_records(name, (page - 1) * per_page, per_page), page, per_page, total, held=True)


def _held_file_of(run: Run, step_key: str) -> str | None:
    run.refresh_from_db(fields=["resume_state"])
    steps = (run.resume_state or {}).get("steps", {})
    return (steps.get(step_key) or {}).get("outputs", {}).get("_main")


def _read_records(name: str, start: int, count: int) -> list:
    out: list = []
    seen = 0
    with default_storage.open(name, "rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            if seen >= start:
                out.append(loads(line))
                if len(out) >= count:
                    break
            seen += 1
    return out


def _count_records(name: str) -> int:
    with default_storage.open(name, "rb") as fh:
        return sum(1 for line in fh if line.strip())
