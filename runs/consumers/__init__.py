"""The MESSAGE trigger: consumers that turn messages of a RabbitMQ queue or a Redis stream into runs.

``config`` and ``decode`` are plain Python [pure]; ``brokers`` talks to the brokers; ``intake`` is the one
door to the database (a batch of messages -> one run, idempotent by message key); ``worker`` is one
consuming loop; ``supervisor`` is the ``manage.py consume`` process that runs the loops of every consumer
it owns; ``views`` is the Queues page.
"""
