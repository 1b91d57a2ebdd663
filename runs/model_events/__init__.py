"""The EVENT trigger: pipelines started by changes to Django models (created, updated, deleted).

* :mod:`.config` [pure at import]: the trigger's config keys and their check at save.
* :mod:`.models`: the subscriptions (kept in step with pipelines) and the outbox.
* :mod:`.capture`: the model signal receivers that write outbox rows in the changing transaction.
* :mod:`.dispatch`: turning due outbox rows into runs (debounced and batched), the worker task and sweep.
"""
