"""The export wizard's pages: source -> fields -> format -> destination -> schedule -> review.

The source is a SELECT on a SQL connection (the ``database`` extractor) or an allowed Django model
(``modelQuery``); its first rows are read by that extractor, so the fields page shows real values. The
file is written by ``csvExport``, ``jsonExport`` or ``xmlExport`` into the file storage or onto a FOLDER,
SFTP or FTP connection.
"""

from __future__ import annotations

import posixpath
import re

from pipelines.registry import extractors
from pipelines.wizards import targets
from pipelines.wizards.build import (
    EXPORTERS,
    TRANSFORMS,
    ExportSpec,
    MappingRow,
    check_mapping,
    export_definition,
)
from pipelines.wizards.pages import (
    Errors,
    adapter_context,
    default_code,
    review_context,
    review_post,
    schedule_context,
    schedule_of,
    schedule_post,
    text,
)
from pipelines.wizards.shapes import field_name_of
from pipelines.wizards.sniff import SniffError, read_sample

SQL_TYPES = ("POSTGRES", "MYSQL", "SQLITE")
SAMPLE = 5
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_ -]*$")
EXTENSIONS = {"csvExport": "csv", "jsonExport": "json", "xmlExport": "xml"}


# --- source ---------------------------------------------------------------------------------------------------


def source_context(request, state: dict, errors: Errors) -> dict:
    return {"source": state.get("source") or {"kind": "sql"},
            "sql_connections": targets.connections(request.user, SQL_TYPES), "models": targets.allowed_models()}


def source_post(request, state: dict, wid: str) -> Errors:
    errors = Errors()
    kind = text(request, "kind", "sql")
    source: dict = {"kind": kind}
    try:
        if kind == "sql":
            source["connectionCode"] = code = text(request, "connection")
            source["query"] = query = text(request, "query")
            state["source"] = source
            if not code:
                errors.add("connection", "choose a SQL connection")
            if not query:
                errors.add("query", "write the SELECT that reads the rows to export")
            if errors:
                return errors
            conn = targets.connection(request.user, code, SQL_TYPES, field="connection")
            columns = targets.sql_query_columns(conn, query)
            config, adapter = {"connectionCode": code, "query": query}, "database"
        elif kind == "model":
            source["model"] = model = text(request, "model")
            state["source"] = source
            if not model:
                errors.add("model", "choose a model")
                return errors
            columns = targets.model_columns(model)
            config, adapter = {"model": model}, "modelQuery"
        else:
            errors.add("kind", "choose a SQL query or a Django model")
            return errors
        rows = read_sample(extractors.get(adapter).impl, config, adapter_context(request.user, limit=SAMPLE),
                           limit=SAMPLE)
    except targets.TargetError as exc:
        errors.add(exc.field, str(exc))
        return errors
    except SniffError as exc:
        errors.add("query" if kind == "sql" else "model", str(exc))
        return errors
    state["source"] = source
    state["columns"] = columns
    state["sample"] = [{k: _cell(v) for k, v in r.items()} for r in rows]
    return errors


def _cell(value):
    text_value = value if isinstance(value, str) else str(value)
    return text_value if len(text_value) <= 80 else text_value[:79] + "…"


# --- fields ---------------------------------------------------------------------------------------------------


def _fields(state: dict) -> list[MappingRow]:
    columns = state["columns"]
    if state.get("fields") is not None and state.get("fields_for") == columns:
        return [MappingRow.from_dict(r) for r in state["fields"]]
    return [MappingRow(target=c if _PLAIN.match(c) else field_name_of(c), source=c) for c in columns]


def fields_context(request, state: dict, errors: Errors) -> dict:
    columns = state["columns"]
    rows = _fields(state)
    sample = state.get("sample") or []
    return {"rows": [{"n": n, "column": columns[n], "row": row,
                      "example": sample[0].get(columns[n], "") if sample else "",
                      "errors": {p: errors.get(f"fields-{n}-{p}", []) for p in ("source", "target", "transform")}}
                     for n, row in enumerate(rows)],
            "transforms": TRANSFORMS.items(), "sample_count": len(sample)}


def fields_post(request, state: dict, wid: str) -> Errors:
    columns = state["columns"]
    rows = []
    for n, column in enumerate(columns):
        include = request.POST.get(f"fields-{n}-include") == "1"
        rows.append(MappingRow(target=text(request, f"fields-{n}-target") or column, source=column if include else "",
                               transform=text(request, f"fields-{n}-transform")))
    state["fields"] = [r.as_dict() for r in rows]
    state["fields_for"] = columns
    errors = Errors().extend(check_mapping(rows, columns, prefix="fields", plain_targets=False))
    if "mapping" in errors:
        errors["fields"] = ["choose at least one field to export"]
        del errors["mapping"]
    return errors


# --- format ---------------------------------------------------------------------------------------------------


def format_context(request, state: dict, errors: Errors) -> dict:
    chosen = state.get("format") or {"exporter": "csvExport", "delimiter": ",", "includeHeader": True,
                                     "jsonFormat": "JSON", "pretty": False, "rootElement": "feed",
                                     "itemElement": "item"}
    return {"chosen": chosen, "exporters": EXPORTERS.items(),
            "delimiters": [(",", "comma ,"), (";", "semicolon ;"), ("tab", "tab"), ("|", "pipe |")]}


def format_post(request, state: dict, wid: str) -> Errors:
    errors = Errors()
    exporter = text(request, "exporter")
    chosen = {"exporter": exporter, "delimiter": text(request, "delimiter", ","),
              "includeHeader": request.POST.get("includeHeader") == "1",
              "jsonFormat": text(request, "jsonFormat", "JSON"), "pretty": request.POST.get("pretty") == "1",
              "rootElement": text(request, "rootElement", "feed"), "itemElement": text(request, "itemElement", "item")}
    state["format"] = chosen
    if exporter not in EXPORTERS:
        errors.add("exporter", "choose CSV, JSON or XML")
    if exporter == "csvExport" and chosen["delimiter"] not in (",", ";", "tab", "|"):
        errors.add("delimiter", "choose comma, semicolon, tab or pipe")
    if exporter == "jsonExport" and chosen["jsonFormat"] not in ("JSON", "NDJSON"):
        errors.add("jsonFormat", "choose JSON or NDJSON")
    if exporter == "xmlExport":
        for name in ("rootElement", "itemElement"):
            if not chosen[name].replace("_", "a").replace("-", "a").isalnum() or chosen[name][:1].isdigit():
                errors.add(name, f"'{chosen[name]}' is not an XML element name (letters, digits, '-', '_')")
    return errors


def _format_options(state: dict) -> tuple[str, dict]:
    chosen = state["format"]
    exporter = chosen["exporter"]
    if exporter == "csvExport":
        return exporter, {"delimiter": chosen["delimiter"], "includeHeader": chosen["includeHeader"]}
    if exporter == "jsonExport":
        return exporter, {"format": chosen["jsonFormat"], "pretty": chosen["pretty"]}
    return exporter, {"rootElement": chosen["rootElement"], "itemElement": chosen["itemElement"]}


# --- destination ----------------------------------------------------------------------------------------------


def destination_context(request, state: dict, errors: Errors) -> dict:
    extension = EXTENSIONS[state["format"]["exporter"]]
    chosen = state.get("destination") or {"kind": "storage", "path": "exports",
                                          "filenamePattern": f"export-${{date:YYYY-MM-DD}}.{extension}"}
    return {"chosen": chosen, "file_connections": targets.connections(request.user, targets.FILE_CONNECTION_TYPES)}


def destination_post(request, state: dict, wid: str) -> Errors:
    errors = Errors()
    kind = text(request, "kind", "storage")
    chosen = {"kind": kind, "connectionCode": text(request, "connection"), "path": text(request, "path") or ".",
              "filenamePattern": text(request, "filenamePattern")}
    state["destination"] = chosen
    if kind == "connection":
        if not chosen["connectionCode"]:
            errors.add("connection", "choose the FOLDER, SFTP or FTP connection to write to")
        else:
            try:
                targets.connection(request.user, chosen["connectionCode"], targets.FILE_CONNECTION_TYPES,
                                   field="connection")
            except targets.TargetError as exc:
                errors.add(exc.field, str(exc))
    elif kind != "storage":
        errors.add("kind", "choose the file storage or a connection")
    path = chosen["path"]
    if path.startswith("/") or ".." in path.split("/") or "\\" in path:
        errors.add("path", "the folder must be relative, without '..' (e.g. exports/daily)")
    name = chosen["filenamePattern"]
    if not name:
        errors.add("filenamePattern", "give the file a name, e.g. products-${date:YYYY-MM-DD}.csv")
    elif "/" in name or "\\" in name or name.startswith("."):
        errors.add("filenamePattern", "a file name only: no '/', and not starting with '.'")
    return errors


# --- review ---------------------------------------------------------------------------------------------------


def spec_of(state: dict) -> ExportSpec:
    source = {k: v for k, v in state["source"].items() if k != "kind"}
    exporter, options = _format_options(state)
    destination = state["destination"]
    where = {"path": posixpath.normpath(destination["path"]) if destination["path"] else ".",
             "filenamePattern": destination["filenamePattern"]}
    if destination["kind"] == "connection":
        where["connectionCode"] = destination["connectionCode"]
    return ExportSpec(code=state["code"], name=state["name"], description=state.get("description", ""),
                      source_kind=state["source"]["kind"], source=source,
                      fields=[MappingRow.from_dict(r) for r in state["fields"]], exporter=exporter, options=options,
                      destination=where, schedule=schedule_of(state))


def definition_of_state(state: dict) -> dict:
    return export_definition(spec_of(state))


def review_ctx(request, state: dict, errors: Errors) -> dict:
    if not state.get("code"):
        source = state.get("source") or {}
        hint = source.get("model", "").split(".")[-1] or source.get("connectionCode", "data")
        state["code"] = default_code("export", hint)
        state["name"] = f"Export {hint}"
    return review_context(state, definition_of_state, rows="fields", answers=("source", "format", "destination"))


def review_submit(request, state: dict, wid: str):
    return review_post(request, state, definition_of_state)


PAGES = {
    "source": (source_context, source_post),
    "fields": (fields_context, fields_post),
    "format": (format_context, format_post),
    "destination": (destination_context, destination_post),
    "schedule": (schedule_context, schedule_post),
    "review": (review_ctx, review_submit),
}
