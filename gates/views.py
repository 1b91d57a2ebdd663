"""The gate pages: the waiting list and the review page, where a person approves or rejects.

Looking needs ``runs.view_run`` (or the approve permission); deciding needs ``gates.approve_gate``;
anonymous visitors go to the login page. Approve and Reject are POST forms (CSRF-checked). With htmx they
swap the decision panel of the same template (``gates/review.html#decision``) in place; without it they
redirect back to the page. The decision panel polls itself while the run is still going, so after an
approval the page shows the run continue and end.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from datahub_project.page_cache import ANY_RUN, RUNS, cached_page
from gates import gate_rows, services, tables
from gates.models import GateRequest
from pipelines.definition import KEY_PATTERN
from runs.models import RunStatus

MAX_ID = 2**63 - 1
PENDING_PER_PAGE = 25


def _require_view(user) -> None:
    if not services.can_view(user):
        raise PermissionDenied("looking at gates needs the 'runs.view_run' permission")


def _require_decide(user) -> None:
    if not services.can_decide(user):
        raise PermissionDenied("deciding gates needs the 'gates.approve_gate' permission")


def _gate_or_404(user, run_id: int, step_key: str) -> GateRequest:
    if run_id > MAX_ID or not KEY_PATTERN.match(step_key):
        raise Http404("no such gate")
    try:
        return services.get_gate(run_id, step_key, user)
    except services.GateNotFound:
        raise Http404(f"run {run_id} has no gate at step '{step_key}'") from None


def _target(request: HttpRequest) -> str | None:
    htmx = getattr(request, "htmx", None)
    return htmx.target if htmx else None


def _page_number(request: HttpRequest) -> int:
    raw = request.GET.get("page", "1")
    return int(raw) if raw.isdigit() and len(raw) < 9 else 1


def _pending_page(user, number):
    """A page of the waiting gates. Paged: a backlog of a thousand must not make every 5 s refresh render all
    of them. The first page reads one row more than it shows, so a single page (the usual case) needs no
    COUNT query."""
    paginator = Paginator(services.pending_gates(user), PENDING_PER_PAGE)
    if number in (None, "", "1"):
        first = list(paginator.object_list[:PENDING_PER_PAGE + 1])
        if len(first) <= PENDING_PER_PAGE:
            paginator.count = len(first)  # a cached_property: set here, never queried
        page = paginator.page(1)
        page.object_list = first[:PENDING_PER_PAGE]
        return page
    return paginator.get_page(number)


@cached_page(RUNS)
@login_required
@require_GET
def gate_list(request: HttpRequest) -> HttpResponse:
    _require_view(request.user)
    pending = _pending_page(request.user, request.GET.get("page"))
    pending.object_list = gate_rows.finish(pending.object_list)
    context = {
        "pending": pending.object_list,
        "page": pending,
        "recent": list(services.recent_decisions(request.user)),
        "can_decide": services.can_decide(request.user),
    }
    if _target(request) == "gates-pending":
        return render(request, "gates/list.html#pending", context)
    return render(request, "gates/list.html", context)


def _review_context(request: HttpRequest, gate: GateRequest, *, records: bool = True, **extra) -> dict:
    run = gate.run
    # The decision panel's polls and answers need no records: only the full page and the records partial read them.
    page = services.held_records(gate, _page_number(request)) if records else None
    definition = {s.get("key"): s for s in (run.revision.definition or {}).get("steps", []) if isinstance(s, dict)}
    steps = [{"run": s, "spec": definition.get(s.step_key, {})} for s in run.step_runs.all()]
    return {
        "gate": gate,
        "run": run,
        "pipeline": run.pipeline,
        "stats": gate.stats or {},
        "steps": steps,
        "page": page,
        "table": tables.table(page.records) if page else None,
        "can_decide": services.can_decide(request.user),
        "review_url": reverse("gates:review", args=[run.pk, gate.step_key]),
        "run_busy": gate.is_pending and run.status == RunStatus.RUNNING,
        **extra,
    }


@cached_page(ANY_RUN, run="run_id")
@login_required
@require_GET
def review(request: HttpRequest, run_id: int, step_key: str) -> HttpResponse:
    _require_view(request.user)
    gate = _gate_or_404(request.user, run_id, step_key)
    target = _target(request)
    if target == "gate-decision":
        # The steps table comes along out of band, so a poll refreshes both.
        context = _review_context(request, gate, records=False, oob=True)
        return render(request, "gates/review.html#decision", context)
    context = _review_context(request, gate)
    if target == "gate-records":
        return render(request, "gates/review.html#records", context)
    return render(request, "gates/review.html", context)


def _after_decision(request: HttpRequest, gate: GateRequest, *, notice: str, ok: bool, status: int = 200,
                    **extra) -> HttpResponse:
    gate = services.get_gate(gate.run_id, gate.step_key)
    if _target(request) == "gate-decision":
        # htmx swaps only 2xx answers by default: a refusal is shown in the panel with a 200.
        context = _review_context(request, gate, records=False, notice=notice, notice_ok=ok, oob=True, **extra)
        return render(request, "gates/review.html#decision", context)
    if status != 200:
        context = _review_context(request, gate, notice=notice, notice_ok=ok, **extra)
        return render(request, "gates/review.html", context, status=status)
    (messages.success if ok else messages.error)(request, notice)
    return redirect("gates:review", gate.run_id, gate.step_key)


@login_required
@require_POST
def approve(request: HttpRequest, run_id: int, step_key: str) -> HttpResponse:
    _require_decide(request.user)
    gate = _gate_or_404(request.user, run_id, step_key)
    try:
        services.approve(gate.run, gate.step_key, request.user)
    except services.GateConflict as exc:
        return _after_decision(request, gate, notice=str(exc), ok=False)
    return _after_decision(request, gate, ok=True,
                           notice=f"Approved: run {run_id} continues from gate '{step_key}' on a worker.")


@login_required
@require_POST
def reject(request: HttpRequest, run_id: int, step_key: str) -> HttpResponse:
    _require_decide(request.user)
    gate = _gate_or_404(request.user, run_id, step_key)
    reason = request.POST.get("reason", "")
    try:
        services.reject(gate.run, gate.step_key, request.user, reason)
    except services.InvalidDecision as exc:
        return _after_decision(request, gate, notice=str(exc), ok=False, status=400, reason_error=str(exc),
                               reason=reason)
    except services.GateConflict as exc:
        return _after_decision(request, gate, notice=str(exc), ok=False)
    return _after_decision(request, gate, ok=True, notice=f"Rejected: run {run_id} was cancelled.")
