"""The GraphQL root schema at /graphql/: the queries and mutations of pipelines, runs and gates.

The gate fields (``pendingGates``, ``approveGate``, ``rejectGate``) speak for ``gates.services``
(``pending_gates(user)``, ``can_view(user)``, ``approve(run, step_key, user)``, ``reject(run, step_key, user,
reason)``, ``APPROVE_PERMISSION``, ``GateError``), looked up when called: the root may know every app, but
runs must not import gates, and the schema keeps these fields whether or not a gates app is installed.
Without one, the mutations answer UNAVAILABLE and ``pendingGates`` is empty.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import graphene
from graphene.types.generic import GenericScalar

from pipelines import credential_schema
from pipelines import schema as pipelines_schema
from pipelines.schema import error, require
from runs import schema as runs_schema
from runs.schema import RunType, found_run


def gates_services() -> ModuleType | None:
    """The ``gates.services`` module, or None while there is no gates app to provide it."""
    try:
        return importlib.import_module("gates.services")
    except ModuleNotFoundError as exc:
        if exc.name in ("gates", "gates.services"):
            return None
        raise


def gates_service(name: str):
    """``gates.services.<name>``, or None while the gates app does not provide it."""
    module = gates_services()
    return getattr(module, name, None) if module is not None else None


def _field(item, name: str, default=None):
    if isinstance(item, dict):
        return item.get(name, default)
    return getattr(item, name, default)


class PendingGateType(graphene.ObjectType):
    class Meta:
        name = "PendingGate"
        description = "A GATE step waiting for a person to approve or reject its records."

    run_id = graphene.ID(required=True)
    step_key = graphene.String(required=True)
    pipeline = graphene.String(description="the pipeline's code")
    created_at = graphene.DateTime(description="waiting since")
    record_count = graphene.Int()
    details = GenericScalar(description="what else the gate tells (approval type, counts, error rate)")

    @staticmethod
    def resolve_run_id(gate, info):
        return _field(gate, "run_id")

    @staticmethod
    def resolve_step_key(gate, info):
        return _field(gate, "step_key")

    @staticmethod
    def resolve_pipeline(gate, info):
        return _field(gate, "pipeline")

    @staticmethod
    def resolve_created_at(gate, info):
        return _field(gate, "created_at")

    @staticmethod
    def resolve_record_count(gate, info):
        return _field(gate, "record_count")

    @staticmethod
    def resolve_details(gate, info):
        return _field(gate, "details")


class GateQuery(graphene.ObjectType):
    pending_gates = graphene.List(graphene.NonNull(PendingGateType), required=True,
                                  description="oldest first")

    @staticmethod
    def resolve_pending_gates(root, info):
        pending = gates_service("pending_gates")
        if pending is None:
            require(info, "runs.view_run")
            return []
        can_view = gates_service("can_view")
        user = require(info)
        if can_view is not None and not can_view(user):
            raise error("you need the 'runs.view_run' or the gate approval permission to see gates", "FORBIDDEN")
        return list(pending(user))


class GateDecision(graphene.ObjectType):
    ok = graphene.Boolean(required=True)
    run = graphene.Field(RunType, required=True)


def _decide(info, name: str, run_id, step_key: str, *extra):
    """Decide through ``gates.services.<name>``. Its permission (``APPROVE_PERMISSION``) is checked before
    the run is looked up, so a user who may not decide learns nothing about which runs exist."""
    decide = gates_service(name)
    if decide is None:
        raise error("gates are not available yet (the gates app does not provide this)", "UNAVAILABLE")
    permission = gates_service("APPROVE_PERMISSION")
    user = require(info, permission) if permission else require(info)
    run = found_run(run_id, user)
    try:
        decide(run, step_key, user, *extra)
    except LookupError as exc:  # gates.services.GateNotFound
        raise error(str(exc), "NOT_FOUND") from None
    except ValueError as exc:  # gates.services.InvalidDecision (a rejection without a reason)
        raise error(str(exc), "BAD_INPUT") from None
    except Exception as exc:
        gate_error = gates_service("GateError")
        if gate_error is not None and isinstance(exc, gate_error):  # decided already, or not waiting
            raise error(str(exc), "CONFLICT") from None
        raise
    return GateDecision(ok=True, run=found_run(run.pk))


class ApproveGate(graphene.Mutation):
    """Approve the records waiting at a GATE step: the run continues from the gate."""

    class Arguments:
        run_id = graphene.ID(required=True)
        step_key = graphene.String(required=True)

    Output = GateDecision

    @staticmethod
    def mutate(root, info, run_id, step_key):
        return _decide(info, "approve", run_id, step_key)


class RejectGate(graphene.Mutation):
    """Reject the records waiting at a GATE step: the run is cancelled with the reason."""

    class Arguments:
        run_id = graphene.ID(required=True)
        step_key = graphene.String(required=True)
        reason = graphene.String(required=True)

    Output = GateDecision

    @staticmethod
    def mutate(root, info, run_id, step_key, reason):
        return _decide(info, "reject", run_id, step_key, reason)


class GateMutation(graphene.ObjectType):
    approve_gate = ApproveGate.Field()
    reject_gate = RejectGate.Field()


class Query(pipelines_schema.Query, credential_schema.Query, runs_schema.Query, GateQuery, graphene.ObjectType):
    pass


class Mutation(pipelines_schema.Mutation, credential_schema.Mutation, runs_schema.Mutation, GateMutation,
               graphene.ObjectType):
    pass


schema = graphene.Schema(query=Query, mutation=Mutation)
