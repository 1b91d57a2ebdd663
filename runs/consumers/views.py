"""The Queues page (/queues/): every MESSAGE consumer with its state, lag, rate, errors and dead letters,
start and stop; and a consumer's page with its dead letters and their reasons.

Looking needs ``pipelines.view_pipeline`` and ``runs.view_run``; starting and stopping
``pipelines.run_pipeline``. The list refreshes itself: an htmx request whose target is ``consumers`` gets
that partial of ``queues/list.html``; Start and Stop answer with the same partial.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from runs.consumers import services
from runs.consumers.models import Consumer
from runs.views import RUN, can_view_runs

DEAD_LETTERS_SHOWN = 50


def _target(request: HttpRequest) -> str | None:
    htmx = getattr(request, "htmx", None)
    return htmx.target if htmx else None


def _list_context(request: HttpRequest) -> dict:
    return {"consumers": services.configured_consumers(), "can_control": request.user.has_perm(RUN)}


@require_GET
@can_view_runs
def queue_list(request: HttpRequest) -> HttpResponse:
    context = _list_context(request)
    if _target(request) == "consumers":
        return render(request, "queues/list.html#consumers", context)
    return render(request, "queues/list.html", context)


@require_GET
@can_view_runs
def queue_detail(request: HttpRequest, pk: int) -> HttpResponse:
    consumer = get_object_or_404(Consumer.objects.select_related("pipeline"), pk=pk)
    found = [c for c in services.configured_consumers([consumer.pipeline.code]) if c.consumer.pk == pk]
    if not found:  # its trigger is gone from the current revision
        raise Http404("no such consumer")
    dead = consumer.dead_letter_rows.all()
    return render(request, "queues/detail.html", {
        "c": found[0], "dead_letters": list(dead[:DEAD_LETTERS_SHOWN]), "dead_total": dead.count(),
        "can_control": request.user.has_perm(RUN)})


def _control(request: HttpRequest, pk: int, desired: str) -> HttpResponse:
    if not request.user.has_perm(RUN):
        raise PermissionDenied("starting and stopping consumers needs the 'pipelines.run_pipeline' permission")
    consumer = get_object_or_404(Consumer.objects.select_related("pipeline"), pk=pk)
    services.set_desired(consumer, desired)
    if _target(request) == "consumers":
        return render(request, "queues/list.html#consumers", _list_context(request))
    messages.success(request, f"{consumer}: {'started' if desired == services.RUNNING else 'stopped'}")
    if request.POST.get("next") == "detail":
        return redirect("queue-detail", pk=pk)
    return redirect("queue-list")


@require_POST
@can_view_runs
def queue_start(request: HttpRequest, pk: int) -> HttpResponse:
    return _control(request, pk, services.RUNNING)


@require_POST
@can_view_runs
def queue_stop(request: HttpRequest, pk: int) -> HttpResponse:
    return _control(request, pk, services.STOPPED)
