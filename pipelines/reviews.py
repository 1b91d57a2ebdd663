"""Review before publish: a pipeline that requires review is changed only by an approved submission.

The flow (the Vendure plugin's): the author's Publish submits the draft (:func:`submit`; the API sends a
definition, :func:`submit_definition`) with a message. A reviewer sees the submission with the diff
against the published revision and approves it (:func:`approve`: it becomes the next revision, written
as the author's, the review row naming the approver) or rejects it with a comment (:func:`reject`: the
author's draft stays as it was, and the editor shows them the comment). The rows of
:class:`~pipelines.models.PipelineReview` are the pipeline's review history.

What is guaranteed:

* **Nothing publishes around a review.** ``services.save_definition`` refuses a person's change of a
  pipeline that requires review (``review_required``); only :func:`approve` passes ``reviewed``.
* **A submission is decided once.** The decision is a conditional UPDATE from PENDING in the same
  transaction as the publish it sets off; whoever updates first wins, every later attempt (a second tab,
  a second reviewer, "rejected twice") gets :class:`ReviewConflict` naming who decided and when. When the
  publish fails (stale base, invalid, not the author's to use) the transaction rolls back and the
  submission stays pending.
* **Four eyes.** Deciding needs ``pipelines.review_pipeline`` and the pipeline's access, and the author
  may not decide their own submission unless they are a superuser (``pipelines.decide_review`` in
  :mod:`pipelines.access`).
* **Stale bases are refused as Publish refuses them.** A submission remembers the revision it changes;
  approving it after another revision was published raises :class:`~pipelines.drafts.StaleBase` with the
  diff, unless the reviewer asks to merge (refused with the conflicts when both changed the same thing) or
  to publish over it on purpose.
* **One pending submission per author and pipeline.** Submitting again marks the older one SUPERSEDED.

Reviewers are emailed when a change waits, and authors when it is decided (:mod:`pipelines.review_notices`).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from audit.trail import record
from pipelines import access, review_notices
from pipelines.definition import problems_of
from pipelines.drafts import ON_STALE, diff_text, normalized, publishable_draft, save_from_base
from pipelines.errors import DatahubError, DefinitionError, Problem
from pipelines.models import Pipeline, PipelineDraft, PipelineReview, PipelineRevision, ReviewStatus

MAX_COMMENT = 2000


class ReviewError(DatahubError):
    """Base of what submitting or deciding may raise (besides PermissionDenied and DefinitionError)."""


class ReviewNotFound(ReviewError, LookupError):
    """No such submission, or not one the person may see (the same answer)."""


class ReviewConflict(ReviewError):
    """The submission cannot be decided now: it was decided already, or replaced by a newer one."""


class InvalidDecision(ReviewError, ValueError):
    """The decision itself is incomplete or wrong (a rejection without a comment, an unknown onStale)."""


# --- reading ------------------------------------------------------------------------------------------


def visible_reviews(user):
    """Submissions of the pipelines ``user`` may use (pipelines.access), newest first."""
    queryset = PipelineReview.objects.select_related("pipeline", "author", "decided_by", "base_revision", "revision")
    return access.visible(user, queryset, via="pipeline")


def pending_for(user):
    """What waits for ``user``: every pending submission they may review, and their own pending ones."""
    pending = visible_reviews(user).filter(status=ReviewStatus.PENDING)
    if not user.has_perm(access.REVIEW_PERMISSION):
        pending = pending.filter(author=user)
    return pending.order_by("submitted_at", "pk")


def get_review(review_id, user) -> PipelineReview:
    """The submission, or ReviewNotFound when there is none or its pipeline is not ``user``'s to see."""
    try:
        review_id = int(review_id)
    except (TypeError, ValueError):
        raise ReviewNotFound(f"no submission '{str(review_id)[:40]}' (ids are numbers)") from None
    review = visible_reviews(user).filter(pk=review_id).first() if 0 < review_id < 2**63 else None
    if review is None:
        raise ReviewNotFound(f"no submission {review_id}")
    return review


def history(pipeline: Pipeline):
    """Every submission of ``pipeline``, newest first: who submitted, who decided, when, with comments."""
    return (pipeline.reviews.select_related("author", "decided_by", "base_revision", "revision")
            .order_by("-submitted_at", "-pk"))


def latest_of_author(pipeline: Pipeline, user) -> PipelineReview | None:
    """The author's newest submission that still concerns them: pending, or rejected after their last
    approval (what the editor shows them)."""
    latest = (pipeline.reviews.select_related("decided_by").filter(author=user)
              .exclude(status=ReviewStatus.SUPERSEDED).order_by("-submitted_at", "-pk").first())
    return latest if latest is not None and latest.status != ReviewStatus.APPROVED else None


def diff_of(review: PipelineReview) -> str:
    """What the submission changes. While it waits: against the pipeline's published revision (what
    approving it would change). Once decided: against the revision it was a change of (what it changed
    then; the published revision may be the submission itself by now)."""
    if review.status == ReviewStatus.PENDING:
        against, name = review.pipeline.current_revision, "published"
    else:
        against, name = review.base_revision, "its base"
    return diff_text(against.definition if against else None, review.definition,
                     f"r{against.number} ({name})" if against else "(nothing published)", "submission")


def changes(review: PipelineReview) -> list[str]:
    """The diff in words, by step, connection and setting ("step 'clean' changed"), against the same
    revision as :func:`diff_of`: a JSON diff's few lines of context rarely show which step they are in."""
    against = review.pipeline.current_revision if review.status == ReviewStatus.PENDING else review.base_revision
    old, new = (against.definition if against else {}), review.definition

    def steps(d):
        return {s.get("key"): s for s in d.get("steps") or [] if isinstance(s, dict)}

    before, after = steps(old), steps(new)
    out = [f"step '{k}' added" for k in after if k not in before]
    out += [f"step '{k}' removed" for k in before if k not in after]
    out += [f"step '{k}' changed" for k in after if k in before and after[k] != before[k]]
    if [k for k in before if k in after] != [k for k in after if k in before]:
        out.append("the order of the steps")
    if (old.get("edges") or []) != (new.get("edges") or []):
        out.append("the connections")
    settings = sorted(k for k in (set(old) | set(new)) - {"steps", "edges"} if old.get(k) != new.get(k))
    if settings:
        out.append("settings: " + ", ".join(settings))
    return out


def is_stale(review: PipelineReview) -> bool:
    return review.base_revision_id != review.pipeline.current_revision_id


def stale_diff(review: PipelineReview) -> str:
    """What was published since the submission's base revision (empty when it is not stale)."""
    current = review.pipeline.current_revision
    if not is_stale(review) or current is None:
        return ""
    base = review.base_revision
    return diff_text(base.definition if base else None, current.definition,
                     f"r{base.number}" if base else "(none)", f"r{current.number}")


def describe(review: PipelineReview) -> str:
    """Who decided the submission and when, in words (for conflicts and pages)."""
    if review.status == ReviewStatus.SUPERSEDED:
        return f"submission {review.pk} was replaced by a newer submission of its author"
    if review.status == ReviewStatus.PENDING:
        return f"submission {review.pk} waits for review"
    who = review.decided_by.get_username() if review.decided_by_id else "someone"
    when = timezone.localtime(review.decided_at).strftime("%Y-%m-%d %H:%M:%S") if review.decided_at else "?"
    verb = "approved" if review.status == ReviewStatus.APPROVED else "rejected"
    return f"submission {review.pk} was already {verb} by {who} at {when}"


# --- submitting ---------------------------------------------------------------------------------------


@transaction.atomic
def submit(pipeline: Pipeline, user, message: str, *, overwrite: bool = False) -> PipelineReview:
    """Submit ``user``'s draft for review: the checks of Publish (nothing typed left unapplied; StaleDraft
    when another revision was published since the draft began, unless ``overwrite``: then the submission
    is a change of the current revision, and its diff shows what it replaces). The draft stays the
    author's: they may go on editing, and a rejection leaves it for them to fix."""
    pipeline = Pipeline.objects.select_for_update().get(pk=pipeline.pk)
    draft = publishable_draft(pipeline, user, overwrite=overwrite)
    definition = normalized(draft.definition, pipeline.code) or draft.definition
    base = pipeline.current_revision if overwrite else draft.base_revision
    if base is not None and definition == base.definition:
        raise DefinitionError("your draft has no changes to submit")
    return _create(pipeline, user, definition, base, message)


@transaction.atomic
def submit_definition(pipeline: Pipeline, user, definition, message: str, *,
                      base: int | None = None) -> PipelineReview:
    """Submit ``definition`` as a change of revision ``base`` (default: the current one), as the API does.
    Refused (DefinitionError, every problem) when it is invalid, names what ``user`` may not use, or
    changes nothing."""
    pipeline = Pipeline.objects.select_for_update().get(pk=pipeline.pk)
    if not isinstance(definition, dict):
        raise DefinitionError(Problem("a pipeline definition must be a JSON object", field="definition"))
    if definition.get("code") not in (None, pipeline.code):
        raise DefinitionError(Problem(f"the definition's code '{definition.get('code')}' is not this pipeline's "
                                      f"('{pipeline.code}'); leave it out or make them equal", field="definition.code"))
    problems = problems_of({**definition, "code": pipeline.code})
    if problems:
        raise DefinitionError(problems)
    clean = normalized(definition, pipeline.code)
    unusable = access.unusable_references(user, clean)
    if unusable:
        raise DefinitionError([Problem(p, code="forbidden") for p in unusable])
    if base is None:
        base_revision = pipeline.current_revision
    else:
        base_revision = pipeline.revisions.filter(number=base).first()
        if base_revision is None:
            raise DefinitionError(Problem(f"there is no revision {base} of '{pipeline.code}'", field="baseRevision"))
    if base_revision is not None and clean == base_revision.definition:
        raise DefinitionError(Problem(f"the definition is revision {base_revision.number} as it is: nothing to "
                                      "review", field="definition"))
    return _create(pipeline, user, clean, base_revision, message)


def _create(pipeline: Pipeline, author, definition: dict, base: PipelineRevision | None,
            message: str) -> PipelineReview:
    now = timezone.now()
    PipelineReview.objects.filter(pipeline=pipeline, author=author, status=ReviewStatus.PENDING).update(
        status=ReviewStatus.SUPERSEDED, decided_at=now)
    review = PipelineReview.objects.create(pipeline=pipeline, author=author, definition=definition,
                                           base_revision=base, message=(message or "").strip()[:500])
    record("pipeline.review_submitted", f"pipeline:{pipeline.code}", user=author, review=review.pk,
           message=review.message)
    review_notices.queue(review, "submitted")
    return review


# --- deciding -----------------------------------------------------------------------------------------


def _require_decider(user, review: PipelineReview) -> None:
    if not user.has_perm(access.REVIEW_PERMISSION):
        raise PermissionDenied(f"you need the '{access.REVIEW_PERMISSION}' permission to approve or reject changes")
    if not access.may_decide(user, review):
        raise PermissionDenied(f"submission {review.pk} is your own: another reviewer must approve or reject it")


def _claim(review: PipelineReview, user, status: str, comment: str) -> None:
    """Mark the submission decided, if it is still pending (the once-only guarantee)."""
    claimed = PipelineReview.objects.filter(pk=review.pk, status=ReviewStatus.PENDING).update(
        status=status, decided_by=user, decided_at=timezone.now(), comment=comment)
    if not claimed:
        review.refresh_from_db()
        raise ReviewConflict(describe(review))


def approve(review_id, user, *, comment: str = "", on_stale: str = "refuse") -> PipelineReview:
    """Publish the submission as the pipeline's next revision (written as the author's; the review names
    the approver). StaleBase when another revision was published since its base (``on_stale``: refuse,
    merge or overwrite, as Publish and the API's save); DefinitionError when it no longer validates or names
    what its author may not use; ReviewConflict when it was decided already."""
    if on_stale not in ON_STALE:
        raise InvalidDecision(f"onStale must be one of {', '.join(ON_STALE)}, not '{str(on_stale)[:40]}'")
    comment = _comment(comment)
    review = get_review(review_id, user)
    _require_decider(user, review)
    with transaction.atomic():
        _claim(review, user, ReviewStatus.APPROVED, comment)
        pipeline = review.pipeline
        before = pipeline.current_revision_id
        author = review.author or user
        saved = save_from_base(review.definition, pipeline=pipeline, user=author, message=review.message or "reviewed",
                               base=review.base_revision.number if review.base_revision else None,
                               on_stale=on_stale, reviewed=True)
        published = saved.current_revision if saved.current_revision_id != before else None
        PipelineReview.objects.filter(pk=review.pk).update(revision=published)
        _carry_draft(review, published)
        record("pipeline.review_approved", f"pipeline:{pipeline.code}", user=user, review=review.pk,
               revision=published.number if published else None, author=author.get_username(), comment=comment)
        review_notices.queue(review, "decided")
    review.refresh_from_db()
    return review


def _carry_draft(review: PipelineReview, published: PipelineRevision | None) -> None:
    """The author's draft after approval: gone when it holds just what was approved; otherwise it goes on
    from the new revision (it began where the submission began, and the submission is now published)."""
    draft = PipelineDraft.objects.filter(pipeline=review.pipeline, user=review.author).first() if review.author else None
    if draft is None or published is None:
        return
    if not draft.pending and normalized(draft.definition, review.pipeline.code) == published.definition:
        draft.delete()
    elif draft.base_revision_id == review.base_revision_id:
        draft.base_revision = published
        draft.save(update_fields=["base_revision", "updated_at"])


def reject(review_id, user, comment: str) -> PipelineReview:
    """Send the submission back to its author with ``comment`` (required: the author needs to know why).
    Their draft is untouched; they change it and submit again."""
    comment = _comment(comment)
    if not comment:
        raise InvalidDecision("a rejection needs a comment: tell the author what to change")
    review = get_review(review_id, user)
    _require_decider(user, review)
    with transaction.atomic():
        _claim(review, user, ReviewStatus.REJECTED, comment)
        record("pipeline.review_rejected", f"pipeline:{review.pipeline.code}", user=user, review=review.pk,
               author=review.author.get_username() if review.author else None, comment=comment)
        review_notices.queue(review, "decided")
    review.refresh_from_db()
    return review


def _comment(comment) -> str:
    if comment is None:
        return ""
    if not isinstance(comment, str):
        raise InvalidDecision("the comment must be text")
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        raise InvalidDecision(f"the comment is {len(comment)} characters long; at most {MAX_COMMENT}")
    return comment


def may_switch_review_off(user, pipeline: Pipeline) -> bool:
    """Only a reviewer of the pipeline (or a superuser) may turn its review off: an author who could would
    publish around the review. A change without a person (the CLI, the demos) may."""
    return user is None or user.is_superuser or access.may_review(user, pipeline)


def set_requires_review(pipeline: Pipeline, value: bool, user) -> bool:
    """Switch review before publish on or off (an operating setting, applied at once, not in the draft);
    True when it changed. Anyone who may change the pipeline may turn it on; turning it off is
    :func:`may_switch_review_off`'s (PermissionDenied otherwise). Recorded in the audit trail."""
    if pipeline.requires_review == value:
        return False
    if not value and not may_switch_review_off(user, pipeline):
        raise PermissionDenied("only a reviewer of this pipeline (pipelines.review_pipeline) may turn its review "
                               "before publish off")
    pipeline.requires_review = value
    pipeline.save(update_fields=["requires_review", "updated_at"])
    record("pipeline.review_setting", f"pipeline:{pipeline.code}", user=user, requires_review=value)
    return True
