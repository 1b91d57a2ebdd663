"""What a MESSAGE trigger's config says, and what it must say to be usable. [pure]

The keys join the TRIGGER step type's JSON schema (``MESSAGE_PROPERTIES``); ``message_problems`` is the
check beyond the schema, run when a definition is saved; ``MessageSettings`` is the config read with its
defaults, which the consumers use.
"""

from __future__ import annotations

from dataclasses import dataclass

QUEUE_TYPES = ("RABBITMQ_AMQP", "RABBITMQ", "REDIS_STREAMS")
ACK_MODES = ("RUN_CREATED", "RUN_COMPLETED")
MAX_BATCH = 1000
MAX_CONCURRENCY = 16

MESSAGE_PROPERTIES = {
    "queueType": {"enum": list(QUEUE_TYPES),
                  "description": "MESSAGE: RABBITMQ_AMQP (a queue over AMQP 0-9-1; RABBITMQ is the same) or "
                  "REDIS_STREAMS (a stream read by a consumer group)."},
    "connectionCode": {"type": "string", "minLength": 1,
                       "description": "MESSAGE: the broker's connection (CUSTOM or RABBITMQ with amqpUrl or "
                       "host/port/vhost; REDIS with url or host/port/db), as for the queueProducer sink."},
    "queueName": {"type": "string", "minLength": 1, "maxLength": 255,
                  "description": "MESSAGE: the queue (RabbitMQ) or the stream key (Redis) to consume."},
    "consumerGroup": {"type": "string", "minLength": 1, "maxLength": 200,
                      "description": "MESSAGE (Redis): the consumer group, created at the stream's start when "
                      "missing; default datahub-<pipeline code>."},
    "batchSize": {"type": "integer", "minimum": 1, "maximum": MAX_BATCH, "default": 1,
                  "description": "MESSAGE: messages that seed one run (fewer when batchWaitMs runs out first)."},
    "batchWaitMs": {"type": "integer", "minimum": 0, "maximum": 600_000, "default": 1000,
                    "description": "MESSAGE: how long a batch waits to fill, from its first message, before a "
                    "run starts with what has arrived."},
    "prefetch": {"type": "integer", "minimum": 1, "maximum": 65_535,
                 "description": "MESSAGE (RabbitMQ): unacknowledged messages the broker sends each consuming "
                 "thread; default and minimum batchSize."},
    "concurrency": {"type": "integer", "minimum": 1, "maximum": MAX_CONCURRENCY, "default": 1,
                    "description": "MESSAGE: consuming threads, each with its own connection and batch: at most "
                    "this many batches (and, with ackMode RUN_COMPLETED, runs) in flight."},
    "ackMode": {"enum": list(ACK_MODES), "default": "RUN_CREATED",
                "description": "MESSAGE: acknowledge a message once its run exists in the database "
                "(RUN_CREATED) or once that run COMPLETED (RUN_COMPLETED; a failed run is retried)."},
    "maxRetries": {"type": "integer", "minimum": 0, "maximum": 100, "default": 3,
                   "description": "MESSAGE: retries of a message (its run could not be created or, with "
                   "RUN_COMPLETED, did not complete) before it becomes a dead letter."},
    "deadLetterQueue": {"type": "string", "minLength": 1, "maxLength": 255,
                        "description": "MESSAGE: where dead letters go, with their reason: a queue (RabbitMQ) "
                        "or a stream (Redis); default <queueName>.dead."},
    "declareQueue": {"type": "boolean", "default": True,
                     "description": "MESSAGE (RabbitMQ): declare queueName and the dead-letter queue (durable) "
                     "when they do not exist."},
    "claimIdleMs": {"type": "integer", "minimum": 100, "maximum": 86_400_000, "default": 60_000,
                    "description": "MESSAGE (Redis): entries delivered to a consumer that has not acknowledged "
                    "them for this long (it died) are claimed with XAUTOCLAIM and handled again."},
}


def _int(config: dict, key: str, default: int) -> int:
    value = config.get(key, default)
    return default if value is None else value


@dataclass(frozen=True)
class MessageSettings:
    queue_type: str
    connection_code: str
    queue_name: str
    consumer_group: str
    batch_size: int
    batch_wait_s: float
    prefetch: int
    concurrency: int
    ack_mode: str
    max_retries: int
    dead_letter_queue: str
    declare_queue: bool
    claim_idle_ms: int

    @property
    def is_redis(self) -> bool:
        return self.queue_type == "REDIS_STREAMS"

    @classmethod
    def from_config(cls, config: dict, *, pipeline_code: str) -> MessageSettings:
        """The settings of a config that passed ``message_problems``."""
        kind = str(config["queueType"]).upper()
        batch = _int(config, "batchSize", 1)
        return cls(
            queue_type="RABBITMQ_AMQP" if kind == "RABBITMQ" else kind,
            connection_code=config["connectionCode"],
            queue_name=config["queueName"],
            consumer_group=config.get("consumerGroup") or f"datahub-{pipeline_code}",
            batch_size=batch,
            batch_wait_s=_int(config, "batchWaitMs", 1000) / 1000,
            prefetch=max(batch, _int(config, "prefetch", batch)),
            concurrency=_int(config, "concurrency", 1),
            ack_mode=str(config.get("ackMode") or "RUN_CREATED").upper(),
            max_retries=_int(config, "maxRetries", 3),
            dead_letter_queue=config.get("deadLetterQueue") or f"{config['queueName']}.dead",
            declare_queue=config.get("declareQueue", True) is not False,
            claim_idle_ms=_int(config, "claimIdleMs", 60_000),
        )


def _whole(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def message_problems(config: dict) -> list[tuple[str, str]]:
    """(field, message) for a MESSAGE trigger's config; empty when a consumer can run it."""
    problems = []
    kind = str(config.get("queueType") or "").upper()
    if kind not in QUEUE_TYPES:
        problems.append(("queueType", f"a MESSAGE trigger needs queueType, one of {', '.join(QUEUE_TYPES)}"
                         + (f" (got {config.get('queueType')!r})" if config.get("queueType") else "")))
    for key in ("connectionCode", "queueName"):
        if not isinstance(config.get(key), str) or not config.get(key):
            problems.append((key, f"a MESSAGE trigger needs {key}"))
    limits = {"batchSize": (1, MAX_BATCH), "batchWaitMs": (0, 600_000), "prefetch": (1, 65_535),
              "concurrency": (1, MAX_CONCURRENCY), "maxRetries": (0, 100), "claimIdleMs": (100, 86_400_000)}
    for key, (low, high) in limits.items():
        if config.get(key) is not None and not _whole(config[key], low, high):
            problems.append((key, f"{key} must be a whole number from {low} to {high}"))
    if (_whole(config.get("prefetch"), 1, 65_535) and _whole(config.get("batchSize"), 1, MAX_BATCH)
            and config["prefetch"] < config["batchSize"]):
        problems.append(("prefetch", f"prefetch ({config['prefetch']}) must be at least batchSize "
                         f"({config['batchSize']}), or a batch could never fill"))
    mode = str(config.get("ackMode") or "RUN_CREATED").upper()
    if mode not in ACK_MODES:
        problems.append(("ackMode", f"ackMode must be one of {', '.join(ACK_MODES)}"))
    if config.get("deadLetterQueue") and config.get("deadLetterQueue") == config.get("queueName"):
        problems.append(("deadLetterQueue", "the dead-letter queue must not be the queue itself"))
    return problems
