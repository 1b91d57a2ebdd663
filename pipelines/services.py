"""Small, named functions between the pipeline models and the pure definition code.

Pages, the API and the CLI all save and read pipelines through these, so validation and revisions
behave the same everywhere.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from django.db import transaction
from django.db.models import Max

from pipelines.definition import Definition, EdgeSpec, StepSpec, parse
from pipelines.errors import DefinitionError, Problem
from pipelines.models import Edge, Pipeline, PipelineRevision, Step, code_validator


def definition_of(pipeline: Pipeline) -> dict:
    """The definition JSON the pipeline's rows serialize to (exactly what a revision freezes)."""
    out: dict[str, Any] = {"version": 1, "code": pipeline.code, "name": pipeline.name}
    if pipeline.description:
        out["description"] = pipeline.description
    # Serialized by the definition's own classes, so rows and parsed definitions leave out the same defaults.
    out["steps"] = [
        StepSpec(key=s.key, type=s.type, config=s.config, adapter_code=s.adapter_code, name=s.name,
                 disabled=s.disabled, retries=s.retries, retry_delay_ms=s.retry_delay_ms, timeout_ms=s.timeout_ms,
                 continue_on_error=s.continue_on_error, extra=s.extra).to_dict()
        for s in pipeline.steps.order_by("position")
    ]
    out["edges"] = [
        EdgeSpec(from_key=e.from_key, to_key=e.to_key, branch=e.branch, dependency_only=e.dependency_only).to_dict()
        for e in pipeline.edges.order_by("position")
    ]
    out["context"] = pipeline.context
    out.update(pipeline.extra)
    return out


def _check_code(code: Any) -> str:
    from django.core.exceptions import ValidationError

    if not isinstance(code, str) or not code:
        raise DefinitionError(Problem("a pipeline needs a code (lower-case letters, digits, '-', '_')", field="code"))
    try:
        code_validator(code)
    except ValidationError as exc:
        raise DefinitionError(Problem(" ".join(exc.messages), field="code")) from None
    if len(code) > 100:
        raise DefinitionError(Problem("at most 100 characters", field="code"))
    return code


@transaction.atomic
def save_definition(data: Any, *, user=None, code: str | None = None, message: str = "",
                    reviewed: bool = False) -> Pipeline:
    """Validate ``data`` and write it as the pipeline's rows; freeze a new revision if it changed.

    Raises DefinitionError (every problem, with step and field) and writes nothing when invalid. A person's
    change of a pipeline that requires review is refused (code ``review_required``) unless ``reviewed``,
    which only an approval passes (:func:`pipelines.reviews.approve`): no page, API call or restore can
    publish around the review.
    """
    definition = parse(data)
    code = _check_code(code or definition.code)
    normalized = definition.to_dict()
    normalized["code"] = code
    normalized.setdefault("name", code)
    if user is not None:
        _check_access(user, code, normalized, reviewed=reviewed)
    pipeline, created = Pipeline.objects.select_for_update().get_or_create(
        code=code, defaults={"name": normalized["name"]}
    )
    if not created and pipeline.current_revision_id and pipeline.current_revision.definition == normalized:
        return pipeline
    _write_rows(pipeline, definition, normalized)
    number = (pipeline.revisions.aggregate(n=Max("number"))["n"] or 0) + 1
    revision = PipelineRevision.objects.create(
        pipeline=pipeline, number=number, definition=normalized, created_by=user, message=message[:500]
    )
    pipeline.current_revision = revision
    pipeline.save(update_fields=["current_revision", "updated_at"])
    return pipeline


def _check_access(user, code: str, normalized: dict, *, reviewed: bool = False) -> None:
    """A person may change only a pipeline they may use, and have it name only connections and secrets
    they may use (pipelines.access), and change one that requires review only by an approved submission.
    Saves without a person (CLI import, demos) are the operator's."""
    from pipelines import access

    existing = Pipeline.objects.filter(code=code).first()
    if existing is not None and not access.may(user, existing):
        raise DefinitionError([Problem(f"pipeline '{code}' belongs to other people; you may not change it",
                                       code="forbidden")])
    if existing is not None and existing.requires_review and not reviewed:
        raise DefinitionError([Problem(
            f"pipeline '{code}' requires review: submit the change for review (Publish in the editor, "
            f"POST /api/pipelines/{code}/reviews/, or submitPipelineReview) instead of saving it",
            code="review_required")])
    problems = access.unusable_references(user, normalized)
    if problems:
        raise DefinitionError([Problem(p, code="forbidden") for p in problems])


def _write_rows(pipeline: Pipeline, definition: Definition, normalized: dict) -> None:
    pipeline.name = normalized["name"]
    pipeline.description = definition.description or ""
    pipeline.context = dict(definition.context)
    pipeline.extra = dict(definition.extra)
    pipeline.save()
    pipeline.steps.all().delete()
    pipeline.edges.all().delete()
    Step.objects.bulk_create(
        Step(
            pipeline=pipeline,
            position=n,
            key=s.key,
            type=s.type,
            adapter_code=s.adapter_code,
            name=s.name,
            config=dict(s.config),
            disabled=s.disabled,
            retries=s.retries,
            retry_delay_ms=s.retry_delay_ms,
            timeout_ms=s.timeout_ms,
            continue_on_error=s.continue_on_error,
            extra=dict(s.extra),
        )
        for n, s in enumerate(definition.steps)
    )
    Edge.objects.bulk_create(
        Edge(pipeline=pipeline, position=n, from_key=e.from_key, to_key=e.to_key, branch=e.branch,
             dependency_only=e.dependency_only)
        for n, e in enumerate(definition.edges)
    )


def get_revision(pipeline: Pipeline, number: int | None = None) -> PipelineRevision:
    if number is None:
        if pipeline.current_revision is None:
            raise DefinitionError(f"pipeline '{pipeline.code}' has no saved revision")
        return pipeline.current_revision
    try:
        return pipeline.revisions.get(number=number)
    except PipelineRevision.DoesNotExist:
        raise DefinitionError(f"pipeline '{pipeline.code}' has no revision {number}") from None


def restore_revision(pipeline: Pipeline, number: int, *, user=None) -> Pipeline:
    revision = get_revision(pipeline, number)
    return save_definition(revision.definition, user=user, code=pipeline.code, message=f"restored r{number}")


def diff_revisions(old: PipelineRevision | None, new: PipelineRevision) -> str:
    """A unified diff of two revisions' definitions (pretty JSON, sorted keys)."""

    def lines(rev):
        if rev is None:
            return []
        return json.dumps(rev.definition, indent=2, sort_keys=True).splitlines(keepends=True)

    return "".join(difflib.unified_diff(
        lines(old), lines(new),
        fromfile=f"r{old.number}" if old else "(none)", tofile=f"r{new.number}",
    ))
