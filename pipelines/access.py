"""Per-object access: owners and teams on pipelines, connections and secrets (django-rules).

An object with no owner and no team is open: the model permissions alone decide, as before. Once it has
owners or teams, only they (and superusers) may use it, whatever their model permissions say; everyone
else gets "not found", so its existence does not leak. Runs and gates follow their pipeline.

``user.has_perm("pipelines.use_pipeline", obj)`` (and ``use_connection``, ``use_secret``) is the object
check, answered by the rules backend; :func:`visible` is the same rule as a queryset filter for lists.
A pipeline may reference (``connectionCode``, ``secretCode``, ``...SecretCode`` anywhere in a step's
config or its hooks) only connections and secrets that the person saving it may use:
:func:`unusable_references`.
"""

from __future__ import annotations

import rules
from django.db.models import Q, QuerySet
from django.http import Http404


def _allowed(user) -> Q:
    """The rule as a filter on the owning model: open (no owner, no team), or ``user`` owns it or is in one
    of its teams."""
    allowed = Q(owners__isnull=True, teams__isnull=True)
    if getattr(user, "is_authenticated", False):
        allowed |= Q(owners=user) | Q(teams__user=user)
    return allowed


@rules.predicate
def _open_or_theirs(user, obj) -> bool:
    # One query, whatever the answer (asking "open?", "owner?", "team?" in turn took up to four): the object
    # pages and the gate review ask it on every request.
    return obj is not None and type(obj).objects.filter(_allowed(user), pk=obj.pk).exists()


may_use = rules.is_superuser | _open_or_theirs
for _model in ("pipeline", "connection", "secret"):
    rules.add_perm(f"pipelines.use_{_model}", may_use)


def visible(user, queryset: QuerySet, via: str = "") -> QuerySet:
    """``queryset`` narrowed to what ``user`` may use; ``via`` is the path to the owning pipeline
    (``"pipeline"`` for runs, ``"run__pipeline"`` for gates). A subquery, not a join, so counts and
    annotations on ``queryset`` stay right."""
    if getattr(user, "is_superuser", False):
        return queryset
    owner = queryset.model
    if via:
        from pipelines.models import Pipeline

        owner = Pipeline
    allowed = _allowed(user)
    return queryset.filter(**{f"{via}__in" if via else "pk__in": owner.objects.filter(allowed).values("pk")})


def may(user, obj) -> bool:
    return user.has_perm(f"pipelines.use_{obj._meta.model_name}", obj)


def get_or_404(user, queryset: QuerySet, **lookup):
    """The object, or Http404 when it does not exist or ``user`` may not use it (the same answer)."""
    obj = queryset.filter(**lookup).first()
    if obj is None or not may(user, obj):
        raise Http404("no such object, or not yours to see")
    return obj


REFERENCE_KEYS = ("connectionCode",)


def references(config) -> tuple[set[str], set[str]]:
    """The connection and secret codes a step config names, at any depth."""
    connections: set[str] = set()
    secrets: set[str] = set()
    stack = [config]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, str) and item:
                    if key in REFERENCE_KEYS:
                        connections.add(item)
                    elif key == "secretCode" or key.endswith("SecretCode"):
                        secrets.add(item)
                elif isinstance(item, dict) and key.endswith("SecretCodes"):
                    secrets.update(v for v in item.values() if isinstance(v, str) and v)
                else:
                    stack.append(item)
        elif isinstance(value, list):
            stack.extend(value)
    return connections, secrets


def unusable_references(user, definition: dict) -> list[str]:
    """What ``definition`` names that ``user`` may not use, as "step 'k': connection 'c'" messages."""
    from pipelines.models import Connection, Secret

    places = [(f"step '{s.get('key')}'", s.get("config") or {}) for s in definition.get("steps") or []
              if isinstance(s, dict)]
    places.append(("hooks", definition.get("hooks") or {}))
    problems = []
    for where, config in places:
        connections, secrets = references(config)
        for kind, model, codes in (("connection", Connection, connections), ("secret", Secret, secrets)):
            for obj in model.objects.filter(code__in=codes).order_by("code"):
                if not may(user, obj):
                    problems.append(f"{where}: {kind} '{obj.code}' is not yours to use")
    return problems


# --- review before publish (pipelines.reviews) ----------------------------------------------------------

REVIEW_PERMISSION = "pipelines.review_pipeline"


@rules.predicate
def _holds_review_permission(user, review) -> bool:
    return user.has_perm(REVIEW_PERMISSION)  # the model permission (ModelBackend); no rule has this name


@rules.predicate
def _may_use_its_pipeline(user, review) -> bool:
    return review is not None and may(user, review.pipeline)


@rules.predicate
def _not_its_author(user, review) -> bool:
    return review is not None and review.author_id != user.pk


# Who may approve or reject a submission: a reviewer who may use the pipeline, and not its author: a change
# needs a second pair of eyes. Superusers may decide their own (they could turn review off anyway).
rules.add_perm("pipelines.decide_review",
               _holds_review_permission & _may_use_its_pipeline & (rules.is_superuser | _not_its_author))


def may_review(user, pipeline) -> bool:
    """``user`` reviews changes of ``pipeline`` (sees the queue); deciding one is ``may_decide``."""
    return user.has_perm(REVIEW_PERMISSION) and may(user, pipeline)


def may_decide(user, review) -> bool:
    return user.has_perm("pipelines.decide_review", review)
