"""Managing connections and secrets: the one set of functions the pages, REST and GraphQL call.

What is guaranteed, whichever interface is used:

- A secret's value goes in (``save_secret``) and never comes out: :func:`secret_view` and
  :func:`connection_view` are the only shapes the interfaces show, and neither holds a value. Only
  :func:`pipelines.secrets.resolve_secret` (the worker, and the connection test) reads one.
- A connection's config holds no credential: keys that name one (``password``, ``token``, ``apiKey``...)
  are refused with the key to use instead (``passwordSecretCode``), and every ``...SecretCode`` must name
  an existing secret.
- Something in use is not deleted: a secret named by a connection or a pipeline, or a connection named by a
  pipeline, is refused with who uses it (:class:`InUse`).
- Every problem names its field (:class:`CredentialError` carries :class:`pipelines.errors.Problem` s).

"Used by" is computed from the current revision of every pipeline and from the connections' configs: a
pipeline uses a secret directly (a ``...SecretCode`` / ``...SecretCodes`` key anywhere in its definition)
or through a connection it names (``connectionCode``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from pipelines.errors import DatahubError, Problem
from pipelines.models import Connection, Pipeline, Secret
from pipelines.secrets import set_secret_value

CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
CODE_HELP = "use 1 to 100 lower-case letters, digits, '-' and '_' (start with a letter or digit)"
CONNECTION_TYPES = dict(Connection.TYPES)
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,199}$")
MAX_SECRET_BYTES = 64 * 1024
MAX_CONFIG_KEYS = 100

# Config keys that would hold a credential in plain text, and the key that names a secret instead.
_INLINE_CREDENTIALS = {
    "password": "passwordSecretCode", "passwd": "passwordSecretCode", "pass": "passwordSecretCode",
    "token": "bearerTokenSecretCode", "bearertoken": "bearerTokenSecretCode",
    "accesstoken": "bearerTokenSecretCode", "apikey": "apiKeySecretCode", "secret": "a ...SecretCode key",
    "clientsecret": "a ...SecretCode key", "connectionstring": "connectionStringSecretCode",
    "privatekey": "a ...SecretCode key",
}
_URL_KEYS = ("url", "baseUrl", "amqpUrl", "endpoint")
# scheme://user:password@ (the user part kept, the password hidden or refused)
_URL_PASSWORD = re.compile(r"^([a-z][a-z0-9+.-]*://[^/@:]*):[^/@]*@")


class CredentialError(DatahubError):
    """A connection or secret cannot be saved as given; ``problems`` name each field at fault."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))

    def as_list(self) -> list[dict]:
        return [p.as_dict() for p in self.problems]


class InUse(DatahubError):
    """Refused: something still uses the connection or secret."""


# --- who uses what ------------------------------------------------------------------------------------


def _secret_refs(value: Any) -> Iterator[str]:
    """Every secret code named in a JSON value: by a key ending in ``SecretCode`` (a string) or
    ``SecretCodes`` (an object of header -> code, or a list of codes)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            for key, v in item.items():
                lowered = str(key).lower()
                if lowered.endswith("secretcode") and isinstance(v, str):
                    yield v
                elif lowered.endswith("secretcodes") and isinstance(v, Mapping):
                    yield from (c for c in v.values() if isinstance(c, str))
                elif lowered.endswith("secretcodes") and isinstance(v, list):
                    yield from (c for c in v if isinstance(c, str))
                else:
                    stack.append(v)
        elif isinstance(item, list):
            stack.extend(item)


def _connection_refs(value: Any) -> Iterator[str]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            for key, v in item.items():
                if key == "connectionCode" and isinstance(v, str):
                    yield v
                else:
                    stack.append(v)
        elif isinstance(item, list):
            stack.extend(item)


@dataclass
class Usage:
    """Who uses a connection or secret: connection codes and pipeline codes, sorted."""

    connections: list[str] = field(default_factory=list)
    pipelines: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.connections or self.pipelines)

    def describe(self) -> str:
        parts = []
        if self.connections:
            parts.append("connections " + ", ".join(self.connections))
        if self.pipelines:
            parts.append("pipelines " + ", ".join(self.pipelines))
        return " and ".join(parts)


@dataclass
class UsageIndex:
    """Who uses what, computed once for a page (two queries whatever the number of rows)."""

    secrets: dict[str, Usage]
    connections: dict[str, Usage]

    @classmethod
    def build(cls) -> UsageIndex:
        secrets: dict[str, Usage] = {}
        connections: dict[str, Usage] = {}
        secrets_of_connection: dict[str, set[str]] = {}
        for code, config in Connection.objects.values_list("code", "config"):
            refs = set(_secret_refs(config))
            secrets_of_connection[code] = refs
            for ref in refs:
                secrets.setdefault(ref, Usage()).connections.append(code)
        rows = Pipeline.objects.filter(current_revision__isnull=False).values_list(
            "code", "current_revision__definition")
        for code, definition in rows:
            used_secrets = set(_secret_refs(definition))
            for conn in set(_connection_refs(definition)):
                connections.setdefault(conn, Usage()).pipelines.append(code)
                used_secrets |= secrets_of_connection.get(conn, set())
            for ref in used_secrets:
                secrets.setdefault(ref, Usage()).pipelines.append(code)
        for usage in [*secrets.values(), *connections.values()]:
            usage.connections.sort()
            usage.pipelines.sort()
        return cls(secrets, connections)

    def of_secret(self, code: str) -> Usage:
        return self.secrets.get(code, Usage())

    def of_connection(self, code: str) -> Usage:
        return self.connections.get(code, Usage())


# --- what the interfaces show -------------------------------------------------------------------------


def secret_view(secret: Secret, usage: Usage) -> dict:
    """A secret as every interface shows it: never the value, nor any part of the ciphertext."""
    return {
        "code": secret.code,
        "description": secret.description,
        "source": "environment" if secret.env_name else ("stored" if secret.ciphertext else "unset"),
        "envName": secret.env_name or None,
        "isSet": secret.is_set,
        "usedBy": {"connections": usage.connections, "pipelines": usage.pipelines},
        "createdAt": secret.created_at,
        "updatedAt": secret.updated_at,
    }


def shown_config(value: Any) -> Any:
    """A connection config as the interfaces show it. Saving refuses credentials in a config, but one
    written before that rule (or by hand in the database) must not come back either: values of
    credential keys and URL passwords are shown as ``***``."""
    if isinstance(value, Mapping):
        out = {}
        for key, v in value.items():
            if _INLINE_CREDENTIALS.get(re.sub(r"[^a-z]", "", str(key).lower())):
                out[key] = "***"
            elif isinstance(v, str) and _URL_PASSWORD.match(v):
                out[key] = _URL_PASSWORD.sub(r"\1:***@", v, count=1)
            else:
                out[key] = shown_config(v)
        return out
    if isinstance(value, list):
        return [shown_config(v) for v in value]
    return value


def connection_view(connection: Connection, usage: Usage) -> dict:
    return {
        "code": connection.code,
        "name": connection.name,
        "type": connection.type,
        "typeLabel": CONNECTION_TYPES.get(connection.type, connection.type),
        "config": shown_config(connection.config),
        "secretCodes": sorted(set(_secret_refs(connection.config))),
        "usedBy": {"pipelines": usage.pipelines},
        "createdAt": connection.created_at,
        "updatedAt": connection.updated_at,
    }


# --- checks -------------------------------------------------------------------------------------------


def _check_code(code: Any, problems: list[Problem]) -> None:
    if not isinstance(code, str) or not CODE.match(code):
        problems.append(Problem(f"'{str(code)[:100]}' is not a valid code: {CODE_HELP}", field="code"))


def _check_config(config: Any, problems: list[Problem]) -> None:
    if not isinstance(config, Mapping):
        problems.append(Problem("must be a JSON object", field="config"))
        return
    if len(config) > MAX_CONFIG_KEYS:
        problems.append(Problem(f"has {len(config)} keys; at most {MAX_CONFIG_KEYS}", field="config"))
    for key, value in config.items():
        instead = _INLINE_CREDENTIALS.get(re.sub(r"[^a-z]", "", str(key).lower()))
        if instead:
            problems.append(Problem(f"a credential may not be written into a connection: store it as a secret "
                                    f"and name it with {instead}", field=f"config.{key}"))
        if key in _URL_KEYS and isinstance(value, str) and _URL_PASSWORD.match(value):
            problems.append(Problem("this URL holds a password: store it as a secret and name it with "
                                    "passwordSecretCode (or connectionStringSecretCode for the whole URL)",
                                    field=f"config.{key}"))
    known = set(Secret.objects.values_list("code", flat=True))
    for ref in sorted(set(_secret_refs(config))):
        if ref not in known:
            problems.append(Problem(f"names secret '{ref}', which does not exist (secrets: "
                                    f"{', '.join(sorted(known)[:20]) or 'none'})", field="config"))


# --- connections ----------------------------------------------------------------------------------------


def save_connection(*, code: str, type: str, name: str = "", config: Any = None,  # noqa: A002 - the model's field
                    existing: Connection | None = None) -> Connection:
    """Create a connection (``existing`` None) or change one (its code stays). CredentialError when invalid."""
    config = {} if config is None else config
    problems: list[Problem] = []
    if existing is None:
        _check_code(code, problems)
        if not problems and Connection.objects.filter(code=code).exists():
            problems.append(Problem(f"a connection '{code}' exists already", field="code", code="conflict"))
    if type not in CONNECTION_TYPES:
        problems.append(Problem(f"unknown type '{str(type)[:40]}' (types: {', '.join(CONNECTION_TYPES)})",
                                field="type"))
    if not isinstance(name, str) or len(name) > 200:
        problems.append(Problem("must be text of at most 200 characters", field="name"))
    _check_config(config, problems)
    if problems:
        raise CredentialError(problems)
    connection = existing or Connection(code=code)
    connection.type, connection.name, connection.config = type, name, dict(config)
    connection.save()
    return connection


def delete_connection(connection: Connection) -> None:
    with transaction.atomic():
        usage = UsageIndex.build().of_connection(connection.code)
        if usage:
            raise InUse(f"connection '{connection.code}' is used by {usage.describe()}; change them first")
        connection.delete()


# --- secrets --------------------------------------------------------------------------------------------


def save_secret(*, code: str, value: str | None = None, description: str | None = None,
                existing: Secret | None = None) -> Secret:
    """Create a secret or change one. ``value`` None (or "" on a change) keeps the stored value;
    ``env:NAME`` makes it a reference to that environment variable. The value is encrypted before it is
    saved; nothing returns it."""
    problems: list[Problem] = []
    if existing is None:
        _check_code(code, problems)
        if not problems and Secret.objects.filter(code=code).exists():
            problems.append(Problem(f"a secret '{code}' exists already", field="code", code="conflict"))
        if not value:
            problems.append(Problem("a new secret needs a value (or env:NAME)", field="value", code="required"))
    if value is not None and not isinstance(value, str):
        problems.append(Problem("must be text", field="value"))
    elif value:
        if len(value.encode("utf-8")) > MAX_SECRET_BYTES:
            problems.append(Problem(f"is larger than {MAX_SECRET_BYTES} bytes", field="value"))
        if "\x00" in value:
            problems.append(Problem("may not contain NUL characters", field="value"))
        if value.startswith("env:") and not ENV_NAME.match(value[4:]):
            problems.append(Problem("env: must be followed by an environment variable's name "
                                    "(letters, digits and _, not starting with a digit)", field="value"))
    if description is not None and (not isinstance(description, str) or len(description) > 300):
        problems.append(Problem("must be text of at most 300 characters", field="description"))
    if problems:
        raise CredentialError(problems)
    secret = existing or Secret(code=code)
    if description is not None:
        secret.description = description
    if value:
        set_secret_value(secret, value)
    secret.save()
    return secret


def delete_secret(secret: Secret) -> None:
    with transaction.atomic():
        usage = UsageIndex.build().of_secret(secret.code)
        if usage:
            raise InUse(f"secret '{secret.code}' is used by {usage.describe()}; change them first")
        secret.delete()
