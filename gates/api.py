"""REST API for gates: the waiting list, one gate, approve and reject.

Thin views over :mod:`gates.services` with the plumbing of :mod:`pipelines.rest_plumbing` (token or session
authentication with CSRF, permissions checked before anything is looked up, strict JSON bodies, error
shapes). Looking needs ``runs.view_run`` or ``gates.approve_gate``; deciding needs ``gates.approve_gate``.
A second decision answers 409 with who decided and when.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response

from datahub_project.page_cache import RUNS, cached_page
from gates import notifications, services
from gates.models import GateRequest, GateStatus
from pipelines.definition import KEY_PATTERN
from pipelines.rest_plumbing import (
    MAX_ID,
    READ_ERRORS,
    WRITE_ERRORS,
    Body,
    Invalid,
    PageQuery,
    StrictCharField,
    any_of,
    endpoint,
    errors,
    page_of,
    paged,
    query_of,
    validated,
)
from runs.models import HookDelivery, HookStatus

VIEW = any_of(*services.VIEW_PERMISSIONS)
DECIDE = services.APPROVE_PERMISSION


class GateSerializer(serializers.Serializer):
    runId = serializers.IntegerField(source="run_id")
    stepKey = serializers.CharField(source="step_key")
    pipeline = serializers.CharField(source="run.pipeline.code")
    runStatus = serializers.CharField(source="run.status")
    status = serializers.ChoiceField(choices=GateStatus.choices)
    approvalType = serializers.CharField(source="approval_type")
    recordCount = serializers.IntegerField(source="record_count")
    errorRatePercent = serializers.FloatField(source="stats.errorRatePercent", allow_null=True, default=None)
    createdAt = serializers.DateTimeField(source="created_at")
    timeoutAt = serializers.DateTimeField(source="timeout_at", allow_null=True)
    decidedBy = serializers.SerializerMethodField()
    decidedAt = serializers.DateTimeField(source="decided_at", allow_null=True)
    decidedAutomatically = serializers.BooleanField(source="decided_automatically")
    reason = serializers.CharField()
    reviewUrl = serializers.SerializerMethodField()

    def get_decidedBy(self, gate) -> str | None:  # noqa: N802 - the API's camelCase
        return gate.decided_by.get_username() if gate.decided_by_id else None

    def get_reviewUrl(self, gate) -> str:  # noqa: N802
        return notifications.review_url(gate)


class GateDetailSerializer(GateSerializer):
    preview = serializers.ListField(child=serializers.JSONField())
    stats = serializers.DictField()
    notices = serializers.SerializerMethodField()

    def get_notices(self, gate) -> dict:
        """How the gate's notices went: their delivery rows (gates.notifications), as the run shows them."""
        sent = list(HookDelivery.objects.filter(run_id=gate.run_id, step_key=gate.step_key,
                                                stage=notifications.STAGE).order_by("pk"))
        webhook = next((d for d in sent if d.action_type == "WEBHOOK"), None)
        emails = [d for d in sent if d.action_type == "EMAIL"]
        failed = [d.detail for d in emails if d.status == HookStatus.FAILED]
        return {
            "webhook": {"url": gate.notify_webhook or None, "attempts": webhook.attempts if webhook else 0,
                        "status": webhook.status if webhook else None,
                        "sentAt": webhook.updated_at if webhook and webhook.status == HookStatus.SENT else None,
                        "error": webhook.detail if webhook and webhook.status in _UNSENT else None},
            "email": {"to": gate.notify_email,
                      "sentAt": max((d.updated_at for d in emails if d.status == HookStatus.SENT), default=None),
                      "error": "; ".join(failed) or None},
        }


_UNSENT = (HookStatus.FAILED, HookStatus.RETRYING)


class ConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    gate = GateSerializer(allow_null=True)


class RejectSerializer(Body):
    reason = StrictCharField(max_length=services.MAX_REASON, help_text="why the records must not go on")


RUN_ID = OpenApiParameter("run_id", int, OpenApiParameter.PATH, description="the run's id")
STEP_KEY = OpenApiParameter("step_key", str, OpenApiParameter.PATH, description="the GATE step's key",
                            pattern=KEY_PATTERN.pattern)
CONFLICT = {409: OpenApiResponse(ConflictSerializer, description="Already decided (who and when), or the run "
                                 "no longer waits at this gate.")}


def gate_or_404(user, run_id: int, step_key: str) -> GateRequest:
    if run_id > MAX_ID or not KEY_PATTERN.match(step_key):
        raise NotFound(f"run {run_id} has no gate at step '{step_key[:100]}'")
    try:
        return services.get_gate(run_id, step_key, user)
    except services.GateNotFound as exc:
        raise NotFound(str(exc)) from None


def _decided(request, decide) -> Response:
    try:
        gate = decide()
    except services.GateNotFound as exc:
        raise NotFound(str(exc)) from None
    except services.GateConflict as exc:
        gate = exc.gate
        data = GateSerializer(gate, context={"request": request}).data if gate is not None else None
        return Response({"detail": str(exc), "gate": data}, status=status.HTTP_409_CONFLICT)
    except services.InvalidDecision as exc:
        raise Invalid([{"step": None, "field": "reason", "message": str(exc), "code": "invalid"}]) from None
    except DjangoPermissionDenied as exc:  # the service checks too; the endpoint already did
        raise PermissionDenied(str(exc)) from None
    return Response(GateDetailSerializer(gate, context={"request": request}).data)


@extend_schema(operation_id="gates_pending", tags=["gates"], parameters=[PageQuery],
               responses={200: page_of(GateSerializer), **errors(*READ_ERRORS)},
               summary="The gates waiting for a decision, oldest first")
@cached_page(RUNS, api=True)
@endpoint(["GET"], GET=VIEW)
def pending(request):
    query = query_of(request, PageQuery)
    return paged(request, services.pending_gates(request.user), GateSerializer, query)


@extend_schema(operation_id="gates_retrieve", tags=["gates"], parameters=[RUN_ID, STEP_KEY],
               responses={200: GateDetailSerializer, **errors(*READ_ERRORS, 404)},
               summary="One gate: its counts, preview records, decision and notices")
@endpoint(["GET"], GET=VIEW)
def gate(request, run_id: int, step_key: str):
    return Response(GateDetailSerializer(gate_or_404(request.user, run_id, step_key), context={"request": request}).data)


@extend_schema(operation_id="gates_approve", tags=["gates"], parameters=[RUN_ID, STEP_KEY], request=None,
               responses={200: GateDetailSerializer, **errors(401, 403, 404), **CONFLICT},
               summary="Approve: the held records go on and the run continues from the gate on a worker")
@endpoint(["POST"], POST=DECIDE)
def approve(request, run_id: int, step_key: str):
    found = gate_or_404(request.user, run_id, step_key)
    return _decided(request, lambda: services.approve(found.run, found.step_key, request.user))


@extend_schema(operation_id="gates_reject", tags=["gates"], parameters=[RUN_ID, STEP_KEY],
               request=RejectSerializer,
               responses={200: GateDetailSerializer, **errors(*WRITE_ERRORS, 404), **CONFLICT},
               summary="Reject with a reason: the run is cancelled and nothing after the gate runs")
@endpoint(["POST"], POST=DECIDE)
def reject(request, run_id: int, step_key: str):
    body = validated(RejectSerializer, request.data)
    found = gate_or_404(request.user, run_id, step_key)
    return _decided(request, lambda: services.reject(found.run, found.step_key, request.user, body["reason"]))
