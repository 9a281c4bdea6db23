"""The default store: one DuckDB file shared by Python, the CLI and the dashboard.

    from langbatch_core import DuckDBBatchStorage
    storage = DuckDBBatchStorage()          # <LANGBATCH_DATA_DIR or ~/.langbatch>/langbatch.duckdb

Tables ``batches`` (one row per batch: the summary columns + the whole record as JSON) and ``jobs`` (one row
per job), created and changed by named migrations (``m001_initial``, ...) recorded in ``migrations``.
DuckDB lets one process at a time open a file read-write, so every call opens a short connection, does its
work in one transaction and closes it, retrying for a while when another process holds the lock.
"""

from __future__ import annotations

import builtins
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import orjson

from langbatch_core.config import DATA_DIR_ENV
from langbatch_core.errors import StorageError
from langbatch_core.storage.base import (
    BatchRecord,
    BatchStorage,
    BatchSummary,
    check_batch_id,
    not_found,
    owner_key,
    summaries_query,
    summary_of_row,
)

DB_FILE = "langbatch.duckdb"
FILE_STORE_HINT = (
    " Batches saved with storage=FileBatchStorage(), or from Python by earlier versions, are in the file "
    "store (`langbatch --store files list`)."
)
T = TypeVar("T")


def m001_initial(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """CREATE TABLE batches (
            id VARCHAR PRIMARY KEY, name VARCHAR, kind VARCHAR, endpoint VARCHAR, model VARCHAR,
            connection_kind VARCHAR, status VARCHAR, request_count BIGINT, succeeded BIGINT, failed BIGINT,
            pending BIGINT, estimated_cost_usd DOUBLE, created_at DOUBLE, updated_at DOUBLE, record JSON)"""
    )
    con.execute(
        """CREATE TABLE jobs (
            batch_id VARCHAR, key VARCHAR, attempt INTEGER, provider_job_id VARCHAR, status VARCHAR,
            request_count BIGINT, created_at DOUBLE, updated_at DOUBLE, PRIMARY KEY (batch_id, key))"""
    )


def m002_created_at_index(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE INDEX batches_created_at ON batches (created_at)")


def m003_not_run(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("ALTER TABLE batches ADD COLUMN not_run BIGINT DEFAULT 0")


def m004_owner(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("ALTER TABLE batches ADD COLUMN owner VARCHAR")
    con.execute("UPDATE batches SET owner = json_extract_string(record, '$.owner')")
    con.execute("CREATE INDEX batches_owner ON batches (owner)")


def m005_audit(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """CREATE TABLE audit (
            occurred_at DOUBLE, actor VARCHAR, action VARCHAR, batch_id VARCHAR, detail VARCHAR)"""
    )
    con.execute("CREATE INDEX audit_occurred_at ON audit (occurred_at)")


MIGRATIONS: list[Callable[[duckdb.DuckDBPyConnection], None]] = [
    m001_initial,
    m002_created_at_index,
    m003_not_run,
    m004_owner,
    m005_audit,
]

_BATCH_COLUMNS = (
    "id, name, kind, endpoint, model, connection_kind, status, request_count, succeeded, failed, pending, "
    "not_run, estimated_cost_usd, created_at, updated_at, owner, record"
)
_AUDIT_FIELDS = ("at", "actor", "action", "batch_id", "detail")  # the event's keys, in the table's order


class DuckDBBatchStorage(BatchStorage):
    """Keeps records in ``<data_dir>/langbatch.duckdb`` (or ``path``); safe to share between processes.

    ``lock_timeout`` is how long a call waits for another process to release the file.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        data_dir: str | Path | None = None,
        lock_timeout: float = 30.0,
    ) -> None:
        if path is not None and data_dir is None:
            data_dir = Path(path).expanduser().parent
        super().__init__(data_dir)
        self.path = Path(path).expanduser() if path is not None else self.data_dir / DB_FILE
        self.lock_timeout = lock_timeout
        self._migrated = False
        self._lock = threading.Lock()

    def save(self, record: BatchRecord) -> None:
        check_batch_id(record.id)
        row = (
            record.id, record.name, record.kind, record.endpoint, record.model,
            record.connection.get("kind"), record.status, record.request_count, record.succeeded,
            record.failed, record.pending, record.not_run, record.estimated_cost_usd, record.created_at,
            record.updated_at, record.owner,
            orjson.dumps(record.to_dict()).decode(),
        )  # fmt: skip
        jobs = [
            (
                record.id,
                j.key,
                j.attempt,
                j.provider_job_id,
                j.status,
                j.request_count,
                j.created_at,
                j.updated_at,
            )
            for j in record.jobs
        ]

        def work(con: duckdb.DuckDBPyConnection) -> None:
            con.execute("DELETE FROM jobs WHERE batch_id = ?", [record.id])
            con.execute("DELETE FROM batches WHERE id = ?", [record.id])
            con.execute(f"INSERT INTO batches ({_BATCH_COLUMNS}) VALUES ({', '.join('?' * 17)})", row)
            if jobs:
                con.executemany("INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", jobs)

        self._run(work)

    def load(self, batch_id: str) -> BatchRecord:
        check_batch_id(batch_id)
        row = self._run(
            lambda con: con.execute("SELECT record FROM batches WHERE id = ?", [batch_id]).fetchone()
        )
        if row is None:
            raise not_found(batch_id, f"the DuckDB store {self.path}", FILE_STORE_HINT)
        return BatchRecord.from_dict(orjson.loads(row[0]))

    def list(self, owner: str | None = None) -> list[BatchRecord]:
        where, params = ("WHERE lower(owner) = ?", [owner_key(owner)]) if owner is not None else ("", [])
        query = f"SELECT record FROM batches {where} ORDER BY created_at DESC"
        rows = self._run(lambda con: con.execute(query, params).fetchall())
        return [BatchRecord.from_dict(orjson.loads(row[0])) for row in rows]

    def summaries(self, owner: str | None = None, limit: int | None = None) -> builtins.list[BatchSummary]:
        """The listing's columns only (the few the table lacks are read from the record's JSON in SQL)."""
        name = "COALESCE(NULLIF(json_extract_string(record, '$.connection.name'), ''), connection_kind)"
        advanced = (
            "TRY_CAST(json_extract_string(record, '$.advanced_at') AS DOUBLE), "
            "json_extract_string(record, '$.advanced_by')"
        )
        query = summaries_query("?", name, advanced, owner is not None, limit is not None)
        params = [value for value in (owner and owner_key(owner), limit) if value is not None]
        rows = self._run(lambda con: con.execute(query, params).fetchall())
        return [summary_of_row(row) for row in rows]

    def delete(self, batch_id: str) -> None:
        check_batch_id(batch_id)

        def work(con: duckdb.DuckDBPyConnection) -> bool:
            found = con.execute("SELECT count(*) FROM batches WHERE id = ?", [batch_id]).fetchone()
            con.execute("DELETE FROM jobs WHERE batch_id = ?", [batch_id])
            con.execute("DELETE FROM batches WHERE id = ?", [batch_id])
            return bool(found and found[0])

        if not self._run(work):
            raise not_found(batch_id, f"the DuckDB store {self.path}", FILE_STORE_HINT)

    def append_audit(self, event: dict[str, Any]) -> None:
        row = [event.get(key) for key in _AUDIT_FIELDS]
        self._run(lambda con: con.execute(f"INSERT INTO audit VALUES ({', '.join('?' * 5)})", row))

    def read_audit(self) -> builtins.list[dict[str, Any]]:
        query = "SELECT occurred_at, actor, action, batch_id, detail FROM audit ORDER BY occurred_at"
        rows = self._run(lambda con: con.execute(query).fetchall())
        return [dict(zip(_AUDIT_FIELDS, row, strict=True)) for row in rows]

    def applied_migrations(self) -> builtins.list[str]:  # `list` in here is the method
        """Names of the migrations applied to this file, in order."""
        rows = self._run(
            lambda con: con.execute("SELECT name FROM migrations ORDER BY applied_at").fetchall()
        )
        return [row[0] for row in rows]

    # -- connections --------------------------------------------------------------------------------------

    def _run(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run ``work`` in one transaction on a short connection (migrating the file on first use)."""
        with self._connect() as con:
            if not self._migrated:
                _migrate(con)
                self._migrated = True
            con.execute("BEGIN TRANSACTION")
            try:
                result = work(con)
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
            return result

    @contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.01
        with self._lock:  # one connection per store object at a time; other processes: retry on the lock
            while True:
                try:
                    con = duckdb.connect(str(self.path))
                    break
                except duckdb.IOException as exc:
                    if "lock" not in str(exc).lower():
                        raise StorageError(
                            f"Cannot open the DuckDB store {self.path} ({exc}). If it is not a LangBatch "
                            f"store, move it aside, or point {DATA_DIR_ENV} (or --data-dir) elsewhere."
                        ) from exc
                    if time.monotonic() > deadline:
                        raise StorageError(_lock_message(self.path, exc)) from exc
                    time.sleep(delay * (1 + random.random()))
                    delay = min(delay * 2, 0.2)
                except duckdb.Error as exc:
                    raise StorageError(f"Cannot open the DuckDB store {self.path}: {exc}") from exc
            try:
                yield con
            except duckdb.Error as exc:
                raise StorageError(f"The DuckDB store {self.path} failed: {exc}") from exc
            finally:
                con.close()


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE IF NOT EXISTS migrations (name VARCHAR PRIMARY KEY, applied_at DOUBLE)")
    done = {row[0] for row in con.execute("SELECT name FROM migrations").fetchall()}
    for migration in MIGRATIONS:
        if migration.__name__ in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            migration(con)
            con.execute("INSERT INTO migrations VALUES (?, ?)", [migration.__name__, time.time()])
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")


def _lock_message(path: Path, exc: Exception) -> str:
    return (
        f"The DuckDB store {path} is held by another process ({exc}). Close the other LangBatch process "
        "(a dashboard, a CLI command, a notebook) or try again."
    )
