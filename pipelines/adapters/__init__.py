"""The built-in adapters: importing this package registers every one of them. [pure]"""

from pipelines.adapters import inline  # noqa: F401  (imported for its registrations)
