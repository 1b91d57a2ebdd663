"""REST API for the MESSAGE triggers' consumers (what the Queues page shows and does): the list, one
consumer with its counters, its dead letters (paged, newest first), start and stop.

Thin views over :mod:`runs.consumers.services` with the plumbing of :mod:`pipelines.rest_plumbing`. Looking
needs ``pipelines.view_pipeline`` and ``runs.view_run`` (as the page); starting and stopping need
``pipelines.run_pipeline`` too. A consumer whose pipeline is another team's (pipelines.access) is a 404,
as one that does not exist. Start and stop set what is wanted; the ``manage.py consume`` process that holds
the consumer follows within a tick, so the answer shows ``desired`` changed and ``state`` as it still is.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from pipelines.rest_plumbing import READ_ERRORS, PageQuery, endpoint, errors, page_of, paged, query_of
from runs.consumers import services
from runs.consumers.services import Configured

LOOK = ("pipelines.view_pipeline", "runs.view_run")
CONTROL = (*LOOK, "pipelines.run_pipeline")
STATES = ["STOPPED", "STARTING", "RUNNING", "FAILING", "STOPPING", "NOT RUNNING"]


class ConsumerSerializer(serializers.Serializer):
    """A :class:`runs.consumers.services.Configured`: the consumer row and what its trigger says."""

    id = serializers.IntegerField(source="consumer.pk")
    pipeline = serializers.CharField(source="consumer.pipeline.code")
    trigger = serializers.CharField(source="consumer.trigger_key", help_text="the MESSAGE trigger step's key")
    queueType = serializers.CharField(source="consumer.queue_type")
    queueName = serializers.CharField(source="consumer.queue_name")
    desired = serializers.ChoiceField(choices=[services.RUNNING, services.STOPPED], source="consumer.desired",
                                      help_text="what was asked for (start/stop)")
    state = serializers.ChoiceField(choices=STATES, source="shown_state",
                                    help_text="what the Queues page shows: the holding process's report, or "
                                              "NOT RUNNING when no consume process holds a wanted consumer")
    canRun = serializers.BooleanField(source="can_run")
    whyNot = serializers.CharField(source="why_not", help_text="why it cannot run (empty when it can)")
    owner = serializers.CharField(source="consumer.owner", help_text="the consume process holding it (host:pid)")
    heartbeatAt = serializers.DateTimeField(source="consumer.heartbeat_at", allow_null=True)
    received = serializers.IntegerField(source="consumer.received")
    runsStarted = serializers.IntegerField(source="consumer.runs_started")
    acked = serializers.IntegerField(source="consumer.acked")
    errors = serializers.IntegerField(source="consumer.errors")
    deadLetters = serializers.IntegerField(source="consumer.dead_letters")
    lastError = serializers.CharField(source="consumer.last_error")
    lag = serializers.IntegerField(source="consumer.lag", allow_null=True)
    rate = serializers.FloatField(source="consumer.rate", help_text="messages received per second, last minute")


class DeadLetterSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField(help_text="the message's key (id) on the broker")
    body = serializers.CharField(help_text="as received, cut at 64 KiB")
    reason = serializers.CharField()
    attempts = serializers.IntegerField()
    createdAt = serializers.DateTimeField(source="created_at")


CONSUMER_ID = OpenApiParameter("consumer_id", {"type": "integer", "minimum": 1}, OpenApiParameter.PATH,
                               description="the consumer's id")


def consumer_or_404(user, consumer_id: int) -> Configured:
    found = services.one_for(user, consumer_id)
    if found is None:
        raise NotFound(f"no consumer {consumer_id}")
    return found


@extend_schema(operation_id="consumers_list", tags=["consumers"], parameters=[PageQuery],
               responses={200: page_of(ConsumerSerializer), **errors(*READ_ERRORS)},
               summary="The MESSAGE triggers' consumers, by pipeline and trigger")
@endpoint(["GET"], GET=LOOK)
def consumers(request):
    query = query_of(request, PageQuery)
    return paged(request, services.visible_to(request.user, services.configured_consumers()), ConsumerSerializer,
                 query)


@extend_schema(operation_id="consumers_retrieve", tags=["consumers"], parameters=[CONSUMER_ID],
               responses={200: ConsumerSerializer, **errors(401, 403, 404)},
               summary="One consumer: state, counters, lag, rate, last error")
@endpoint(["GET"], GET=LOOK)
def consumer(request, consumer_id: int):
    return Response(ConsumerSerializer(consumer_or_404(request.user, consumer_id)).data)


@extend_schema(operation_id="consumers_dead_letters", tags=["consumers"], parameters=[CONSUMER_ID, PageQuery],
               responses={200: page_of(DeadLetterSerializer), **errors(*READ_ERRORS, 404)},
               summary="The messages that did not become a run, with the reason, newest first")
@endpoint(["GET"], GET=LOOK)
def dead_letters(request, consumer_id: int):
    query = query_of(request, PageQuery)
    found = consumer_or_404(request.user, consumer_id)
    return paged(request, found.consumer.dead_letter_rows.order_by("-created_at", "-id"), DeadLetterSerializer,
                 query)


def _set(request, consumer_id: int, desired: str) -> Response:
    found = consumer_or_404(request.user, consumer_id)
    services.set_desired(found.consumer, desired)
    return Response(ConsumerSerializer(found).data)


@extend_schema(operation_id="consumers_start", tags=["consumers"], parameters=[CONSUMER_ID], request=None,
               responses={200: ConsumerSerializer, **errors(401, 403, 404)},
               summary="Start: a consume process takes the consumer within a few seconds")
@endpoint(["POST"], POST=CONTROL)
def start(request, consumer_id: int):
    return _set(request, consumer_id, services.RUNNING)


@extend_schema(operation_id="consumers_stop", tags=["consumers"], parameters=[CONSUMER_ID], request=None,
               responses={200: ConsumerSerializer, **errors(401, 403, 404)},
               summary="Stop: the process holding the consumer lets go of it within a few seconds")
@endpoint(["POST"], POST=CONTROL)
def stop(request, consumer_id: int):
    return _set(request, consumer_id, services.STOPPED)
