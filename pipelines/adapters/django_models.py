"""Django model adapters: the ``modelQuery`` extractor and the ``modelUpsert`` and ``modelDelete`` loaders
(the plugin's ``vendureQuery`` and entity loaders, for any Django model). [pure at import]

Django is imported inside the functions, so the engine can import this module without Django configured.

Which models: only those listed in ``settings.DATAHUB_MODEL_ALLOWLIST`` (``"app_label.ModelName"`` or
``"app_label.*"``; default empty, so nothing until it is configured). ``pipelines.Secret`` is refused
whatever the list says: secret values are read only by the worker's secret resolver.

Field names (filters, fields, orderBy, lookupFields, fieldMapping) are checked against the model's concrete
fields, by name or by column attribute (``owner`` or ``owner_id`` for a foreign key); a wrong one is a
ConfigError with the nearest name.

Values read (``modelQuery``) are JSON-safe: dates and times as ISO 8601 strings, Decimals as strings (no
digit lost; ``toNumber`` makes numbers of them), UUIDs as strings, durations as ISO 8601 durations, a foreign
key as the related primary key.

Values written (``modelUpsert``) are coerced per field with the field's ``to_python`` after the plugin's
loader rules: booleans take true/false in any case (and yes/no, 1/0); numbers take numeric strings; a blank
string for a non-text field counts as missing; objects and arrays go only into JSONFields, never
stringified. Then ``full_clean`` runs: on a new object every field, on an existing one the fields the record
sets. A ValidationError fails that record alone, with the field names and messages. Every record is
written inside its own savepoint within one transaction per batch, so one bad record rolls back nothing
but itself. Primary keys that the database assigns and non-editable fields (``auto_now``) are not written.

Why one module of this size: the three adapters share resolve_model and the model and field checks (which
models are allowed, which fields exist); each adapter is a short class over them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipelines.adapters.base import Extractor, Writer, WriteResult
from pipelines.adapters.sqlconn import json_value, nearest
from pipelines.errors import ConfigError, StepError
from pipelines.records import MISSING, Batch, Record, path
from pipelines.registry import extractors, loaders

ALWAYS_REFUSED = frozenset({"pipelines.secret"})

OPERATORS = {
    # operator -> (lookup suffix, negate, value shape)
    "eq": ("exact", False, "one"), "ne": ("exact", True, "one"),
    "gt": ("gt", False, "one"), "gte": ("gte", False, "one"),
    "lt": ("lt", False, "one"), "lte": ("lte", False, "one"),
    "in": ("in", False, "list"), "notIn": ("in", True, "list"),
    "contains": ("contains", False, "text"),
    "startswith": ("startswith", False, "text"), "startsWith": ("startswith", False, "text"),
    "endswith": ("endswith", False, "text"), "endsWith": ("endswith", False, "text"),
    "isNull": ("isnull", False, "bool"),
}

_MODEL_SCHEMA = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$",
                 "description": "app_label.ModelName; it must be listed in DATAHUB_MODEL_ALLOWLIST."}
_LOOKUP_SCHEMA = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "uniqueItems": True,
                  "description": "Fields that find a record's object (together they should be unique)."}


# --- models and fields -----------------------------------------------------------------------------------


def resolve_model(label: Any, *, field: str = "model"):
    """The model class for ``app_label.ModelName`` if the allow-list admits it, else ConfigError."""
    from django.apps import apps
    from django.conf import settings

    if not isinstance(label, str) or label.count(".") != 1:
        raise ConfigError(f"model must be 'app_label.ModelName', got {label!r}", field=field)
    allowed = [str(a) for a in (getattr(settings, "DATAHUB_MODEL_ALLOWLIST", None) or [])]
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        known = [m._meta.label for m in apps.get_models() if _allowed(m._meta.label_lower, allowed)]
        hint = nearest(label, known)
        raise ConfigError(f"no model '{label}'" + (f"; did you mean '{hint}'?" if hint else ""), field=field) from None
    key = model._meta.label_lower
    if key in ALWAYS_REFUSED:
        raise ConfigError(f"model '{model._meta.label}' cannot be used by a pipeline", field=field)
    if not _allowed(key, allowed):
        listed = ", ".join(allowed) if allowed else "it is empty"
        raise ConfigError(f"model '{model._meta.label}' is not in DATAHUB_MODEL_ALLOWLIST ({listed}); add "
                          f"'{model._meta.label}' or '{model._meta.app_label}.*' to allow it", field=field)
    return model


def _allowed(label_lower: str, allowed: list[str]) -> bool:
    app = label_lower.split(".")[0]
    return any(a.lower() == label_lower or a.lower() == f"{app}.*" for a in allowed)


def _fields(model) -> dict[str, Any]:
    """Concrete fields by name and by attname (``owner`` and ``owner_id``)."""
    out = {}
    for f in model._meta.concrete_fields:
        out[f.name] = f
        out[f.attname] = f
    return out


def _field(model, name: Any, where: str):
    fields = _fields(model)
    if isinstance(name, str) and name in fields:
        return fields[name]
    names = [f.name for f in model._meta.concrete_fields]
    hint = nearest(str(name), list(fields))
    text = f"'{name}' is not a field of {model._meta.label}"
    text += f"; did you mean '{hint}'?" if hint else f" (fields: {', '.join(names)})"
    raise ConfigError(text, field=where)


def _validation_text(exc) -> str:
    from django.core.exceptions import NON_FIELD_ERRORS

    if hasattr(exc, "error_dict"):
        parts = []
        for name, errors in exc.message_dict.items():
            label = "record" if name == NON_FIELD_ERRORS else name
            parts.append(f"{label}: {' '.join(errors)}")
        return "; ".join(parts)
    return " ".join(exc.messages)


def _aware(value):
    from datetime import datetime

    from django.conf import settings
    from django.utils import timezone

    if isinstance(value, datetime) and settings.USE_TZ and timezone.is_naive(value):
        return timezone.make_aware(value, timezone.get_default_timezone())
    return value


# --- modelQuery --------------------------------------------------------------------------------------------


@extractors.register(
    "modelQuery",
    name="Django model query",
    category="database",
    builtin=True,
    description="Objects of an allowed Django model as records, filtered and ordered (the plugin's vendureQuery).",
    schema={
        "type": "object",
        "properties": {
            "model": _MODEL_SCHEMA,
            "filters": {
                "type": "array",
                "description": "Conditions, all of which must hold.",
                "items": {
                    "type": "object",
                    "properties": {
                        "field": {"type": "string", "minLength": 1, "description": "A concrete field of the model."},
                        "operator": {"enum": list(OPERATORS), "default": "eq",
                                     "description": "How the field is compared with value."},
                        "value": {"description": "The value (a list for in/notIn, true/false for isNull)."},
                    },
                    "required": ["field"],
                    "additionalProperties": False,
                },
            },
            "fields": {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True,
                       "description": "Fields to read (default: every concrete field, foreign keys as name_id)."},
            "orderBy": {"type": ["string", "array"], "items": {"type": "string", "minLength": 1},
                        "description": "Field name(s), '-' first for descending (default: the primary key)."},
            "batchSize": {"type": "integer", "minimum": 1, "maximum": 100_000,
                          "description": "Objects read per database round trip and per batch (default: the "
                          "pipeline batch size)."},
        },
        "required": ["model"],
        "additionalProperties": False,
    },
)
class ModelQueryExtractor(Extractor):
    """Reads a Django model; see the module docstring."""

    def batches(self) -> Iterator[Batch]:
        from django.core.exceptions import ValidationError
        from django.db import DatabaseError

        cfg = self.config
        model = resolve_model(cfg.get("model"))
        names = cfg.get("fields") or [f.attname for f in model._meta.concrete_fields]
        for i, name in enumerate(names):
            _field(model, name, f"fields.{i}")
        qs = model._default_manager.all()
        for i, item in enumerate(cfg.get("filters") or []):
            field = _field(model, item.get("field"), f"filters.{i}.field")
            operator = item.get("operator", "eq")
            if operator not in OPERATORS:
                raise ConfigError(f"unknown operator '{operator}'", field=f"filters.{i}.operator")
            suffix, negate, shape = OPERATORS[operator]
            try:
                value = _filter_value(field, shape, item.get("value"))
            except (ValidationError, ValueError, TypeError) as exc:
                text = _validation_text(exc) if isinstance(exc, ValidationError) else str(exc)
                raise ConfigError(f"filter on '{item['field']}': {text}", field=f"filters.{i}.value") from None
            lookup = {f"{item['field']}__{suffix}": value}
            qs = qs.exclude(**lookup) if negate else qs.filter(**lookup)
        order = cfg.get("orderBy") or ["pk"]
        order = [order] if isinstance(order, str) else list(order)
        for i, name in enumerate(order):
            if name.lstrip("-") != "pk":
                _field(model, name.lstrip("-"), f"orderBy.{i}" if isinstance(cfg.get("orderBy"), list) else "orderBy")
        qs = qs.order_by(*order).values(*names)
        if self.ctx.record_limit is not None:
            qs = qs[: self.ctx.record_limit]
        size = int(cfg.get("batchSize") or self.ctx.batch_size)
        batch: Batch = []
        try:
            for row in qs.iterator(chunk_size=size):
                batch.append({k: json_value(v) for k, v in row.items()})
                if len(batch) >= size:
                    yield batch
                    batch = []
                    if self.ctx.cancelled.is_set():
                        return
        except DatabaseError as exc:
            raise StepError(f"reading {model._meta.label} failed: {exc}", retryable=_retryable(exc)) from None
        if batch:
            yield batch


def _filter_value(field, shape: str, value: Any) -> Any:
    if shape == "bool":
        if not isinstance(value, bool):
            raise ValueError("isNull takes true or false")
        return value
    if shape == "text":
        if value is None or isinstance(value, dict | list):
            raise ValueError("takes a text value")
        return str(value)
    if shape == "list":
        if not isinstance(value, list):
            raise ValueError("takes a list of values")
        return [_aware(_to_python(field, v)) for v in value]
    return _aware(_to_python(field, value))


def _to_python(field, value):
    target = getattr(field, "target_field", None) if field.is_relation else None
    return (target or field).to_python(value)


def _retryable(exc) -> bool:
    from django.db import InterfaceError, OperationalError

    return isinstance(exc, OperationalError | InterfaceError)


# --- modelUpsert and modelDelete --------------------------------------------------------------------------

_TRUE = frozenset({"true", "t", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "off"})


class _RecordProblem(Exception):
    """This record cannot be written (no row to update, several rows match, ...)."""


class _ModelWriter(Writer):
    """What modelUpsert and modelDelete share: the model, its writable fields, per-record savepoints."""

    strategies: tuple[str, ...] = ()

    def __init__(self, config: dict, ctx):
        super().__init__(config, ctx)
        self.strategy = config.get("strategy", self.strategies[-1] if self.strategies else "DELETE")
        self.lookup_names = list(config.get("lookupFields") or [])
        self.mapping = config.get("fieldMapping")
        self.model = None
        self._ignored: set[str] = set()
        self._warned = False

    def _open(self) -> None:
        if self.model is not None:
            return
        model = resolve_model(self.config.get("model"))
        self.lookup = [_field(model, n, f"lookupFields.{i}") for i, n in enumerate(self.lookup_names)]
        fields = _fields(model)
        pk = model._meta.pk
        lookup_set = set(self.lookup)
        # What a record may set: editable fields, but not a primary key the database assigns (an AutoField)
        # unless the lookup is by it.
        generated_pk = isinstance(pk, _auto_field_types())
        self.writable = {k: f for k, f in fields.items()
                         if f in lookup_set or (f.editable and not (f is pk and generated_pk))}
        if self.mapping:
            self.paths = []
            for name, p in self.mapping.items():
                f = _field(model, name, f"fieldMapping.{name}")
                if f not in self.writable.values():
                    raise ConfigError(f"field '{name}' of {model._meta.label} cannot be written", field=f"fieldMapping.{name}")
                self.paths.append((f, path(p)))
        self.model = model

    def finish(self) -> None:
        self._open()  # bad config shows even when no record came

    def write(self, batch: Batch) -> WriteResult:
        from django.core.exceptions import ValidationError
        from django.db import DatabaseError, DataError, IntegrityError, transaction

        self._open()
        failed: list[tuple[Record, str]] = []
        written = 0
        try:
            with transaction.atomic():
                for record in batch:
                    if self.ctx.cancelled.is_set():
                        break
                    try:
                        with transaction.atomic():  # a savepoint: a failure undoes this record only
                            self._write_one(record)
                        written += 1
                    except _RecordProblem as exc:
                        failed.append((record, str(exc)))
                    except ValidationError as exc:
                        failed.append((record, _validation_text(exc)))
                    except (IntegrityError, DataError) as exc:
                        failed.append((record, _db_text(exc)))
        except DatabaseError as exc:
            raise StepError(f"writing {self.model._meta.label} failed: {exc}", retryable=_retryable(exc)) from None
        if self._ignored and not self._warned:
            self._warned = True
            shown = ", ".join(sorted(self._ignored)[:10])
            self.ctx.warn(f"record keys that are not writable fields of {self.model._meta.label} are ignored: {shown}"
                          + (" ..." if len(self._ignored) > 10 else ""))
        return WriteResult(written=written, failed=failed)

    # Values.
    def _values(self, record: Record) -> dict:
        """Field -> coerced value for what the record sets (ValidationError on a bad value)."""
        if self.mapping:
            raw = [(f, p.get(record)) for f, p in self.paths]
        else:
            raw = []
            for key, value in record.items():
                f = self.writable.get(key)
                if f is None:
                    self._ignored.add(key)
                else:
                    raw.append((f, value))
        return _coerce_all(raw)

    def _find(self, values: dict) -> list:
        missing = [f.name for f in self.lookup if values.get(f) is None]
        if missing:
            raise _RecordProblem(f"lookup field {', '.join(repr(m) for m in missing)} is missing or null")
        criteria = {f.attname: values[f] for f in self.lookup}
        return list(self.model._default_manager.filter(**criteria)[:2])

    def _describe(self, values: dict) -> str:
        return ", ".join(f"{f.name} = {values.get(f)!r}" for f in self.lookup)

    def _write_one(self, record: Record) -> None:
        raise NotImplementedError


def _coerce_all(raw: list) -> dict:
    """Field -> coerced value of each (field, value) pair whose value is there; a ValidationError naming
    every field whose value does not fit."""
    from django.core.exceptions import ValidationError

    values, errors = {}, {}
    for f, value in raw:
        if value is MISSING:
            continue
        try:
            coerced = _coerce(f, value)
        except ValidationError as exc:
            errors[f.name] = exc.messages
            continue
        if coerced is not MISSING:
            values[f] = coerced
    if errors:
        raise ValidationError(errors)
    return values


def _coerce(field, value):
    """A record value as ``field`` holds it (see the module docstring); MISSING to leave the field alone."""
    from django.core.exceptions import ValidationError
    from django.db import models

    if value is None:
        return None
    text_field = isinstance(field, models.CharField | models.TextField)
    if isinstance(field, models.JSONField):
        return value
    if isinstance(value, dict | list):
        raise ValidationError(f"takes a single value, got {'an object' if isinstance(value, dict) else 'an array'}")
    if isinstance(value, str) and not value.strip() and not text_field:
        return MISSING
    if isinstance(field, models.BooleanField):
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int | float) and not isinstance(value, bool) and value in (0, 1):
            return bool(value)
    if text_field and isinstance(value, bool):
        value = "true" if value else "false"
    return _aware(_to_python(field, value))


def _assign(obj, values: dict) -> None:
    for f, value in values.items():
        setattr(obj, f.attname, value)


def _auto_field_types() -> tuple:
    from django.db import models

    return (models.AutoField, models.BigAutoField, models.SmallAutoField)


def _db_text(exc) -> str:
    """A database error's message; ProtectedError and RestrictedError carry theirs first."""
    from django.db.models import ProtectedError, RestrictedError

    if isinstance(exc, ProtectedError | RestrictedError):
        return str(exc.args[0])
    return " ".join(str(exc).split())


@loaders.register(
    "modelUpsert",
    name="Django model upsert",
    category="database",
    builtin=True,
    description="Creates or updates objects of an allowed Django model, found by lookup fields, validated with "
    "full_clean (the plugin's entity loaders).",
    schema={
        "type": "object",
        "properties": {
            "model": _MODEL_SCHEMA,
            "lookupFields": _LOOKUP_SCHEMA,
            "strategy": {"enum": ["CREATE", "UPDATE", "UPSERT"], "default": "UPSERT",
                         "description": "CREATE makes new objects (an existing lookup match fails the record); "
                         "UPDATE changes existing ones (no match fails it); UPSERT does either."},
            "fieldMapping": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1},
                             "description": "Field -> record path. Default: every record key that is a writable "
                             "field (other keys are ignored, with one warning)."},
        },
        "required": ["model"],
        "additionalProperties": False,
    },
)
class ModelUpsertLoader(_ModelWriter):
    strategies = ("CREATE", "UPDATE", "UPSERT")

    def __init__(self, config: dict, ctx):
        super().__init__(config, ctx)
        if self.strategy not in self.strategies:
            raise ConfigError(f"strategy must be one of {', '.join(self.strategies)}", field="strategy")
        if self.strategy != "CREATE" and not self.lookup_names:
            raise ConfigError(f"lookupFields is required for strategy {self.strategy}", field="lookupFields")

    def _write_one(self, record: Record) -> None:
        values = self._values(record)
        found = self._find(values) if self.lookup else []
        if len(found) > 1:
            raise _RecordProblem(f"more than one {self.model._meta.object_name} has {self._describe(values)}")
        if found and self.strategy == "CREATE":
            raise _RecordProblem(f"a {self.model._meta.object_name} with {self._describe(values)} already exists")
        if not found and self.strategy == "UPDATE":
            raise _RecordProblem(f"no {self.model._meta.object_name} has {self._describe(values)}")
        if found:
            obj = found[0]
            _assign(obj, values)
            provided = {f.name for f in values}
            obj.full_clean(exclude=[f.name for f in self.model._meta.fields if f.name not in provided])
            obj.save()
        else:
            obj = self.model()
            _assign(obj, values)
            obj.full_clean()
            obj.save(force_insert=True)


@loaders.register(
    "modelDelete",
    name="Django model delete",
    category="database",
    builtin=True,
    description="Deletes the object of an allowed Django model that a record's lookup fields find.",
    schema={
        "type": "object",
        "properties": {
            "model": _MODEL_SCHEMA,
            "lookupFields": _LOOKUP_SCHEMA,
        },
        "required": ["model", "lookupFields"],
        "additionalProperties": False,
    },
)
class ModelDeleteLoader(_ModelWriter):
    """Deletes exactly one object per record: none or several matching fails the record."""

    def _values(self, record: Record) -> dict:
        return _coerce_all([(f, record.get(f.name, record.get(f.attname, MISSING))) for f in self.lookup])

    def _write_one(self, record: Record) -> None:
        values = self._values(record)
        found = self._find(values)
        if not found:
            raise _RecordProblem(f"no {self.model._meta.object_name} has {self._describe(values)}")
        if len(found) > 1:
            raise _RecordProblem(f"more than one {self.model._meta.object_name} has {self._describe(values)}; "
                                 "nothing deleted")
        found[0].delete()
