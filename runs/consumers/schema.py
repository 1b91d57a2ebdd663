"""GraphQL for the MESSAGE triggers' consumers: ``consumers``, ``consumer(id)`` with its ``deadLetters``
(paged, newest first) and ``deadLetterCount``, and ``startConsumer(id)`` / ``stopConsumer(id)``.

The same rules as the Queues page and the REST API (:mod:`runs.consumers.api`): looking needs
``pipelines.view_pipeline`` and ``runs.view_run``, starting and stopping ``pipelines.run_pipeline`` too,
checked before anything is looked up; another team's consumer is NOT_FOUND, as a missing one.
"""

from __future__ import annotations

import graphene

from pipelines.schema import error, require, window
from runs.consumers import services
from runs.consumers.api import CONTROL, LOOK
from runs.schema import run_id_of


class DeadLetterType(graphene.ObjectType):
    class Meta:
        name = "DeadLetter"
        description = "A message that did not become a run, with the reason."

    id = graphene.ID(required=True)
    key = graphene.String(required=True, description="the message's key (id) on the broker")
    body = graphene.String(required=True, description="as received, cut at 64 KiB")
    reason = graphene.String(required=True)
    attempts = graphene.Int(required=True)
    created_at = graphene.DateTime(required=True)


class ConsumerType(graphene.ObjectType):
    """Resolved from a :class:`runs.consumers.services.Configured` (the row and what its trigger says)."""

    class Meta:
        name = "Consumer"
        description = "The consumer of one MESSAGE trigger: it turns a queue's or a stream's messages into runs."

    id = graphene.ID(required=True)
    pipeline = graphene.String(required=True, description="the pipeline's code")
    trigger = graphene.String(required=True, description="the MESSAGE trigger step's key")
    queue_type = graphene.String(required=True)
    queue_name = graphene.String(required=True)
    desired = graphene.String(required=True, description="RUNNING or STOPPED: what was asked for")
    state = graphene.String(required=True, description="what the Queues page shows: STOPPED, STARTING, RUNNING, "
                                                       "FAILING, STOPPING or NOT RUNNING")
    can_run = graphene.Boolean(required=True)
    why_not = graphene.String(required=True, description="why it cannot run (empty when it can)")
    owner = graphene.String(required=True, description="the consume process holding it (host:pid)")
    heartbeat_at = graphene.DateTime()
    received = graphene.Float(required=True, description="a count (Float: it may pass 2^31)")
    runs_started = graphene.Float(required=True)
    acked = graphene.Float(required=True)
    errors = graphene.Float(required=True)
    dead_letter_count = graphene.Float(required=True)
    last_error = graphene.String(required=True)
    lag = graphene.Float()
    rate = graphene.Float(required=True, description="messages received per second over the last minute")
    dead_letters = graphene.List(graphene.NonNull(DeadLetterType), required=True, description="newest first",
                                 limit=graphene.Int(default_value=50), offset=graphene.Int(default_value=0))

    @staticmethod
    def resolve_id(found, info):
        return found.consumer.pk

    @staticmethod
    def resolve_pipeline(found, info):
        return found.consumer.pipeline.code

    @staticmethod
    def resolve_trigger(found, info):
        return found.consumer.trigger_key

    @staticmethod
    def resolve_state(found, info):
        return found.shown_state

    @staticmethod
    def resolve_dead_letter_count(found, info):
        return found.consumer.dead_letters

    @staticmethod
    def resolve_dead_letters(found, info, limit, offset):
        return found.consumer.dead_letter_rows.order_by("-created_at", "-id")[window(limit, offset)]


# The consumer row's own fields (queue_type, received, lag, ...) resolve from the row.
for _name in ("queue_type", "queue_name", "desired", "owner", "heartbeat_at", "received", "runs_started", "acked",
              "errors", "last_error", "lag", "rate"):
    setattr(ConsumerType, f"resolve_{_name}", staticmethod(lambda found, info, _n=_name: getattr(found.consumer, _n)))


def _found(value, user) -> services.Configured:
    consumer_id = run_id_of(value)  # the same rule as a run's id: digits, at most 2^63 - 1
    found = services.one_for(user, consumer_id) if consumer_id is not None else None
    if found is None:
        raise error(f"no consumer '{value}'", "NOT_FOUND")
    return found


class Query(graphene.ObjectType):
    consumers = graphene.List(graphene.NonNull(ConsumerType), required=True,
                              description="the MESSAGE triggers' consumers, by pipeline and trigger")
    consumer = graphene.Field(ConsumerType, id=graphene.ID(required=True))

    @staticmethod
    def resolve_consumers(root, info):
        user = require(info, *LOOK)
        return services.visible_to(user, services.configured_consumers())

    @staticmethod
    def resolve_consumer(root, info, id):  # noqa: A002 - the GraphQL argument's name
        return _found(id, require(info, *LOOK))


class ConsumerControl(graphene.ObjectType):
    ok = graphene.Boolean(required=True)
    consumer = graphene.Field(ConsumerType, required=True)


def _control(info, value, desired: str) -> ConsumerControl:
    found = _found(value, require(info, *CONTROL))
    services.set_desired(found.consumer, desired)
    return ConsumerControl(ok=True, consumer=found)


class StartConsumer(graphene.Mutation):
    """Start a consumer: a consume process takes it within a few seconds."""

    class Arguments:
        id = graphene.ID(required=True)

    Output = ConsumerControl

    @staticmethod
    def mutate(root, info, id):  # noqa: A002
        return _control(info, id, services.RUNNING)


class StopConsumer(graphene.Mutation):
    """Stop a consumer: the process holding it lets go within a few seconds."""

    class Arguments:
        id = graphene.ID(required=True)

    Output = ConsumerControl

    @staticmethod
    def mutate(root, info, id):  # noqa: A002
        return _control(info, id, services.STOPPED)


class Mutation(graphene.ObjectType):
    start_consumer = StartConsumer.Field()
    stop_consumer = StopConsumer.Field()
