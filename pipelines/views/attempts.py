"""A panel's input tried against the person's working definition (their draft, :mod:`pipelines.drafts`).

Every change the editor makes is one call of :mod:`pipelines.editing`, validated like the API, the CLI and
the run validate. Input that cannot be applied yet is kept in the draft as typed (``post_pairs``) and tried
again from there (``as_post``), so it is shown with each problem next to its field after a reload too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, QueryDict

from pipelines import drafts, editing
from pipelines.definition import problems_of
from pipelines.forms.reading import strip_missing
from pipelines.forms.settings import SettingsForm, read_settings, settings_problems
from pipelines.forms.step import StepForm, read_step, step_problems
from pipelines.models import Pipeline, PipelineDraft
from pipelines.services import definition_of
from pipelines.views.common import CHANGE


def working(request: HttpRequest, pipeline: Pipeline) -> tuple[dict, PipelineDraft | None]:
    """The definition this person edits: their draft, or the published one (also for those who only look)."""
    if request.user.has_perm(CHANGE):
        return drafts.working_definition(pipeline, request.user)
    return definition_of(pipeline), None


def post_pairs(post) -> list[list[str]]:
    """A form's fields as (name, value) pairs, the way a draft keeps input it could not apply yet."""
    return [[name, value] for name, values in post.lists() if name != "csrfmiddlewaretoken" for value in values]


def as_post(pairs: list) -> QueryDict:
    post = QueryDict(mutable=True)
    for name, value in pairs:
        post.appendlist(name, value)
    return post


@dataclass
class Attempt:
    """A panel's input tried against the working definition: ``changed`` is the new definition when the
    input is valid, else None and ``problems`` says why (also shown at the fields of ``form``)."""

    form: Any
    changed: dict | None
    problems: list[str]
    new_key: str | None = None


def problem_list(prefix: str, field_errors: dict, rest: list[str]) -> list[str]:
    return [*(f"{prefix}{name}: {m}" for name, ms in field_errors.items() for m in ms), *rest]


def try_step(definition: dict, key: str, post) -> Attempt:
    previous = editing.find_step(definition, key)
    step, errors = read_step(post, previous["type"])
    if errors:
        form = StepForm(step, original_key=key, field_errors=dict(errors), open=True)
        return Attempt(form, None, problem_list(f"step '{key}', ", dict(errors), []))
    changed = editing.update_step(definition, key, strip_missing(step))
    problems = problems_of(changed)
    if problems:
        field_errors, rest = step_problems(problems, step.get("key"))
        form = StepForm(step, original_key=key, field_errors=field_errors, errors=rest, open=True)
        return Attempt(form, None, problem_list(f"step '{key}', ", field_errors, rest))
    new_key = step.get("key", key)
    return Attempt(StepForm(editing.find_step(changed, new_key), open=True), changed, [], new_key)


def try_settings(definition: dict, post) -> Attempt:
    values, errors = read_settings(post)
    if not values["name"].strip():
        errors.add("name", "a pipeline needs a name")

    def form(field_errors: dict, rest: list[str]):
        return SettingsForm(values["name"], values["description"], values["context"],
                            values["allow_concurrent_runs"], field_errors=field_errors, errors=rest)

    if errors:
        return Attempt(form(dict(errors), []), None, problem_list("settings, ", dict(errors), []))
    changed = editing.set_settings(definition, name=values["name"].strip(),
                                   description=values["description"].strip(),
                                   context=strip_missing(values["context"]))
    problems = problems_of(changed)
    if problems:
        field_errors, rest = settings_problems(problems)
        return Attempt(form(field_errors, rest), None, problem_list("settings, ", field_errors, rest))
    return Attempt(form({}, []), changed, [])
