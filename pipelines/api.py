"""REST API for pipelines and the adapter catalogue, and the plumbing every API view shares.

The views are thin: they check permissions, read and check the request, call :mod:`pipelines.services`
(the same functions the pages and the CLI use) and shape the answer. A definition is validated by
``save_definition`` / ``problems_of`` and nothing else, so the API reports exactly what the editor does.

Rules every view follows (``endpoint`` below puts them in place):

- Authentication: a token (``Authorization: Token <key>``) or the browser's session (with CSRF on writes).
  Without either the answer is 401.
- Permissions are Django's global ones, checked before anything is looked up, so a user without them gets
  403 whether or not the object exists and learns nothing about it.
- Bodies are JSON objects of at most ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes; unknown fields, wrong types and
  unknown codes are refused with 4xx and ``{"detail": ..., "problems": [{step, field, message, code}]}``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.db.models import ProtectedError, Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import api_view, authentication_classes, parser_classes, permission_classes
from rest_framework.exceptions import APIException, NotFound, ParseError, PermissionDenied
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from datahub_project.lockout import LockoutTokenAuthentication
from pipelines import access, registry, services
from pipelines.definition import problems_of
from pipelines.drafts import ON_STALE, StaleBase, save_from_base
from pipelines.errors import DefinitionError, Problem
from pipelines.models import Pipeline

# --- shared plumbing (runs.api uses it too) -------------------------------------------------------------

# Larger integers than a database column holds are answered with 404/400 instead of an overflow (a 500).
MAX_ID = 2**63 - 1
MAX_POSITIVE_INT = 2**31 - 1
_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "the request body is too large"
    default_code = "too_large"


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "the request conflicts with the current state"
    default_code = "conflict"


class Invalid(APIException):
    """400 with every problem found, each naming its step and field (the editor's shape)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, problems: list[dict], detail: str | None = None):
        if detail is None:
            detail = problems[0]["message"] if len(problems) == 1 else f"{len(problems)} problems"
            if len(problems) == 1 and problems[0].get("field"):
                detail = f"{problems[0]['field']}: {detail}"
        # Set directly: APIException would turn the None of "step"/"field" into the string "None".
        self.detail = {"detail": detail, "problems": problems}

    def __str__(self) -> str:
        return str(self.detail["detail"])


def definition_invalid(exc: DefinitionError) -> Invalid:
    problems = exc.as_list()
    return Invalid(problems, "the definition is invalid: " + "; ".join(str(p) for p in exc.problems))


class JSONBody(JSONParser):
    """JSON, refused past ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes (also checked here in case DRF reads the body
    as a stream, past Django's limit), nested too deeply, or holding NUL characters (which PostgreSQL
    cannot store)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if limit is not None and declared and declared.isdigit() and int(declared) > limit:
            raise RequestTooLarge(f"the request body is larger than {limit} bytes")
        raw = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(raw) > limit:
            raise RequestTooLarge(f"the request body is larger than {limit} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("JSON parse error - the body is not UTF-8 text") from None
        try:
            data = json.loads(text, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if has_nul(data):
            raise ParseError("text may not contain NUL (\\u0000) characters")
        return data


def _no_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def has_nul(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class any_of(tuple):  # noqa: N801 - reads as a word in needs(POST=any_of(...))
    """Permissions of which one is enough (``needs`` otherwise asks for all of them)."""

    def __new__(cls, *perms: str):
        return super().__new__(cls, perms)


def needs(**by_method: str | tuple[str, ...] | any_of) -> type[BasePermission]:
    """A DRF permission class: each HTTP method needs these Django permissions.

    Checked before the view looks anything up, so a user without them cannot probe for what exists.
    A method not listed needs nothing beyond a login (DRF answers 405 for the ones the view lacks).
    """

    class Needs(BasePermission):
        def has_permission(self, request, view) -> bool:
            if not (request.user and request.user.is_authenticated):
                return False
            wanted = by_method.get("GET" if request.method == "HEAD" else request.method, ())
            if isinstance(wanted, str):
                wanted = (wanted,)
            if isinstance(wanted, any_of):
                ok = any(request.user.has_perm(p) for p in wanted)
                missing = " or ".join(f"'{p}'" for p in wanted)
            else:
                ok = request.user.has_perms(wanted)
                missing = ", ".join(f"'{p}'" for p in wanted if not request.user.has_perm(p))
            if not ok:
                self.message = f"you need the {missing} permission to do this"
            return ok

    return Needs


# Token first: its WWW-Authenticate header makes an anonymous request a 401 (DRF's session auth has none).
# Wrong tokens count toward the login lock-out.
AUTHENTICATION = [LockoutTokenAuthentication, SessionAuthentication]


def endpoint(methods: list[str], **perms):
    """``api_view`` with Datahub's authentication, JSON parser and permission rules."""

    def wrap(fn):
        @functools.wraps(fn)
        def view(request, *args, **kwargs):
            try:
                return fn(request, *args, **kwargs)
            except RequestDataTooBig:  # DRF reads request.body, which Django checks against the limit
                raise RequestTooLarge(
                    f"the request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes") from None

        view = permission_classes([needs(**perms)])(view)
        view = authentication_classes(AUTHENTICATION)(view)
        view = parser_classes([JSONBody])(view)
        return api_view(methods)(view)

    return wrap


class StrictCharField(serializers.CharField):
    """A string, and nothing DRF would turn into one (numbers, booleans)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class Body(serializers.Serializer):
    """A request body: a JSON object with only the fields declared here."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(str(k) for k in set(data) - set(self.fields))
            if unknown:
                known = ", ".join(self.fields) or "none"
                raise serializers.ValidationError(
                    {k: [f"unknown field (the fields are: {known})"] for k in unknown}, code="unknown_field"
                )
        return super().to_internal_value(data)


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict:
    """The serializer's validated data, or ``Invalid`` with one problem per field."""
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise Invalid(_problems(serializer.errors))
    return dict(serializer.validated_data)


def _problems(errors: Any, where: str = "") -> list[dict]:
    out: list[dict] = []
    if isinstance(errors, Mapping):
        for key, value in errors.items():
            if key == "non_field_errors":
                field = where
            elif isinstance(key, int):  # an item of a list field
                field = f"{where}[{key}]"
            else:
                field = f"{where}.{key}" if where else str(key)
            out.extend(_problems(value, field))
    elif isinstance(errors, list) and errors and all(isinstance(e, str) for e in errors):
        for e in errors:
            out.append(Problem(str(e), field=where or None, code=getattr(e, "code", None) or "invalid").as_dict())
    elif isinstance(errors, list):
        for i, item in enumerate(errors):
            if item:
                out.extend(_problems(item, f"{where}[{i}]"))
    else:
        out.append(Problem(str(errors), field=where or None).as_dict())
    return out


class PageQuery(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=500, default=50, help_text="at most 500")
    offset = serializers.IntegerField(min_value=0, max_value=MAX_POSITIVE_INT, default=0)


def query_of(request, serializer_class: type[serializers.Serializer]) -> dict:
    """Query parameters checked by a serializer (also what documents them); bad values are a 400."""
    if any("\x00" in k or any("\x00" in v for v in vs) for k, vs in request.query_params.lists()):
        raise ParseError("query parameters may not contain NUL characters")
    # DRF reads an empty value as "not given" (so ?limit= would mean the default); the schema says a
    # parameter is sent with a value or not at all.
    fields = serializer_class().fields
    empty = [k for k, vs in request.query_params.lists()
             if k in fields and "" in vs and not getattr(fields[k], "allow_blank", False)]
    if empty:
        raise Invalid([Problem("must not be empty; leave the parameter out instead", field=k, code="blank").as_dict()
                       for k in sorted(empty)])
    return validated(serializer_class, request.query_params)


def paged(request, queryset, serializer_class, query: dict) -> Response:
    limit, offset = query["limit"], query["offset"]
    count = queryset.count()
    items = list(queryset[offset : offset + limit])
    url = request.build_absolute_uri()
    following = replace_query_param(url, "offset", offset + limit) if offset + limit < count else None
    previous = None
    if offset > 0:
        previous = (replace_query_param(url, "offset", max(0, offset - limit)) if offset - limit > 0
                    else remove_query_param(url, "offset"))
    data = serializer_class(items, many=True, context={"request": request}).data
    return Response({"count": count, "next": following, "previous": previous, "results": data})


def page_of(item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The paged-list serializer of ``item`` (for the OpenAPI schema)."""
    name = item.__name__.removesuffix("Serializer") + "PageSerializer"
    return type(name, (serializers.Serializer,), {
        "count": serializers.IntegerField(),
        "next": serializers.CharField(allow_null=True),
        "previous": serializers.CharField(allow_null=True),
        "results": item(many=True),
        "__module__": item.__module__,
    })


class ProblemSerializer(serializers.Serializer):
    step = serializers.CharField(allow_null=True, help_text="the step key, when the problem is in a step")
    field = serializers.CharField(allow_null=True, help_text="the field path, e.g. config.operators[0].op")
    message = serializers.CharField()
    code = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    problems = ProblemSerializer(many=True, required=False)


_ERROR_TEXT = {
    400: "Bad input: the problems name each field (and step) at fault.",
    401: "Not logged in: send `Authorization: Token <key>` or a session cookie.",
    403: "Logged in, but without the permission this needs.",
    404: "No such object.",
    409: "Conflicts with the current state (the message says why).",
    413: "The body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE.",
    415: "The body must be JSON (Content-Type: application/json).",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {c: OpenApiResponse(ErrorSerializer, description=_ERROR_TEXT[c]) for c in codes}


READ_ERRORS = (400, 401, 403)
WRITE_ERRORS = (400, 401, 403, 413, 415)

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


def set_pipeline_settings(pipeline: Pipeline, **values: Any) -> Pipeline:
    """Change the settings kept beside the definition (enabled, allow concurrent runs); no new revision."""
    fields = [k for k in ("enabled", "allow_concurrent_runs") if k in values]
    for name in fields:
        setattr(pipeline, name, values[name])
    if fields:
        pipeline.save(update_fields=[*fields, "updated_at"])
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


class RevisionSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    message = serializers.CharField()
    createdBy = serializers.CharField(source="created_by.username", allow_null=True)
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
               summary="Change settings kept beside the definition (enabled, allowConcurrentRuns)")
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
            found = set_pipeline_settings(pipeline_or_404(request.user, code, lock=True), **body)
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
    queryset = found.revisions.select_related("created_by").order_by("-number")
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
    rev = found.revisions.select_related("created_by").filter(number=_revision_number(number)).first()
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

