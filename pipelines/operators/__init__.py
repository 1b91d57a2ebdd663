"""The built-in operators: importing this package registers every one of them. [pure]

This file is the list of what exists; each module registers its operators with the decorators of
:mod:`pipelines.operators.base`.
"""

from pipelines.operators import (  # noqa: F401  (imported for their registrations)
    aggregation,
    data,
    dates,
    enrichment,
    files,
    http_lookup,
    join,
    json_ops,
    logic,
    numbers,
    script,
    strings,
    validation,
)
