"""GraphQL for gates: ``pendingGates``, ``approveGate(runId, stepKey)``, ``rejectGate(runId, stepKey, reason)``.

Composed into the root schema (:mod:`datahub_project.schema`) beside pipelines' and runs'. Decisions go
through :mod:`gates.services`, as the pages and the REST API do.
"""

from __future__ import annotations

import graphene
from django.core.exceptions import PermissionDenied
from graphene.types.generic import GenericScalar

from gates import services
from pipelines.schema import error, require
from runs.schema import RunType, found_run


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
    # Resolved from gates.models.GateRequest's fields and its ``pipeline`` and ``details`` properties.


class Query(graphene.ObjectType):
    pending_gates = graphene.List(graphene.NonNull(PendingGateType), required=True, description="oldest first")

    @staticmethod
    def resolve_pending_gates(root, info):
        user = require(info)
        if not services.can_view(user):
            raise error("you need the 'runs.view_run' or the gate approval permission to see gates", "FORBIDDEN")
        return list(services.pending_gates(user))


class GateDecision(graphene.ObjectType):
    ok = graphene.Boolean(required=True)
    run = graphene.Field(RunType, required=True)


def _decide(info, decide, run_id, step_key: str, *extra) -> GateDecision:
    """Decide through ``gates.services``. The approval permission is checked before the run is looked up,
    so a user who may not decide learns nothing about which runs exist."""
    user = require(info, services.APPROVE_PERMISSION)
    run = found_run(run_id, user)
    try:
        decide(run, step_key, user, *extra)
    except services.GateNotFound as exc:
        raise error(str(exc), "NOT_FOUND") from None
    except services.InvalidDecision as exc:  # a rejection without a reason
        raise error(str(exc), "BAD_INPUT") from None
    except services.GateError as exc:  # decided already, or the run no longer waits there
        raise error(str(exc), "CONFLICT") from None
    except PermissionDenied as exc:
        raise error(str(exc), "FORBIDDEN") from None
    return GateDecision(ok=True, run=found_run(run.pk))


class ApproveGate(graphene.Mutation):
    """Approve the records waiting at a GATE step: the run continues from the gate."""

    class Arguments:
        run_id = graphene.ID(required=True)
        step_key = graphene.String(required=True)

    Output = GateDecision

    @staticmethod
    def mutate(root, info, run_id, step_key):
        return _decide(info, services.approve, run_id, step_key)


class RejectGate(graphene.Mutation):
    """Reject the records waiting at a GATE step: the run is cancelled with the reason."""

    class Arguments:
        run_id = graphene.ID(required=True)
        step_key = graphene.String(required=True)
        reason = graphene.String(required=True)

    Output = GateDecision

    @staticmethod
    def mutate(root, info, run_id, step_key, reason):
        return _decide(info, services.reject, run_id, step_key, reason)


class Mutation(graphene.ObjectType):
    approve_gate = ApproveGate.Field()
    reject_gate = RejectGate.Field()
