"""How an operator is written. [pure]

Two shapes, because most operators look at one record at a time and a few need the whole batch:

* ``@record_operator``: a *factory* ``build(args, ctx) -> fn(record) -> record | None``. The factory
  runs once per step (compile paths, regexes, lookups there); ``fn`` runs once per record. ``fn`` owns
  the record it is given (the TRANSFORM step hands it a private copy), so it may change it in place and
  return it, return a new dict, or return ``None`` to drop it. Raising :class:`RecordError` (or any other
  exception) sends that one record to the record-error list; the rest of the batch goes on.
* ``@batch_operator``: ``apply(records, args, ctx) -> records``. For operators whose result depends on
  other records (aggregate, deduplicateRecords, multiJoin, deltaFilter). Raising fails the step.
  ``needs_all_records=True`` makes the step collect every batch first (a dedup across batches); an
  operator that can stream with state kept across batches gives ``finish`` instead (multiJoin). A batch
  operator that only wants the batch for speed (httpLookup runs its requests in parallel) gives ``each``:
  ``each(records, args, ctx) -> [record | None | exception, ...]``, one entry per input record, so the
  chain knows which input every output and every failure came from (per-record retry, dead letters).
* Custom operators (:mod:`pipelines.custom`) keep the batch signature but are called with one record at a
  time (``per_record_calls``): a raise pins that record, and each record is called once per attempt.

A per-record operator that only ever replaces, adds or removes its record's *top-level* keys (an
argument naming a plain key, not a dotted path) says so with :func:`top_level_only`: the chain then copies
a record entering a run of such operators with ``dict.copy()``, not deeply. Undeclared, an operator may
change anything in its record, nested lists and dicts included, and the chain copies deeply.

Per the plugin, a per-record operator whose source is missing or of the wrong type leaves the record
unchanged instead of failing; an impossible *config* is a :class:`ConfigError`.

Every operator's args may also carry ``failOnError`` (see :mod:`pipelines.operators.chain`); the
registry adds it to each schema so that definitions written for the plugin validate here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipelines.records import Batch, Record
from pipelines.registry import Registry
from pipelines.registry import operators as operator_registry

RecordFn = Callable[[Record], "Record | None"]
RecordFactory = Callable[[dict, "OperatorContext"], RecordFn]
BatchFn = Callable[[Batch, dict, "OperatorContext"], Batch]
EachFn = Callable[[Batch, dict, "OperatorContext"], list]

CATEGORIES = (
    "string",
    "date",
    "numeric",
    "logic",
    "json",
    "data",
    "enrichment",
    "aggregation",
    "validation",
    "script",
    "file",
    "custom",
)

COMMON_ARGS = {
    "failOnError": {
        "type": "boolean",
        "description": "Fail the whole step when this operator reports a record-level error.",
    },
}


@dataclass(frozen=True)
class OperatorSpec:
    """What the registry stores as an operator's ``impl``."""

    build: RecordFactory | None = None
    apply: BatchFn | None = None
    needs_all_records: bool = False
    pure: bool = True
    # Other steps whose output this operator reads (multiJoin's rightDataPath); the graph adds them as
    # dependencies of the operator's step, so a reference can never be read before it is written.
    references: Callable[[dict], list[str]] | None = None
    # One entry per input record: the record, None (dropped) or the exception that failed it. Set for
    # batch operators whose output for a record depends on that record alone.
    each: EachFn | None = None
    # Call ``apply`` with one record at a time (custom plugins): a raise then fails that record alone,
    # and no record is ever given to the operator twice to find out which one failed.
    per_record_calls: bool = False
    # Records a per-record operator may process at once in threads: for work that waits on I/O or runs
    # in C without the GIL (Pillow, WeasyPrint). 1 keeps the plain loop.
    concurrency: int = 1
    # A batch operator that streams with state across the batches of a step (multiJoin) returns what is
    # left when the input ends: ``finish(args, ctx) -> records``, called once after the last batch.
    finish: Callable[[dict, OperatorContext], Batch] | None = None
    # The operator never changes its input records and its output shares no dict or list with them: the
    # chain need not copy records before it (a join copies only the rows it outputs).
    copies_records: bool = False

    @property
    def per_record(self) -> bool:
        return self.build is not None

    @property
    def record_wise(self) -> bool:
        """Whether each output (and failure) can be traced to the one input record it came from."""
        return self.build is not None or self.each is not None or (self.per_record_calls
                                                                   and not self.needs_all_records)


@dataclass
class OperatorContext:
    """What an operator may know about where it runs. Plain data; the executor fills it.

    ``checkpoint`` is this operator position's own dict (``deltaFilter`` keeps its hashes there); it is
    saved when the step succeeds. ``step_outputs`` gives read access to other steps' outputs by key
    (``multiJoin``'s ``rightDataPath``). ``now`` is the run's clock, fixed per run so tests can pin it.
    """

    step_key: str = ""
    op_index: int = 0
    pipeline_code: str = ""
    run_id: Any = None
    dry_run: bool = False
    checkpoint: dict = field(default_factory=dict)
    step_outputs: Callable[[str], Iterable[Record]] | None = None
    # pipelines.http.HttpClient (SSRF-guarded, size-capped) or None where outbound HTTP is not allowed.
    http: Any = None
    # A Django-storage-like object (save/exists/url/open) for file operators; None means "return data URIs".
    storage: Any = None
    # Secrets and connections by code, as adapters get them (pipelines.adapters.base.AdapterContext): a
    # secret's value, a connection's settings; ConfigError for an unknown code. None where there are none.
    secret: Callable[[str], str] | None = None
    connection: Callable[[str], dict] | None = None
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    warnings: list[str] = field(default_factory=list)
    # The step retries failing records (``retryPerRecord``): an operator that would otherwise swallow a
    # record's failure (httpLookup writes its default) reports it as the record's failure instead.
    retrying_records: bool = False
    cancelled: threading.Event = field(default_factory=threading.Event)
    # What an operator keeps between the batches of one attempt of its step (multiJoin's hashed right
    # side); never saved, gone when the step ends.
    state: dict = field(default_factory=dict)

    def warn(self, message: str) -> None:
        if len(self.warnings) < 1000:
            self.warnings.append(message)


def inline(fn: RecordFn, source: str, **names: Any) -> RecordFn:
    """Give a record function its *inline form*: the statements that do its work on a record ``r``, which
    the chain writes into its compiled loop instead of calling ``fn`` (a call per operator and record is
    the chain's largest overhead on a million records). ``{name}`` in ``source`` stands for ``names[name]``;
    ``MISSING`` is known. Only the *names* of the values are written into the compiled source; the values
    (field names, separators, functions: whatever a definition holds) are bound as variables, so no
    definition's text ever becomes code. The statements must do exactly what ``fn`` does, never drop the
    record and leave it in ``r``; tests run chains both ways (``OperatorChain(..., inline=False)``)."""
    fn.inline = (source, names)  # type: ignore[attr-defined]
    return fn


def top_level_only(fn: RecordFn) -> RecordFn:
    """Declare that ``fn`` changes only the top level of the record it is given: it adds, replaces or
    removes keys of that dict and never changes a list or dict held in it (nor one it reads from it). A
    chain whose operators are all declared so may give them a shallow copy of each input record (the
    nested values stay shared with the input, which nobody changes): for flat records, the common case, a
    deep copy costs several times more and copies nothing more. Undeclared is the safe default: the record
    is copied deeply. ``tests/engine/test_chain_copies.py`` holds every declared operator to it."""
    fn.top_level_only = True  # type: ignore[attr-defined]
    return fn


def with_common_args(schema: dict) -> dict:
    schema = dict(schema)
    schema.setdefault("type", "object")
    props = dict(schema.get("properties", {}))
    for key, value in COMMON_ARGS.items():
        props.setdefault(key, value)
    schema["properties"] = props
    return schema


def record_operator(
    code: str,
    *,
    name: str,
    category: str,
    description: str,
    schema: dict,
    pure: bool = True,
    concurrency: int = 1,
    builtin: bool = True,
    replace: bool = False,
    registry: Registry = operator_registry,
) -> Callable[[RecordFactory], RecordFactory]:
    def register(factory: RecordFactory) -> RecordFactory:
        registry.register(
            code,
            OperatorSpec(build=factory, pure=pure, concurrency=concurrency),
            name=name,
            category=category,
            description=description,
            schema=with_common_args(schema),
            builtin=builtin,
            replace=replace,
            shape="record",
            pure=pure,
        )
        return factory

    return register


def batch_operator(
    code: str,
    *,
    name: str,
    category: str,
    description: str,
    schema: dict,
    pure: bool = True,
    needs_all_records: bool = False,
    references: Callable[[dict], list[str]] | None = None,
    each: EachFn | None = None,
    finish: Callable[[dict, OperatorContext], Batch] | None = None,
    config_check: Callable[[dict], list[tuple[str, str]]] | None = None,
    copies_records: bool = False,
    builtin: bool = True,
    replace: bool = False,
    registry: Registry = operator_registry,
) -> Callable[[BatchFn], BatchFn]:
    """``config_check(args) -> [(field, message)]``: checks beyond the schema, run when a definition is
    validated, so a bad config is refused when it is saved rather than when the step runs."""

    def register(fn: BatchFn) -> BatchFn:
        registry.register(
            code,
            OperatorSpec(apply=fn, needs_all_records=needs_all_records, pure=pure, references=references,
                         each=each, finish=finish, copies_records=copies_records),
            name=name,
            category=category,
            description=description,
            schema=with_common_args(schema),
            builtin=builtin,
            replace=replace,
            shape="batch",
            pure=pure,
            needs_all_records=needs_all_records,
            **({"config_check": config_check} if config_check is not None else {}),
        )
        return fn

    return register
