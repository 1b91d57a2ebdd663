"""The review pages: what waits for review, one submission with its diff and the decision, and a
pipeline's review history. Submitting is the editor's Publish (``pipeline_publish`` calls
:func:`pipelines.reviews.submit` when the pipeline requires review).

Deciding needs ``pipelines.review_pipeline`` (403 before anything is looked up) and is refused for one's
own submission (pipelines.access); a submission on a pipeline the person may not use is a 404, as every
page has it. Approving from a stale base answers 409 with the diffs and the same two deliberate choices
as Publish: merge the newer revision in, or publish over it.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from pipelines import access, reviews
from pipelines.drafts import StaleBase
from pipelines.errors import DefinitionError
from pipelines.models import Pipeline, ReviewStatus
from pipelines.views.common import diff_lines

VIEW = "pipelines.view_pipeline"
STALE_CHOICES = {"approve": "refuse", "merge": "merge", "overwrite": "overwrite"}


def can_view(view):
    return login_required(permission_required(VIEW, raise_exception=True)(view))


def can_review(view):
    return login_required(permission_required([VIEW, access.REVIEW_PERMISSION], raise_exception=True)(view))


def _found(request: HttpRequest, review_id: int):
    try:
        return reviews.get_review(review_id, request.user)
    except reviews.ReviewNotFound:
        raise Http404("no such submission, or not yours to see") from None


@require_GET
@can_view
def review_queue(request: HttpRequest) -> HttpResponse:
    decided = (reviews.visible_reviews(request.user).filter(status__in=[ReviewStatus.APPROVED, ReviewStatus.REJECTED])
               .order_by("-decided_at", "-pk")[:20])
    return render(request, "pipelines/reviews.html", {
        "pending": reviews.pending_for(request.user), "decided": decided,
        "is_reviewer": request.user.has_perm(access.REVIEW_PERMISSION),
    })


def _detail_context(request: HttpRequest, review, **extra) -> dict:
    pending = review.status == ReviewStatus.PENDING
    return {
        "review": review, "pipeline": review.pipeline, "pending": pending,
        "diff": diff_lines(reviews.diff_of(review)),
        "changes": reviews.changes(review),
        "stale_diff": diff_lines(reviews.stale_diff(review)) if pending else [],
        "current": review.pipeline.current_revision,
        "can_decide": pending and access.may_decide(request.user, review),
        "is_reviewer": request.user.has_perm(access.REVIEW_PERMISSION),
        "own": review.author_id == request.user.pk,
        **extra,
    }


@require_GET
@can_view
def review_detail(request: HttpRequest, review_id: int) -> HttpResponse:
    return render(request, "pipelines/review.html", _detail_context(request, _found(request, review_id)))


@require_POST
@can_review
def review_approve(request: HttpRequest, review_id: int) -> HttpResponse:
    review = _found(request, review_id)
    comment = request.POST.get("comment", "")
    on_stale = STALE_CHOICES.get(request.POST.get("_action", "approve"), "refuse")
    try:
        decided = reviews.approve(review.pk, request.user, comment=comment, on_stale=on_stale)
    except StaleBase as exc:
        context = _detail_context(request, review, refused=exc, comment=comment,
                                  theirs_diff=diff_lines(exc.diff), conflicts=exc.conflicts)
        return render(request, "pipelines/review.html", context, status=409)
    except reviews.ReviewConflict as exc:
        return render(request, "pipelines/review.html", _detail_context(request, _found(request, review_id),
                                                                        notice=str(exc)), status=409)
    except (DefinitionError, reviews.InvalidDecision) as exc:
        problems = [str(p) for p in exc.problems] if isinstance(exc, DefinitionError) else [str(exc)]
        return render(request, "pipelines/review.html",
                      _detail_context(request, review, problems=problems, comment=comment), status=400)
    number = decided.revision.number if decided.revision else None
    messages.success(request, f"Approved: published as revision {number}." if number else
                     "Approved: the pipeline already was exactly this, so no new revision was needed.")
    return redirect("review-detail", review_id=decided.pk)


@require_POST
@can_review
def review_reject(request: HttpRequest, review_id: int) -> HttpResponse:
    review = _found(request, review_id)
    comment = request.POST.get("comment", "")
    try:
        reviews.reject(review.pk, request.user, comment)
    except reviews.InvalidDecision as exc:
        return render(request, "pipelines/review.html",
                      _detail_context(request, review, comment_error=str(exc), comment=comment), status=400)
    except reviews.ReviewConflict as exc:
        return render(request, "pipelines/review.html", _detail_context(request, _found(request, review_id),
                                                                        notice=str(exc)), status=409)
    messages.success(request, "Rejected: the change went back to its author with your comment.")
    return redirect("review-detail", review_id=review.pk)


@require_GET
@can_view
def review_history(request: HttpRequest, code: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects.select_related("current_revision"), code=code)
    return render(request, "pipelines/review_history.html", {
        "pipeline": pipeline, "reviews": reviews.history(pipeline)[:200],
        "can_decide_any": access.may_review(request.user, pipeline),
    })
