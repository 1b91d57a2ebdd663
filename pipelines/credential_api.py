"""REST API for connections and secrets: ``/api/connections/`` and ``/api/secrets/``.

The same functions as the pages (:mod:`pipelines.credentials`) and Django's model permissions on
``pipelines.connection`` and ``pipelines.secret``. A secret's value may be sent (POST, PUT) and is never
answered: the answer says only where the value comes from (``source``) and who uses it. Testing a
connection (``POST .../test/``) needs change_connection and answers ``{ok, message, elapsedMs}`` with 200
whether or not the target answered: the test itself worked.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from pipelines import access, credentials
from pipelines.connection_checks import check_connection
from pipelines.credentials import CredentialError, InUse, UsageIndex
from pipelines.models import Connection, Secret
from pipelines.rest_plumbing import (
    WRITE_ERRORS,
    Body,
    Conflict,
    Invalid,
    PageQuery,
    StrictCharField,
    endpoint,
    errors,
    page_of,
    query_of,
    validated,
)

CODE = OpenApiParameter("code", str, OpenApiParameter.PATH, pattern=credentials.CODE.pattern)
READ = (401, 403)


def _found(model, code: str, user):
    found = model.objects.filter(code=code).first() if credentials.CODE.match(code) else None
    if found is None or not access.may(user, found):
        raise NotFound(f"no {model._meta.verbose_name} '{code[:100]}'")
    return found


def _saved(fn, **kwargs):
    try:
        return fn(**kwargs)
    except CredentialError as exc:
        problems = exc.as_list()
        if any(p["code"] == "conflict" for p in problems):
            raise Conflict(problems[0]["message"]) from None
        raise Invalid(problems) from None


class UsedBySerializer(serializers.Serializer):
    connections = serializers.ListField(child=serializers.CharField(), required=False)
    pipelines = serializers.ListField(child=serializers.CharField())


class ConnectionSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=Connection.TYPES)
    typeLabel = serializers.CharField()
    config = serializers.DictField(help_text="non-secret settings; secrets are named by ...SecretCode keys")
    secretCodes = serializers.ListField(child=serializers.CharField())
    usedBy = UsedBySerializer()
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()


class ConnectionBody(Body):
    code = StrictCharField(max_length=100, required=False, help_text="required when creating")
    name = StrictCharField(max_length=200, required=False, allow_blank=True, default="")
    type = serializers.ChoiceField(choices=Connection.TYPES)
    config = serializers.DictField(required=False, default=dict)


class SecretSerializer(serializers.Serializer):
    code = serializers.CharField()
    description = serializers.CharField()
    source = serializers.ChoiceField(choices=["stored", "environment", "unset"],
                                     help_text="where the value comes from; the value itself is never shown")
    envName = serializers.CharField(allow_null=True)
    isSet = serializers.BooleanField()
    usedBy = UsedBySerializer()
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()


class SecretBody(Body):
    code = StrictCharField(max_length=100, required=False, help_text="required when creating")
    description = StrictCharField(max_length=300, required=False, allow_blank=True)
    value = StrictCharField(required=False, allow_blank=True, trim_whitespace=False,
                            help_text="write-only; env:NAME reads the environment variable NAME. "
                            "Left out (or empty) on PUT: the stored value stays.")


class CheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField()
    elapsedMs = serializers.IntegerField()


def _page(request, queryset, view, usage_of) -> Response:
    """``{count, next, previous, results}`` as every list of the API answers."""
    query = query_of(request, PageQuery)
    limit, offset = query["limit"], query["offset"]
    count = queryset.count()
    index = UsageIndex.build()
    results = [view(item, usage_of(index, item.code)) for item in queryset[offset:offset + limit]]
    url = request.build_absolute_uri()
    following = replace_query_param(url, "offset", offset + limit) if offset + limit < count else None
    previous = replace_query_param(url, "offset", max(0, offset - limit)) if offset else None
    return Response({"count": count, "next": following, "previous": previous, "results": results})


def _connection_data(connection: Connection) -> dict:
    return credentials.connection_view(connection, UsageIndex.build().of_connection(connection.code))


def _secret_data(secret: Secret) -> dict:
    return credentials.secret_view(secret, UsageIndex.build().of_secret(secret.code))


@extend_schema(methods=["GET"], operation_id="connections_list", tags=["connections"],
               parameters=[PageQuery], responses={200: page_of(ConnectionSerializer), **errors(400, *READ)})
@extend_schema(methods=["POST"], operation_id="connections_create", tags=["connections"], request=ConnectionBody,
               responses={201: ConnectionSerializer, **errors(*WRITE_ERRORS, 409)})
@endpoint(["GET", "POST"], GET="pipelines.view_connection", POST="pipelines.add_connection")
def connections(request):
    if request.method == "GET":
        return _page(request, access.visible(request.user, Connection.objects.all()), credentials.connection_view, UsageIndex.of_connection)
    body = validated(ConnectionBody, request.data)
    if "code" not in body:
        raise Invalid([{"step": None, "field": "code", "message": "is required", "code": "required"}])
    saved = _saved(credentials.save_connection, **body)
    return Response(_connection_data(saved), status=status.HTTP_201_CREATED)


@extend_schema(methods=["GET"], operation_id="connections_retrieve", tags=["connections"], parameters=[CODE],
               responses={200: ConnectionSerializer, **errors(*READ, 404)})
@extend_schema(methods=["PUT"], operation_id="connections_update", tags=["connections"], parameters=[CODE],
               request=ConnectionBody, responses={200: ConnectionSerializer, **errors(*WRITE_ERRORS, 404)})
@extend_schema(methods=["DELETE"], operation_id="connections_destroy", tags=["connections"], parameters=[CODE],
               responses={204: None, **errors(*READ, 404, 409)})
@endpoint(["GET", "PUT", "DELETE"], GET="pipelines.view_connection", PUT="pipelines.change_connection",
          DELETE="pipelines.delete_connection")
def connection(request, code: str):
    found = _found(Connection, code, request.user)
    if request.method == "GET":
        return Response(_connection_data(found))
    if request.method == "DELETE":
        try:
            credentials.delete_connection(found)
        except InUse as exc:
            raise Conflict(str(exc)) from None
        return Response(status=status.HTTP_204_NO_CONTENT)
    body = validated(ConnectionBody, request.data)
    if body.pop("code", found.code) != found.code:
        raise Invalid([{"step": None, "field": "code", "message": "a connection's code cannot change",
                        "code": "invalid"}])
    saved = _saved(credentials.save_connection, code=found.code, existing=found, **body)
    return Response(_connection_data(saved))


@extend_schema(operation_id="connections_test", tags=["connections"], parameters=[CODE], request=None,
               responses={200: CheckSerializer, **errors(*READ, 404)})
@endpoint(["POST"], POST=("pipelines.view_connection", "pipelines.change_connection"))
def connection_test(request, code: str):
    return Response(check_connection(_found(Connection, code, request.user)).as_dict())


@extend_schema(methods=["GET"], operation_id="secrets_list", tags=["secrets"],
               parameters=[PageQuery], responses={200: page_of(SecretSerializer), **errors(400, *READ)})
@extend_schema(methods=["POST"], operation_id="secrets_create", tags=["secrets"], request=SecretBody,
               responses={201: SecretSerializer, **errors(*WRITE_ERRORS, 409)})
@endpoint(["GET", "POST"], GET="pipelines.view_secret", POST="pipelines.add_secret")
def secrets(request):
    if request.method == "GET":
        return _page(request, access.visible(request.user, Secret.objects.all()), credentials.secret_view, UsageIndex.of_secret)
    body = validated(SecretBody, request.data)
    if "code" not in body:
        raise Invalid([{"step": None, "field": "code", "message": "is required", "code": "required"}])
    saved = _saved(credentials.save_secret, **body)
    return Response(_secret_data(saved), status=status.HTTP_201_CREATED)


@extend_schema(methods=["GET"], operation_id="secrets_retrieve", tags=["secrets"], parameters=[CODE],
               responses={200: SecretSerializer, **errors(*READ, 404)})
@extend_schema(methods=["PUT"], operation_id="secrets_update", tags=["secrets"], parameters=[CODE],
               request=SecretBody, responses={200: SecretSerializer, **errors(*WRITE_ERRORS, 404)})
@extend_schema(methods=["DELETE"], operation_id="secrets_destroy", tags=["secrets"], parameters=[CODE],
               responses={204: None, **errors(*READ, 404, 409)})
@endpoint(["GET", "PUT", "DELETE"], GET="pipelines.view_secret", PUT="pipelines.change_secret",
          DELETE="pipelines.delete_secret")
def secret(request, code: str):
    found = _found(Secret, code, request.user)
    if request.method == "GET":
        return Response(_secret_data(found))
    if request.method == "DELETE":
        try:
            credentials.delete_secret(found)
        except InUse as exc:
            raise Conflict(str(exc)) from None
        return Response(status=status.HTTP_204_NO_CONTENT)
    body = validated(SecretBody, request.data)
    if body.pop("code", found.code) != found.code:
        raise Invalid([{"step": None, "field": "code", "message": "a secret's code cannot change", "code": "invalid"}])
    saved = _saved(credentials.save_secret, code=found.code, existing=found, **body)
    return Response(_secret_data(saved))
