"""What the wizard pages offer to read from and write to: the connections a person may use, a SQL
connection's tables and columns, the allowed Django models and their fields.

Tables and columns are read from the database's own catalogue through the same connection code the
``tableUpsert`` loader and the ``database`` extractor use (pipelines.adapters.sqlconn), read-only and with
a short timeout, so what the wizard offers is what the run will find. Every failure is a
:class:`TargetError` with a message for the page (a driver's text with secrets redacted), never a stack
trace.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines import access
from pipelines.adapters import sqlconn
from pipelines.adapters.django_models import resolve_model
from pipelines.connection_checks import redact
from pipelines.errors import DatahubError
from pipelines.models import Connection
from pipelines.secrets import resolve_secret

CATALOGUE_TIMEOUT_MS = 5000
FILE_CONNECTION_TYPES = ("FOLDER", "SFTP", "FTP")
HTTP_CONNECTION_TYPES = ("HTTP",)


class TargetError(DatahubError):
    def __init__(self, message: str, *, field: str):
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # int, num, bool, text, date, datetime, json, ...
    required: bool  # NOT NULL without a default: an insert must fill it


def connections(user, types: tuple[str, ...]) -> list[Connection]:
    return list(access.visible(user, Connection.objects.filter(type__in=types)).order_by("code"))


def connection(user, code: str, types: tuple[str, ...], *, field: str) -> Connection:
    conn = access.visible(user, Connection.objects.filter(type__in=types)).filter(code=code).first()
    if conn is None:
        raise TargetError(f"no connection '{code}' of type {' or '.join(types)} that you may use", field=field)
    return conn


def _open(conn: Connection, field: str) -> sqlconn.SqlConnection:
    used: list[str] = []

    def secret(code: str) -> str:
        value = resolve_secret(code)
        used.append(value)
        return value

    try:
        return sqlconn.connect({**conn.config, "code": conn.code, "type": conn.type,
                                "connectTimeoutMs": CATALOGUE_TIMEOUT_MS},
                               secret, read_only=True, query_timeout_ms=CATALOGUE_TIMEOUT_MS)
    except DatahubError as exc:
        raise TargetError(redact(str(exc), used), field=field) from None
    except Exception as exc:  # a driver's own error
        raise TargetError(redact(f"cannot open connection '{conn.code}': {type(exc).__name__}: {exc}", used),
                          field=field) from None


def sql_tables(conn: Connection) -> list[str]:
    """The tables of the connection's default schema, sorted."""
    db = _open(conn, "connection")
    try:
        return sorted(db.dialect.list_tables(db, db.default_schema()))
    except DatahubError as exc:
        raise TargetError(str(exc), field="connection") from None
    finally:
        db.close()


def sql_columns(conn: Connection, table: str) -> tuple[str, list[Field], list[tuple[str, ...]]]:
    """The table's catalogue name, its columns (in table order) and its unique keys; TargetError at
    ``table`` when there is no such table (with the nearest name)."""
    db = _open(conn, "table")
    try:
        found = db.table(table)
        fields = [Field(c.name, c.kind, required=not c.nullable and not c.has_default)
                  for c in found.columns.values()]
        return found.name, fields, db.unique_keys(found)
    except DatahubError as exc:
        raise TargetError(str(exc), field="table") from None
    finally:
        db.close()


def allowed_models() -> list[str]:
    """app_label.ModelName of every installed model DATAHUB_MODEL_ALLOWLIST admits."""
    from django.apps import apps

    out = []
    for model in apps.get_models():
        try:
            resolve_model(model._meta.label)
        except DatahubError:
            continue
        out.append(model._meta.label)
    return sorted(out)


_MODEL_KINDS = {"IntegerField": "int", "BigIntegerField": "int", "SmallIntegerField": "int",
                "PositiveIntegerField": "int", "PositiveSmallIntegerField": "int", "PositiveBigIntegerField": "int",
                "AutoField": "int", "BigAutoField": "int", "FloatField": "num", "DecimalField": "num",
                "BooleanField": "bool", "DateField": "date", "DateTimeField": "datetime", "JSONField": "json"}


def model_fields(label: str) -> tuple[list[Field], list[tuple[str, ...]]]:
    """The model's writable concrete fields and its unique fields (TargetError at ``model``)."""
    try:
        model = resolve_model(label)
    except DatahubError as exc:
        raise TargetError(str(exc), field="model") from None
    fields, uniques = [], []
    for f in model._meta.concrete_fields:
        if f.auto_created or not f.editable:
            continue
        name = f.attname
        required = not f.null and not f.blank and not f.has_default()
        fields.append(Field(name, _MODEL_KINDS.get(f.get_internal_type(), "text"), required))
        if f.unique:
            uniques.append((name,))
    for together in model._meta.unique_together:
        uniques.append(tuple(together))
    return fields, uniques


def sql_query_columns(conn: Connection, query: str) -> list[str]:
    """The columns a SELECT returns, asking for no rows (TargetError at ``query``)."""
    db = _open(conn, "query")
    try:
        return db.result_columns(sqlconn.check_select(query, db.dialect.name), [])
    except DatahubError as exc:
        raise TargetError(str(exc), field="query") from None
    finally:
        db.close()


def model_columns(label: str) -> list[str]:
    """Every concrete field of the model as the modelQuery extractor names it (foreign keys as name_id)."""
    try:
        model = resolve_model(label)
    except DatahubError as exc:
        raise TargetError(str(exc), field="model") from None
    return [f.attname for f in model._meta.concrete_fields]
