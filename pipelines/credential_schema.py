"""GraphQL for connections and secrets: the same functions and permissions as the REST API and the pages.

``Secret`` has no field that could hold a value; ``saveSecret(value:)`` takes one and answers the secret
without it. An invalid input is not an error of the request: ``ok`` is false and ``problems`` names each
field (as ``savePipeline`` does).
"""

from __future__ import annotations

import re

import graphene
from graphene.types.generic import GenericScalar

from pipelines import access, credentials
from pipelines.connection_checks import check_connection
from pipelines.credentials import CredentialError, InUse, UsageIndex
from pipelines.models import Connection, Secret
from pipelines.schema import ProblemType, error, require


class UsedByType(graphene.ObjectType):
    class Meta:
        name = "UsedBy"

    connections = graphene.List(graphene.NonNull(graphene.String), required=True)
    pipelines = graphene.List(graphene.NonNull(graphene.String), required=True)


class ConnectionType(graphene.ObjectType):
    class Meta:
        name = "Connection"

    code = graphene.String(required=True)
    name = graphene.String(required=True)
    type = graphene.String(required=True)
    type_label = graphene.String(required=True)
    config = GenericScalar(required=True, description="non-secret settings; secrets are named by ...SecretCode")
    secret_codes = graphene.List(graphene.NonNull(graphene.String), required=True)
    used_by = graphene.Field(UsedByType, required=True)
    updated_at = graphene.DateTime(required=True)

    @staticmethod
    def resolve_used_by(view, info):
        return {"connections": [], **view["used_by"]}


class SecretType(graphene.ObjectType):
    class Meta:
        name = "Secret"
        description = "A named secret. Its value is write-only: no field holds it."

    code = graphene.String(required=True)
    description = graphene.String(required=True)
    source = graphene.String(required=True, description="stored, environment or unset")
    env_name = graphene.String()
    is_set = graphene.Boolean(required=True)
    used_by = graphene.Field(UsedByType, required=True)
    updated_at = graphene.DateTime(required=True)


def _snake(view: dict) -> dict:
    """The interfaces' camelCase view with snake_case keys (graphene's default resolver reads those)."""
    return {re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), k): v for k, v in view.items()}


class CheckType(graphene.ObjectType):
    class Meta:
        name = "ConnectionCheck"

    ok = graphene.Boolean(required=True)
    message = graphene.String(required=True)
    elapsed_ms = graphene.Int(required=True)


def _connection_view(connection: Connection, index: UsageIndex | None = None) -> dict:
    index = index or UsageIndex.build()
    return _snake(credentials.connection_view(connection, index.of_connection(connection.code)))


def _secret_view(secret: Secret, index: UsageIndex | None = None) -> dict:
    index = index or UsageIndex.build()
    return _snake(credentials.secret_view(secret, index.of_secret(secret.code)))


class Query(graphene.ObjectType):
    connections = graphene.List(graphene.NonNull(ConnectionType), required=True)
    connection = graphene.Field(ConnectionType, code=graphene.String(required=True))
    secrets = graphene.List(graphene.NonNull(SecretType), required=True)
    secret = graphene.Field(SecretType, code=graphene.String(required=True))

    @staticmethod
    def resolve_connections(root, info):
        user = require(info, "pipelines.view_connection")
        index = UsageIndex.build()
        return [_connection_view(c, index) for c in access.visible(user, Connection.objects.all())]

    @staticmethod
    def resolve_connection(root, info, code):
        user = require(info, "pipelines.view_connection")
        found = access.visible(user, Connection.objects).filter(code=code).first()
        return _connection_view(found) if found else None

    @staticmethod
    def resolve_secrets(root, info):
        user = require(info, "pipelines.view_secret")
        index = UsageIndex.build()
        return [_secret_view(s, index) for s in access.visible(user, Secret.objects.all())]

    @staticmethod
    def resolve_secret(root, info, code):
        user = require(info, "pipelines.view_secret")
        found = access.visible(user, Secret.objects).filter(code=code).first()
        return _secret_view(found) if found else None


def _found(model, code: str, info):
    found = model.objects.filter(code=code).first()
    if found is None or not access.may(info.context.user, found):
        raise error(f"no {model._meta.verbose_name} '{code[:100]}'", "NOT_FOUND")
    return found


def _to_save(model, code: str, info):
    """What a save with this code changes (None: it creates one), once the user may add or change it."""
    existing = model.objects.filter(code=code).first()
    user = require(info, f"pipelines.{'change' if existing else 'add'}_{model._meta.model_name}")
    if existing is not None and not access.may(user, existing):
        raise error(f"no {model._meta.verbose_name} '{code[:100]}'", "NOT_FOUND")
    return existing


def _delete(model, code: str, info, delete) -> None:
    require(info, f"pipelines.delete_{model._meta.model_name}")
    try:
        delete(_found(model, code, info))
    except InUse as exc:
        raise error(str(exc), "CONFLICT") from None


class SaveConnection(graphene.Mutation):
    """Create a connection, or change the one with this code."""

    class Arguments:
        code = graphene.String(required=True)
        type = graphene.String(required=True)
        name = graphene.String(default_value="")
        config = GenericScalar(description="non-secret settings (default: {})")

    ok = graphene.Boolean(required=True)
    connection = graphene.Field(ConnectionType)
    problems = graphene.List(graphene.NonNull(ProblemType), required=True)

    @staticmethod
    def mutate(root, info, code, type, name="", config=None):  # noqa: A002 - the field's name
        existing = _to_save(Connection, code, info)
        try:
            saved = credentials.save_connection(code=code, type=type, name=name or "", config=config,
                                                existing=existing)
        except CredentialError as exc:
            return SaveConnection(ok=False, connection=None, problems=exc.as_list())
        return SaveConnection(ok=True, connection=_connection_view(saved), problems=[])


class DeleteConnection(graphene.Mutation):
    class Arguments:
        code = graphene.String(required=True)

    ok = graphene.Boolean(required=True)

    @staticmethod
    def mutate(root, info, code):
        _delete(Connection, code, info, credentials.delete_connection)
        return DeleteConnection(ok=True)


class TestConnection(graphene.Mutation):
    """Open the connection for real (SQL connect, HTTP GET, Redis PING, AMQP connect) and say how it went."""

    class Arguments:
        code = graphene.String(required=True)

    Output = CheckType

    @staticmethod
    def mutate(root, info, code):
        require(info, "pipelines.view_connection", "pipelines.change_connection")
        result = check_connection(_found(Connection, code, info))
        return CheckType(ok=result.ok, message=result.message, elapsed_ms=result.elapsed_ms)


class SaveSecret(graphene.Mutation):
    """Create a secret or change one. ``value`` is write-only (left out on a change: the value stays)."""

    class Arguments:
        code = graphene.String(required=True)
        value = graphene.String()
        description = graphene.String()

    ok = graphene.Boolean(required=True)
    secret = graphene.Field(SecretType)
    problems = graphene.List(graphene.NonNull(ProblemType), required=True)

    @staticmethod
    def mutate(root, info, code, value=None, description=None):
        existing = _to_save(Secret, code, info)
        try:
            saved = credentials.save_secret(code=code, value=value, description=description, existing=existing)
        except CredentialError as exc:
            return SaveSecret(ok=False, secret=None, problems=exc.as_list())
        return SaveSecret(ok=True, secret=_secret_view(saved), problems=[])


class DeleteSecret(graphene.Mutation):
    class Arguments:
        code = graphene.String(required=True)

    ok = graphene.Boolean(required=True)

    @staticmethod
    def mutate(root, info, code):
        _delete(Secret, code, info, credentials.delete_secret)
        return DeleteSecret(ok=True)


class Mutation(graphene.ObjectType):
    save_connection = SaveConnection.Field()
    delete_connection = DeleteConnection.Field()
    test_connection = TestConnection.Field()
    save_secret = SaveSecret.Field()
    delete_secret = DeleteSecret.Field()
