"""One unpublished draft per pipeline and person, and turning it into a revision.

The editor saves every change into the person's draft (:class:`~pipelines.models.PipelineDraft`), never
straight into a revision: a pipeline edited in ten clicks gets one revision, with the message its author
gives when publishing. Two guarantees:

* A draft's ``definition`` is always valid: :func:`save_draft` refuses (DefinitionError, every problem)
  what :func:`~pipelines.definition.problems_of` refuses, which is exactly what a run would refuse.
  Input that cannot be applied yet lives in ``pending`` and is shown where it was typed.
* Publishing is optimistic concurrency on ``base_revision``: a draft started from revision 3 cannot be
  published over revision 4 by accident. :func:`publish` raises :class:`StaleDraft` (with both diffs)
  unless the person chose to overwrite, or merged revision 4 in first with :func:`merge_into_draft`.
"""

from __future__ import annotations

import copy
import difflib
import json
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from pipelines.definition import parse, problems_of
from pipelines.errors import DefinitionError, Problem
from pipelines.models import Pipeline, PipelineDraft, PipelineRevision
from pipelines.services import definition_of, save_definition


class StaleDraft(Exception):
    """The draft was started from an older revision than the pipeline's current one."""

    def __init__(self, draft: PipelineDraft, current: PipelineRevision | None):
        self.draft = draft
        self.base = draft.base_revision
        self.current = current
        super().__init__(f"revision {current.number if current else '?'} was published after your draft started "
                         f"(from revision {self.base.number if self.base else 'none'})")


def normalized(data: dict, code: str) -> dict | None:
    """``data`` as save_definition would store it, or None when it is not valid."""
    try:
        out = parse(data).to_dict()
    except DefinitionError:
        return None
    out["code"] = code
    out.setdefault("name", code)
    return out


def get_draft(pipeline: Pipeline, user) -> PipelineDraft | None:
    return PipelineDraft.objects.select_related("base_revision").filter(pipeline=pipeline, user=user).first()


def working_definition(pipeline: Pipeline, user) -> tuple[dict, PipelineDraft | None]:
    """What the editor shows ``user``: their draft if they have one, else the published definition."""
    draft = get_draft(pipeline, user)
    if draft is not None:
        return copy.deepcopy(draft.definition), draft
    return definition_of(pipeline), None


def is_dirty(pipeline: Pipeline, draft: PipelineDraft | None) -> bool:
    """The draft holds something the current revision does not (or typed input not applied yet)."""
    if draft is None:
        return False
    if draft.pending:
        return True
    current = pipeline.current_revision.definition if pipeline.current_revision else None
    return normalized(draft.definition, pipeline.code) != current


@transaction.atomic
def save_draft(pipeline: Pipeline, user, definition: dict | None = None, *,
               pending: dict[str, Any] | None = None) -> PipelineDraft | None:
    """Store ``definition`` (validated first) and set or clear ``pending`` entries (a value of None clears).

    A draft that ends up equal to the current revision with nothing pending is deleted: there is nothing
    to publish, and the next change starts from the newest revision.
    """
    if definition is not None:
        problems = problems_of(definition)
        if problems:
            raise DefinitionError(problems)
    draft = PipelineDraft.objects.select_for_update().filter(pipeline=pipeline, user=user).first()
    if draft is None:
        draft = PipelineDraft(pipeline=pipeline, user=user, definition=definition_of(pipeline),
                              base_revision=pipeline.current_revision, pending={})
    if definition is not None:
        draft.definition = copy.deepcopy(definition)
    for name, value in (pending or {}).items():
        if value is None:
            draft.pending.pop(name, None)
        else:
            draft.pending[name] = value
    if (not draft.pending and draft.base_revision_id == pipeline.current_revision_id
            and not is_dirty(pipeline, draft)):
        if draft.pk:
            draft.delete()
        return None
    draft.save()
    return draft


@transaction.atomic
def replace_draft(pipeline: Pipeline, user, definition: dict) -> PipelineDraft | None:
    """Put ``definition`` into ``user``'s draft whole (a restored revision, the JSON view), validated like
    every change of a draft. Typed input the draft kept for its panels goes: it was typed against the
    definition this replaces. Returns the draft, or None when ``definition`` is what is published."""
    definition = {**definition, "code": pipeline.code}
    problems = problems_of(definition)
    if problems:
        raise DefinitionError(problems)
    draft = get_draft(pipeline, user)
    forget = {name: None for name in (draft.pending if draft else {})}
    return save_draft(pipeline, user, normalized(definition, pipeline.code), pending=forget)


def discard_draft(pipeline: Pipeline, user) -> None:
    PipelineDraft.objects.filter(pipeline=pipeline, user=user).delete()


@transaction.atomic
def publish(pipeline: Pipeline, user, message: str, *, overwrite: bool = False) -> Pipeline:
    """Freeze the draft as the pipeline's next revision and delete it.

    Raises DefinitionError when the draft still holds input that was not applied (every panel named),
    and StaleDraft when another revision was published since the draft began, unless ``overwrite``.
    """
    pipeline = Pipeline.objects.select_for_update().get(pk=pipeline.pk)
    draft = publishable_draft(pipeline, user, overwrite=overwrite)
    pipeline = save_definition(draft.definition, user=user, code=pipeline.code, message=message or "published")
    draft.delete()
    return pipeline


def publishable_draft(pipeline: Pipeline, user, *, overwrite: bool = False) -> PipelineDraft:
    """The draft, when it may become a revision (or a submission for review) now: DefinitionError when there
    is none or it holds input not applied yet; StaleDraft when its base is not current, unless ``overwrite``."""
    draft = get_draft(pipeline, user)
    if draft is None:
        raise DefinitionError("there is no draft to publish")
    if draft.pending:
        raise DefinitionError([Problem("typed input that is not valid yet: fix it or undo it before publishing",
                                       step=name.removeprefix("step:") if name.startswith("step:") else None,
                                       field=None if name.startswith("step:") else name)
                               for name in sorted(draft.pending)])
    if draft.base_revision_id != pipeline.current_revision_id and not overwrite:
        raise StaleDraft(draft, pipeline.current_revision)
    return draft


def diff_text(old: dict | None, new: dict | None, old_name: str, new_name: str) -> str:
    def lines(d):
        return [] if d is None else json.dumps(d, indent=2, sort_keys=True).splitlines(keepends=True)

    return "".join(difflib.unified_diff(lines(old), lines(new), fromfile=old_name, tofile=new_name))


@dataclass
class Merge:
    definition: dict
    conflicts: list[str]


def three_way(base: dict, theirs: dict, mine: dict) -> Merge:
    """Merge two changes of ``base``: by step (key), by edge, and by top-level key.

    What only one side changed is taken from that side. What both changed differently is a conflict; the
    result keeps ``mine`` there and names it, so the person decides with the conflict in front of them.
    """
    conflicts: list[str] = []
    out: dict[str, Any] = {}
    for key in sorted((set(base) | set(theirs) | set(mine)) - {"steps", "edges"}):
        b, t, m = base.get(key), theirs.get(key), mine.get(key)
        value = t if m == b else m
        if m != b and t != b and t != m:
            conflicts.append(f"'{key}' was changed in both")
        if value is not None:
            out[key] = copy.deepcopy(value)

    def by_key(d):
        return {s.get("key"): s for s in d.get("steps") or []}

    b_steps, t_steps, m_steps = by_key(base), by_key(theirs), by_key(mine)
    steps = []
    for key, m in m_steps.items():
        b, t = b_steps.get(key), t_steps.get(key)
        if b is None:
            if t is not None and t != m:
                conflicts.append(f"step '{key}' was added in both, differently")
            steps.append(m)
        elif t is None:
            if m != b:
                conflicts.append(f"step '{key}' was removed in revision but changed in your draft")
                steps.append(m)
        elif m == b:
            steps.append(t)
        else:
            if t != b and t != m:
                conflicts.append(f"step '{key}' was changed in both")
            steps.append(m)
    for key, t in t_steps.items():
        if key in m_steps:
            continue
        b = b_steps.get(key)
        if b is None:
            steps.append(t)
        elif t != b:
            conflicts.append(f"step '{key}' was changed in the revision but removed in your draft")
    out["steps"] = copy.deepcopy(steps)

    def edge_id(e):
        return json.dumps(e, sort_keys=True)

    b_edges = {edge_id(e) for e in base.get("edges") or []}
    t_edges = {edge_id(e): e for e in theirs.get("edges") or []}
    edges = [e for e in mine.get("edges") or [] if not (edge_id(e) in b_edges and edge_id(e) not in t_edges)]
    mine_ids = {edge_id(e) for e in edges}
    edges += [e for i, e in t_edges.items() if i not in b_edges and i not in mine_ids]
    out["edges"] = copy.deepcopy(edges)
    return Merge(out, conflicts)


@transaction.atomic
def merge_into_draft(pipeline: Pipeline, user) -> list[str]:
    """Bring the revisions published since the draft began into it; the draft's base becomes the current
    revision. Returns the conflicts (kept as the draft had them). Raises DefinitionError, changing
    nothing, when the merged definition would not be valid."""
    pipeline = Pipeline.objects.select_for_update().get(pk=pipeline.pk)
    # of=self: PostgreSQL cannot lock the nullable side of the join to the base revision (nor need it).
    draft = (PipelineDraft.objects.select_for_update(of=("self",)).select_related("base_revision")
             .get(pipeline=pipeline, user=user))
    current = pipeline.current_revision
    base = draft.base_revision.definition if draft.base_revision else {"steps": [], "edges": []}
    theirs = current.definition if current else {"steps": [], "edges": []}
    mine = normalized(draft.definition, pipeline.code) or draft.definition
    result = three_way(base, theirs, mine)
    problems = problems_of(result.definition)
    if problems:
        raise DefinitionError(problems)
    draft.definition = result.definition
    draft.base_revision = current
    draft.save()
    return result.conflicts


class StaleBase(Exception):
    """A definition sent as a change of revision ``base`` while the pipeline is at a newer one."""

    def __init__(self, base: PipelineRevision | None, current: PipelineRevision, diff: str,
                 conflicts: list[str] | None = None):
        self.base = base
        self.current = current
        self.diff = diff
        self.conflicts = conflicts or []
        what = (f"revision {current.number} was published after revision {base.number if base else '?'}, "
                "which this change is based on")
        if self.conflicts:
            what += "; merging found conflicts: " + "; ".join(self.conflicts)
        super().__init__(what)

    def as_dict(self) -> dict:
        return {"baseRevision": self.base.number if self.base else None, "currentRevision": self.current.number,
                "diff": self.diff, "conflicts": self.conflicts, "current": self.current.definition}


ON_STALE = ("refuse", "merge", "overwrite")


@transaction.atomic
def save_from_base(definition: Any, *, pipeline: Pipeline, user, message: str, base: int | None,
                   on_stale: str = "refuse", reviewed: bool = False) -> Pipeline:
    """The API's save with optimistic concurrency: ``definition`` is a change of revision ``base``.

    When a newer revision was published meanwhile: ``refuse`` raises StaleBase with the diff from
    ``base`` to the current revision; ``merge`` merges both changes (three_way) and saves the result, or
    raises StaleBase naming the conflicts; ``overwrite`` saves ``definition`` as it is. Without ``base``
    the save is unconditional, as before revisions were compared (clients that do not send one).
    ``reviewed`` is for :func:`pipelines.reviews.approve` only (see ``save_definition``).
    """
    pipeline = Pipeline.objects.select_for_update(of=("self",)).select_related("current_revision").get(pk=pipeline.pk)
    current = pipeline.current_revision
    if base is None or current is None or base == current.number or on_stale == "overwrite":
        return save_definition(definition, user=user, code=pipeline.code, message=message, reviewed=reviewed)
    base_revision = pipeline.revisions.filter(number=base).first()
    if base_revision is None:
        raise DefinitionError(Problem(f"there is no revision {base} of '{pipeline.code}'", field="baseRevision"))
    diff = diff_text(base_revision.definition, current.definition, f"r{base}", f"r{current.number}")
    if on_stale != "merge":
        raise StaleBase(base_revision, current, diff)
    mine = normalized(definition, pipeline.code) if isinstance(definition, dict) else None
    if mine is None:
        # raises, every problem
        return save_definition(definition, user=user, code=pipeline.code, message=message, reviewed=reviewed)
    merged = three_way(base_revision.definition, current.definition, mine)
    if merged.conflicts:
        raise StaleBase(base_revision, current, diff, merged.conflicts)
    return save_definition(merged.definition, user=user, code=pipeline.code, message=message, reviewed=reviewed)
