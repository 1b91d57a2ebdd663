"""SQL adapters on a Connection (PostgreSQL, MySQL/MariaDB, SQLite): the ``database`` extractor and the
``tableUpsert`` loader. [pure]

The connection, dialects and name checks are :mod:`pipelines.adapters.sqlconn`. Both adapters connect
inside the step (so the worker, not the web process, resolves secrets) and close when the step ends.

``database`` runs one read-only SELECT in a read-only transaction and streams it (a server-side cursor on
PostgreSQL, unbuffered on MySQL) ``batchSize`` rows at a time. With ``incremental`` the query is wrapped
as ``SELECT * FROM (<query>) AS dh_src WHERE dh_src.<column> > <last> ORDER BY dh_src.<column>``; the column
is checked against the query's result columns and quoted, the last value is bound as a parameter and kept
in the step checkpoint (with its type, so a timestamp stays a timestamp). Rows whose incremental column is
NULL are never read in incremental mode. Values are made JSON-safe by :func:`sqlconn.json_value`:
Decimals become strings (exact, as the plugin's drivers give them), dates ISO 8601 strings.

``tableUpsert`` writes each batch in one transaction: CREATE and (where a unique index covers the lookup
fields) UPSERT with ``executemany``; UPDATE, DELETE and UPSERT without such an index statement by
statement, so a lookup that matches no row is known per record. When a row breaks a constraint the batch
is rolled back and written again row by row inside savepoints, so only the bad rows fail, each with the
database's message.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipelines.adapters import sqlconn
from pipelines.adapters.base import Extractor, Writer, WriteResult
from pipelines.errors import ConfigError, StepError
from pipelines.records import MISSING, Batch, Record, path
from pipelines.registry import extractors, loaders

_TIMEOUT_SCHEMA = {
    "type": "integer", "minimum": 0, "maximum": 3_600_000, "default": sqlconn.DEFAULT_QUERY_TIMEOUT_MS,
    "description": "How long the database may take to answer one statement or one fetch, in ms (0: no limit). "
    "PostgreSQL: statement_timeout; MySQL: the socket read timeout; SQLite: the statement is interrupted.",
}
_CONNECTION_SCHEMA = {"type": "string", "minLength": 1,
                      "description": "Code of a POSTGRES, MYSQL or SQLITE Connection (host, database, user and "
                      "the password secret live there)."}


@extractors.register(
    "database",
    name="SQL query",
    category="database",
    builtin=True,
    description="Rows of a read-only SELECT on a PostgreSQL, MySQL/MariaDB or SQLite connection, streamed in "
    "batches, optionally incremental on a column.",
    schema={
        "type": "object",
        "properties": {
            "connectionCode": _CONNECTION_SCHEMA,
            "databaseType": {"enum": ["POSTGRESQL", "MYSQL", "SQLITE"],
                             "description": "Optional: the type the connection must have (the plugin's field)."},
            "query": {"type": "string", "minLength": 1,
                      "description": "One SELECT (or WITH ... SELECT) statement; no ';' chains, no comments. "
                      "Placeholders: ? or $1, $2 (use $n on PostgreSQL when the query has jsonb ? operators)."},
            "parameters": {"type": "array", "default": [],
                           "description": "Positional values for the placeholders, bound by the driver."},
            "batchSize": {"type": "integer", "minimum": 1, "maximum": 100_000,
                          "description": "Rows fetched and passed on at a time (default: the pipeline batch size)."},
            "incremental": {
                "type": "object",
                "description": "Read only rows whose column is greater than the last value seen (kept in the "
                "step checkpoint), in the column's order.",
                "properties": {
                    "enabled": {"type": "boolean", "default": False, "description": "Turn incremental reads on."},
                    "column": {"type": "string", "minLength": 1,
                               "description": "A column of the query's result, e.g. updated_at or id."},
                    "type": {"enum": ["timestamp", "sequence", "id"], "default": "timestamp",
                             "description": "What the column holds (informative: every type is compared with >)."},
                },
                "additionalProperties": False,
            },
            "queryTimeoutMs": _TIMEOUT_SCHEMA,
            "pagination": {
                "type": "object",
                "description": "The plugin's paging. Rows are streamed here, so only pageSize (the batch size "
                "when batchSize is not set) and maxPages (stop after that many batches) are used.",
                "properties": {
                    "enabled": {"type": "boolean", "description": "Ignored: rows are always streamed."},
                    "type": {"enum": ["OFFSET", "CURSOR"], "description": "Ignored: rows are always streamed."},
                    "pageSize": {"type": "integer", "minimum": 1, "maximum": 100_000,
                                 "description": "Rows per batch when batchSize is not set."},
                    "cursorColumn": {"type": "string", "description": "Ignored."},
                    "cursorTieBreakerColumn": {"type": "string", "description": "Ignored."},
                    "maxPages": {"type": "integer", "minimum": 1, "description": "Stop after this many batches."},
                },
                "additionalProperties": False,
            },
        },
        "required": ["connectionCode", "query"],
        "additionalProperties": False,
    },
)
class DatabaseExtractor(Extractor):
    """Streams a SELECT; see the module docstring."""

    _conn: sqlconn.SqlConnection | None = None

    def batches(self) -> Iterator[Batch]:
        cfg = self.config
        incremental = cfg.get("incremental") or {}
        use_cursor = bool(incremental.get("enabled"))
        if use_cursor and not incremental.get("column"):
            raise ConfigError("incremental.column is required when incremental is enabled", field="incremental.column")
        parameters = cfg.get("parameters") or []
        if not isinstance(parameters, list):
            raise ConfigError("parameters must be a list", field="parameters")
        pagination = cfg.get("pagination") or {}
        size = int(cfg.get("batchSize") or pagination.get("pageSize") or self.ctx.batch_size)
        max_batches = pagination.get("maxPages")

        # The query is checked before connecting: a refused query never reaches the database.
        connection = sqlconn.step_connection(self.ctx, cfg.get("connectionCode"), database_type=cfg.get("databaseType"))
        dialect = sqlconn.dialect_for(connection)
        query = sqlconn.check_select(cfg["query"], dialect.name)
        sql, params = dialect.bind(query, parameters)
        conn = self._conn = sqlconn.connect(
            connection, self.ctx.secret, read_only=True,
            query_timeout_ms=int(cfg.get("queryTimeoutMs", sqlconn.DEFAULT_QUERY_TIMEOUT_MS)))

        column = None
        if use_cursor:
            columns = conn.result_columns(sql, params)
            column = sqlconn.resolve_name(incremental["column"], columns)
            if column is None:
                hint = sqlconn.nearest(incremental["column"], columns)
                raise ConfigError(
                    f"incremental column '{incremental['column']}' is not a column of the query's result"
                    + (f"; did you mean '{hint}'?" if hint else f" (columns: {', '.join(columns)})"),
                    field="incremental.column")
            saved = self.ctx.checkpoint.get("incremental")
            last = None
            if isinstance(saved, dict) and saved.get("column") == column and "value" in saved:
                last = sqlconn.decode_cursor(saved)
            elif saved:
                self.ctx.warn(f"incremental checkpoint for column '{saved.get('column')}' ignored: the column is "
                              f"now '{column}'")
            quoted = f"dh_src.{dialect.quote(column)}"
            where = f"{quoted} > {dialect.ph}" if last is not None else f"{quoted} IS NOT NULL"
            sql = f"SELECT * FROM ({sql}) AS dh_src WHERE {where} ORDER BY {quoted}"
            if last is not None:
                params = [*params, last]

        try:
            stream = conn.stream(sql, params, size)
        except Exception as exc:
            raise conn.explain(exc, field="query") from None
        names = stream.columns
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            self.ctx.warn(f"the query returns more than one column named {', '.join(dupes)}; the last one wins")
        position = names.index(column) if column is not None else None
        limit = self.ctx.record_limit
        seen = batches = 0
        json_value = sqlconn.json_value
        try:
            for rows in stream.batches:
                if limit is not None and seen + len(rows) > limit:
                    rows = rows[: max(0, limit - seen)]
                if not rows:
                    break
                records = [dict(zip(names, map(json_value, row), strict=True)) for row in rows]
                seen += len(records)
                batches += 1
                if position is not None:
                    # Before the yield: a consumer that stops here has taken the whole batch.
                    self.ctx.checkpoint["incremental"] = {"column": column,
                                                          **sqlconn.encode_cursor(rows[-1][position])}
                yield records
                if self.ctx.cancelled.is_set() or (limit is not None and seen >= limit):
                    break
                if max_batches is not None and batches >= max_batches:
                    break
        except (ConfigError, StepError):
            raise
        except Exception as exc:
            if not _is_driver_error(exc):
                raise
            raise conn.explain(exc, field="query") from None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _is_driver_error(exc: BaseException) -> bool:
    """A DB-API error of any of the three drivers (they all name their base class Error)."""
    return any(cls.__name__ in ("Error", "DatabaseError") and cls.__module__.split(".")[0] in
               ("psycopg", "pymysql", "sqlite3")
               for cls in type(exc).__mro__)


# --- tableUpsert -----------------------------------------------------------------------------------------

STRATEGIES = ("CREATE", "UPDATE", "UPSERT", "DELETE")


@loaders.register(
    "tableUpsert",
    name="SQL table upsert",
    category="database",
    builtin=True,
    description="Inserts, updates, upserts or deletes rows of a table on a PostgreSQL, MySQL/MariaDB or SQLite "
    "connection, matched by lookup fields.",
    schema={
        "type": "object",
        "properties": {
            "connectionCode": _CONNECTION_SCHEMA,
            "table": {"type": "string", "minLength": 1,
                      "description": "The table (or schema.table); checked against the database catalogue."},
            "lookupFields": {
                "type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "uniqueItems": True,
                "description": "Key columns that find a record's row. Required for UPDATE, UPSERT and DELETE; "
                "with CREATE a row that already has the key fails the record.",
            },
            "strategy": {"enum": list(STRATEGIES), "default": "UPSERT",
                         "description": "CREATE inserts (an existing key fails the record); UPDATE changes "
                         "existing rows (no row fails the record); UPSERT updates or inserts; DELETE deletes "
                         "the rows the lookup matches (no row fails the record)."},
            "fieldMapping": {
                "type": "object", "additionalProperties": {"type": "string", "minLength": 1},
                "description": "Column -> record path (customer.email). Default: every record key that is a "
                "column of the table (other keys are ignored, with one warning).",
            },
            "queryTimeoutMs": _TIMEOUT_SCHEMA,
        },
        "required": ["connectionCode", "table"],
        "additionalProperties": False,
    },
)
class TableUpsertLoader(Writer):
    """Writes batches into a SQL table; see the module docstring."""

    def __init__(self, config: dict, ctx):
        super().__init__(config, ctx)
        self.strategy = config.get("strategy", "UPSERT")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}", field="strategy")
        self.lookup_names = list(config.get("lookupFields") or [])
        if self.strategy != "CREATE" and not self.lookup_names:
            raise ConfigError(f"lookupFields is required for strategy {self.strategy}", field="lookupFields")
        self.mapping = config.get("fieldMapping")
        self.conn: sqlconn.SqlConnection | None = None
        self.table: sqlconn.Table | None = None
        self._ignored: set[str] = set()
        self._warned = False
        self._native: dict[frozenset, bool] = {}
        self._keys: list[tuple[str, ...]] = []
        self._required: set[str] = set()
        self._unique_lookup = False
        self._sql_cache: dict[tuple, str] = {}

    # Opening and checking names, once, before any statement that reads or writes rows.
    def _open(self) -> None:
        if self.table is not None:
            return
        self.close()
        self.conn = sqlconn.open_step_connection(
            self.ctx, self.config.get("connectionCode"),
            query_timeout_ms=int(self.config.get("queryTimeoutMs", sqlconn.DEFAULT_QUERY_TIMEOUT_MS)))
        try:
            names = {name: f"lookupFields.{i}" for i, name in enumerate(self.lookup_names)}
            for column in self.mapping or {}:
                names.setdefault(column, f"fieldMapping.{column}")
            table = self.conn.check_identifiers(self.config.get("table"), names)
            self.lookup = [table.column(n).name for n in self.lookup_names]
            if self.mapping:
                self.paths = [(table.column(c).name, path(p)) for c, p in self.mapping.items()]
            self._keys = self.conn.unique_keys(table) if self.lookup else []
            self._required = {c.name for c in table.columns.values() if not c.nullable and not c.has_default}
            self._unique_lookup = frozenset(self.lookup) in {frozenset(k) for k in self._keys}
            self.conn.commit()
        except Exception as exc:
            error = exc if isinstance(exc, ConfigError | StepError) else self.conn.explain(exc)
            self.close()
            raise error from None
        self.table = table

    def write(self, batch: Batch) -> WriteResult:
        self._open()
        ops, failed = self._plan(batch)
        if self._ignored and not self._warned:
            self._warned = True
            shown = ", ".join(sorted(self._ignored)[:10])
            self.ctx.warn(f"record keys that are not columns of '{self.table.name}' are ignored: {shown}"
                          + (" ..." if len(self._ignored) > 10 else ""))
        run_failed = self._run(ops) if ops else []
        return WriteResult(written=len(ops) - len(run_failed), failed=failed + run_failed)

    def finish(self) -> None:
        self._open()  # bad config shows even when no record came

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    # Planning: each record becomes (kind, sql, params, record), or fails alone.
    def _values(self, record: Record) -> dict[str, Any]:
        if self.mapping:
            values = {}
            for column, p in self.paths:
                value = p.get(record)
                if value is not MISSING:
                    values[column] = value
            return values
        columns = self.table.columns
        values = {}
        for key, value in record.items():
            if key in columns:
                values[key] = value
            else:
                self._ignored.add(key)
        return values

    def _plan(self, batch: Batch) -> tuple[list[tuple], list[tuple[Record, str]]]:
        ops: list[tuple] = []
        failed: list[tuple[Record, str]] = []
        table, d = self.table, self.conn.dialect
        for record in batch:
            try:
                values = {c: d.coerce(table.columns[c], v) for c, v in self._values(record).items()}
            except ValueError as exc:
                failed.append((record, str(exc)))
                continue
            missing = [c for c in self.lookup if values.get(c) is None]
            if missing:
                failed.append((record, f"lookup field {', '.join(repr(m) for m in missing)} is missing or null"))
                continue
            key = [values[c] for c in self.lookup]
            if self.strategy == "DELETE":
                ops.append(("delete", self._sql("delete", ()), key, record))
                continue
            if not values:
                failed.append((record, f"the record has no value for any column of '{table.name}'"))
                continue
            cols = tuple(values)
            params = [values[c] for c in cols]
            rest = tuple(c for c in cols if c not in self.lookup)
            if self.strategy == "CREATE":
                kind = "insert" if not self.lookup or self._unique_lookup else "create_checked"
                ops.append((kind, self._sql(kind, cols), params if kind == "insert" else (key, params), record))
            elif self.strategy == "UPDATE":
                if rest:
                    ops.append(("update", self._sql("update", rest), [values[c] for c in rest] + key, record))
                else:
                    ops.append(("exists", self._sql("exists", ()), key, record))
            elif self._native_upsert(cols):
                ops.append(("upsert", self._sql("upsert", cols), params, record))
            else:
                update = (self._sql("update", rest), [values[c] for c in rest] + key) if rest else None
                ops.append(("update_or_insert", self._sql("exists", ()),
                            (key, update, self._sql("insert", cols), params), record))
        return ops, failed

    def _native_upsert(self, cols: tuple[str, ...]) -> bool:
        # INSERT ... ON CONFLICT checks NOT NULL on the row it would insert, even when it then updates: a
        # record that leaves out a required column goes UPDATE-then-INSERT, so it can still update.
        if not self._unique_lookup or not self._required <= set(cols):
            return False
        mark = frozenset(cols)
        if mark not in self._native:
            self._native[mark] = self.conn.native_upsert_key(self.table, self.lookup, cols, keys=self._keys)
        return self._native[mark]

    _SQL_CACHE_LIMIT = 256

    def _sql(self, kind: str, cols: tuple[str, ...]) -> str:
        cache = self._sql_cache
        found = cache.get((kind, cols))
        if found is not None:
            return found
        d, t = self.conn.dialect, self.table
        where = " AND ".join(f"{d.quote(c)} = {d.ph}" for c in self.lookup)
        if kind in ("insert", "create_checked", "upsert"):
            names = ", ".join(d.quote(c) for c in cols)
            marks = ", ".join([d.ph] * len(cols))
            sql = f"INSERT INTO {t.quoted} ({names}) VALUES ({marks})"
            if kind == "upsert":
                sql += d.upsert_clause(self.lookup, [c for c in cols if c not in self.lookup])
        elif kind == "update":
            sets = ", ".join(f"{d.quote(c)} = {d.ph}" for c in cols)
            sql = f"UPDATE {t.quoted} SET {sets} WHERE {where}"
        elif kind == "delete":
            sql = f"DELETE FROM {t.quoted} WHERE {where}"
        else:  # exists
            sql = f"SELECT 1 FROM {t.quoted} WHERE {where}{d.limit_one()}"
        if len(cache) < self._SQL_CACHE_LIMIT:
            cache[(kind, cols)] = sql
        return sql

    # Running: one transaction per batch; on a row's constraint error, again row by row in savepoints.
    def _run(self, ops: list[tuple]) -> list[tuple[Record, str]]:
        conn = self.conn
        try:
            conn.begin()
            misses = self._fast(ops)
            conn.commit()
            return misses
        except Exception as exc:
            conn.rollback()
            if not conn.dialect.is_record_error(exc):
                raise self._step_error(exc) from None
        try:
            conn.begin()
            failures = []
            for op in ops:
                conn.savepoint()
                try:
                    miss = self._one(op)
                except Exception as exc:
                    if not conn.dialect.is_record_error(exc):
                        raise
                    conn.rollback_to()
                    failures.append((op[3], conn.dialect.message(exc)))
                    continue
                conn.release()
                if miss:
                    failures.append((op[3], miss))
            conn.commit()
            return failures
        except Exception as exc:
            conn.rollback()
            raise self._step_error(exc) from None

    def _step_error(self, exc: BaseException) -> Exception:
        if isinstance(exc, ConfigError | StepError):
            return exc
        return self.conn.explain(exc)

    def _fast(self, ops: list[tuple]) -> list[tuple[Record, str]]:
        misses = []
        i = 0
        while i < len(ops):
            kind, sql = ops[i][0], ops[i][1]
            j = i
            while j < len(ops) and ops[j][0] == kind and ops[j][1] == sql:
                j += 1
            if kind in ("insert", "upsert") and j - i > 1:
                self.conn.executemany(sql, [op[2] for op in ops[i:j]])
            else:
                for op in ops[i:j]:
                    miss = self._one(op)
                    if miss:
                        misses.append((op[3], miss))
            i = j
        return misses

    def _one(self, op: tuple) -> str | None:
        """Run one record's statements; a message when its row was not found (or already there)."""
        kind, sql, params, _record = op
        conn = self.conn
        if kind in ("insert", "upsert"):
            conn.execute(sql, params)
            return None
        if kind == "update":
            return None if conn.execute(sql, params).rowcount else self._no_row(params[-len(self.lookup):])
        if kind == "delete":
            return None if conn.execute(sql, params).rowcount else self._no_row(params)
        if kind == "exists":
            return None if conn.execute(sql, params).fetchone() else self._no_row(params)
        if kind == "create_checked":
            key, values = params
            if conn.execute(self._sql("exists", ()), key).fetchone():
                return f"a row with {self._describe_key(key)} already exists in '{self.table.name}'"
            conn.execute(sql, values)
            return None
        # update_or_insert: UPDATE (or look) by the key; INSERT when no row matched.
        key, update, insert_sql, values = params
        if update is not None:
            if conn.execute(update[0], update[1]).rowcount:
                return None
        elif conn.execute(sql, key).fetchone():
            return None
        conn.execute(insert_sql, values)
        return None

    def _describe_key(self, key: list) -> str:
        return ", ".join(f"{c} = {sqlconn.short(v)}" for c, v in zip(self.lookup, key, strict=True))

    def _no_row(self, key: list) -> str:
        return f"no row in '{self.table.name}' with {self._describe_key(key)}"
