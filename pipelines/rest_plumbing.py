"""The plumbing every REST view shares (pipelines, connections and secrets, runs, run logs, gates).

``endpoint`` puts the rules in place; ``Body``/``validated``, ``query_of``, ``paged``/``page_of`` read and
answer; ``Invalid``, ``Conflict`` and ``errors`` say what went wrong, in the schema too. The endpoints
themselves live with their app (:mod:`pipelines.api`, :mod:`pipelines.credential_api`, :mod:`runs.api`,
:mod:`runs.log_api`, :mod:`gates.api`).

Rules every view follows:

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
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import api_view, authentication_classes, parser_classes, permission_classes
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from datahub_project.lockout import LockoutTokenAuthentication
from pipelines.errors import DefinitionError, Problem

# Larger integers than a database column holds are answered with 404/400 instead of an overflow (a 500).
MAX_ID = 2**63 - 1
MAX_POSITIVE_INT = 2**31 - 1


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
    """A page of ``queryset`` (or of a list already read, e.g. the consumers) as ``{count, next, previous,
    results}``."""
    limit, offset = query["limit"], query["offset"]
    count = len(queryset) if isinstance(queryset, list) else queryset.count()
    items = list(queryset[offset : offset + limit])
    url = request.build_absolute_uri()
    following = replace_query_param(url, "offset", offset + limit) if offset + limit < count else None
    previous = None
    if offset > 0:
        previous = (replace_query_param(url, "offset", max(0, offset - limit)) if offset - limit > 0
                    else remove_query_param(url, "offset"))
    data = serializer_class(items, many=True, context={"request": request}).data
    return Response({"count": count, "next": following, "previous": previous, "results": data})


@functools.cache
def page_of(item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The paged-list serializer of ``item`` (for the OpenAPI schema); one class per item, however many
    endpoints list it (two classes of one name would be two clashing schema components)."""
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
