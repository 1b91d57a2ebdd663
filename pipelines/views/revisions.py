"""A pipeline's revisions: one with its diff to another, and restoring one (into the draft, like any edit)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST

from pipelines import access, drafts, svg
from pipelines.errors import DefinitionError
from pipelines.models import Pipeline
from pipelines.services import diff_revisions, get_revision
from pipelines.views.common import can_change, can_view, diff_lines, permissions_of
from pipelines.views.workspace import workspace_response


@require_GET
@can_view
def revision_detail(request: HttpRequest, code: str, number: int) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    try:
        revision = get_revision(pipeline, number)
    except DefinitionError:
        raise Http404("no such revision") from None
    against_number = request.GET.get("against")
    previous = None
    if against_number and against_number.isdigit():
        previous = pipeline.revisions.filter(number=int(against_number)).first()
    if previous is None:
        previous = pipeline.revisions.filter(number__lt=number).order_by("-number").first()
    diff = diff_revisions(previous, revision)
    context = {
        "pipeline": pipeline, "revision": revision, "previous": previous, "diff": diff_lines(diff),
        "is_current": pipeline.current_revision_id == revision.pk,
        "revisions": pipeline.revisions.order_by("-number").values_list("number", flat=True)[:200],
        "graph": mark_safe(svg.definition_graph(revision.definition)),
        **permissions_of(request),
    }
    if request.htmx:
        return render(request, "pipelines/revision.html#diff", context)
    return render(request, "pipelines/revision.html", context)


@require_POST
@can_change
def revision_restore(request: HttpRequest, code: str, number: int) -> HttpResponse:
    """An old revision back, as any change: into the draft, published with Publish (and its checks)."""
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    try:
        draft = drafts.replace_draft(pipeline, request.user, get_revision(pipeline, number).definition)
    except DefinitionError as exc:
        messages.error(request, f"Revision {number} cannot be restored: {exc}")
        return redirect("pipeline-editor", code=code)
    if draft is None:
        flash = f"Revision {number} is what is published: your draft has no changes."
    else:
        flash = f"Revision {number} is in your draft now: publish it to make it the current revision."
    return workspace_response(request, pipeline, flash=flash)
