"""A refused publish, kept for the editor page the refusal redirects to (POST/redirect/GET).

A refused publish answers with a redirect to the editor, never a page rendered from the POST: reloading
that page must not publish again (a stale draft would be refused again at best, or, had the other
revision been merged meanwhile, published by a reload). What the refusal said waits in the session and
is shown once, by the next editor page; the stale diff is computed then, from the draft as it is.
"""

from __future__ import annotations

from django.http import HttpRequest

from pipelines import drafts
from pipelines.models import Pipeline, PipelineDraft
from pipelines.views.common import diff_lines


def _key(pipeline: Pipeline) -> str:
    return f"publish-refused:{pipeline.code}"


def remember(request: HttpRequest, pipeline: Pipeline, message: str, *, problems: list[str] | None = None,
             stale: bool = False) -> None:
    request.session[_key(pipeline)] = {"message": message, "problems": problems or [], "stale": stale}


def take(request: HttpRequest, pipeline: Pipeline) -> dict:
    """The editor context of the last refused publish of this pipeline (once), or {}."""
    refusal = request.session.pop(_key(pipeline), None)
    if not isinstance(refusal, dict):
        return {}
    context: dict = {"publish_message": refusal.get("message", "")}
    if refusal.get("problems"):
        context["publish_problems"] = refusal["problems"]
    if refusal.get("stale"):
        draft = drafts.get_draft(pipeline, request.user)
        if draft is not None and draft.base_revision_id != pipeline.current_revision_id:
            context["stale"] = stale_context(drafts.StaleDraft(draft, pipeline.current_revision), draft,
                                             refusal.get("message", ""))
    return context


def stale_context(stale: drafts.StaleDraft, draft: PipelineDraft, message: str) -> dict:
    base = stale.base.definition if stale.base else None
    base_name = f"r{stale.base.number}" if stale.base else "(none)"
    current_name = f"r{stale.current.number}" if stale.current else "(none)"
    mine = drafts.normalized(draft.definition, draft.pipeline.code) or draft.definition
    return {
        "base": stale.base, "current": stale.current, "message": message,
        "theirs_diff": diff_lines(drafts.diff_text(base, stale.current.definition if stale.current else None,
                                                   base_name, current_name)),
        "mine_diff": diff_lines(drafts.diff_text(stale.current.definition if stale.current else None, mine,
                                                 current_name, "your draft")),
    }
