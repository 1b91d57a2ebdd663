"""GraphQL for review before publish (:mod:`pipelines.reviews`), composed into the root schema.

``pendingReviews`` (what waits: every pending submission for a reviewer, one's own otherwise),
``review(id)`` (one submission with its diff against the published revision), ``pipelineReviews(code)``
(the review history); ``submitPipelineReview``, ``approvePipelineReview`` and ``rejectPipelineReview``.
As in the REST API: the permission is checked before anything is looked up; an unknown submission is
NOT_FOUND, deciding one's own FORBIDDEN, one decided already CONFLICT, a rejection without a comment
BAD_INPUT. An invalid definition and a stale base are answers, not errors (``ok: false`` with
``problems``, and ``stale`` with the diff), as ``savePipeline`` has them.
"""

from __future__ import annotations

import graphene
from django.core.exceptions import PermissionDenied
from graphene.types.generic import GenericScalar

from pipelines import access, reviews
from pipelines.drafts import StaleBase
from pipelines.errors import DefinitionError
from pipelines.models import Pipeline, ReviewStatus
from pipelines.schema import OnStale, PipelineType, ProblemType, StaleType, error, require, window

REVIEW = access.REVIEW_PERMISSION


class PipelineReviewType(graphene.ObjectType):
    class Meta:
        name = "PipelineReview"
        description = "A change submitted for review, and its decision."

    id = graphene.ID(required=True)
    pipeline = graphene.String(required=True, description="the pipeline's code")
    status = graphene.String(required=True, description="PENDING, APPROVED, REJECTED or SUPERSEDED")
    author = graphene.String()
    message = graphene.String(required=True, description="the author's message")
    base_revision = graphene.Int(description="the revision the submission is a change of")
    submitted_at = graphene.DateTime(required=True)
    decided_by = graphene.String()
    decided_at = graphene.DateTime()
    comment = graphene.String(required=True, description="the reviewer's comment")
    revision = graphene.Int(description="the revision an approval published")
    stale = graphene.Boolean(required=True, description="pending, and a newer revision than its base was published")
    definition = GenericScalar(required=True, description="the definition as submitted")
    diff = graphene.String(required=True, description="unified diff to the submission from the published revision "
                                                      "(while pending) or from baseRevision (once decided)")
    stale_diff = graphene.String(required=True, description="what was published since its base (when stale)")
    changes = graphene.List(graphene.NonNull(graphene.String), required=True,
                            description="the diff in words: steps added, removed or changed, connections, settings")

    @staticmethod
    def resolve_pipeline(review, info):
        return review.pipeline.code

    @staticmethod
    def resolve_author(review, info):
        return review.author.get_username() if review.author_id else None

    @staticmethod
    def resolve_decided_by(review, info):
        return review.decided_by.get_username() if review.decided_by_id else None

    @staticmethod
    def resolve_base_revision(review, info):
        return review.base_revision.number if review.base_revision_id else None

    @staticmethod
    def resolve_revision(review, info):
        return review.revision.number if review.revision_id else None

    @staticmethod
    def resolve_stale(review, info):
        return review.status == ReviewStatus.PENDING and reviews.is_stale(review)

    @staticmethod
    def resolve_diff(review, info):
        return reviews.diff_of(review)

    @staticmethod
    def resolve_changes(review, info):
        return reviews.changes(review)

    @staticmethod
    def resolve_stale_diff(review, info):
        return reviews.stale_diff(review) if review.status == ReviewStatus.PENDING else ""


def _found(review_id, user):
    try:
        return reviews.get_review(review_id, user)
    except reviews.ReviewNotFound as exc:
        raise error(str(exc), "NOT_FOUND") from None


class Query(graphene.ObjectType):
    pending_reviews = graphene.List(graphene.NonNull(PipelineReviewType), required=True,
                                    description="submissions waiting for review, oldest first")
    review = graphene.Field(PipelineReviewType, id=graphene.ID(required=True))
    pipeline_reviews = graphene.List(graphene.NonNull(PipelineReviewType), required=True,
                                     code=graphene.String(required=True), limit=graphene.Int(default_value=50),
                                     offset=graphene.Int(default_value=0),
                                     description="a pipeline's review history, newest first")

    @staticmethod
    def resolve_pending_reviews(root, info):
        return list(reviews.pending_for(require(info, "pipelines.view_pipeline"))[:500])

    @staticmethod
    def resolve_review(root, info, id):  # noqa: A002 - the GraphQL argument's name
        return _found(id, require(info, "pipelines.view_pipeline"))

    @staticmethod
    def resolve_pipeline_reviews(root, info, code, limit, offset):
        user = require(info, "pipelines.view_pipeline")
        pipeline = access.visible(user, Pipeline.objects).filter(code=code).first()
        if pipeline is None:
            raise error(f"no pipeline '{code[:100]}'", "NOT_FOUND")
        return reviews.history(pipeline).select_related("pipeline")[window(limit, offset)]


class SubmitPipelineReview(graphene.Mutation):
    """Submit a definition for review; it is published when a reviewer approves it."""

    class Arguments:
        code = graphene.String(required=True)
        definition = GenericScalar(required=True)
        message = graphene.String(default_value="", description="what changed and why")
        base_revision = graphene.Int(description="the revision this is a change of (default: the current one)")

    ok = graphene.Boolean(required=True)
    review = graphene.Field(PipelineReviewType)
    problems = graphene.List(graphene.NonNull(ProblemType), required=True)

    @staticmethod
    def mutate(root, info, code, definition, message="", base_revision=None):
        user = require(info, "pipelines.view_pipeline", "pipelines.change_pipeline")
        pipeline = access.visible(user, Pipeline.objects).filter(code=code).first()
        if pipeline is None:
            raise error(f"no pipeline '{code[:100]}'", "NOT_FOUND")
        try:
            review = reviews.submit_definition(pipeline, user, definition, (message or "")[:500], base=base_revision)
        except DefinitionError as exc:
            return SubmitPipelineReview(ok=False, review=None, problems=exc.as_list())
        return SubmitPipelineReview(ok=True, review=review, problems=[])


class ReviewDecision(graphene.ObjectType):
    ok = graphene.Boolean(required=True)
    review = graphene.Field(PipelineReviewType, required=True)
    pipeline = graphene.Field(PipelineType, description="the pipeline, at its new revision after an approval")
    problems = graphene.List(graphene.NonNull(ProblemType), required=True)
    stale = graphene.Field(StaleType, description="approving was refused: a newer revision than its base exists")


def _decide(info, review_id, decide) -> ReviewDecision:
    user = require(info, REVIEW)  # before the lookup: who may not decide learns nothing about submissions
    review = _found(review_id, user)
    try:
        decided = decide(review, user)
    except reviews.ReviewConflict as exc:
        raise error(str(exc), "CONFLICT") from None
    except reviews.InvalidDecision as exc:
        raise error(str(exc), "BAD_INPUT") from None
    except PermissionDenied as exc:
        raise error(str(exc), "FORBIDDEN") from None
    except DefinitionError as exc:
        return ReviewDecision(ok=False, review=review, problems=exc.as_list())
    except StaleBase as exc:
        stale = StaleType(base_revision=exc.base.number if exc.base else None,
                          current_revision=exc.current.number, diff=exc.diff, conflicts=exc.conflicts)
        return ReviewDecision(ok=False, review=review, stale=stale, problems=[
            {"step": None, "field": "onStale", "message": f"not approved: {exc}", "code": "stale"}])
    pipeline = Pipeline.objects.select_related("current_revision").get(pk=decided.pipeline_id)
    return ReviewDecision(ok=True, review=decided, pipeline=pipeline, problems=[])


class ApprovePipelineReview(graphene.Mutation):
    """Approve a submission: it becomes the pipeline's next revision (the author's, approved by you)."""

    class Arguments:
        id = graphene.ID(required=True)
        comment = graphene.String(default_value="")
        on_stale = OnStale(default_value="refuse", description="when a newer revision than its base exists")

    Output = ReviewDecision

    @staticmethod
    def mutate(root, info, id, comment="", on_stale="refuse"):  # noqa: A002
        on_stale = getattr(on_stale, "value", on_stale)
        return _decide(info, id, lambda review, user: reviews.approve(review.pk, user, comment=comment,
                                                                      on_stale=on_stale))


class RejectPipelineReview(graphene.Mutation):
    """Reject a submission with a comment: it goes back to its author."""

    class Arguments:
        id = graphene.ID(required=True)
        comment = graphene.String(required=True)

    Output = ReviewDecision

    @staticmethod
    def mutate(root, info, id, comment):  # noqa: A002
        return _decide(info, id, lambda review, user: reviews.reject(review.pk, user, comment))


class Mutation(graphene.ObjectType):
    submit_pipeline_review = SubmitPipelineReview.Field()
    approve_pipeline_review = ApprovePipelineReview.Field()
    reject_pipeline_review = RejectPipelineReview.Field()
