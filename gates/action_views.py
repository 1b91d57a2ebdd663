"""The page an email's Approve or Reject link opens: a confirmation, then the decision on POST.

See :mod:`gates.action_links` for what a link guarantees. GET never changes anything (mail scanners and
link previews open links); the POST, CSRF-checked, decides through ``gates.services`` as the addressee.
"""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from gates import action_links, services, tables
from pipelines import access
from runs.models import RunStatus


def _page(request: HttpRequest, status: int = 200, **context) -> HttpResponse:
    return render(request, "gates/act.html", context, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
def act(request: HttpRequest, token: str) -> HttpResponse:
    try:
        action = action_links.read_token(token)
        gate = action_links.gate_of(action)
    except action_links.LinkRefused as exc:
        return _page(request, status=403, refused=str(exc))
    if not request.user.is_authenticated and not action_links.may_skip_login():
        return redirect_to_login(request.get_full_path())
    try:
        person = action_links.decider(action, request.user)
    except action_links.LinkRefused as exc:
        return _page(request, status=403, refused=str(exc))
    if not access.may(person, gate.run.pipeline):  # owners and teams (pipelines.access)
        return _page(request, status=403, refused=f"{person.get_username()} may not use pipeline "
                     f"'{gate.run.pipeline.code}': it belongs to other people")
    context = {"action": action.action, "gate": gate, "run": gate.run, "pipeline": gate.run.pipeline,
               "person": person, "table": tables.table(gate.preview),
               "review_url": reverse("gates:review", args=[gate.run_id, gate.step_key])}
    if not services.can_decide(person):
        return _page(request, status=403, refused=f"{person.get_username()} may not approve or reject gates "
                     f"(the '{services.APPROVE_PERMISSION}' permission is missing)", **context)
    if not gate.is_pending:
        return _page(request, decided=services.describe_decision(gate), **context)
    if gate.run.status != RunStatus.PAUSED:
        return _page(request, decided=f"run {gate.run_id} does not wait at this gate now (it is "
                     f"{gate.run.status.lower()}): see the review page", **context)
    if request.method == "GET":
        return _page(request, confirm=True, **context)
    reason = request.POST.get("reason", "")
    try:
        if action.action == "approve":
            services.approve(gate.run, gate.step_key, person)
            done = f"Approved: run {gate.run_id} continues from gate '{gate.step_key}'."
        else:
            services.reject(gate.run, gate.step_key, person, reason)
            done = f"Rejected: run {gate.run_id} was cancelled."
    except services.InvalidDecision as exc:
        return _page(request, confirm=True, reason=reason, reason_error=str(exc), **context)
    except services.GateConflict as exc:
        return _page(request, decided=str(exc), **context)
    except services.GateNotFound:
        return _page(request, status=403, refused="the gate this link was sent for no longer exists")
    return _page(request, done=done, **context)
