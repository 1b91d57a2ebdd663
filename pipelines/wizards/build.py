"""The wizards' answers, checked and turned into an ordinary pipeline definition. [pure]

An import becomes ``[TRIGGER] -> EXTRACT -> TRANSFORM -> LOAD`` and an export ``[TRIGGER] -> EXTRACT ->
TRANSFORM -> EXPORT``, linear (no edges), with readable step keys, so the editor shows and edits it like
any pipeline. The TRANSFORM step holds only catalogue operators: ``map`` (target field <- source column,
dropping the rest), then per field the chosen clean-up (``trim``, ``stripHtml``, ...) and the conversion
its type needs (:func:`conversion_ops`).

Every ``check_*`` function answers a list of :class:`WizardProblem` (the form field and the message), all
problems at once, empty when the answers can be used; the definition is validated by the definition
parser too before it is saved (pipelines.services.save_definition), so nothing the run would refuse is
created.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelines.wizards.sniff import FALSE_WORDS, TRUE_WORDS

# --- answers ------------------------------------------------------------------------------------------------

TRANSFORMS: dict[str, str] = {
    "": "as it is",
    "trim": "trim spaces",
    "lowercase": "lower case",
    "uppercase": "upper case",
    "stripHtml": "strip HTML",
    "slugify": "slugify",
}
FIELD_TYPES: dict[str, str] = {
    "keep": "keep as read",
    "string": "text",
    "integer": "whole number",
    "number": "number",
    "boolean": "yes / no",
    "date": "date",
}
TARGET_KINDS: dict[str, str] = {
    "sql": "SQL table (through a SQL connection)",
    "model": "Django model",
    "rest": "REST endpoint",
    "feed": "Product feed file (Google Merchant, Meta catalog)",
}
STRATEGIES: dict[str, tuple[str, ...]] = {
    "sql": ("UPSERT", "CREATE", "UPDATE", "DELETE"),
    "model": ("UPSERT", "CREATE", "UPDATE"),
    "rest": ("POST", "PUT", "PATCH"),
    "feed": ("MAJOR", "MINOR"),  # a feed writes every record; what it needs to know is the price unit
}
STRATEGY_HELP = {
    "UPSERT": "update the row with the same key, or insert it",
    "CREATE": "insert only (a row that already has the key fails)",
    "UPDATE": "update existing rows only (a key with no row fails)",
    "DELETE": "delete the rows with these keys",
    "POST": "POST each record", "PUT": "PUT each record", "PATCH": "PATCH each record",
    "MAJOR": "prices in the file are amounts (19.99)", "MINOR": "prices in the file are in cents (1999)",
}
NEEDS_KEYS = {"UPSERT", "UPDATE", "DELETE"}
LOADERS = {"sql": "tableUpsert", "model": "modelUpsert", "rest": "restPost"}
FEEDS: dict[str, str] = {"googleMerchant": "Google Merchant Center (XML)", "metaCatalog": "Meta catalog (CSV)"}
# The record fields the feeds read by default (their titleField, priceField, ... defaults).
FEED_FIELDS = ("id", "name", "description", "price", "image", "link", "brand", "gtin", "availability")
EXPORTERS: dict[str, str] = {"csvExport": "CSV", "jsonExport": "JSON", "xmlExport": "XML"}
_PATH_CHARS = re.compile(r"[.\[\]]")
_COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class WizardProblem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass
class MappingRow:
    """One target field and where its value comes from ("" = not mapped, left out)."""

    target: str
    source: str = ""
    type: str = "keep"
    transform: str = ""
    date_format: str | None = None  # the source's format, for type date when it is not ISO

    def as_dict(self) -> dict:
        return {"target": self.target, "source": self.source, "type": self.type, "transform": self.transform,
                "dateFormat": self.date_format}

    @classmethod
    def from_dict(cls, data: dict) -> MappingRow:
        return cls(target=str(data.get("target") or ""), source=str(data.get("source") or ""),
                   type=str(data.get("type") or "keep"), transform=str(data.get("transform") or ""),
                   date_format=data.get("dateFormat") or None)


@dataclass
class Schedule:
    kind: str = "none"  # none, cron, interval
    cron: str = ""
    interval_sec: int | None = None
    timezone: str = ""

    def trigger(self) -> dict | None:
        if self.kind == "cron":
            config: dict[str, Any] = {"type": "SCHEDULE", "cron": self.cron.strip()}
            if self.timezone:
                config["timezone"] = self.timezone
            return config
        if self.kind == "interval":
            return {"type": "SCHEDULE", "intervalSec": self.interval_sec}
        return None


@dataclass
class ImportSpec:
    code: str
    name: str
    adapter: str  # csv, json, xlsx
    source: dict  # {"fileId": ...} or {"connectionCode": ..., "path": ...}
    options: dict  # the extractor's own options (delimiter, sheetName, itemsPath, ...)
    target_kind: str  # sql, model, rest
    target: dict  # sql: connectionCode, table; model: model; rest: connectionCode?, endpoint
    mapping: list[MappingRow]
    strategy: str
    keys: list[str] = field(default_factory=list)
    schedule: Schedule = field(default_factory=Schedule)
    description: str = ""


@dataclass
class ExportSpec:
    code: str
    name: str
    source_kind: str  # sql, model
    source: dict  # sql: connectionCode, query; model: model
    fields: list[MappingRow]  # target = the name in the file, source = the column read
    exporter: str  # csvExport, jsonExport, xmlExport
    options: dict  # the exporter's own options (delimiter, format, pretty, ...)
    destination: dict  # {"path", "filenamePattern"} and optionally "connectionCode"
    schedule: Schedule = field(default_factory=Schedule)
    description: str = ""


def _nearest_name(name: str, known: list[str]) -> str | None:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return close[0]
    return {k.lower(): k for k in known}.get(name.lower())


# --- checks ----------------------------------------------------------------------------------------------------


def check_mapping(rows: Sequence[MappingRow], source_columns: Sequence[str], *,
                  target_fields: Sequence[str] | None = None, prefix: str = "mapping",
                  plain_targets: bool = True) -> list[WizardProblem]:
    """Each row's source must be a column of the file, its target a field of the target (when the target
    has fixed fields) and given once; at least one row mapped. Fields: ``mapping-<n>-source``, ...
    A free target name must be a plain identifier (``plain_targets``, for tables and JSON bodies) or at
    least hold no path characters (names in an exported file)."""
    problems: list[WizardProblem] = []
    seen: dict[str, int] = {}
    mapped = 0
    for n, row in enumerate(rows):
        where = f"{prefix}-{n}"
        if not row.source:
            continue
        mapped += 1
        if row.source not in source_columns:
            hint = _nearest_name(row.source, list(source_columns))
            problems.append(WizardProblem(f"{where}-source", f"unknown column '{row.source}' in the source"
                                          + (f"; did you mean '{hint}'?" if hint else "")))
        elif _PATH_CHARS.search(row.source):
            problems.append(WizardProblem(f"{where}-source", f"column '{row.source}' has '.', '[' or ']' in its "
                                          "name, which steps read as a path; rename the column in the file"))
        target = row.target.strip()
        if not target:
            problems.append(WizardProblem(f"{where}-target", "give the target field a name"))
        elif target_fields is not None and target not in target_fields:
            hint = _nearest_name(target, list(target_fields))
            problems.append(WizardProblem(f"{where}-target", f"unknown target field '{target}'"
                                          + (f"; did you mean '{hint}'?" if hint else "")))
        elif target_fields is None and not plain_targets and _PATH_CHARS.search(target):
            problems.append(WizardProblem(f"{where}-target", f"'{target}' has '.', '[' or ']', which steps read "
                                          "as a path; choose another name"))
        elif target_fields is None and plain_targets and not _COLUMN_NAME.match(target):
            problems.append(WizardProblem(f"{where}-target", f"'{target}' is not a plain field name (letters, "
                                          "digits and '_', not starting with a digit)"))
        elif target in seen:
            problems.append(WizardProblem(f"{where}-target", f"'{target}' is already filled by row "
                                          f"{seen[target] + 1}; a target field takes one source"))
        else:
            seen[target] = n
        if row.type not in FIELD_TYPES:
            problems.append(WizardProblem(f"{where}-type", f"unknown type '{row.type}'"))
        if row.transform not in TRANSFORMS:
            problems.append(WizardProblem(f"{where}-transform", f"unknown clean-up '{row.transform}'"))
    if not mapped:
        problems.append(WizardProblem("mapping", "map at least one field"))
    return problems


def check_strategy(target_kind: str, strategy: str, keys: Sequence[str], mapped_targets: Sequence[str],
                   *, required: Sequence[str] = ()) -> list[WizardProblem]:
    """The strategy must be one the loader has; UPSERT, UPDATE and DELETE need key fields, each mapped."""
    problems = []
    allowed = STRATEGIES.get(target_kind, ())
    if strategy not in allowed:
        problems.append(WizardProblem("strategy", f"choose one of {', '.join(allowed)}"))
        return problems
    if strategy in NEEDS_KEYS and not keys:
        problems.append(WizardProblem("keys", f"{strategy} needs at least one key field: the field(s) that find "
                                      "an existing row (e.g. sku)"))
    for key in keys:
        if key not in mapped_targets:
            problems.append(WizardProblem("keys", f"key field '{key}' is not mapped: map a source column to it "
                                          "first"))
    if strategy in ("CREATE", "UPSERT"):
        missing = [f for f in required if f not in mapped_targets]
        if missing:
            problems.append(WizardProblem("strategy", f"{strategy} inserts rows, but the target requires "
                                          f"{', '.join(missing)} and the mapping does not fill "
                                          f"{'it' if len(missing) == 1 else 'them'}"))
    return problems


def check_schedule(schedule: Schedule) -> list[WizardProblem]:
    """Shape only; the cron expression and time zone are checked by the TRIGGER step's own check when the
    definition is parsed (the messages come back at the cron field)."""
    if schedule.kind == "none":
        return []
    if schedule.kind == "cron":
        if len(schedule.cron.split()) != 5:
            return [WizardProblem("cron", "a cron expression has 5 fields: minute hour day month weekday "
                                  "(e.g. '0 6 * * *' for 06:00 every day)")]
        return []
    if schedule.kind == "interval":
        if not isinstance(schedule.interval_sec, int) or schedule.interval_sec < 60:
            return [WizardProblem("interval", "give the interval in whole minutes, at least 1")]
        return []
    return [WizardProblem("kind", "choose no schedule, a cron expression or an interval")]


# --- building --------------------------------------------------------------------------------------------------


def mapping_operators(rows: Sequence[MappingRow]) -> list[dict]:
    """``map`` (target <- source, dropping the other fields), then each field's clean-up, then its type
    conversion. Rows without a source are left out."""
    used = [r for r in rows if r.source]
    ops: list[dict] = [{"op": "map", "args": {"mapping": {r.target.strip(): r.source for r in used}}}]
    for row in used:
        ops.extend(_transform_ops(row.target.strip(), row.transform))
    for row in used:
        ops.extend(conversion_ops(row.target.strip(), row.type, row.date_format))
    return ops


def _transform_ops(target: str, transform: str) -> list[dict]:
    if not transform:
        return []
    if transform in ("trim", "lowercase", "uppercase"):
        return [{"op": transform, "args": {"path": target}}]
    if transform in ("stripHtml", "slugify"):
        return [{"op": transform, "args": {"source": target, "target": target}}]
    raise ValueError(f"unknown transform {transform!r}")


def conversion_ops(target: str, kind: str, date_format: str | None = None) -> list[dict]:
    """What makes the value of ``target`` the type asked (docs/wizards.md lists them); text from files
    stays text otherwise, and the loaders coerce what they can."""
    if kind in ("integer", "number"):
        ops = [{"op": "toNumber", "args": {"source": target}}]
        if kind == "integer":
            ops.append({"op": "round", "args": {"source": target, "decimals": 0}})
        return ops
    if kind == "boolean":
        cases = [{"value": w, "result": True} for w in sorted(TRUE_WORDS)] + \
                [{"value": w, "result": False} for w in sorted(FALSE_WORDS)]
        return [{"op": "lowercase", "args": {"path": target}},
                {"op": "switch", "args": {"source": target, "target": target, "cases": cases}}]
    if kind == "date" and date_format:
        return [{"op": "dateParse", "args": {"source": target, "target": target, "format": date_format}},
                {"op": "dateFormat", "args": {"source": target, "target": target, "format": "YYYY-MM-DD"}}]
    if kind == "string":
        return [{"op": "toString", "args": {"source": target}}]
    return []


def _trigger_steps(schedule: Schedule) -> list[dict]:
    trigger = schedule.trigger()
    return [{"key": "schedule", "type": "TRIGGER", "name": "Schedule", "config": trigger}] if trigger else []


def import_definition(spec: ImportSpec) -> dict:
    """The pipeline the import wizard creates."""
    load_config: dict[str, Any]
    if spec.target_kind == "sql":
        load_config = {"connectionCode": spec.target["connectionCode"], "table": spec.target["table"],
                       "strategy": spec.strategy}
        if spec.keys:
            load_config["lookupFields"] = list(spec.keys)
        load_name = f"Write table {spec.target['table']}"
    elif spec.target_kind == "model":
        load_config = {"model": spec.target["model"], "strategy": spec.strategy}
        if spec.keys:
            load_config["lookupFields"] = list(spec.keys)
        load_name = f"Write {spec.target['model']}"
    elif spec.target_kind == "feed":
        load_config = {k: spec.target[k] for k in ("currency", "storeUrl", "outputPath") if spec.target.get(k)}
        load_config["priceUnit"] = spec.strategy
        load_name = f"Write the {FEEDS.get(spec.target['feed'], spec.target['feed'])} feed"
    elif spec.target_kind == "rest":
        load_config = {"endpoint": spec.target["endpoint"], "method": spec.strategy}
        if spec.target.get("connectionCode"):
            load_config["connectionCode"] = spec.target["connectionCode"]
        load_name = f"{spec.strategy} to {spec.target['endpoint']}"
    else:
        raise ValueError(f"unknown target kind {spec.target_kind!r}")
    steps = [
        *_trigger_steps(spec.schedule),
        {"key": "read", "type": "EXTRACT", "adapterCode": spec.adapter, "name": "Read the file",
         "config": {**spec.source, **spec.options}},
        {"key": "map", "type": "TRANSFORM", "name": "Map fields",
         "config": {"operators": mapping_operators(spec.mapping)}},
        {"key": "feed", "type": "FEED", "adapterCode": spec.target["feed"], "name": load_name, "config": load_config}
        if spec.target_kind == "feed" else
        {"key": "load", "type": "LOAD", "adapterCode": LOADERS[spec.target_kind], "name": load_name,
         "config": load_config},
    ]
    return _definition(spec.code, spec.name, spec.description or "Created by the import wizard.", steps)


def export_definition(spec: ExportSpec) -> dict:
    """The pipeline the export wizard creates."""
    if spec.source_kind == "sql":
        read = {"key": "read", "type": "EXTRACT", "adapterCode": "database", "name": "Query the database",
                "config": {"connectionCode": spec.source["connectionCode"], "query": spec.source["query"]}}
    elif spec.source_kind == "model":
        used = [r.source for r in spec.fields if r.source]
        read = {"key": "read", "type": "EXTRACT", "adapterCode": "modelQuery", "name": f"Read {spec.source['model']}",
                "config": {"model": spec.source["model"], "fields": used}}
    else:
        raise ValueError(f"unknown source kind {spec.source_kind!r}")
    used_rows = [r for r in spec.fields if r.source]
    destination = {k: v for k, v in spec.destination.items() if v not in (None, "")}
    export_config = {**destination, **spec.options}
    if spec.exporter == "csvExport":
        export_config["columns"] = [r.target.strip() for r in used_rows]
    steps = [
        *_trigger_steps(spec.schedule),
        read,
        {"key": "fields", "type": "TRANSFORM", "name": "Choose fields",
         "config": {"operators": mapping_operators(spec.fields)}},
        {"key": "export", "type": "EXPORT", "adapterCode": spec.exporter,
         "name": f"Write a {EXPORTERS.get(spec.exporter, spec.exporter)} file", "config": export_config},
    ]
    return _definition(spec.code, spec.name, spec.description or "Created by the export wizard.", steps)


def _definition(code: str, name: str, description: str, steps: list[dict]) -> dict:
    return {"version": 1, "code": code, "name": name, "description": description, "steps": steps, "edges": []}


# Which wizard field a problem of the built definition belongs to, by step key (the rest go to the top).
STEP_FIELDS = {"schedule": "cron", "read": "source", "map": "mapping", "fields": "fields", "load": "target",
               "feed": "target",
               "export": "destination"}


def field_of(step: str | None, config_field: str | None) -> str:
    """The wizard field to show a definition problem at."""
    if step == "schedule" and config_field in ("intervalSec",):
        return "interval"
    if step == "schedule" and config_field == "timezone":
        return "timezone"
    return STEP_FIELDS.get(step or "", "general")
