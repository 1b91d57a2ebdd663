"""The ``cdc`` extractor: change data capture by polling a table on PostgreSQL, MySQL/MariaDB or SQLite.
[pure]

Each poll reads the rows whose tracking column moved past the saved cursor and emits each as a record: the
row plus ``_cdc_operation`` (INSERT, UPDATE, UPSERT or DELETE) and ``_cdc_timestamp``. docs/cdc.md is the
user's account of the guarantees; this docstring is the maintainer's.

**Cursor.** The pair (tracking value, primary key), read in that order with keyset pagination::

    WHERE t >= :t AND (t > :t OR (t = :t AND pk > :pk)) [AND <horizon>] ORDER BY t, pk LIMIT :n

so rows sharing a tracking value are neither skipped nor repeated at a batch boundary, and the checkpoint
stays O(1) whatever the number of ties (a composite primary key compares lexicographically).

**Late commits.** A tracking value is taken when a row is written but becomes visible when its transaction
commits; a transaction that commits late with an older value would fall behind a cursor that already
passed it. Every poll therefore reads only up to a *horizon* that no still-running transaction can write
below, computed before the rows are read (so a transaction that starts after it gets a later value):

* TIMESTAMP: ``db clock - safetyLagMs``, lowered on PostgreSQL to the start of the oldest open transaction
  in the database (``pg_stat_activity.xact_start``: ``now()`` is the transaction's start, so nothing it
  writes is older) and on MySQL to the start of the oldest read-write InnoDB transaction of a session in
  this database (``information_schema.INNODB_TRX``; ``NOW()`` is a statement's start, after its
  transaction's) minus one second (that column has whole seconds). Rows with
  ``t < horizon`` are read. When other sessions cannot be seen (PostgreSQL: open transactions of other
  roles, found in ``pg_locks``, without ``pg_read_all_stats``; MySQL without PROCESS, or an INNODB_TRX
  cache older than our own transaction) only the lag protects, and the step warns. Transaction ids
  (``pg_snapshot_xmin``) are not used: they say nothing of the timestamps a transaction took, and a
  writer's xid at or above the snapshot's xmax is not even listed.
* VERSION (a sequence or counter): a value taken after a moment T is greater than every value visible in a
  snapshot taken before T. Each poll records (clock after its snapshot, max(version)) in a short history
  kept in the checkpoint; the horizon is the max of the newest entry taken before every open transaction
  started (the oldest open start as above, or ``clock - safetyLag`` when it cannot be seen). On SQLite,
  whose writers run one at a time, values commit in order and the horizon is the current max.

**Commit.** The new cursor goes into the step checkpoint with ``_commit: RUN_COMPLETED``:
``runs.store.DjangoRunStore`` keeps such a checkpoint pending on the run and saves it only when the whole
run ends COMPLETED with no failed step, so a batch whose load failed is read again (at least once).

**Modes.** ONE_SHOT reads every change up to the horizon, batch after batch. CONTINUOUS reads one batch
per scan (one poll) each time the step runs; ``runs.cdc`` runs the pipeline again and again, one poll per
sub-run, every ``pollIntervalMs``.

Why one module of this size: it is one extractor; its config, the name checks against the catalogue, the
horizon and the poll are the consecutive steps of one poll over the same SQL, and the SQL dialect pieces
already live in pipelines.adapters.sqlconn.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pipelines.adapters import sqlconn
from pipelines.adapters.base import Extractor
from pipelines.errors import ConfigError, StepError
from pipelines.records import Batch
from pipelines.registry import extractors

# The checkpoint key and value that tell runs.store.DjangoRunStore to save this checkpoint only once the
# run ends COMPLETED (the store strips the key before saving).
COMMIT_KEY = "_commit"
COMMIT_ON_RUN_COMPLETED = "RUN_COMPLETED"
CHECKPOINT_VERSION = 1
TRACKING_TYPES = ("TIMESTAMP", "VERSION")
MODES = ("ONE_SHOT", "CONTINUOUS")
DEFAULT_POLL_INTERVAL_MS = 5000
DEFAULT_BATCH_SIZE = 1000
DEFAULT_SAFETY_LAG_MS = {"TIMESTAMP": 2000, "VERSION": 0}
# At most this many (clock, max version) observations are kept; dropping one only lowers a horizon.
HISTORY_LIMIT = 64
OPERATION_FIELD = "_cdc_operation"
TIMESTAMP_FIELD = "_cdc_timestamp"

_NAME = {"type": "string", "minLength": 1, "maxLength": 200}


@extractors.register(
    "cdc",
    name="Change data capture (polling)",
    category="database",
    builtin=True,
    description="Rows of a PostgreSQL, MySQL/MariaDB or SQLite table that changed since the last run, by a "
    "tracking column (updated_at or a version) and the primary key, as INSERT/UPDATE/DELETE records; no row "
    "lost to ties or late commits, at least once.",
    schema={
        "type": "object",
        "properties": {
            "databaseType": {"enum": ["POSTGRESQL", "MYSQL", "SQLITE"],
                             "description": "The type the connection must have (checked)."},
            "connectionCode": {"type": "string", "minLength": 1,
                               "description": "Code of a POSTGRES, MYSQL or SQLITE Connection; its password "
                               "comes from the Secret the connection names."},
            "table": {**_NAME, "description": "The table (or schema.table); checked against the catalogue."},
            "trackingColumn": {**_NAME, "description": "The column that changes on every write: a timestamp "
                               "(TIMESTAMP) or a number from a sequence or counter (VERSION)."},
            "trackingType": {"enum": list(TRACKING_TYPES), "default": "TIMESTAMP",
                             "description": "TIMESTAMP: a date/time set by the database clock (now(), "
                             "CURRENT_TIMESTAMP, a trigger). VERSION: an increasing number (sequence, counter)."},
            "primaryKey": {"description": "The column (or columns) that identify a row; the second half of "
                           "the cursor.",
                           "oneOf": [_NAME, {"type": "array", "items": _NAME, "minItems": 1, "uniqueItems": True}]},
            "columns": {"type": "array", "items": _NAME, "uniqueItems": True,
                        "description": "Columns to emit (default: all). The key, tracking, created and delete "
                        "columns are always read."},
            "createdColumn": {**_NAME, "description": "Optional: a column set once when the row is inserted "
                              "(created_at, or the version at insert), comparable with trackingColumn. With it "
                              "a row is an INSERT when it equals the tracking value or is newer than the last "
                              "cursor, else an UPDATE; without it changes are emitted as UPSERT."},
            "includeDeletes": {"type": "boolean", "default": False,
                               "description": "Emit soft-deleted rows (deleteColumn set) as DELETE; when off "
                               "they are skipped."},
            "deleteColumn": {**_NAME, "description": "Soft-delete column: a timestamp (deleted_at, read by "
                             "its own cursor too, so a delete is seen even if the tracking column did not "
                             "move) or a flag (is_deleted: seen when the tracking column moves)."},
            "mode": {"enum": list(MODES), "default": "ONE_SHOT",
                     "description": "ONE_SHOT: each run reads every change since the checkpoint. CONTINUOUS: "
                     "the run keeps polling every pollIntervalMs and pushes each batch through the pipeline "
                     "until it is cancelled."},
            "pollIntervalMs": {"type": "integer", "minimum": 10, "maximum": 86_400_000,
                               "default": DEFAULT_POLL_INTERVAL_MS,
                               "description": "CONTINUOUS: the pause after a poll that found no full batch."},
            "batchSize": {"type": "integer", "minimum": 1, "maximum": 100_000, "default": DEFAULT_BATCH_SIZE,
                          "description": "Rows per batch (and per poll in CONTINUOUS mode)."},
            "safetyLagMs": {"type": "integer", "minimum": 0, "maximum": 86_400_000,
                            "description": "Read only changes at least this old by the database clock (default "
                            "2000 for TIMESTAMP, 0 for VERSION). Covers transactions the extractor cannot see "
                            "and timestamps written from an application's clock."},
            "queryTimeoutMs": {"type": "integer", "minimum": 0, "maximum": 3_600_000,
                               "default": sqlconn.DEFAULT_QUERY_TIMEOUT_MS,
                               "description": "How long one statement may take, in ms (0: no limit)."},
        },
        "required": ["connectionCode", "table", "trackingColumn", "primaryKey"],
        "additionalProperties": False,
    },
)
class CdcExtractor(Extractor):
    """Polls a table for changes; see the module docstring."""

    _conn: sqlconn.SqlConnection | None = None

    def batches(self) -> Iterator[Batch]:
        cfg = _Config.parse(self.config)
        connection = sqlconn.step_connection(self.ctx, cfg.connection_code, database_type=cfg.database_type)
        conn = self._conn = sqlconn.connect(connection, self.ctx.secret, read_only=True,
                                            query_timeout_ms=cfg.query_timeout_ms)
        try:
            plan = _plan(conn, cfg)  # every name checked against the catalogue before any row is read
            conn.commit()
        except (ConfigError, StepError):
            raise
        except Exception as exc:
            raise conn.explain(exc) from None
        if not plan.unique_key:
            self.ctx.warn(f"no unique index covers primaryKey {', '.join(plan.pk)} of '{plan.table.name}': rows "
                          "with the same tracking value and key could be skipped at a batch boundary")
        poller = _Poller(conn, cfg, plan, self.ctx)
        try:
            yield from poller.run()
        except (ConfigError, StepError):
            raise
        except Exception as exc:
            if not _is_driver_error(exc):
                raise
            raise conn.explain(exc) from None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# --- config --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Config:
    connection_code: str
    database_type: str | None
    table: str
    tracking: str
    tracking_type: str
    pk: tuple[str, ...]
    columns: tuple[str, ...] | None
    created: str | None
    include_deletes: bool
    delete: str | None
    mode: str
    poll_interval_ms: int
    batch_size: int
    safety_lag_ms: int
    query_timeout_ms: int

    @classmethod
    def parse(cls, cfg: dict) -> _Config:
        """The config with defaults, checked before connecting (the schema has checked the types)."""
        for key in ("connectionCode", "table", "trackingColumn", "primaryKey"):
            if not cfg.get(key):
                raise ConfigError(f"{key} is required", field=key)
        tracking_type = str(cfg.get("trackingType", "TIMESTAMP")).upper()
        if tracking_type not in TRACKING_TYPES:
            raise ConfigError(f"trackingType must be TIMESTAMP or VERSION, not {cfg.get('trackingType')}",
                              field="trackingType")
        mode = str(cfg.get("mode", "ONE_SHOT")).upper()
        if mode not in MODES:
            raise ConfigError(f"mode must be ONE_SHOT or CONTINUOUS, not {cfg.get('mode')}", field="mode")
        pk = cfg["primaryKey"]
        pk = (pk,) if isinstance(pk, str) else tuple(pk)
        include_deletes = bool(cfg.get("includeDeletes", False))
        if include_deletes and not cfg.get("deleteColumn"):
            raise ConfigError("deleteColumn is required when includeDeletes is on", field="deleteColumn")
        columns = cfg.get("columns")
        lag = cfg.get("safetyLagMs")
        return cls(
            connection_code=cfg["connectionCode"],
            database_type=cfg.get("databaseType"),
            table=cfg["table"],
            tracking=cfg["trackingColumn"],
            tracking_type=tracking_type,
            pk=pk,
            columns=tuple(columns) if columns else None,
            created=cfg.get("createdColumn") or None,
            include_deletes=include_deletes,
            delete=cfg.get("deleteColumn") or None,
            mode=mode,
            poll_interval_ms=int(cfg.get("pollIntervalMs", DEFAULT_POLL_INTERVAL_MS)),
            batch_size=int(cfg.get("batchSize", DEFAULT_BATCH_SIZE)),
            safety_lag_ms=int(DEFAULT_SAFETY_LAG_MS[tracking_type] if lag is None else lag),
            query_timeout_ms=int(cfg.get("queryTimeoutMs", sqlconn.DEFAULT_QUERY_TIMEOUT_MS)),
        )


def poll_interval_ms(config: dict) -> int:
    """``pollIntervalMs`` of a cdc step's config, for the continuous runner."""
    return int(config.get("pollIntervalMs", DEFAULT_POLL_INTERVAL_MS))


def is_continuous(config: dict) -> bool:
    return str(config.get("mode", "ONE_SHOT")).upper() == "CONTINUOUS"


# --- names, checked against the catalogue -----------------------------------------------------------------


@dataclass
class _Plan:
    table: sqlconn.Table
    tracking: sqlconn.Column
    pk: list[str]
    select: list[str]
    created: str | None
    delete: sqlconn.Column | None
    delete_scan: bool  # a timestamp delete column gets its own cursor
    unique_key: bool
    # Positions in the select list.
    at: dict[str, int] = field(default_factory=dict)

    def identity(self, cfg: _Config) -> dict:
        """What the saved cursor belongs to; a checkpoint of another table or column is not used."""
        return {"table": self.table.quoted, "trackingColumn": self.tracking.name, "trackingType": cfg.tracking_type,
                "primaryKey": list(self.pk)}


def _plan(conn: sqlconn.SqlConnection, cfg: _Config) -> _Plan:
    names: dict[str, str] = {cfg.tracking: "trackingColumn"}
    for i, name in enumerate(cfg.pk):
        names.setdefault(name, "primaryKey" if len(cfg.pk) == 1 else f"primaryKey.{i}")
    for key, name in (("createdColumn", cfg.created), ("deleteColumn", cfg.delete)):
        if name:
            names.setdefault(name, key)
    for i, name in enumerate(cfg.columns or ()):
        names.setdefault(name, f"columns.{i}")
    table = conn.check_identifiers(cfg.table, names)
    tracking = table.column(cfg.tracking)
    d = conn.dialect
    if cfg.tracking_type == "TIMESTAMP":
        allowed = ("datetime", "date") if d is not sqlconn.SQLITE else ("datetime", "date", "text", "other")
        if tracking.kind not in allowed:
            raise ConfigError(f"trackingType TIMESTAMP needs a date/time column, but '{tracking.name}' is "
                              f"{tracking.data_type or tracking.kind}; use trackingType VERSION for numbers",
                              field="trackingColumn")
    elif tracking.kind not in ("int", "num"):
        raise ConfigError(f"trackingType VERSION needs a numeric column, but '{tracking.name}' is "
                          f"{tracking.data_type or tracking.kind}", field="trackingColumn")
    pk = [table.column(n).name for n in cfg.pk]  # may hold the tracking column (an insert-only id as VERSION)
    created = table.column(cfg.created).name if cfg.created else None
    delete = table.column(cfg.delete) if cfg.delete else None
    wanted = [table.column(n).name for n in cfg.columns] if cfg.columns else list(table.columns)
    select = list(dict.fromkeys([*wanted, *pk, tracking.name, *([created] if created else []),
                                 *([delete.name] if delete else [])]))
    delete_scan = bool(delete is not None and cfg.include_deletes and delete.kind in ("datetime", "date"))
    unique = frozenset(pk) in {frozenset(k) for k in conn.unique_keys(table)}
    plan = _Plan(table, tracking, pk, select, created, delete, delete_scan, unique)
    plan.at = {name: i for i, name in enumerate(select)}
    return plan


# --- the horizon: how far a poll may read ------------------------------------------------------------------


@dataclass
class _Observation:
    clock: datetime  # the database clock (aware, UTC), read before the rows
    oldest_open: datetime | None  # start of the oldest other transaction that may still write (aware UTC)
    visible: bool  # every other transaction could be seen
    note: str = ""  # why not


def _observe(conn: sqlconn.SqlConnection) -> _Observation:
    """The clock and the oldest open transaction, in a short transaction of their own. It runs before the
    rows are read: a transaction that begins after it takes a later timestamp or version."""
    d = conn.dialect
    if d is sqlconn.POSTGRES:
        return _observe_postgres(conn)
    if d is sqlconn.MYSQL:
        return _observe_mysql(conn)
    # SQLite has one writer at a time: what commits later was also written later (by the database clock).
    clock = conn.execute("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')").fetchone()[0]
    return _Observation(_utc(datetime.fromisoformat(clock)), None, True)


def _observe_postgres(conn: sqlconn.SqlConnection) -> _Observation:
    # statement_timestamp() is taken when the statement arrives, before pg_stat_activity is read: a
    # transaction missing from the view began after it. now() is a transaction's start, so nothing an open
    # transaction writes is older than its xact_start. Without pg_read_all_stats (or the same role) other
    # sessions show NULLs; pg_locks, which everyone may read, says whether they hold a transaction open
    # (every transaction holds its virtualxid lock).
    clock, oldest, hidden = conn.execute(
        "SELECT statement_timestamp(), "
        "(SELECT min(xact_start) FROM pg_stat_activity WHERE datname = current_database() "
        " AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND xact_start IS NOT NULL), "
        "(SELECT count(*) FROM pg_stat_activity a WHERE a.datname = current_database() "
        " AND a.pid <> pg_backend_pid() AND a.backend_type IS NULL "
        " AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'virtualxid'))"
    ).fetchone()
    conn.commit()
    note = ""
    if hidden:
        note = (f"{hidden} open transaction(s) of other database roles cannot be seen; only safetyLagMs protects "
                "against their late commits (grant pg_read_all_stats to the CDC user)")
    return _Observation(_utc(clock), _utc(oldest) if oldest else None, not hidden, note)


# InnoDB serves INNODB_TRX from a cache refreshed only when nobody read it for 0.1 s; a stale one can miss
# a transaction that began since. Our own transaction, begun after the clock was read, shows whether the
# cache is newer than that.
_MYSQL_STALE_RETRIES = 4


def _observe_mysql(conn: sqlconn.SqlConnection) -> _Observation:
    d = conn.dialect
    for attempt in range(_MYSQL_STALE_RETRIES):
        clock = _utc(conn.execute("SELECT UTC_TIMESTAMP(6)").fetchone()[0])
        conn.commit()
        try:
            conn.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            # trx_started is in the server's own time zone, in whole seconds. Read-only transactions (other
            # pollers, reports) and autocommit SELECTs cannot write. INNODB_TRX spans the server: sessions
            # whose current database is another one are left out (those without one are kept).
            rows = conn.execute(
                "SELECT t.trx_mysql_thread_id = CONNECTION_ID(), CONVERT_TZ(t.trx_started, 'SYSTEM', '+00:00'), "
                "t.trx_is_read_only = 0 AND t.trx_autocommit_non_locking = 0 "
                "AND (p.DB IS NULL OR p.DB = DATABASE()) FROM information_schema.INNODB_TRX t "
                "LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id"
            ).fetchall()
        except Exception as exc:
            conn.rollback()
            if not _is_driver_error(exc):
                raise
            return _Observation(clock, None, False,
                                "information_schema.INNODB_TRX cannot be read (" + d.message(exc) + "); only "
                                "safetyLagMs protects against late commits (grant PROCESS to the CDC user)")
        conn.commit()
        if any(own for own, _, _ in rows):
            starts = [_utc(started) for own, started, writer in rows if not own and writer and started]
            oldest = min(starts) - timedelta(seconds=1) if starts else None
            return _Observation(clock, oldest, True)
        time.sleep(0.11 * (attempt + 1))
    return _Observation(clock, None, False, "information_schema.INNODB_TRX kept an outdated cache (other sessions "
                        "read it more often than every 0.1 s); only safetyLagMs protected this poll")


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _as_datetime(value: Any) -> datetime | None:
    """A tracking value as an aware UTC datetime (naive values are taken as UTC), or None."""
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            return _utc(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


@dataclass
class _Horizon:
    """Where this poll stops: rows with tracking value < ``time`` (TIMESTAMP, and every delete scan) or
    <= ``version`` (VERSION; ``version_known`` False means nothing may be read yet)."""

    time: datetime
    version: Any = None
    version_known: bool = False
    version_clock: datetime | None = None  # when the version bound was observed
    held_by: str = ""  # what holds the time horizon back, for the poll stats


def _time_horizon(obs: _Observation, lag_ms: int) -> tuple[datetime, str]:
    bound = obs.clock - timedelta(milliseconds=lag_ms)
    held = f"safetyLagMs {lag_ms}" if lag_ms else "the database clock"
    if obs.visible and obs.oldest_open is not None and obs.oldest_open < bound:
        bound = obs.oldest_open
        held = f"a transaction open since {obs.oldest_open.isoformat()}"
    return bound, held


def _time_param(conn: sqlconn.SqlConnection, column: sqlconn.Column, moment: datetime) -> Any:
    """``moment`` as the driver should bind it against ``column``."""
    if conn.dialect is sqlconn.POSTGRES and "with time zone" in column.data_type:
        return moment
    if conn.dialect is sqlconn.SQLITE:
        return moment.replace(tzinfo=None).isoformat(sep=" ")
    return moment.replace(tzinfo=None)


# --- polling ------------------------------------------------------------------------------------------


@dataclass
class _Scan:
    key: str  # "cursor" or "deleteCursor"
    column: sqlconn.Column
    versioned: bool  # bounded by the version horizon (else by the time horizon)


class _Poller:
    def __init__(self, conn: sqlconn.SqlConnection, cfg: _Config, plan: _Plan, ctx):
        self.conn, self.cfg, self.plan, self.ctx = conn, cfg, plan, ctx
        self.d = conn.dialect
        self.state = self._load_state()
        self.size = cfg.batch_size
        self.continuous = cfg.mode == "CONTINUOUS"

    # The checkpoint. ctx.checkpoint is the executor's own dict: it is changed in place, never replaced.
    def _load_state(self) -> dict:
        saved = {k: v for k, v in (self.ctx.checkpoint or {}).items() if k != COMMIT_KEY}
        identity = self.plan.identity(self.cfg)
        if saved and saved.get("source") != identity:
            old = saved.get("source") or {}
            self.ctx.warn(f"the checkpoint is for table {old.get('table')} column {old.get('trackingColumn')} "
                          f"({old.get('trackingType')}, key {old.get('primaryKey')}); reading "
                          f"{identity['table']} from the beginning")
            saved = {}
        state = {"version": CHECKPOINT_VERSION, "source": identity}
        for key in ("cursor", "deleteCursor", "history"):
            if key in saved:
                state[key] = saved[key]
        if not self.plan.delete_scan or saved.get("deleteColumn") != self.plan.delete.name:
            state.pop("deleteCursor", None)
        if self.plan.delete_scan:
            state["deleteColumn"] = self.plan.delete.name
        return state

    def _save(self) -> None:
        checkpoint = self.ctx.checkpoint
        checkpoint.clear()
        checkpoint.update(self.state)
        checkpoint[COMMIT_KEY] = COMMIT_ON_RUN_COMPLETED

    def _cursor(self, key: str) -> tuple[Any, list] | None:
        saved = self.state.get(key)
        if not saved:
            return None
        try:
            values = [sqlconn.decode_cursor(v) for v in saved["key"]]
            if len(values) != len(self.plan.pk):
                raise ValueError("key length")
            return sqlconn.decode_cursor(saved["tracking"]), values
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"the saved checkpoint {key} is not valid: {saved!r}") from None

    # One poll: the horizon, then each scan's rows up to it.
    def run(self) -> Iterator[Batch]:
        versioned = self.cfg.tracking_type == "VERSION"
        if versioned:
            self._observe_version()  # before the transactions are looked at: see _horizon
        obs = _observe(self.conn)
        if not obs.visible and obs.note:
            self.ctx.warn(obs.note)
        horizon = self._horizon(obs)
        stats = {"at": obs.clock.isoformat(), "rows": 0, "deletes": 0, "backlog": False,
                 "horizon": horizon.time.isoformat(), "heldBackBy": horizon.held_by}
        if versioned:
            stats["horizon"] = sqlconn.json_value(horizon.version) if horizon.version_known else None
        scans = [_Scan("cursor", self.plan.tracking, self.cfg.tracking_type == "VERSION")]
        if self.plan.delete_scan:
            scans.append(_Scan("deleteCursor", self.plan.delete, False))
        limit = self.ctx.record_limit
        emitted = 0
        last_time = None
        for scan in scans:
            start = self._cursor(scan.key)
            while True:
                want = self.size if limit is None else min(self.size, limit - emitted)
                if want <= 0:
                    break
                rows = self._read(scan, horizon, want)
                if not rows:
                    break
                records = self._records(scan, rows, start, obs)
                last = rows[-1]
                at = self.plan.at
                self.state[scan.key] = {
                    "tracking": sqlconn.encode_cursor(last[at[scan.column.name]]),
                    "key": [sqlconn.encode_cursor(last[at[c]]) for c in self.plan.pk],
                }
                emitted += len(rows)
                stats["deletes" if scan.key == "deleteCursor" else "rows"] += len(rows)
                if scan.key == "cursor" and not scan.versioned:
                    last_time = _as_datetime(last[at[scan.column.name]])
                full = len(rows) == want
                stats["backlog"] = stats["backlog"] or full
                # Before the yield: a consumer that stops here has taken the whole batch.
                self._save_with(stats, obs, horizon, last_time)
                if records:
                    yield records
                if not full or self.continuous or self.ctx.cancelled.is_set():
                    break
        self._save_with(stats, obs, horizon, last_time)

    def _save_with(self, stats: dict, obs: _Observation, horizon: _Horizon, last_time: datetime | None) -> None:
        # Lag: how far behind the database clock the emitted changes are. Caught up, that is the horizon;
        # with a backlog, the last change read (TIMESTAMP).
        if self.cfg.tracking_type == "VERSION":
            position = horizon.version_clock
        else:
            position = last_time if stats["backlog"] and last_time is not None else horizon.time
        stats["lagSeconds"] = round((obs.clock - position).total_seconds(), 3) if position else None
        self.state["poll"] = dict(stats)
        self._save()

    def _observe_version(self) -> None:
        """Add (clock after a snapshot, max version in it) to the history. Every version taken later than
        that clock is greater than that max."""
        column = self.d.quote(self.plan.tracking.name)
        clock_sql = {"postgres": "clock_timestamp()", "mysql": "SYSDATE(6)",
                     "sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now')"}[self.d.name]
        row = self.conn.execute(f"SELECT MAX({column}), {clock_sql} FROM {self.plan.table.quoted}").fetchone()
        self.conn.commit()
        clock = _utc(datetime.fromisoformat(row[1]) if isinstance(row[1], str) else row[1])
        history = list(self.state.get("history") or [])
        history.append([clock.isoformat(), sqlconn.encode_cursor(row[0])])
        if len(history) > HISTORY_LIMIT:  # dropping an entry can only make a horizon lower (safe)
            history = history[:1] + history[-(HISTORY_LIMIT - 1):]
        self.state["history"] = history

    def _horizon(self, obs: _Observation) -> _Horizon:
        time_bound, held = _time_horizon(obs, self.cfg.safety_lag_ms)
        horizon = _Horizon(time_bound, held_by=held)
        if self.cfg.tracking_type == "TIMESTAMP":
            return horizon
        # VERSION. The bound is the max of the newest observation whose snapshot was taken before every
        # transaction that may still commit began: those take their versions later, so above that max.
        # SQLite's writers commit one at a time, in the order they took their versions: its newest
        # observation is always usable.
        history = [(datetime.fromisoformat(c), v) for c, v in self.state["history"]]
        if self.d is sqlconn.SQLITE:
            before = None
        else:
            before = obs.clock - timedelta(milliseconds=self.cfg.safety_lag_ms)
            if obs.visible and obs.oldest_open is not None:
                before = min(before, obs.oldest_open)
        usable = [i for i, (c, _) in enumerate(history) if before is None or c < before]
        if not usable:
            horizon.held_by = ("a transaction open since before the first observation of the version"
                               if obs.oldest_open else f"safetyLagMs {self.cfg.safety_lag_ms}")
            return horizon
        i = usable[-1]
        horizon.version_clock = history[i][0]
        horizon.version = sqlconn.decode_cursor(history[i][1])
        horizon.version_known = True
        if i < len(history) - 1:
            horizon.held_by = (f"a transaction open since {obs.oldest_open.isoformat()}"
                               if obs.oldest_open is not None and obs.oldest_open < obs.clock
                               else f"safetyLagMs {self.cfg.safety_lag_ms}")
        else:
            horizon.held_by = ""
        # Older observations can never be the usable one again: the clock and open transactions only move on.
        self.state["history"] = self.state["history"][i:]
        return horizon

    def _read(self, scan: _Scan, horizon: _Horizon, limit: int) -> list[tuple]:
        d, plan = self.d, self.plan
        t = d.quote(scan.column.name)
        keys = [d.quote(c) for c in plan.pk]
        where = [f"{t} IS NOT NULL"]
        params: list[Any] = []
        cursor = self._cursor(scan.key)
        if cursor is not None:
            value, key_values = cursor
            where.append(f"{t} >= {d.ph}")
            where.append(f"({t} > {d.ph} OR ({t} = {d.ph} AND {_after(keys, d.ph)}))")
            params += [value, value, value, *_after_params(key_values)]
        if scan.versioned:
            if not horizon.version_known or horizon.version is None:
                return []
            where.append(f"{t} <= {d.ph}")
            params.append(horizon.version)
        elif d is sqlconn.SQLITE:
            where.append(f"julianday({t}) < julianday({d.ph})")
            params.append(_time_param(self.conn, scan.column, horizon.time))
        else:
            where.append(f"{t} < {d.ph}")
            params.append(_time_param(self.conn, scan.column, horizon.time))
        columns = ", ".join(d.quote(c) for c in plan.select)
        order = ", ".join([t, *keys])
        sql = (f"SELECT {columns} FROM {plan.table.quoted} WHERE {' AND '.join(where)} ORDER BY {order} "
               f"LIMIT {int(limit)}")
        cur = self.conn.execute(sql, params)
        rows = cur.fetchall()
        cur.close()
        self.conn.commit()  # no snapshot is held between polls
        return [tuple(r) for r in rows]

    def _records(self, scan: _Scan, rows: list[tuple], start: tuple[Any, list] | None, obs: _Observation) -> Batch:
        plan, at = self.plan, self.plan.at
        names = plan.select
        json_value = sqlconn.json_value
        deleted_at = at[plan.delete.name] if plan.delete is not None else None
        tracking_at, created_at = at[plan.tracking.name], at.get(plan.created) if plan.created else None
        previous = start[0] if start is not None else None
        observed = obs.clock.isoformat()
        out: Batch = []
        for row in rows:
            if scan.key == "deleteCursor":
                operation = "DELETE"
                stamp = json_value(row[at[scan.column.name]])
            else:
                deleted = deleted_at is not None and _is_set(row[deleted_at])
                if deleted and (not self.cfg.include_deletes or plan.delete_scan):
                    continue  # not wanted, or the delete scan emits it
                if deleted:
                    operation = "DELETE"
                elif created_at is None:
                    operation = "UPSERT"
                else:
                    operation = self._insert_or_update(row[created_at], row[tracking_at], previous)
                stamp = observed if scan.versioned else json_value(row[tracking_at])
            record = dict(zip(names, map(json_value, row), strict=True))
            record[OPERATION_FIELD] = operation
            record[TIMESTAMP_FIELD] = stamp
            out.append(record)
        return out

    def _insert_or_update(self, created: Any, tracking: Any, previous: Any) -> str:
        """INSERT when the row has not changed since it was created, or was created after the cursor this
        poll started from (so it is new to every consumer); else UPDATE. On the first poll every row is new."""
        if created is None:
            return "UPDATE"
        if previous is None:
            return "INSERT"
        try:
            if created == tracking or created > previous:
                return "INSERT"
        except TypeError:
            if not getattr(self, "_warned_compare", False):
                self._warned_compare = True
                self.ctx.warn(f"createdColumn '{self.plan.created}' cannot be compared with trackingColumn "
                              f"'{self.plan.tracking.name}' ({type(created).__name__} vs "
                              f"{type(tracking).__name__}); such rows are emitted as UPDATE")
        return "UPDATE"


def _after(keys: Sequence[str], ph: str) -> str:
    """``(k1, k2, ...) > (?, ?, ...)`` spelt out, so every database can use an index on the first key."""
    first = f"{keys[0]} > {ph}"
    if len(keys) == 1:
        return first
    return f"({first} OR ({keys[0]} = {ph} AND {_after(keys[1:], ph)}))"


def _after_params(values: Sequence[Any]) -> list[Any]:
    if len(values) == 1:
        return [values[0]]
    return [values[0], values[0], *_after_params(values[1:])]


_NOT_SET = frozenset({"", "0", "false", "f", "no", "n", "off"})


def _is_set(value: Any) -> bool:
    """Whether a soft-delete column marks its row deleted: a timestamp or any true value."""
    if value is None:
        return False
    if isinstance(value, bool | int | float):
        return bool(value)
    if isinstance(value, str):
        return value.strip().lower() not in _NOT_SET
    if isinstance(value, bytes | bytearray):
        return any(value)
    return True


def _is_driver_error(exc: BaseException) -> bool:
    return any(cls.__name__ in ("Error", "DatabaseError") and cls.__module__.split(".")[0] in
               ("psycopg", "pymysql", "sqlite3")
               for cls in type(exc).__mro__)

