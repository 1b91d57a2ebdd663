"""REST API for pipelines and the adapter catalogue (the plumbing is :mod:`pipelines.rest_plumbing`).

The views are thin: they check permissions, read and check the request, call :mod:`pipelines.services`
(the same functions the pages and the CLI use) and shape the answer. A definition is validated by
``save_definition`` / ``problems_of`` and nothing else, so the API reports exactly what the editor does.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.db.models import ProtectedError, Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response

from datahub_project.page_cache import cached_page
from pipelines import access, registry, reviews, services
from pipelines.definition import problems_of
from pipelines.drafts import ON_STALE, StaleBase, save_from_base
from pipelines.errors import DefinitionError, Problem
from pipelines.models import Pipeline
from pipelines.rest_plumbing import (
    MAX_POSITIVE_INT,
    READ_ERRORS,
    WRITE_ERRORS,
    Body,
    Conflict,
    Invalid,
    PageQuery,
    ProblemSerializer,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    any_of,
    definition_invalid,
    endpoint,
    errors,
    page_of,
    paged,
    query_of,
    validated,
)

_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")

NUMBER_PARAMETER = OpenApiParameter("number", {"type": "integer", "minimum": 1}, OpenApiParameter.PATH,
                                    description="the revision's number")
CODE_PARAMETER = OpenApiParameter(
    "code", str, OpenApiParameter.PATH, description="the pipeline's code", pattern=_CODE.pattern
)


# --- pipelines ----------------------------------------------------------------------------------------


def pipeline_or_404(user, code: str, *, lock: bool = False) -> Pipeline:
    """The pipeline, or 404 when there is none or ``user`` may not use it (pipelines.access)."""
    if not _CODE.match(code):
        raise NotFound(f"no pipeline '{code[:100]}'")
    queryset = Pipeline.objects.select_for_update() if lock else Pipeline.objects.select_related("current_revision")
    pipeline = queryset.filter(code=code).first()
    if pipeline is None or not access.may(user, pipeline):
        raise NotFound(f"no pipeline '{code}'")
    return pipeline


def delete_pipeline(pipeline: Pipeline) -> None:
    """Delete a pipeline with its revisions. A pipeline that has run cannot be deleted: its runs keep the
    revisions they executed (disable it instead). (A service the pages may want too.)"""
    try:
        with transaction.atomic():
            pipeline.delete()
    except ProtectedError:
        raise Conflict(
            f"pipeline '{pipeline.code}' has runs, which keep the revisions they executed; "
            "it cannot be deleted (disable it instead: PATCH {\"enabled\": false})"
        ) from None


def set_pipeline_settings(pipeline: Pipeline, user=None, **values: Any) -> Pipeline:
    """Change the settings kept beside the definition (enabled, allow concurrent runs, requires review);
    no new revision."""
    fields = [k for k in ("enabled", "allow_concurrent_runs") if k in values]
    for name in fields:
        setattr(pipeline, name, values[name])
    if fields:
        pipeline.save(update_fields=[*fields, "updated_at"])
    if "requires_review" in values:
        reviews.set_requires_review(pipeline, values["requires_review"], user)
    return pipeline


def _unwrap(data: Any) -> Any:
    """Accept the plugin's export form ``{"definition": {...}, ...}`` as well as a bare definition
    (the same rule as ``import_pipeline`` reading a file)."""
    if isinstance(data, dict) and "definition" in data and "steps" not in data:
        return data["definition"]
    return data


class PipelineSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    enabled = serializers.BooleanField()
    allowConcurrentRuns = serializers.BooleanField(source="allow_concurrent_runs")
    requiresReview = serializers.BooleanField(source="requires_review",  # noqa: N815 - the JSON key
                                              help_text="changes are submitted for review, not saved")
    revision = serializers.IntegerField(source="current_revision.number", allow_null=True,
                                        help_text="the current revision's number")
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")


class PipelineDetailSerializer(PipelineSerializer):
    definition = serializers.DictField(source="current_revision.definition", allow_null=True,
                                       help_text="the definition JSON of the current revision")


class PipelineCreateSerializer(Body):
    definition = serializers.DictField(help_text="the definition JSON: {version, code, name, steps, edges, context}")
    code = StrictCharField(required=False, max_length=100,
                           help_text="the pipeline's code (default: the definition's code)")
    message = StrictCharField(required=False, allow_blank=True, max_length=500, default="",
                              help_text="what changed, kept with the revision")


class PipelineUpdateSerializer(Body):
    definition = serializers.DictField(help_text="the whole new definition JSON")
    message = StrictCharField(required=False, allow_blank=True, max_length=500, default="")
    baseRevision = StrictIntegerField(  # noqa: N815 - the JSON key
        required=False, min_value=1, max_value=MAX_POSITIVE_INT,
        help_text="the revision this definition is a change of; when a newer one was published meanwhile the "
                  "answer is 409 with the diff to it, unless onStale says otherwise (without it: saved as is)")
    onStale = serializers.ChoiceField(  # noqa: N815 - the JSON key
        choices=list(ON_STALE), required=False, default="refuse",
        help_text="refuse (409 with the diff), merge (both changes, 409 naming conflicts), overwrite (on purpose)")


class StaleSerializer(serializers.Serializer):
    detail = serializers.CharField()
    baseRevision = serializers.IntegerField(allow_null=True)  # noqa: N815 - the JSON key
    currentRevision = serializers.IntegerField()  # noqa: N815 - the JSON key
    diff = serializers.CharField(help_text="unified diff from baseRevision to currentRevision")
    conflicts = serializers.ListField(child=serializers.CharField(), help_text="what both changed (onStale=merge)")
    current = serializers.DictField(help_text="the current revision's definition")


class PipelineSettingsSerializer(Body):
    enabled = StrictBooleanField(required=False)
    allowConcurrentRuns = StrictBooleanField(required=False, source="allow_concurrent_runs")
    requiresReview = StrictBooleanField(required=False, source="requires_review")  # noqa: N815 - the JSON key


class RevisionSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    message = serializers.CharField()
    createdBy = serializers.CharField(source="created_by.username", allow_null=True)
    approvedBy = serializers.CharField(source="review.decided_by.username", allow_null=True, default=None,  # noqa: N815
                                       help_text="the reviewer who approved it (pipelines that require review)")
    createdAt = serializers.DateTimeField(source="created_at")


class RevisionDetailSerializer(RevisionSerializer):
    definition = serializers.DictField()


class ValidationResultSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    problems = ProblemSerializer(many=True)


class PipelineQuery(PageQuery):
    search = serializers.CharField(required=False, max_length=200, help_text="part of the code or name")


class ExportQuery(serializers.Serializer):
    revision = serializers.IntegerField(required=False, min_value=1, max_value=MAX_POSITIVE_INT,
                                        help_text="a revision number (default: the current one)")


class ImportQuery(serializers.Serializer):
    code = serializers.CharField(required=False, max_length=100,
                                 help_text="the pipeline's code (default: the definition's code)")


_DEFINITION_BODY = {"application/json": {
    "type": "object", "additionalProperties": True,
    "description": "a definition JSON, or the plugin's export {\"definition\": {...}}",
}}


@extend_schema(methods=["GET"], operation_id="pipelines_list", tags=["pipelines"],
               parameters=[PipelineQuery], responses={200: page_of(PipelineSerializer), **errors(*READ_ERRORS)},
               summary="List pipelines")
@extend_schema(methods=["POST"], operation_id="pipelines_create", tags=["pipelines"],
               request=PipelineCreateSerializer,
               responses={201: PipelineDetailSerializer, **errors(*WRITE_ERRORS, 409)},
               summary="Create a pipeline from a definition (validated as in the editor)")
@cached_page(api=True)
@endpoint(["GET", "POST"], GET="pipelines.view_pipeline", POST="pipelines.add_pipeline")
def pipelines(request):
    if request.method == "GET":
        query = query_of(request, PipelineQuery)
        queryset = access.visible(request.user, Pipeline.objects.select_related("current_revision")).order_by("code")
        if query.get("search"):
            queryset = queryset.filter(Q(code__icontains=query["search"]) | Q(name__icontains=query["search"]))
        return paged(request, queryset, PipelineSerializer, query)
    body = validated(PipelineCreateSerializer, request.data)
    definition = body["definition"]
    code = body.get("code") or definition.get("code")
    # Checked before saving for a clear answer; two creates racing end as one create and one update.
    if isinstance(code, str) and Pipeline.objects.filter(code=code).exists():
        raise Conflict(f"pipeline '{code}' already exists; change it with PUT /api/pipelines/{code}/")
    try:
        pipeline = services.save_definition(definition, user=request.user, code=body.get("code"),
                                            message=body["message"])
    except DefinitionError as exc:
        raise definition_invalid(exc) from None
    return Response(PipelineDetailSerializer(pipeline).data, status=status.HTTP_201_CREATED)


@extend_schema(methods=["GET"], operation_id="pipelines_retrieve", tags=["pipelines"],
               parameters=[CODE_PARAMETER], responses={200: PipelineDetailSerializer, **errors(401, 403, 404)},
               summary="A pipeline with its current definition")
@extend_schema(methods=["PUT"], operation_id="pipelines_update", tags=["pipelines"], parameters=[CODE_PARAMETER],
               request=PipelineUpdateSerializer,
               responses={200: PipelineDetailSerializer, **errors(*WRITE_ERRORS, 404),
                          409: OpenApiResponse(StaleSerializer, description="a newer revision than baseRevision "
                                               "was published: the diff to it (and, merging, the conflicts)")},
               summary="Replace the definition (a new revision when it changed)")
@extend_schema(methods=["PATCH"], operation_id="pipelines_settings", tags=["pipelines"],
               parameters=[CODE_PARAMETER], request=PipelineSettingsSerializer,
               responses={200: PipelineDetailSerializer, **errors(*WRITE_ERRORS, 404)},
               summary="Change settings kept beside the definition (enabled, allowConcurrentRuns, requiresReview)")
@extend_schema(methods=["DELETE"], operation_id="pipelines_destroy", tags=["pipelines"],
               parameters=[CODE_PARAMETER], responses={204: None, **errors(401, 403, 404, 409)},
               summary="Delete a pipeline that has never run")
@endpoint(["GET", "PUT", "PATCH", "DELETE"], GET="pipelines.view_pipeline", PUT="pipelines.change_pipeline",
          PATCH="pipelines.change_pipeline", DELETE="pipelines.delete_pipeline")
def pipeline(request, code: str):
    if request.method == "GET":
        return Response(PipelineDetailSerializer(pipeline_or_404(request.user, code)).data)
    if request.method == "DELETE":
        delete_pipeline(pipeline_or_404(request.user, code))
        return Response(status=status.HTTP_204_NO_CONTENT)
    if request.method == "PATCH":
        body = validated(PipelineSettingsSerializer, request.data)
        with transaction.atomic():
            found = set_pipeline_settings(pipeline_or_404(request.user, code, lock=True), request.user, **body)
        return Response(PipelineDetailSerializer(found).data)
    body = validated(PipelineUpdateSerializer, request.data)
    found = pipeline_or_404(request.user, code)
    given = body["definition"].get("code")
    if given is not None and given != found.code:
        raise Invalid([Problem(f"the definition's code '{given}' is not this pipeline's ('{found.code}'); "
                               "leave it out or make them equal", field="definition.code").as_dict()])
    try:
        saved = save_from_base(body["definition"], pipeline=found, user=request.user, message=body["message"],
                               base=body.get("baseRevision"), on_stale=body["onStale"])
    except DefinitionError as exc:
        raise definition_invalid(exc) from None
    except StaleBase as exc:
        return Response({"detail": str(exc), **exc.as_dict()}, status=status.HTTP_409_CONFLICT)
    return Response(PipelineDetailSerializer(saved).data)


@extend_schema(operation_id="pipelines_revisions", tags=["pipelines"], parameters=[CODE_PARAMETER, PageQuery],
               responses={200: page_of(RevisionSerializer), **errors(*READ_ERRORS, 404)},
               summary="A pipeline's revisions, newest first")
@endpoint(["GET"], GET="pipelines.view_pipeline")
def revisions(request, code: str):
    query = query_of(request, PageQuery)
    found = pipeline_or_404(request.user, code)
    queryset = found.revisions.select_related("created_by", "review__decided_by").order_by("-number")
    return paged(request, queryset, RevisionSerializer, query)


def _revision_number(number: int) -> int:
    if number > MAX_POSITIVE_INT:
        raise NotFound(f"no revision {number}")
    return number


@extend_schema(operation_id="pipelines_revision", tags=["pipelines"],
               parameters=[CODE_PARAMETER, NUMBER_PARAMETER],
               responses={200: RevisionDetailSerializer, **errors(401, 403, 404)}, summary="One revision")
@endpoint(["GET"], GET="pipelines.view_pipeline")
def revision(request, code: str, number: int):
    found = pipeline_or_404(request.user, code)
    rev = found.revisions.select_related("created_by", "review__decided_by").filter(number=_revision_number(number)).first()
    if rev is None:
        raise NotFound(f"pipeline '{code}' has no revision {number}")
    return Response(RevisionDetailSerializer(rev).data)


@extend_schema(operation_id="pipelines_restore", tags=["pipelines"], request=None,
               parameters=[CODE_PARAMETER, NUMBER_PARAMETER],
               responses={200: PipelineDetailSerializer, **errors(*WRITE_ERRORS, 404)},
               summary="Make an old revision current again (saved as a new revision)")
@endpoint(["POST"], POST="pipelines.change_pipeline")
def restore(request, code: str, number: int):
    found = pipeline_or_404(request.user, code)
    if not found.revisions.filter(number=_revision_number(number)).exists():
        raise NotFound(f"pipeline '{code}' has no revision {number}")
    try:
        saved = services.restore_revision(found, number, user=request.user)
    except DefinitionError as exc:  # an old revision that no longer validates (an adapter was removed)
        raise definition_invalid(exc) from None
    return Response(PipelineDetailSerializer(saved).data)


@extend_schema(operation_id="pipelines_validate", tags=["pipelines"], request=_DEFINITION_BODY,
               responses={200: ValidationResultSerializer, **errors(*WRITE_ERRORS)},
               summary="Check a definition without saving it: every problem, with its step and field")
@endpoint(["POST"], POST="pipelines.view_pipeline")
def validate(request):
    data = _unwrap(request.data)
    if not isinstance(data, dict):  # not a definition at all: bad input, not an invalid definition
        raise Invalid([Problem("a pipeline definition must be a JSON object", field="").as_dict()])
    problems = problems_of(data)
    return Response({"valid": not problems, "problems": [p.as_dict() for p in problems]})


@extend_schema(operation_id="pipelines_export", tags=["pipelines"], parameters=[CODE_PARAMETER, ExportQuery],
               responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="the definition JSON"),
                          **errors(*READ_ERRORS, 404)},
               summary="The definition JSON of the current (or a chosen) revision, as a file")
@endpoint(["GET"], GET="pipelines.view_pipeline")
def export(request, code: str):
    query = query_of(request, ExportQuery)
    found = pipeline_or_404(request.user, code)
    try:
        rev = services.get_revision(found, query.get("revision"))
    except DefinitionError as exc:
        raise NotFound(str(exc)) from None
    response = Response(rev.definition)
    response["Content-Disposition"] = f'attachment; filename="{found.code}.json"'
    return response


@extend_schema(operation_id="pipelines_import", tags=["pipelines"], parameters=[ImportQuery],
               request=_DEFINITION_BODY,
               responses={200: PipelineDetailSerializer, 201: PipelineDetailSerializer, **errors(*WRITE_ERRORS)},
               summary="Create or update a pipeline from a definition file's JSON (as `import_pipeline`)")
@endpoint(["POST"], POST=any_of("pipelines.add_pipeline", "pipelines.change_pipeline"))
def import_(request):
    query = query_of(request, ImportQuery)
    data = _unwrap(request.data)
    code = query.get("code") or (data.get("code") if isinstance(data, dict) else None)
    exists = isinstance(code, str) and Pipeline.objects.filter(code=code).exists()
    perm = "pipelines.change_pipeline" if exists else "pipelines.add_pipeline"
    if not request.user.has_perm(perm):
        what = "update an existing" if exists else "create a new"
        raise PermissionDenied(f"you need the '{perm}' permission to {what} pipeline")
    try:
        saved = services.save_definition(data, user=request.user, code=query.get("code"), message="imported (API)")
    except DefinitionError as exc:
        raise definition_invalid(exc) from None
    return Response(PipelineDetailSerializer(saved).data,
                    status=status.HTTP_200_OK if exists else status.HTTP_201_CREATED)


# --- the adapter catalogue ----------------------------------------------------------------------------


class AdapterSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=list(registry.ALL))
    code = serializers.CharField()
    name = serializers.CharField()
    category = serializers.CharField()
    description = serializers.CharField()
    schema = serializers.DictField(help_text="JSON schema of the config (or of an operator's args)")
    builtin = serializers.BooleanField()
    meta = serializers.DictField(help_text="other facts the plugin registered (scalars only)")


class AdapterQuery(serializers.Serializer):
    kind = serializers.ChoiceField(choices=list(registry.ALL), required=False,
                                   help_text="only this kind (default: every kind)")


_DESCRIBED = {"kind", "code", "name", "category", "description", "schema", "builtin"}


@extend_schema(operation_id="adapters_list", tags=["adapters"], parameters=[AdapterQuery],
               responses={200: AdapterSerializer(many=True), **errors(*READ_ERRORS)},
               summary="Every registered operator, extractor, loader, exporter, feed, sink and step type, "
                       "with its JSON schema (built-in and custom)")
@endpoint(["GET"], GET="pipelines.view_pipeline")
def adapters(request):
    query = query_of(request, AdapterQuery)
    kinds = [query["kind"]] if query.get("kind") else list(registry.ALL)
    out = []
    for kind in kinds:
        for entry in registry.ALL[kind]:
            described = entry.describe()
            described["meta"] = {k: v for k, v in described.items() if k not in _DESCRIBED}
            out.append(described)
    return Response(AdapterSerializer(out, many=True).data)


