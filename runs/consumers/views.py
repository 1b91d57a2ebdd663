"""The Queues page (/queues/): every MESSAGE consumer with its state, lag, rate, errors and dead letters,
start and stop; and a consumer's page with its dead letters and their reasons (paged, newest first). A
consumer whose pipeline is another team's (pipelines.access) is neither listed nor found.

Looking needs ``pipelines.view_pipeline`` and ``runs.view_run``; starting and stopping
``pipelines.run_pipeline``. The list refreshes itself: an htmx request whose target is ``consumers`` gets
that partial of ``queues/list.html``; Start and Stop answer with the same partial.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from runs.consumers import services
from runs.views import RUN, can_view_runs

DEAD_LETTERS_PER_PAGE = 50


def _target(request: HttpRequest) -> str | None:
    htmx = getattr(request, "htmx", None)
    return htmx.target if htmx else None


def _list_context(request: HttpRequest) -> dict:
    return {"consumers": services.visible_to(request.user, services.configured_consumers()),
            "can_control": request.user.has_perm(RUN)}


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
    found = services.one_for(request.user, pk)
    if found is None:  # none, its trigger is gone from the current revision, or not theirs
        raise Http404("no such consumer")
    # Paged, newest first: a broker spewing bad messages leaves thousands.
    dead = Paginator(found.consumer.dead_letter_rows.order_by("-created_at", "-id"), DEAD_LETTERS_PER_PAGE)
    page = dead.get_page(request.GET.get("page"))
    return render(request, "queues/detail.html", {
        "c": found, "dead_letters": page.object_list, "page": page, "dead_total": dead.count,
        "can_control": request.user.has_perm(RUN)})


def _control(request: HttpRequest, pk: int, desired: str) -> HttpResponse:
    if not request.user.has_perm(RUN):
        raise PermissionDenied("starting and stopping consumers needs the 'pipelines.run_pipeline' permission")
    found = services.one_for(request.user, pk)
    if found is None:
        raise Http404("no such consumer")
    consumer = found.consumer
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
