"""REST API for review before publish (:mod:`pipelines.reviews`): submit, list, look, approve, reject.

``POST /api/pipelines/<code>/reviews/`` submits a definition for review (``pipelines.change_pipeline``);
``GET`` there is the pipeline's review history. ``GET /api/reviews/`` lists what waits (every pending
submission for a reviewer, one's own otherwise); ``GET /api/reviews/<id>/`` is one submission with its
diff against the published revision; ``POST .../approve/`` and ``.../reject/`` decide it
(``pipelines.review_pipeline``, checked before the submission is looked up). Answers: 404 for an unknown
submission or one on a pipeline the person may not use, 403 for deciding one's own, 409 for one decided
already or (approving) a stale base, with the diff as the save's 409 has it; 400 names the field.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from pipelines import reviews
from pipelines.api import CODE_PARAMETER, PipelineDetailSerializer, StaleSerializer, pipeline_or_404
from pipelines.drafts import ON_STALE, StaleBase
from pipelines.errors import DefinitionError, Problem
from pipelines.models import ReviewStatus
from pipelines.rest_plumbing import (
    MAX_POSITIVE_INT,
    READ_ERRORS,
    WRITE_ERRORS,
    Body,
    Conflict,
    Invalid,
    PageQuery,
    StrictCharField,
    StrictIntegerField,
    definition_invalid,
    endpoint,
    errors,
    page_of,
    paged,
    query_of,
    validated,
)

REVIEW = "pipelines.review_pipeline"
ID_PARAMETER = OpenApiParameter("review_id", {"type": "integer", "minimum": 1}, OpenApiParameter.PATH,
                                description="the submission's id")


class ReviewSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    pipeline = serializers.CharField(source="pipeline.code")
    status = serializers.ChoiceField(choices=ReviewStatus.choices)
    author = serializers.CharField(source="author.username", allow_null=True, default=None)
    message = serializers.CharField(help_text="the author's message")
    baseRevision = serializers.IntegerField(source="base_revision.number", allow_null=True, default=None,  # noqa: N815
                                            help_text="the revision the submission is a change of")
    submittedAt = serializers.DateTimeField(source="submitted_at")  # noqa: N815
    decidedBy = serializers.CharField(source="decided_by.username", allow_null=True, default=None)  # noqa: N815
    decidedAt = serializers.DateTimeField(source="decided_at", allow_null=True)  # noqa: N815
    comment = serializers.CharField(help_text="the reviewer's comment")
    revision = serializers.IntegerField(source="revision.number", allow_null=True, default=None,
                                        help_text="the revision an approval published")
    stale = serializers.SerializerMethodField(help_text="a newer revision than baseRevision was published")

    def get_stale(self, review) -> bool:
        return review.status == ReviewStatus.PENDING and reviews.is_stale(review)


class ReviewDetailSerializer(ReviewSerializer):
    definition = serializers.DictField(help_text="the definition as submitted")
    diff = serializers.SerializerMethodField(help_text="unified diff to the submission from the published revision "
                                                       "(while pending) or from baseRevision (once decided)")
    changes = serializers.SerializerMethodField(help_text="the diff in words: steps added, removed or changed, the "
                                                          "connections, settings")
    staleDiff = serializers.SerializerMethodField(  # noqa: N815
        help_text="what was published since baseRevision (empty when it is current)")

    def get_diff(self, review) -> str:
        return reviews.diff_of(review)

    def get_changes(self, review) -> list[str]:
        return reviews.changes(review)

    def get_staleDiff(self, review) -> str:  # noqa: N802
        return reviews.stale_diff(review) if review.status == ReviewStatus.PENDING else ""


class SubmitSerializer(Body):
    definition = serializers.DictField(help_text="the whole new definition JSON")
    message = StrictCharField(required=False, allow_blank=True, max_length=500, default="",
                              help_text="what changed and why, for the reviewer and the revision")
    baseRevision = StrictIntegerField(  # noqa: N815 - the JSON key
        required=False, min_value=1, max_value=MAX_POSITIVE_INT,
        help_text="the revision this definition is a change of (default: the current one)")


class ApproveSerializer(Body):
    comment = StrictCharField(required=False, allow_blank=True, max_length=reviews.MAX_COMMENT, default="")
    onStale = serializers.ChoiceField(  # noqa: N815 - the JSON key
        choices=list(ON_STALE), required=False, default="refuse",
        help_text="when a newer revision than the submission's base was published: refuse (409 with the diff), "
                  "merge (409 naming conflicts), overwrite (on purpose)")


class ReviewRejectSerializer(Body):
    comment = StrictCharField(max_length=reviews.MAX_COMMENT, help_text="what the author should change")


class ReviewListQuery(PageQuery):
    status = serializers.ChoiceField(choices=ReviewStatus.choices, required=False,
                                     help_text="only submissions in this state (default: PENDING, what waits)")


class HistoryQuery(PageQuery):
    status = serializers.ChoiceField(choices=ReviewStatus.choices, required=False)


class ApprovedSerializer(serializers.Serializer):
    review = ReviewSerializer()
    pipeline = PipelineDetailSerializer()


def _found(review_id: int, user):
    try:
        return reviews.get_review(review_id, user)
    except reviews.ReviewNotFound as exc:
        raise NotFound(str(exc)) from None


@extend_schema(methods=["GET"], operation_id="pipelines_reviews", tags=["reviews"],
               parameters=[CODE_PARAMETER, HistoryQuery],
               responses={200: page_of(ReviewSerializer), **errors(*READ_ERRORS, 404)},
               summary="A pipeline's review history: every submission, newest first")
@extend_schema(methods=["POST"], operation_id="pipelines_review_submit", tags=["reviews"],
               parameters=[CODE_PARAMETER], request=SubmitSerializer,
               responses={201: ReviewDetailSerializer, **errors(*WRITE_ERRORS, 404)},
               summary="Submit a definition for review (it is published when a reviewer approves it)")
@endpoint(["GET", "POST"], GET="pipelines.view_pipeline", POST="pipelines.change_pipeline")
def pipeline_reviews(request, code: str):
    found = pipeline_or_404(request.user, code)
    if request.method == "GET":
        query = query_of(request, HistoryQuery)
        queryset = reviews.history(found)
        if query.get("status"):
            queryset = queryset.filter(status=query["status"])
        return paged(request, queryset.select_related("pipeline"), ReviewSerializer, query)
    body = validated(SubmitSerializer, request.data)
    try:
        review = reviews.submit_definition(found, request.user, body["definition"], body["message"],
                                           base=body.get("baseRevision"))
    except DefinitionError as exc:
        raise definition_invalid(exc) from None
    return Response(ReviewDetailSerializer(review).data, status=status.HTTP_201_CREATED)


@extend_schema(operation_id="reviews_list", tags=["reviews"], parameters=[ReviewListQuery],
               responses={200: page_of(ReviewSerializer), **errors(*READ_ERRORS)},
               summary="Submissions waiting for review (a reviewer sees all they may, others their own)")
@endpoint(["GET"], GET="pipelines.view_pipeline")
def review_list(request):
    query = query_of(request, ReviewListQuery)
    wanted = query.get("status", ReviewStatus.PENDING)
    if wanted == ReviewStatus.PENDING:
        queryset = reviews.pending_for(request.user)
    else:
        queryset = reviews.visible_reviews(request.user).filter(status=wanted).order_by("-submitted_at", "-pk")
    return paged(request, queryset, ReviewSerializer, query)


@extend_schema(operation_id="reviews_retrieve", tags=["reviews"], parameters=[ID_PARAMETER],
               responses={200: ReviewDetailSerializer, **errors(401, 403, 404)},
               summary="One submission, with its diff against the published revision")
@endpoint(["GET"], GET="pipelines.view_pipeline")
def review(request, review_id: int):
    return Response(ReviewDetailSerializer(_found(review_id, request.user)).data)


@extend_schema(operation_id="reviews_approve", tags=["reviews"], parameters=[ID_PARAMETER], request=ApproveSerializer,
               responses={200: ApprovedSerializer, **errors(*WRITE_ERRORS, 404),
                          409: OpenApiResponse(StaleSerializer, description="decided already, or a newer revision "
                                               "than the submission's base was published: the diff to it")},
               summary="Approve a submission: it is published as the pipeline's next revision")
@endpoint(["POST"], POST=REVIEW)
def approve(request, review_id: int):
    body = validated(ApproveSerializer, request.data)
    try:
        decided = reviews.approve(_found(review_id, request.user).pk, request.user, comment=body["comment"],
                                  on_stale=body["onStale"])
    except reviews.ReviewConflict as exc:
        raise Conflict(str(exc)) from None
    except StaleBase as exc:
        return Response({"detail": f"not approved: {exc}", **exc.as_dict()}, status=status.HTTP_409_CONFLICT)
    except DefinitionError as exc:
        raise definition_invalid(exc) from None
    except reviews.InvalidDecision as exc:
        raise Invalid([Problem(str(exc), field="onStale").as_dict()]) from None
    decided.pipeline.refresh_from_db()
    return Response({"review": ReviewSerializer(decided).data,
                     "pipeline": PipelineDetailSerializer(decided.pipeline).data})


@extend_schema(operation_id="reviews_reject", tags=["reviews"], parameters=[ID_PARAMETER], request=ReviewRejectSerializer,
               responses={200: ReviewSerializer, **errors(*WRITE_ERRORS, 404, 409)},
               summary="Reject a submission with a comment: it goes back to its author")
@endpoint(["POST"], POST=REVIEW)
def reject(request, review_id: int):
    body = validated(ReviewRejectSerializer, request.data)
    try:
        decided = reviews.reject(_found(review_id, request.user).pk, request.user, body["comment"])
    except reviews.ReviewConflict as exc:
        raise Conflict(str(exc)) from None
    except reviews.InvalidDecision as exc:
        raise Invalid([Problem(str(exc), field="comment").as_dict()]) from None
    return Response(ReviewSerializer(decided).data)
