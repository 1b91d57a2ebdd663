"""The import wizard's pages: source -> preview -> target -> mapping -> strategy -> schedule -> review.

The target comes before the mapping (as in the plugin's wizard): the auto-mapper then matches the file's
columns to the real columns of the chosen table or model, and the mapping page can refuse a field the
target does not have.

An uploaded file is saved into the file storage (``wizard-uploads/<wizard id>/<name>``), where the
pipeline's file extractor reads it as ``fileId``; a file on a FOLDER, SFTP or FTP connection is read in
place (``connectionCode`` and ``path``). Either way the preview is read by that same extractor.
"""

from __future__ import annotations

import re

from django.core.files.storage import default_storage
from django.utils.text import get_valid_filename

from pipelines.errors import DatahubError
from pipelines.filestores import open_store
from pipelines.filestores.limits import human_size, max_file_bytes
from pipelines.registry import extractors
from pipelines.secrets import resolve_secret
from pipelines.wizards import automap, shapes, targets
from pipelines.wizards.build import (
    FEED_FIELDS,
    FEEDS,
    FIELD_TYPES,
    STRATEGIES,
    STRATEGY_HELP,
    TARGET_KINDS,
    TRANSFORMS,
    ImportSpec,
    MappingRow,
    check_mapping,
    check_strategy,
    import_definition,
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
from pipelines.wizards.sniff import (
    FORMATS,
    Preview,
    SniffError,
    check_xlsx,
    csv_options,
    format_of,
    preview_of,
    read_sample,
)

HEAD_BYTES = 64 * 1024
UPLOAD_FOLDER = "wizard-uploads"
KEYED = ("sql", "model")  # targets whose strategy finds rows by key fields


# --- source ---------------------------------------------------------------------------------------------------


def source_context(request, state: dict, errors: Errors) -> dict:
    source = state.get("source") or {}
    return {"source": source, "templates": shapes.TEMPLATES.values(), "template": state.get("template", ""),
            "file_connections": targets.connections(request.user, targets.FILE_CONNECTION_TYPES),
            "max_size": human_size(max_file_bytes()), "extensions": ", ".join(FORMATS)}


def source_post(request, state: dict, wid: str) -> Errors:
    errors = Errors()
    template = text(request, "template")
    if template and template not in shapes.TEMPLATES:
        errors.add("template", f"unknown template '{template}'")
        return errors
    state["template"] = template
    mode = text(request, "mode", "upload")
    if mode == "upload":
        upload = request.FILES.get("file")
        if upload is None:
            if (state.get("source") or {}).get("mode") == "upload" and state.get("preview"):
                return errors  # keep the file uploaded before
            errors.add("file", "choose a file to upload")
            return errors
        return _take_upload(upload, state, wid, request.user)
    if mode == "connection":
        return _take_connection_file(request, state)
    errors.add("mode", "upload a file or name a connection")
    return errors


def _take_upload(upload, state: dict, wid: str, user) -> Errors:
    errors = Errors()
    limit = max_file_bytes()
    if upload.size > limit:
        errors.add("file", f"'{upload.name}' is {human_size(upload.size)}, larger than the limit of "
                   f"{human_size(limit)} (setting DATAHUB_MAX_FILE_BYTES)")
        return errors
    head = upload.read(HEAD_BYTES)
    upload.seek(0)
    try:
        adapter = format_of(upload.name, head)
        if adapter == "xlsx":
            check_xlsx(upload, upload.name)
            upload.seek(0)
    except SniffError as exc:
        errors.add("file", str(exc))
        return errors
    name = default_storage.save(f"{UPLOAD_FOLDER}/{wid}/{get_valid_filename(upload.name) or 'upload'}", upload)
    source = {"mode": "upload", "fileId": name, "filename": upload.name, "size": upload.size}
    problem = _sniff(state, adapter, {"fileId": name}, _initial_options(adapter, head, upload.name), user)
    if problem is not None:
        default_storage.delete(name)
        errors.add("file", problem)
        return errors
    _forget_upload(state)
    state["source"] = source
    return errors


def _take_connection_file(request, state: dict) -> Errors:
    errors = Errors()
    code, path = text(request, "connection"), text(request, "path")
    if not code:
        errors.add("connection", "choose a connection")
    if not path:
        errors.add("path", "give the file's path under the connection's root (e.g. incoming/products.csv)")
    if errors:
        return errors
    try:
        conn = targets.connection(request.user, code, targets.FILE_CONNECTION_TYPES, field="connection")
        with open_store(code, lambda c: {**conn.config, "code": conn.code, "type": conn.type},
                        resolve_secret) as store:
            with store.open_read(store.path(path)) as stream:
                head = stream.read(HEAD_BYTES)
        adapter = format_of(path.rsplit("/", 1)[-1], head)
    except SniffError as exc:
        errors.add("path", str(exc))
        return errors
    except targets.TargetError as exc:
        errors.add(exc.field, str(exc))
        return errors
    except DatahubError as exc:
        errors.add("path", str(exc))
        return errors
    problem = _sniff(state, adapter, {"connectionCode": code, "path": path},
                     _initial_options(adapter, head, path), request.user)
    if problem is not None:
        errors.add("path", problem)
        return errors
    _forget_upload(state)
    state["source"] = {"mode": "connection", "connectionCode": code, "path": path, "filename": path}
    return errors


def _forget_upload(state: dict) -> None:
    """A new source replaces the old: its uploaded file goes (the wizard created it; nothing else uses it)."""
    old = state.get("source") or {}
    if old.get("mode") == "upload" and old.get("fileId"):
        default_storage.delete(old["fileId"])


def _initial_options(adapter: str, head: bytes, filename: str) -> dict:
    if adapter == "csv":
        return {**csv_options(head.decode("utf-8", errors="replace"), filename), "hasHeader": True}
    return {}


def _sniff(state: dict, adapter: str, source: dict, options: dict, user) -> str | None:
    """Read the sample with the extractor itself; the preview goes into the state, a problem is returned."""
    try:
        cls = extractors.get(adapter).impl
        records = read_sample(cls, {**source, **options}, adapter_context(user, limit=200))
        preview = preview_of(adapter, options, records)
    except SniffError as exc:
        return str(exc)
    state["adapter"] = adapter
    state["options"] = options
    state["preview"] = preview.as_dict()
    return None


# --- preview --------------------------------------------------------------------------------------------------


def preview_context(request, state: dict, errors: Errors) -> dict:
    preview = Preview.from_dict(state["preview"])
    options = state.get("options") or {}
    return {"preview": preview, "adapter": state.get("adapter"), "options": options,
            "source": state.get("source") or {},
            "delimiters": [(",", "comma ,"), (";", "semicolon ;"), ("tab", "tab"), ("|", "pipe |")],
            "row_values": [[row.get(c.name, "") for c in preview.columns] for row in preview.rows]}


def preview_post(request, state: dict, wid: str) -> Errors:
    """Apply changed reading options (delimiter, header, sheet, items path) by reading the sample again."""
    errors = Errors()
    adapter = state["adapter"]
    options = dict(state.get("options") or {})
    if adapter == "csv":
        delimiter = text(request, "delimiter", options.get("delimiter", ","))
        if delimiter not in (",", ";", "tab", "|"):
            errors.add("delimiter", "choose comma, semicolon, tab or pipe")
        options["delimiter"] = delimiter
        options["hasHeader"] = request.POST.get("hasHeader") == "1"
    elif adapter == "xlsx":
        sheet = text(request, "sheetName")
        options.pop("sheetName", None)
        if sheet:
            options["sheetName"] = sheet
        options["hasHeader"] = request.POST.get("hasHeader") == "1"
    elif adapter == "json":
        items = text(request, "itemsPath")
        options.pop("itemsPath", None)
        if items:
            options["itemsPath"] = items
    if errors:
        return errors
    if options != state.get("options"):
        source = state["source"]
        where = {"fileId": source["fileId"]} if source["mode"] == "upload" else \
            {"connectionCode": source["connectionCode"], "path": source["path"]}
        problem = _sniff(state, adapter, where, options, request.user)
        if problem is not None:
            field = {"csv": "delimiter", "xlsx": "sheetName", "json": "itemsPath"}[adapter]
            errors.add(field, problem)
            return errors
        errors.add("__refresh__", "read again with the new options")  # show the new preview, do not go on
    return errors


# --- target ---------------------------------------------------------------------------------------------------


def target_context(request, state: dict, errors: Errors) -> dict:
    target = dict(state.get("target") or {})
    kind = target.get("kind", "sql")
    context = {"target": target, "kind": kind, "kinds": TARGET_KINDS.items(),
               "sql_connections": targets.connections(request.user, ("POSTGRES", "MYSQL", "SQLITE")),
               "http_connections": targets.connections(request.user, targets.HTTP_CONNECTION_TYPES),
               "models": targets.allowed_models(), "tables": [], "tables_error": "", "feeds": FEEDS.items()}
    if kind == "sql" and target.get("connectionCode"):
        try:
            conn = targets.connection(request.user, target["connectionCode"], ("POSTGRES", "MYSQL", "SQLITE"),
                                      field="connection")
            context["tables"] = targets.sql_tables(conn)
        except targets.TargetError as exc:
            context["tables_error"] = str(exc)
    return context


def target_post(request, state: dict, wid: str) -> Errors:
    errors = Errors()
    kind = text(request, "kind", "sql")
    target: dict = {"kind": kind}
    if kind not in TARGET_KINDS:
        errors.add("kind", "choose a SQL table, a Django model or a REST endpoint")
        return errors
    fields: list[targets.Field] | None = None
    uniques: list = []
    try:
        if kind == "sql":
            target["connectionCode"] = code = text(request, "connection")
            target["table"] = table = text(request, "table")
            state["target"] = target
            if not code:
                errors.add("connection", "choose a SQL connection")
                return errors
            conn = targets.connection(request.user, code, ("POSTGRES", "MYSQL", "SQLITE"), field="connection")
            if request.POST.get("_action") == "refresh" or not table:
                if not table and request.POST.get("_action") != "refresh":
                    errors.add("table", "choose the table to write to")
                else:
                    targets.sql_tables(conn)  # a connection that cannot be opened is said at once
                    errors.add("__refresh__", "tables listed")
                return errors
            target["table"], fields, uniques = targets.sql_columns(conn, table)
        elif kind == "model":
            target["model"] = model = text(request, "model")
            state["target"] = target
            if not model:
                errors.add("model", "choose a model")
                return errors
            fields, uniques = targets.model_fields(model)
        elif kind == "feed":
            errors = _feed_target(request, target)
            state["target"] = target
            if errors:
                return errors
            fields = [targets.Field(name, "num" if name == "price" else "text", required=False)
                      for name in FEED_FIELDS]
        else:
            target["connectionCode"] = code = text(request, "http_connection")
            target["endpoint"] = endpoint = text(request, "endpoint")
            state["target"] = target
            if code:
                targets.connection(request.user, code, targets.HTTP_CONNECTION_TYPES, field="http_connection")
            if not endpoint:
                errors.add("endpoint", "give the endpoint: a path such as /api/products with a connection, or a "
                           "full https:// URL")
            elif not code and not endpoint.startswith(("http://", "https://")):
                errors.add("endpoint", "without a connection the endpoint must be a full http(s):// URL")
            if errors:
                return errors
    except targets.TargetError as exc:
        errors.add(exc.field, str(exc))
        return errors
    state["target"] = target
    state["target_fields"] = None if fields is None else [
        {"name": f.name, "kind": f.kind, "required": f.required} for f in fields]
    state["unique_keys"] = [list(k) for k in uniques]
    return errors


def _feed_target(request, target: dict) -> Errors:
    errors = Errors()
    target["feed"] = feed = text(request, "feed")
    target["currency"] = currency = text(request, "currency").upper()
    target["storeUrl"] = store_url = text(request, "storeUrl")
    target["outputPath"] = output = text(request, "outputPath")
    if feed not in FEEDS:
        errors.add("feed", f"choose one of {', '.join(FEEDS.values())}")
    if not re.fullmatch(r"[A-Z]{3}", currency):
        errors.add("currency", "give the ISO 4217 code of the prices' currency, e.g. EUR or USD")
    if feed == "googleMerchant" and not store_url:
        errors.add("storeUrl", "Google Merchant needs the shop's URL (the base of product links)")
    if store_url and not store_url.startswith(("http://", "https://")):
        errors.add("storeUrl", "the shop's URL starts with https://")
    if not output:
        errors.add("outputPath", "name the feed file, e.g. feeds/google.xml")
    elif output.startswith("/") or ".." in output.split("/") or "\\" in output:
        errors.add("outputPath", "a relative file name inside the file storage, without '..'")
    return errors


# Why a row's names go together, as the mapping page says it (automap's reasons).
MATCH_WORDS = {"exact": "same name", "compact": "same name", "synonym": "synonym", "words": "similar name",
               "spelling": "similar spelling"}


# --- mapping --------------------------------------------------------------------------------------------------


def _target_names(state: dict) -> list[str] | None:
    fields = state.get("target_fields")
    return None if fields is None else [f["name"] for f in fields]


def _signature(state: dict) -> list:
    """What the mapping depends on: the file's columns, the target's fields and the template."""
    return [Preview.from_dict(state["preview"]).column_names(), _target_names(state), state.get("template", "")]


def current_mapping(state: dict) -> list[MappingRow]:
    if state.get("mapping_for") == _signature(state) and state.get("mapping") is not None:
        return [MappingRow.from_dict(r) for r in state["mapping"]]
    preview = Preview.from_dict(state["preview"])
    kinds = {f["name"]: f["kind"] for f in state.get("target_fields") or []}
    template = shapes.TEMPLATES.get(state.get("template") or "")
    rows, strategy, keys = shapes.initial_mapping(preview.columns, _target_names(state), kinds, template)
    state["mapping"] = [r.as_dict() for r in rows]
    state["mapping_for"] = _signature(state)
    if template is not None:
        state["strategy"] = {"strategy": _strategy_for(state, strategy), "keys": keys}
    return rows


def _strategy_for(state: dict, strategy: str | None) -> str:
    kind = (state.get("target") or {}).get("kind", "sql")
    allowed = STRATEGIES[kind]
    return strategy if strategy in allowed else allowed[0]


def mapping_context(request, state: dict, errors: Errors) -> dict:
    rows = current_mapping(state)
    preview = Preview.from_dict(state["preview"])
    examples = {c.name: (c.examples[0] if c.examples else "") for c in preview.columns}
    guessed = {c.name: c.type for c in preview.columns}
    required = {f["name"] for f in state.get("target_fields") or [] if f["required"]}
    kinds = {f["name"]: f["kind"] for f in state.get("target_fields") or []}
    view_rows = [{"n": n, "row": row, "example": examples.get(row.source, ""), "required": row.target in required,
                  "match": MATCH_WORDS.get((automap.score(row.source, row.target) or (0, ""))[1], "")
                  if row.source else "",
                  "kind": kinds.get(row.target, ""), "guessed": guessed.get(row.source, ""),
                  "errors": {part: errors.get(f"mapping-{n}-{part}", [])
                             for part in ("source", "target", "type", "transform")}}
                 for n, row in enumerate(rows)]
    return {"rows": view_rows, "columns": preview.column_names(), "fixed_targets": _target_names(state) is not None,
            "types": FIELD_TYPES.items(), "transforms": TRANSFORMS.items(),
            "template": shapes.TEMPLATES.get(state.get("template") or "")}


def mapping_post(request, state: dict, wid: str) -> Errors:
    current = current_mapping(state)
    fixed = _target_names(state)
    preview = Preview.from_dict(state["preview"])
    dates = {c.name: c.date_format for c in preview.columns}
    rows = []
    for n, old in enumerate(current):
        source = text(request, f"mapping-{n}-source")
        target = old.target if fixed is not None else text(request, f"mapping-{n}-target")
        kind = text(request, f"mapping-{n}-type", "keep")
        rows.append(MappingRow(target=target, source=source, type=kind,
                               transform=text(request, f"mapping-{n}-transform"),
                               date_format=dates.get(source) if kind == "date" else None))
    state["mapping"] = [r.as_dict() for r in rows]
    errors = Errors().extend(check_mapping(rows, preview.column_names(), target_fields=fixed))
    for n, row in enumerate(rows):
        if row.source and row.type == "date" and not row.date_format and \
                next((c.type for c in preview.columns if c.name == row.source), "") not in ("date", "datetime"):
            errors.add(f"mapping-{n}-type", f"the values of '{row.source}' do not look like dates the wizard can "
                       "read (YYYY-MM-DD, DD/MM/YYYY, MM/DD/YYYY or DD.MM.YYYY)")
    return errors


# --- strategy -------------------------------------------------------------------------------------------------


def _mapped_targets(state: dict) -> list[str]:
    return [r["target"] for r in state.get("mapping") or [] if r.get("source")]


def strategy_context(request, state: dict, errors: Errors) -> dict:
    kind = state["target"]["kind"]
    mapped = _mapped_targets(state)
    chosen = dict(state.get("strategy") or {})
    if not chosen:
        keys = next((list(k) for k in state.get("unique_keys") or [] if set(k) <= set(mapped)), [])
        chosen = {"strategy": STRATEGIES[kind][0], "keys": keys}
    return {"kind": kind, "strategies": [(s, STRATEGY_HELP[s]) for s in STRATEGIES[kind]], "chosen": chosen,
            "mapped": mapped, "uniques": [", ".join(k) for k in state.get("unique_keys") or []]}


def strategy_post(request, state: dict, wid: str) -> Errors:
    kind = state["target"]["kind"]
    strategy = text(request, "strategy")
    keys = [k for k in request.POST.getlist("keys") if k]
    state["strategy"] = {"strategy": strategy, "keys": keys}
    required = [f["name"] for f in state.get("target_fields") or [] if f["required"]]
    return Errors().extend(check_strategy(kind, strategy, keys if kind in KEYED else [], _mapped_targets(state),
                                          required=required))


# --- schedule and review --------------------------------------------------------------------------------------


def spec_of(state: dict) -> ImportSpec:
    source = state["source"]
    where = {"fileId": source["fileId"]} if source["mode"] == "upload" else \
        {"connectionCode": source["connectionCode"], "path": source["path"]}
    strategy = state.get("strategy") or {}
    return ImportSpec(code=state["code"], name=state["name"], description=state.get("description", ""),
                      adapter=state["adapter"], source=where, options=dict(state.get("options") or {}),
                      target_kind=state["target"]["kind"],
                      target={k: v for k, v in state["target"].items() if k != "kind"},
                      mapping=[MappingRow.from_dict(r) for r in state["mapping"]],
                      strategy=strategy["strategy"],
                      keys=list(strategy.get("keys") or []) if state["target"]["kind"] in KEYED else [],
                      schedule=schedule_of(state))


def definition_of_state(state: dict) -> dict:
    return import_definition(spec_of(state))


def review_ctx(request, state: dict, errors: Errors) -> dict:
    if not state.get("code"):
        hint = (state.get("target") or {}).get("table") or (state.get("source") or {}).get("filename", "file")
        state["code"] = default_code("import", hint.rsplit(".", 1)[0])
        state["name"] = f"Import {(state.get('source') or {}).get('filename', 'file')}"
    return review_context(state, definition_of_state, rows="mapping", answers=("source", "target", "strategy"))


def review_submit(request, state: dict, wid: str):
    return review_post(request, state, definition_of_state)


# page -> (context(request, state, errors), post(request, state, wid) -> Errors); the review's post is
# review_submit, which also creates the pipeline.
PAGES = {
    "source": (source_context, source_post),
    "preview": (preview_context, preview_post),
    "target": (target_context, target_post),
    "mapping": (mapping_context, mapping_post),
    "strategy": (strategy_context, strategy_post),
    "schedule": (schedule_context, schedule_post),
    "review": (review_ctx, review_submit),
}
