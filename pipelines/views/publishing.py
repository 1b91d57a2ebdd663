"""The draft: publish it as a revision (or merge the newer revision into it), or discard it."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from pipelines import access, drafts, editing, reviews
from pipelines.errors import DefinitionError
from pipelines.models import Pipeline
from pipelines.views import refusals
from pipelines.views.attempts import as_post, try_settings, try_step, working
from pipelines.views.common import can_change


def _apply_pending(request: HttpRequest, pipeline: Pipeline) -> list[str]:
    """Apply what the draft kept as typed, where it is valid now; the problems of the rest, all of them."""
    definition, draft = working(request, pipeline)
    if draft is None or not draft.pending:
        return []
    problems: list[str] = []
    cleared: dict[str, None] = {}
    for name, pairs in sorted(draft.pending.items()):
        if name.startswith("step:") and name[5:] not in editing.step_keys(definition):
            cleared[name] = None
            continue
        attempt = (try_step(definition, name[5:], as_post(pairs)) if name.startswith("step:")
                   else try_settings(definition, as_post(pairs)))
        if attempt.changed is None:
            problems.extend(attempt.problems)
        else:
            definition = attempt.changed
            cleared[name] = None
    if cleared:
        drafts.save_draft(pipeline, request.user, definition, pending=cleared)
    return problems


@require_POST
@can_change
def pipeline_publish(request: HttpRequest, code: str) -> HttpResponse:
    """Publish the draft as the next revision, with a message (or, when the pipeline requires review, submit
    it for review: pipelines.reviews). From a stale base the answer is the diff to the newer revision and two
    deliberate choices: merge it into the draft, or publish over it. Every answer is a redirect to the
    editor, refusals included, so reloading the page never posts again."""
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    message = request.POST.get("message", "").strip()[:500]
    choice = request.POST.get("_action", "publish")
    _, draft = working(request, pipeline)
    if draft is None:
        messages.info(request, "There is nothing to publish: your draft has no changes.")
        return redirect("pipeline-editor", code=code)
    if choice == "merge":
        return _merge(request, pipeline)
    problems = _apply_pending(request, pipeline)
    if problems:
        return _refused(request, pipeline, message, problems=problems)
    try:
        if pipeline.requires_review:  # Publish submits the draft; a reviewer publishes it
            submitted = reviews.submit(pipeline, request.user, message, overwrite=choice == "overwrite")
        else:
            pipeline = drafts.publish(pipeline, request.user, message, overwrite=choice == "overwrite")
    except drafts.StaleDraft:
        return _refused(request, pipeline, message, stale=True)
    except DefinitionError as exc:
        return _refused(request, pipeline, message, problems=[str(p) for p in exc.problems])
    if pipeline.requires_review:
        messages.success(request, f"Submitted for review (submission {submitted.pk}): it is published when a "
                                  "reviewer approves it. Your draft stays as it is.")
    else:
        messages.success(request, f"Published revision {pipeline.current_revision.number}.")
    return redirect("pipeline-editor", code=code)


def _refused(request: HttpRequest, pipeline: Pipeline, message: str, **refusal) -> HttpResponse:
    """Back to the editor, which shows why (see :mod:`pipelines.views.refusals`): a reload publishes nothing."""
    refusals.remember(request, pipeline, message, **refusal)
    anchor = "stale" if refusal.get("stale") else "publish-problems"
    return redirect(reverse("pipeline-editor", args=[pipeline.code]) + f"#{anchor}")


def _merge(request: HttpRequest, pipeline: Pipeline) -> HttpResponse:
    current = pipeline.current_revision
    try:
        conflicts = drafts.merge_into_draft(pipeline, request.user)
    except DefinitionError as exc:
        messages.error(request, "The newer revision could not be merged into your draft: "
                                + "; ".join(str(p) for p in exc.problems) + ". Change your draft or publish over it.")
        return redirect("pipeline-editor", code=pipeline.code)
    text = f"Merged revision {current.number if current else '-'} into your draft."
    if conflicts:
        messages.warning(request, text + " Your draft's version was kept where both changed: "
                                  + "; ".join(conflicts) + ".")
    else:
        messages.success(request, text + " Check it, then publish.")
    return redirect("pipeline-editor", code=pipeline.code)


@require_POST
@can_change
def draft_discard(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    drafts.discard_draft(pipeline, request.user)
    messages.success(request, "Discarded your draft: the editor shows the published revision.")
    return redirect("pipeline-editor", code=code)
