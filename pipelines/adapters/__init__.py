"""The built-in adapters: importing this package registers every one of them. [pure except where noted]

This file is the list of what exists.
"""

from pipelines.adapters import (  # noqa: F401  (imported for their registrations)
    cdc,
    database,
    django_models,
    exports,
    feeds,
    files,
    graphql_mutation,
    http_api,
    inline,
    queues,
    rest,
)
