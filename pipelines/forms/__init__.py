"""Forms of the pipeline pages, one concern per module.

The schema-to-form engine, which generates a form from a JSON schema so a registered adapter or operator
has one at once: :mod:`.values` (typed text read as values, and kept as typed when it cannot be),
:mod:`.fields` (the fields built from a schema and a value), :mod:`.reading` (the value read back from a
POST, name for name), :mod:`.problems` (validation problems placed at their fields).

The editor's panels built on it: :mod:`.step` (a step card), :mod:`.settings` (the pipeline's settings),
:mod:`.palette` (what a step can be). And the hand-written Django forms of the other pages: :mod:`.pages`.
"""
