"""Generation tokens of what pages show, bumped by every write to the database (the page cache's invalidation).

A cached page (:mod:`datahub_project.page_cache`) is stored under a key that holds the current token of
each scope it shows; a write to a table of that scope replaces the token, so no later request asks for
the old entries again. The tokens live in Django's cache: with ``DATAHUB_CACHE_URL`` that is the Redis
every process shares, so a write by a worker invalidates the pages the web processes serve.

**Every write is seen, whoever makes it.** Rather than trust each writer to say what it changed (model
signals miss ``queryset.update()``, ``bulk_create``, deletes of querysets and raw SQL, and the run store,
the workers, gates, retention and triggers write that way), a database execute wrapper on every Django
connection of every process looks at each statement: an ``INSERT``/``UPDATE``/``DELETE`` bumps the scope
of its table, a statement it cannot read as a read or a write to a known table (DDL, ``WITH``, ...) bumps
every scope. What it cannot see is a write that does not go through Django's connections (another
program writing to the database): such a write shows on cached pages after ``DATAHUB_PAGE_CACHE_SECONDS``.

**After the commit, never before.** A bump before the commit would let a request read the old rows after
the bump and store them under the new token, where they would stay. So a write inside a transaction is
bumped by an ``on_commit`` callback (one per transaction, whatever its number of writes; none when it
rolls back), and one in autocommit right after its statement. A request reads the tokens before it reads
any row, so what it stores is at worst stored under a token a later write has already replaced.
"""

from __future__ import annotations

import logging
import re
import secrets
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.db.backends.signals import connection_created

log = logging.getLogger(__name__)

RUNS = "runs"  # runs, their step runs, record errors, retries, history, and gates: every write to them
# The same writes, less those made inside writing_run(): a page of one run shows that run's scope and this
# one, so a running run's progress does not invalidate the pages of every other run.
ANY_RUN = "any-run"
CONFIG = "config"  # everything else a page may show: pipelines, connections, users, permissions, teams, tokens
SCOPES = (RUNS, ANY_RUN, CONFIG)
_writing_run: ContextVar[int | None] = ContextVar("page_generations_run", default=None)


def run_scope(run_id) -> str:
    return f"run:{run_id}"


@contextmanager
def writing_run(run_id: int):
    """Say that the writes to runs' tables in here (this thread, this context) change run ``run_id`` and
    nothing else: they bump its scope instead of ``ANY_RUN``. For the run store's progress writes, whose
    every statement is filtered by the run; never around code that may touch another run (a run's end,
    which starts followers; hooks)."""
    token = _writing_run.set(run_id)
    try:
        yield
    finally:
        _writing_run.reset(token)

# Tables whose rows no cached page shows, written all the time by the machinery: sessions (a page's reader
# is identified from the session itself, see page_cache), the task broker, the audit trail, the admin's
# log, and the runs' own bookkeeping (log lines, checkpoints, consumer leases, rate counters, seen files,
# trigger states, the outbox).
IGNORED = frozenset({
    "django_session", "django_q_ormq", "django_q_task", "audit_auditevent", "django_admin_log",
    "runs_runlog", "runs_checkpoint", "runs_consumer", "runs_webhookratecount", "runs_seenfile",
    "runs_schedulestate", "runs_outboxevent", "runs_messagedelivery",
})
READS = frozenset({"SELECT", "SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT", "SET", "SHOW", "PRAGMA",
                   "EXPLAIN", "VALUES", "START"})
_FIRST_WORD = re.compile(r"\s*(\w+)")
_WRITE = re.compile(r"\s*(?:INSERT\s+(?:IGNORE\s+)?INTO|REPLACE\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?)"
                    r"\s+[\"`]?(\w+)", re.IGNORECASE)


def scopes_of(sql) -> frozenset[str]:
    """The scopes a statement changes: none for a read, its table's for a write, all when unsure (of a
    write to runs' tables: ``RUNS`` and ``ANY_RUN``; watch_writes narrows the latter inside writing_run())."""
    if not isinstance(sql, str):
        return frozenset(SCOPES)
    first = _FIRST_WORD.match(sql)
    if first and first.group(1).upper() in READS:
        return frozenset()
    write = _WRITE.match(sql)
    if not write:
        return frozenset(SCOPES)
    table = write.group(1).lower()
    if table in IGNORED:
        return frozenset()
    return frozenset({RUNS, ANY_RUN}) if table.startswith(("runs_", "gates_")) else frozenset({CONFIG})


def _key(scope: str) -> str:
    return f"pagegen:{scope}"


def bump(scopes) -> None:
    """New tokens for these scopes. A cache that fails must not fail the write that has already been
    committed: logged, and the pages' own expiry (``DATAHUB_PAGE_CACHE_SECONDS``) bounds what stays stale."""
    if not scopes:
        return
    token = secrets.token_hex(8)
    try:
        cache.set_many({_key(scope): token for scope in scopes}, timeout=None)
    except Exception:
        log.exception("page cache: could not invalidate %s", ", ".join(sorted(scopes)))


def bump_everything() -> None:
    bump(SCOPES)


def current(scopes) -> tuple[str, ...]:
    """The scopes' tokens, in the order given (a scope without one gets one: a cache that lost its tokens
    has lost what was stored under them too, or holds entries no key will name again)."""
    keys = [_key(scope) for scope in scopes]
    found = cache.get_many(keys)
    for key in keys:
        if key not in found:
            cache.add(key, secrets.token_hex(8), timeout=None)
            found[key] = cache.get(key)
    return tuple(found[key] for key in keys)


def _note(connection, scopes) -> None:
    if not connection.in_atomic_block:
        bump(scopes)  # autocommit: the statement is committed
        return
    # One callback per transaction, holding the scopes its writes touched. It is gone from run_on_commit
    # after the commit, after a rollback, and after a rollback to a savepoint set before it was added:
    # then a new one is added.
    flush = getattr(connection, "_page_generations_flush", None)
    if flush is None or not any(func is flush for _, func, _ in connection.run_on_commit):
        pending: set[str] = set()

        def flush():
            bump(pending)

        flush.pending = pending
        connection._page_generations_flush = flush
        connection.on_commit(flush)
    flush.pending.update(scopes)


def watch_writes(execute, sql, params, many, context):
    result = execute(sql, params, many, context)
    if settings.DATAHUB_PAGE_CACHE:
        scopes = scopes_of(sql)
        run_id = _writing_run.get()
        if run_id is not None and scopes == {RUNS, ANY_RUN}:
            scopes = frozenset({RUNS, run_scope(run_id)})
        if scopes:
            _note(context["connection"], scopes)
    return result


def _install(connection, **kwargs) -> None:
    if watch_writes not in connection.execute_wrappers:
        connection.execute_wrappers.append(watch_writes)


def install() -> None:
    """Watch every connection of this process: those open now and every one opened later (each thread has
    its own). Called by DatahubConfig.ready()."""
    connection_created.connect(_install, dispatch_uid="page-generations")
    for connection in connections.all(initialized_only=True):
        _install(connection)
