"""What the pages of both wizards share: problems by field, reading a sample through an extractor inside
the web process, the schedule page and the review page.

A page is a pair of functions in a table (:mod:`.import_pages`, :mod:`.export_pages`): ``post(request,
state) -> Errors`` reads and checks the form and, when it is right, writes the answers into the state;
``context(request, state) -> dict`` is what its template shows. :mod:`.views` does the rest.
"""

from __future__ import annotations

import json

from django.core.files.storage import default_storage

from pipelines.adapters.base import AdapterContext
from pipelines.definition import problems_of
from pipelines.errors import DatahubError, DefinitionError
from pipelines.models import Pipeline, code_validator
from pipelines.secrets import resolve_secret
from pipelines.services import save_definition
from pipelines.wizards import targets
from pipelines.wizards.build import MappingRow, Schedule, WizardProblem, check_schedule, field_of


class Errors(dict):
    """field -> [messages]; ``general`` for what belongs to no one field."""

    def add(self, field: str, message: str) -> None:
        self.setdefault(field, []).append(message)

    def extend(self, problems: list[WizardProblem]) -> Errors:
        for p in problems:
            self.add(p.field, p.message)
        return self


def adapter_context(user, *, limit: int) -> AdapterContext:
    """A context for reading a sample inside the web process: the run's file storage, and only the
    connections this person may use (with the worker's secret resolver)."""

    def connection(code: str) -> dict:
        conn = targets.connection(user, code, ("POSTGRES", "MYSQL", "SQLITE", *targets.FILE_CONNECTION_TYPES),
                                  field="connection")
        return {**conn.config, "code": conn.code, "type": conn.type}

    return AdapterContext(step_key="wizard-preview", storage=default_storage, secret=resolve_secret,
                          connection=connection, record_limit=limit, batch_size=limit, dry_run=True)


def text(request, name: str, default: str = "") -> str:
    return str(request.POST.get(name, default)).strip()


# --- schedule ------------------------------------------------------------------------------------------------


def schedule_of(state: dict) -> Schedule:
    s = state.get("schedule") or {}
    return Schedule(kind=s.get("kind", "none"), cron=s.get("cron", ""), interval_sec=s.get("intervalSec"),
                    timezone=s.get("timezone", ""))


def schedule_post(request, state: dict, wid: str) -> Errors:
    errors = Errors()
    kind = text(request, "kind", "none")
    cron = text(request, "cron")
    minutes_text = text(request, "interval")
    interval = None
    if kind == "interval":
        try:
            interval = int(minutes_text) * 60
        except ValueError:
            errors.add("interval", f"'{minutes_text}' is not a whole number of minutes")
    schedule = Schedule(kind=kind, cron=cron, interval_sec=interval, timezone=text(request, "timezone"))
    state["schedule"] = {"kind": kind, "cron": cron, "intervalSec": interval, "timezone": schedule.timezone,
                         "intervalText": minutes_text}
    if errors:
        return errors
    errors.extend(check_schedule(schedule))
    trigger = schedule.trigger()
    if not errors and trigger is not None:
        # The TRIGGER step type's own check (cron syntax, time zone), with its messages.
        probe = {"version": 1, "code": "probe", "steps": [{"key": "schedule", "type": "TRIGGER", "config": trigger},
                 {"key": "x", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": []}}]}
        for p in problems_of(probe):
            errors.add(field_of(p.step, p.field), p.message)
    return errors


def schedule_context(request, state: dict, errors: Errors) -> dict:
    s = state.get("schedule") or {}
    return {"schedule": {"kind": s.get("kind", "none"), "cron": s.get("cron", ""),
                         "interval": s.get("intervalText", ""), "timezone": s.get("timezone", "")}}


# --- review -----------------------------------------------------------------------------------------------


def review_post(request, state: dict, definition_of_state) -> tuple[Errors, Pipeline | None]:
    """Create the pipeline from the answers (code and name from the form), or say why not."""
    errors = Errors()
    code, name = text(request, "code"), text(request, "name")
    state["code"], state["name"], state["description"] = code, name, text(request, "description")
    if not code:
        errors.add("code", "give the pipeline a code")
    else:
        try:
            code_validator(code)
        except Exception as exc:  # ValidationError
            errors.add("code", " ".join(getattr(exc, "messages", [str(exc)])))
        if Pipeline.objects.filter(code=code).exists():
            errors.add("code", f"a pipeline with the code '{code}' exists already; choose another")
    if not name:
        errors.add("name", "give the pipeline a name")
    if errors:
        return errors, None
    definition = definition_of_state(state)
    for p in problems_of(definition):
        errors.add(field_of(p.step, p.field), str(p))
    if errors:
        return errors, None
    kind = state["kind"]
    try:
        pipeline = save_definition(definition, user=request.user, message=f"created by the {kind} wizard")
    except DefinitionError as exc:
        for p in exc.problems:
            errors.add(field_of(p.step, p.field), str(p))
        return errors, None
    except DatahubError as exc:
        errors.add("general", str(exc))
        return errors, None
    return errors, pipeline


def review_context(state: dict, definition_of_state, *, rows: str, answers: tuple[str, ...]) -> dict:
    """The review page's context, the same for both wizards: the pipeline's code, name and description, the
    mapped rows (``state[rows]``), each earlier page's ``answers``, the schedule, and the definition built."""
    context = {"code": state["code"], "name": state.get("name", ""), "description": state.get("description", ""),
               "mapped": [MappingRow.from_dict(r) for r in state.get(rows) or [] if r.get("source")],
               **{key: state.get(key) or {} for key in answers},
               "schedule": state.get("schedule") or {"kind": "none"}}
    try:
        definition = definition_of_state({**state, "code": state.get("code") or "new-pipeline",
                                          "name": state.get("name") or "New pipeline"})
    except (KeyError, ValueError) as exc:  # an earlier page's answers are missing
        return {**context, "definition_json": "", "definition_error": str(exc)}
    return {**context, "definition_json": json.dumps(definition, indent=2, ensure_ascii=False),
            "review_steps": definition["steps"]}


def default_code(prefix: str, hint: str) -> str:
    from pipelines.wizards.automap import normalize

    base = f"{prefix}-{normalize(hint).replace('_', '-')}"[:80].strip("-") or prefix
    code, n = base, 2
    while Pipeline.objects.filter(code=code).exists():
        code, n = f"{base}-{n}", n + 1
    return code
