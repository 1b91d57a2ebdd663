"""The pipeline list, and the actions on a pipeline from it: enable/disable, export."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from pipelines import access
from pipelines.errors import DefinitionError
from pipelines.models import Pipeline
from pipelines.services import definition_of, get_revision
from pipelines.views.common import can_change, can_view, permissions_of


@require_GET
@can_view
def pipeline_list(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()
    pipelines = access.visible(request.user, Pipeline.objects.select_related("current_revision")
                               .annotate(step_count=Count("steps")))
    if q:
        pipelines = pipelines.filter(Q(code__icontains=q) | Q(name__icontains=q) | Q(description__icontains=q))
    page = Paginator(pipelines.order_by("code"), 50).get_page(request.GET.get("page"))
    context = {"page": page, "q": q, "total": access.visible(request.user, Pipeline.objects).count(), **permissions_of(request)}
    if request.htmx and request.htmx.target == "pipeline-table":
        return render(request, "pipelines/list.html#table", context)
    return render(request, "pipelines/list.html", context)


@require_POST
@can_change
def pipeline_toggle(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    pipeline.enabled = not pipeline.enabled
    pipeline.save(update_fields=["enabled", "updated_at"])
    if request.htmx:
        pipeline.step_count = pipeline.steps.count()
        return render(request, "pipelines/list.html#row", {"p": pipeline, **permissions_of(request)})
    messages.success(request, f"{pipeline.name} is {'enabled' if pipeline.enabled else 'disabled'}.")
    return redirect("pipeline-list")


@require_GET
@can_view
def pipeline_export(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    number = request.GET.get("revision")
    if number:
        try:
            definition = get_revision(pipeline, int(number)).definition
        except (ValueError, DefinitionError):
            raise Http404("no such revision") from None
    else:
        definition = definition_of(pipeline)
    body = json.dumps(definition, indent=2, ensure_ascii=False) + "\n"
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{pipeline.code}.json"'
    return response
