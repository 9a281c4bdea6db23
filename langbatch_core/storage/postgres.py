"""A store shared by machines: PostgreSQL (psycopg 3), for a team's dashboards, CLIs and workers.

    from langbatch_core.storage.postgres import PostgresBatchStorage
    storage = PostgresBatchStorage("postgresql://langbatch@db/langbatch")
    # or: LANGBATCH_STORE=postgresql://langbatch@db/langbatch  (default_storage() then returns it)

Tables ``batches`` (the summary columns, the worker's lease, the whole record as JSONB) and ``jobs``, created
and changed by named migrations (``m001_initial``, ...) recorded in ``migrations``, applied once under an
advisory lock so that processes starting together do not race. Three things make writers on different
machines safe:

- ``lock(batch_id)``: the batch's lock is a PostgreSQL advisory lock held on a connection of its own, seen
  by every machine and released by the server if the holder dies;
- ``save``: compare-and-set on ``version`` (a save of version N replaces version N-1 only), so a writer that
  skipped the lock gets ``StaleRecordError`` instead of overwriting a newer record;
- ``active_batch_ids``: workers lease running batches with ``SELECT ... FOR UPDATE SKIP LOCKED``, so each
  batch is advanced by one worker per lease and a killed worker's batches go to another when it expires.

The connection URL may carry a password: it is never shown (messages name host, port and database only).
"""

from __future__ import annotations

import builtins
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg.conninfo import conninfo_to_dict

from langbatch_core.errors import ConfigurationError, StaleRecordError, StorageError
from langbatch_core.storage.base import (
    CATCH_UP_SECONDS,
    BatchRecord,
    BatchStorage,
    BatchSummary,
    check_batch_id,
    not_found,
    owner_key,
    summaries_query,
    summary_of_row,
)

T = TypeVar("T")
BATCH_LOCKS = 0x4C42  # advisory lock namespace of batch locks ("LB"); the key is hashtext(batch id)
MIGRATION_LOCK = (0x4C43, 0)
ACTIVE_STATUSES = ("validating", "in_progress", "finalizing", "cancelling")
_ACTIVE_SQL = ", ".join(
    f"'{status}'" for status in ACTIVE_STATUSES
)  # constants: the partial index needs them


def m001_initial(con: psycopg.Connection[Any]) -> None:
    con.execute(
        """CREATE TABLE batches (
            id TEXT PRIMARY KEY, name TEXT, kind TEXT, endpoint TEXT, model TEXT, connection_kind TEXT,
            status TEXT, request_count BIGINT, succeeded BIGINT, failed BIGINT, pending BIGINT,
            not_run BIGINT, estimated_cost_usd DOUBLE PRECISION, created_at DOUBLE PRECISION,
            updated_at DOUBLE PRECISION, version BIGINT NOT NULL DEFAULT 0,
            advanced_at DOUBLE PRECISION, advanced_by TEXT, lease_owner TEXT, lease_until DOUBLE PRECISION,
            record JSONB NOT NULL)"""
    )
    con.execute(
        """CREATE TABLE jobs (
            batch_id TEXT REFERENCES batches (id) ON DELETE CASCADE, key TEXT, attempt INTEGER,
            provider_job_id TEXT, status TEXT, request_count BIGINT, created_at DOUBLE PRECISION,
            updated_at DOUBLE PRECISION, PRIMARY KEY (batch_id, key))"""
    )
    con.execute("CREATE INDEX batches_created_at ON batches (created_at DESC)")
    con.execute(f"CREATE INDEX batches_active ON batches (advanced_at) WHERE status IN ({_ACTIVE_SQL})")


def m002_owner_and_audit(con: psycopg.Connection[Any]) -> None:
    con.execute("ALTER TABLE batches ADD COLUMN owner TEXT")
    con.execute("UPDATE batches SET owner = record->>'owner'")
    con.execute("CREATE INDEX batches_owner ON batches (owner)")
    con.execute(
        """CREATE TABLE audit (
            occurred_at DOUBLE PRECISION, actor TEXT, action TEXT, batch_id TEXT, detail TEXT)"""
    )
    con.execute("CREATE INDEX audit_occurred_at ON audit (occurred_at)")


def m003_owner_listing(con: psycopg.Connection[Any]) -> None:
    """A person's listing (owners compared in any case, newest first) reads an index, not the table."""
    con.execute("CREATE INDEX batches_owner_listing ON batches (lower(owner), created_at DESC)")


MIGRATIONS: builtins.list[Callable[[psycopg.Connection[Any]], None]] = [
    m001_initial,
    m002_owner_and_audit,
    m003_owner_listing,
]
_AUDIT_FIELDS = ("at", "actor", "action", "batch_id", "detail")  # the event's keys, in the table's order

_COLUMNS = [
    "id", "name", "kind", "endpoint", "model", "connection_kind", "status", "request_count", "succeeded",
    "failed", "pending", "not_run", "estimated_cost_usd", "created_at", "updated_at", "version",
    "advanced_at", "advanced_by", "owner",
]  # fmt: skip
_JOB_COLUMNS = ["key", "attempt", "provider_job_id", "status", "request_count", "created_at", "updated_at"]
_JOB_TYPES = ["text", "integer", "text", "text", "bigint", "float8", "float8"]
# One statement (one round trip, atomic in autocommit): the compare-and-set of the batch row, then its job
# rows replaced (only if it was saved); the last column is the version stored before, for a refusal's message.
_SAVE = (
    "WITH saved AS ("
    f"INSERT INTO batches ({', '.join(_COLUMNS)}, record) VALUES ({', '.join(['%s'] * len(_COLUMNS))}, "
    "%s::jsonb) ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in [*_COLUMNS[1:], "record"])
    + " WHERE batches.version = EXCLUDED.version - 1 OR EXCLUDED.version = 0 RETURNING id), "
    "gone AS (DELETE FROM jobs WHERE batch_id IN (SELECT id FROM saved) AND key <> ALL(%s::text[])), "
    f"put AS (INSERT INTO jobs (batch_id, {', '.join(_JOB_COLUMNS)}) SELECT saved.id, j.* FROM saved, "
    f"unnest({', '.join(f'%s::{t}[]' for t in _JOB_TYPES)}) AS j "
    "ON CONFLICT (batch_id, key) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _JOB_COLUMNS[1:])
    + ") SELECT (SELECT count(*) FROM saved), (SELECT version FROM batches WHERE id = %s)"
)
_LEASE = f"""
    WITH picked AS (
        SELECT id FROM batches
        WHERE (status IN ({_ACTIVE_SQL})
               OR (updated_at > COALESCE(advanced_at, 0) AND updated_at > %(catch_up)s
                   AND EXISTS (SELECT 1 FROM jobs WHERE jobs.batch_id = batches.id)))
          AND (lease_until IS NULL OR lease_until < %(now)s)
        ORDER BY advanced_at NULLS FIRST LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED)
    UPDATE batches SET lease_owner = %(worker)s, lease_until = %(until)s
    FROM picked WHERE batches.id = picked.id RETURNING batches.id, batches.advanced_at"""


class PostgresBatchStorage(BatchStorage):
    """Keeps records in the PostgreSQL database at ``url``; safe for writers on many machines.

    The batches' files stay in ``<data_dir>/batches/<id>/`` (a shared folder, or ``LANGBATCH_FILES`` for an
    object store). ``connect_timeout`` is how long a call waits for the server.
    """

    shared_by_workers = True

    def __init__(
        self, url: str, *, data_dir: str | Path | None = None, connect_timeout: float = 10.0
    ) -> None:
        super().__init__(data_dir)
        try:
            params = conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise ConfigurationError(
                "LANGBATCH_STORE is not a PostgreSQL URL psycopg understands; write it as "
                "postgresql://user@host:5432/database.",
                field="store",
            ) from exc
        self._url = url
        self.where = (
            f"PostgreSQL {params.get('host') or 'localhost'}:{params.get('port') or 5432}/"
            f"{params.get('dbname') or params.get('user') or ''}"
        )
        self.connect_timeout = connect_timeout
        self._local = threading.local()
        self._idle_lock_connections: builtins.list[psycopg.Connection[Any]] = []
        self._pool_lock = threading.Lock()
        self._migrated = False

    # -- records --------------------------------------------------------------------------------------

    def save(self, record: BatchRecord) -> None:
        check_batch_id(record.id)
        self._read_under_lock().pop(record.id, None)
        row = [
            record.connection.get("kind") if c == "connection_kind" else getattr(record, c) for c in _COLUMNS
        ]
        jobs = [[getattr(job, c) for job in record.jobs] for c in _JOB_COLUMNS]
        params = [*row, orjson.dumps(record.to_dict()).decode(), jobs[0], *jobs, record.id]
        answer = self._run(lambda con: con.execute(_SAVE, params).fetchone())
        saved, stored = answer if answer is not None else (False, None)
        if not saved:
            raise StaleRecordError(
                f"Batch {record.id} was not saved: {self.where} holds version "
                f"{stored if stored is not None else '?'}, newer than the version {record.version - 1} this "
                "change was made on (another writer saved it first). Load the batch again "
                "(Batch.load) and repeat the change."
            )

    def load(self, batch_id: str) -> BatchRecord:
        check_batch_id(batch_id)
        read = self._read_under_lock().pop(batch_id, None)
        if read is not None:
            return BatchRecord.from_dict(orjson.loads(read))
        row = self._run(
            lambda con: con.execute("SELECT record::text FROM batches WHERE id = %s", [batch_id]).fetchone()
        )
        if row is None:
            raise not_found(batch_id, f"the store {self.where}")
        return BatchRecord.from_dict(orjson.loads(row[0]))

    def list(self, owner: str | None = None) -> builtins.list[BatchRecord]:
        where, params = ("WHERE lower(owner) = %s", [owner_key(owner)]) if owner is not None else ("", [])
        query = f"SELECT record::text FROM batches {where} ORDER BY created_at DESC"
        rows = self._run(lambda con: con.execute(query, params).fetchall())
        return [BatchRecord.from_dict(orjson.loads(row[0])) for row in rows]

    def summaries(self, owner: str | None = None, limit: int | None = None) -> builtins.list[BatchSummary]:
        """The listing's columns only (no record is read whole)."""
        name = "COALESCE(NULLIF(record->'connection'->>'name', ''), connection_kind)"
        query = summaries_query("%s", name, "advanced_at, advanced_by", owner is not None, limit is not None)
        params = [value for value in (owner and owner_key(owner), limit) if value is not None]
        rows = self._run(lambda con: con.execute(query, params).fetchall())
        return [summary_of_row(row) for row in rows]

    def append_audit(self, event: dict[str, Any]) -> None:
        row = [event.get(key) for key in _AUDIT_FIELDS]
        self._run(lambda con: con.execute("INSERT INTO audit VALUES (%s, %s, %s, %s, %s)", row))

    def read_audit(self) -> builtins.list[dict[str, Any]]:
        query = "SELECT occurred_at, actor, action, batch_id, detail FROM audit ORDER BY occurred_at"
        rows = self._run(lambda con: con.execute(query).fetchall())
        return [dict(zip(_AUDIT_FIELDS, row, strict=True)) for row in rows]

    def delete(self, batch_id: str) -> None:
        check_batch_id(batch_id)
        found = self._run(
            lambda con: con.execute("DELETE FROM batches WHERE id = %s RETURNING id", [batch_id]).fetchone()
        )
        if found is None:
            raise not_found(batch_id, f"the store {self.where}")

    def applied_migrations(self) -> builtins.list[str]:
        """Names of the migrations applied to this database, in order."""
        rows = self._run(
            lambda con: con.execute("SELECT name FROM migrations ORDER BY applied_at").fetchall()
        )
        return [row[0] for row in rows]

    # -- sharing between machines -----------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, batch_id: str, wait: bool = True) -> Iterator[bool]:
        """The batch's lock for every machine: an advisory lock on a connection held for the duration.

        The record is read in the same round trip, just after the lock is taken: the holder's first
        ``load(batch_id)`` (``Batch`` reloads once it holds the lock) takes it instead of asking again."""
        check_batch_id(batch_id)
        con = self._lock_connection()
        function = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
        try:
            with con.pipeline():
                taken = con.execute(f"SELECT {function}(%s, hashtext(%s))", [BATCH_LOCKS, batch_id])
                stored = con.execute("SELECT record::text FROM batches WHERE id = %s", [batch_id])
            row, record = taken.fetchone(), stored.fetchone()
        except psycopg.Error as exc:
            con.close()
            raise StorageError(f"Cannot take the lock of batch {batch_id} in {self.where}: {exc}") from exc
        held = row is None or row[0] is not False
        if held and record is not None:
            self._read_under_lock()[batch_id] = record[0]
        try:
            yield held
        finally:
            self._read_under_lock().pop(batch_id, None)
            self._release(con, batch_id if held else None)

    def active_batch_ids(self, worker: str, limit: int, lease_seconds: float) -> builtins.list[str]:
        """Running batches (and those finished by a refresh since a worker saw them: ``awaits_worker``) for
        ``worker``, leased to it for ``lease_seconds`` (others skip them meanwhile); oldest advance first."""
        now = time.time()
        params = {
            "now": now,
            "until": now + lease_seconds,
            "worker": worker,
            "limit": limit,
            "catch_up": now - CATCH_UP_SECONDS,
        }
        rows = self._run(lambda con: con.execute(_LEASE, params).fetchall())
        rows.sort(key=lambda row: row[1] or 0.0)
        return [row[0] for row in rows]

    def __repr__(self) -> str:
        return f"PostgresBatchStorage({self.where!r}, data_dir={str(self.data_dir)!r})"

    # -- connections ----------------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                self._url, autocommit=True, connect_timeout=max(1, int(self.connect_timeout))
            )
        except psycopg.Error as exc:
            raise StorageError(
                f"Cannot reach the store {self.where} ({_first_line(exc)}). Check that the server runs and "
                "that LANGBATCH_STORE names it (postgresql://user:password@host:port/database)."
            ) from None

    def _connection(self) -> psycopg.Connection[Any]:
        """This thread's connection (a new one after a fork or when the last one broke)."""
        con = getattr(self._local, "con", None)
        if con is None or con.closed or getattr(self._local, "pid", None) != os.getpid():
            con = self._local.con = self._connect()
            self._local.pid = os.getpid()
        if not self._migrated:
            _migrate(con)
            self._migrated = True
        return con

    def _run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run ``work``, one statement (atomic by itself: the connection autocommits, so a call is one round
        trip, with no BEGIN / COMMIT around it); once more on a fresh connection if the old one had broken."""
        for attempt in (1, 2):
            con = self._connection()
            try:
                return work(con)
            except psycopg.OperationalError as exc:
                if con.closed and attempt == 1:
                    continue  # the server closed an idle connection (a restart): reconnect once
                raise StorageError(f"The store {self.where} failed: {_first_line(exc)}") from None
            except psycopg.Error as exc:
                raise StorageError(f"The store {self.where} failed: {_first_line(exc)}") from None
        raise AssertionError("unreachable")

    def _read_under_lock(self) -> dict[str, str]:
        """This thread's records read as their lock was taken, until loaded, saved or the lock released."""
        read = getattr(self._local, "read_under_lock", None)
        if read is None:
            read = self._local.read_under_lock = {}
        return read

    def _lock_connection(self) -> psycopg.Connection[Any]:
        with self._pool_lock:
            while self._idle_lock_connections:
                con = self._idle_lock_connections.pop()
                if not con.closed:
                    return con
        self._connection()  # migrated before the first lock
        return self._connect()

    def _release(self, con: psycopg.Connection[Any], batch_id: str | None) -> None:
        try:
            if batch_id is not None:
                con.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", [BATCH_LOCKS, batch_id])
        except psycopg.Error:
            con.close()  # closing the session releases its locks
            return
        with self._pool_lock:
            self._idle_lock_connections.append(con)


def _migrate(con: psycopg.Connection[Any]) -> None:
    with con.transaction():
        con.execute("SELECT pg_advisory_xact_lock(%s, %s)", MIGRATION_LOCK)
        con.execute(
            "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at DOUBLE PRECISION)"
        )
        done = {row[0] for row in con.execute("SELECT name FROM migrations").fetchall()}
        for migration in MIGRATIONS:
            if migration.__name__ not in done:
                migration(con)
                con.execute("INSERT INTO migrations VALUES (%s, %s)", [migration.__name__, time.time()])


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
