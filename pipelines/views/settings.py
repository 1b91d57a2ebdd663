"""The editor's settings panel: saved with its button, or as the person types."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from pipelines import access, drafts, reviews
from pipelines.models import Pipeline
from pipelines.views.attempts import post_pairs, try_settings, working
from pipelines.views.common import can_change
from pipelines.views.workspace import autosaved, editor_context, panel_response, workspace_response


def _allow_concurrent(pipeline: Pipeline, post) -> None:
    """An operating switch, not part of the definition: it applies at once, draft or not."""
    allow = post.get("allow_concurrent_runs") in ("1", "on")
    if pipeline.allow_concurrent_runs != allow:
        pipeline.allow_concurrent_runs = allow
        pipeline.save(update_fields=["allow_concurrent_runs", "updated_at"])


def _requires_review(request: HttpRequest, pipeline: Pipeline) -> None:
    """Review before publish: an operating switch too, applied at once and recorded in the audit trail.
    Only from a form that showed the box, so a form without it never switches review off."""
    if "requires_review_shown" in request.POST:
        reviews.set_requires_review(pipeline, request.POST.get("requires_review") in ("1", "on"), request.user)


@require_POST
@can_change
def pipeline_settings(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    attempt = try_settings(working(request, pipeline)[0], request.POST)
    if attempt.changed is None:
        drafts.save_draft(pipeline, request.user, pending={"settings": post_pairs(request.POST)})
        if request.htmx:
            return panel_response(request, pipeline, "settings", "#settings", {"settings_form": attempt.form})
        return render(request, "pipelines/editor.html",
                      editor_context(request, pipeline, settings_form=attempt.form), status=400)
    drafts.save_draft(pipeline, request.user, attempt.changed, pending={"settings": None})
    _allow_concurrent(pipeline, request.POST)
    _requires_review(request, pipeline)
    if request.htmx:
        return panel_response(request, pipeline, "settings", "#settings",
                      {"settings_form": attempt.form, "settings_flash": "Saved the settings to your draft."})
    return workspace_response(request, pipeline, flash="Saved the settings to your draft.")


@require_POST
@can_change
def settings_autosave(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    attempt = try_settings(working(request, pipeline)[0], request.POST)
    _allow_concurrent(pipeline, request.POST)
    _requires_review(request, pipeline)
    if attempt.changed is not None:
        drafts.save_draft(pipeline, request.user, attempt.changed, pending={"settings": None})
        return autosaved(request, pipeline, "Saved in your draft.", [])
    drafts.save_draft(pipeline, request.user, pending={"settings": post_pairs(request.POST)})
    return autosaved(request, pipeline, "Kept in your draft as typed; fix before publishing:", attempt.problems)
