"""GraphQL for pipelines and the adapter catalogue, and the helpers every GraphQL module shares.

The same rules as the REST API (:mod:`pipelines.api`): the same services, the same Django permissions
(checked before anything is looked up), the same problem list for an invalid definition. A resolver
refuses with a GraphQL error whose ``extensions.code`` says why: UNAUTHENTICATED, FORBIDDEN, NOT_FOUND,
BAD_INPUT, CONFLICT, UNAVAILABLE; anything unexpected is logged and answered as INTERNAL without details.
"""

from __future__ import annotations

import logging

import graphene
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from graphene.types.generic import GenericScalar
from graphql import GraphQLError

from pipelines import access, registry, services
from pipelines.drafts import ON_STALE, StaleBase, save_from_base
from pipelines.errors import DatahubError, DefinitionError
from pipelines.models import Pipeline

log = logging.getLogger(__name__)

MAX_PAGE = 500
MAX_OFFSET = 2**31 - 1


def error(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def require(info, *perms: str, any_of: bool = False):
    """The request's user, if logged in and holding ``perms`` (all of them, or one with ``any_of``)."""
    user = getattr(info.context, "user", None)
    if user is None or not user.is_authenticated:
        raise error("authentication required: log in or send 'Authorization: Token <key>'", "UNAUTHENTICATED")
    ok = any(user.has_perm(p) for p in perms) if any_of else user.has_perms(perms)
    if not ok:
        joined = " or ".join if any_of else ", ".join
        raise error(f"you need the {joined(repr(p) for p in perms)} permission to do this", "FORBIDDEN")
    return user


def window(limit: int | None, offset: int | None, default_limit: int = 50) -> slice:
    """The slice of a page; an explicit null (which GraphQL passes past the default) means the default."""
    limit = default_limit if limit is None else limit
    offset = 0 if offset is None else offset
    if not 1 <= limit <= MAX_PAGE:
        raise error(f"limit must be from 1 to {MAX_PAGE}", "BAD_INPUT")
    if not 0 <= offset <= MAX_OFFSET:
        raise error(f"offset must be from 0 to {MAX_OFFSET}", "BAD_INPUT")
    return slice(offset, offset + limit)


class ErrorMiddleware:
    """Turns the errors a resolver may meet into GraphQL errors with a code; hides unexpected ones."""

    def resolve(self, next, root, info, **args):  # noqa: A002 - graphql-core's middleware signature
        try:
            return next(root, info, **args)
        except GraphQLError:
            raise
        except PermissionDenied as exc:
            raise error(str(exc) or "permission denied", "FORBIDDEN") from None
        except DatahubError as exc:
            raise error(str(exc), "BAD_INPUT") from None
        except Exception:
            log.exception("GraphQL resolver %s.%s failed", info.parent_type.name, info.field_name)
            raise error("internal error (logged on the server)", "INTERNAL") from None


class ProblemType(graphene.ObjectType):
    class Meta:
        name = "Problem"
        description = "One thing wrong with a definition, with the step and field it is in."

    step = graphene.String()
    field = graphene.String()
    message = graphene.String(required=True)
    code = graphene.String(required=True)


class RevisionType(graphene.ObjectType):
    class Meta:
        name = "PipelineRevision"

    number = graphene.Int(required=True)
    message = graphene.String(required=True)
    created_by = graphene.String()
    approved_by = graphene.String(description="the reviewer who approved it (pipelines that require review)")
    created_at = graphene.DateTime(required=True)
    definition = GenericScalar(required=True)

    @staticmethod
    def resolve_created_by(rev, info):
        return rev.created_by.get_username() if rev.created_by_id else None

    @staticmethod
    def resolve_approved_by(rev, info):
        review = getattr(rev, "review", None)  # the reverse one-to-one: an AttributeError (None) when absent
        return review.decided_by.get_username() if review is not None and review.decided_by_id else None


class PipelineType(graphene.ObjectType):
    class Meta:
        name = "Pipeline"

    code = graphene.String(required=True)
    name = graphene.String(required=True)
    description = graphene.String(required=True)
    enabled = graphene.Boolean(required=True)
    allow_concurrent_runs = graphene.Boolean(required=True)
    requires_review = graphene.Boolean(required=True, description="changes are submitted for review, not saved")
    revision = graphene.Int(description="the current revision's number")
    definition = GenericScalar(description="the definition JSON of the current revision")
    revisions = graphene.List(graphene.NonNull(RevisionType), required=True, limit=graphene.Int(default_value=20),
                              offset=graphene.Int(default_value=0), description="newest first")
    created_at = graphene.DateTime(required=True)
    updated_at = graphene.DateTime(required=True)

    @staticmethod
    def resolve_revision(pipeline, info):
        return pipeline.current_revision.number if pipeline.current_revision_id else None

    @staticmethod
    def resolve_definition(pipeline, info):
        return pipeline.current_revision.definition if pipeline.current_revision_id else None

    @staticmethod
    def resolve_revisions(pipeline, info, limit, offset):
        return pipeline.revisions.select_related("created_by").order_by("-number")[window(limit, offset, 20)]


class AdapterType(graphene.ObjectType):
    class Meta:
        name = "Adapter"
        description = "A registered operator, extractor, loader, exporter, feed, sink or step type."

    kind = graphene.String(required=True)
    code = graphene.String(required=True)
    name = graphene.String(required=True)
    category = graphene.String(required=True)
    description = graphene.String(required=True)
    schema = GenericScalar(required=True, description="JSON schema of the config (or an operator's args)")
    builtin = graphene.Boolean(required=True)


class Query(graphene.ObjectType):
    pipelines = graphene.List(graphene.NonNull(PipelineType), required=True, search=graphene.String(),
                              limit=graphene.Int(default_value=50), offset=graphene.Int(default_value=0))
    pipeline = graphene.Field(PipelineType, code=graphene.String(required=True))
    adapters = graphene.List(graphene.NonNull(AdapterType), required=True, kind=graphene.String(
        description="one of: " + ", ".join(registry.ALL)))

    @staticmethod
    def resolve_pipelines(root, info, limit, offset, search=None):
        user = require(info, "pipelines.view_pipeline")
        queryset = access.visible(user, Pipeline.objects.select_related("current_revision")).order_by("code")
        if search:
            queryset = queryset.filter(Q(code__icontains=search) | Q(name__icontains=search))
        return queryset[window(limit, offset)]

    @staticmethod
    def resolve_pipeline(root, info, code):
        user = require(info, "pipelines.view_pipeline")
        return access.visible(user, Pipeline.objects.select_related("current_revision")).filter(code=code).first()

    @staticmethod
    def resolve_adapters(root, info, kind=None):
        require(info, "pipelines.view_pipeline")
        if kind is not None and kind not in registry.ALL:
            raise error(f"unknown kind '{kind}' (one of: {', '.join(registry.ALL)})", "BAD_INPUT")
        kinds = [kind] if kind else list(registry.ALL)
        return [entry.describe() for k in kinds for entry in registry.ALL[k]]


class StaleType(graphene.ObjectType):
    """A newer revision was published after the one a change was based on."""

    base_revision = graphene.Int()
    current_revision = graphene.Int(required=True)
    diff = graphene.String(required=True, description="unified diff from baseRevision to currentRevision")
    conflicts = graphene.List(graphene.NonNull(graphene.String), required=True,
                              description="what both changed (onStale: MERGE)")


OnStale = graphene.Enum("OnStale", [(x.upper(), x) for x in ON_STALE])


class SavePipeline(graphene.Mutation):
    """Create or update a pipeline from a definition, validated as in the editor.

    An invalid definition is not an error of the request: ``ok`` is false and ``problems`` lists
    every problem with its step and field, and nothing is saved. With ``baseRevision``, a change made
    while a newer revision was published is not saved either: ``stale`` holds the diff to it, and the
    caller sends it again with ``onStale: MERGE`` or ``OVERWRITE`` on purpose.
    """

    class Arguments:
        definition = GenericScalar(required=True)
        code = graphene.String(description="the pipeline's code (default: the definition's code)")
        message = graphene.String(default_value="", description="what changed, kept with the revision")
        base_revision = graphene.Int(description="the revision this definition is a change of")
        on_stale = OnStale(default_value="refuse", description="when a newer revision than baseRevision exists")

    ok = graphene.Boolean(required=True)
    created = graphene.Boolean(required=True)
    pipeline = graphene.Field(PipelineType)
    problems = graphene.List(graphene.NonNull(ProblemType), required=True)
    stale = graphene.Field(StaleType)

    @staticmethod
    def mutate(root, info, definition, code=None, message="", base_revision=None, on_stale="refuse"):
        require(info, "pipelines.add_pipeline", "pipelines.change_pipeline", any_of=True)
        target = code or (definition.get("code") if isinstance(definition, dict) else None)
        exists = isinstance(target, str) and Pipeline.objects.filter(code=target).exists()
        user = require(info, "pipelines.change_pipeline" if exists else "pipelines.add_pipeline")
        message = (message or "")[:500]
        if exists and not access.may(user, Pipeline.objects.get(code=target)):
            # before anything is compared with it: a stale-base answer would show its definition's diff
            return SavePipeline(ok=False, created=False, pipeline=None, problems=[{
                "step": None, "field": "code", "message": f"pipeline '{target}' belongs to other people; you may "
                                                          "not change it", "code": "forbidden"}])
        try:
            if exists and base_revision is not None:
                saved = save_from_base(definition, pipeline=Pipeline.objects.get(code=target), user=user,
                                       message=message, base=base_revision, on_stale=getattr(on_stale, "value",
                                                                                             on_stale))
            else:
                saved = services.save_definition(definition, user=user, code=code, message=message)
        except DefinitionError as exc:
            return SavePipeline(ok=False, created=False, pipeline=None, problems=exc.as_list())
        except StaleBase as exc:
            stale = StaleType(base_revision=exc.base.number if exc.base else None,
                              current_revision=exc.current.number, diff=exc.diff, conflicts=exc.conflicts)
            return SavePipeline(ok=False, created=False, pipeline=None, stale=stale,
                                problems=[{"step": None, "field": "baseRevision", "message": str(exc),
                                           "code": "stale"}])
        return SavePipeline(ok=True, created=not exists, pipeline=saved, problems=[])


class Mutation(graphene.ObjectType):
    save_pipeline = SavePipeline.Field()
