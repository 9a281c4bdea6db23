"""What a store keeps about a batch, and the base class every store (files, DuckDB, yours) implements.

    from langbatch_core.storage import FileBatchStorage
    for record in FileBatchStorage().list():
        print(record.name, record.id, record.status, record.succeeded, record.failed, record.pending)

A store keeps ``BatchRecord``s (the batch's metadata and its jobs). The batch's *files* live in
``<data dir>/batches/<id>/`` whatever the store: ``requests.jsonl``,
``jobs/<job key>/{input,output,errors}.jsonl`` and the merged ``results.jsonl``. No record field ever
holds a secret: a connection names the environment variable that holds its key (``api_key_env``), never
the key.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import orjson

from langbatch_core import config
from langbatch_core.errors import BatchNotFoundError, StorageError

AUDIT_FILE = "audit.jsonl"  # the audit log of stores without a database of their own
try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock between processes
    fcntl = None  # type: ignore[assignment]

BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")

#: Job states that are not final (``submitting``: recorded locally, not yet known to be at the provider).
ACTIVE_JOB_STATUSES = frozenset({"submitting", "validating", "in_progress", "finalizing", "cancelling"})


def owner_key(owner: str) -> str:
    """How owners are compared: an e-mail or user name in any case (``lower(owner)`` in SQL)."""
    return owner.strip().lower()


def check_batch_id(batch_id: str) -> str:
    """Return ``batch_id`` if it is a safe id (letters, digits, ``_``, ``-``); raise StorageError if not."""
    if not isinstance(batch_id, str) or not BATCH_ID.match(batch_id):
        raise StorageError(
            f"Invalid batch id {batch_id!r}: ids are made of letters, digits, '_' and '-' "
            "(like 'lb_3f2a...'); copy it from `langbatch list`."
        )
    return batch_id


@dataclass
class JobRecord:
    """One submission of some of a batch's requests to a provider.

    Fields: ``key`` (local job id, also its folder ``jobs/<key>/``), ``attempt`` (1 for start(), 2+ for
    retries), ``provider_job_id`` (None until the provider has accepted it), ``status`` (``submitting`` or
    OpenAI's batch status), ``request_count``, ``request_counts`` (the provider's ``total/completed/failed``),
    ``errors`` (the provider's ``errors.data``), ``input_file``/``output_file``/``error_file`` (paths relative
    to the batch folder; output/error set once downloaded), ``input_file_id`` (the uploaded request file's id
    at the provider, recorded before the job is created), ``created_at``/``updated_at`` (epoch seconds).
    """

    key: str
    attempt: int
    request_count: int
    input_file: str
    status: str = "submitting"
    provider_job_id: str | None = None
    input_file_id: str | None = None
    request_counts: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    output_file: str | None = None
    error_file: str | None = None
    downloaded: bool = False
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_JOB_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class BatchRecord:
    """What a store keeps about one batch (JSON-serialisable, no secrets).

    Fields: ``id`` (``lb_<hex>``), ``name`` (a label, may be None), ``kind`` (the class, e.g.
    ``"OpenAIChatCompletionBatch"``), ``endpoint`` (e.g. ``/v1/chat/completions``), ``model`` (of the
    requests), ``connection`` (``Connection.to_dict()``: kind, base_url, api_key_env, model, ...),
    ``status`` (``not_started`` or OpenAI's vocabulary aggregated over the jobs), ``request_count``,
    ``succeeded`` / ``failed`` / ``pending`` / ``not_run`` (requests: failed means the API answered with an
    error; not run means expired, cancelled or lost, never answered),
    ``input_tokens`` and ``estimated_cost_usd`` (from validation; cost None for unknown models),
    ``created_at`` / ``updated_at`` (epoch seconds), ``jobs`` (list of ``JobRecord``), ``version`` (+1 at
    each save by the batch, which saves only under its lock and on the latest stored version),
    ``advanced_at`` / ``advanced_by`` (when a ``langbatch worker`` last refreshed it, and the worker's name),
    ``notified`` (the notifications a worker sent about it: ``finished``, ``failures``).
    Team fields: ``owner`` (who created it: the dashboard's signed-in e-mail, else ``$LANGBATCH_USER`` or the
    OS user; None for batches made before owners were recorded), ``max_cost_usd`` (the batch's own cap),
    ``started_at`` (first start), ``committed_usd`` (estimated cost of what was submitted: start + retries),
    ``cost_usd`` (actual cost from the results' usage, once results arrive).
    """

    id: str
    endpoint: str
    kind: str = "Batch"
    name: str | None = None
    model: str | None = None
    connection: dict[str, Any] = field(default_factory=dict)
    status: str = "not_started"
    request_count: int = 0
    succeeded: int = 0
    failed: int = 0
    pending: int = 0
    not_run: int = 0
    input_tokens: int = 0
    estimated_cost_usd: float | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    jobs: list[JobRecord] = field(default_factory=list)
    version: int = 0
    owner: str | None = None
    max_cost_usd: float | None = None
    started_at: float | None = None
    committed_usd: float = 0.0
    cost_usd: float | None = None
    advanced_at: float | None = None
    advanced_by: str | None = None
    notified: list[str] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        """How many times requests were submitted (1 after start(), +1 per retry)."""
        return max((job.attempt for job in self.jobs), default=0)

    def summary(self) -> dict[str, Any]:
        """A flat dict for tables: the fields above but ``jobs`` (a count) and ``connection``, plus
        ``connection_kind``, ``connection_name`` and ``attempts``."""
        row = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("jobs", "connection", "notified")
        }
        row["connection_kind"] = self.connection.get("kind")
        row["connection_name"] = self.connection.get("name") or self.connection.get("kind")
        row["jobs"] = len(self.jobs)
        row["attempts"] = self.attempts
        return row

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["jobs"] = [job.to_dict() for job in self.jobs]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchRecord:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["jobs"] = [JobRecord.from_dict(job) for job in data.get("jobs") or []]
        return cls(**values)


@dataclass(frozen=True)
class BatchSummary:
    """One row of a listing (the Batches table, ``langbatch list``): a record's figures without its jobs,
    cheap to read for thousands of batches. ``connection`` is the connection's name, else its kind;
    ``start_interrupted``: the batch's jobs were recorded but none reached the provider (nothing runs)."""

    id: str
    name: str | None = None
    status: str = "not_started"
    model: str | None = None
    connection: str | None = None
    owner: str | None = None
    request_count: int = 0
    succeeded: int = 0
    failed: int = 0
    pending: int = 0
    not_run: int = 0
    estimated_cost_usd: float | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    advanced_at: float | None = None
    advanced_by: str | None = None
    start_interrupted: bool = False

    @classmethod
    def of(cls, record: BatchRecord) -> BatchSummary:
        """The summary of a whole record."""
        values = {f.name: getattr(record, f.name) for f in fields(cls) if hasattr(record, f.name)}
        values["connection"] = record.connection.get("name") or record.connection.get("kind")
        values["start_interrupted"] = start_interrupted(record.jobs)
        return cls(**values)


_SUMMARY_FIELDS = [field.name for field in dataclasses.fields(BatchSummary)]


def start_interrupted(jobs: builtins.list[JobRecord]) -> bool:
    """Jobs were recorded to run but none was handed to the provider (a start that failed or stopped)."""
    running = [job for job in jobs if job.active]
    return bool(running) and all(job.status == "submitting" and not job.provider_job_id for job in running)


def summaries_query(placeholder: str, connection_name: str, advanced: str, owner: bool, limit: bool) -> str:
    """The SELECT of a SQL store's ``summaries()``: the summary columns of ``batches`` (``connection_name``
    and ``advanced`` are the store's expressions of those), ``start_interrupted`` from ``jobs``."""
    active = ", ".join(f"'{status}'" for status in sorted(ACTIVE_JOB_STATUSES))
    jobs = f"SELECT 1 FROM jobs j WHERE j.batch_id = b.id AND j.status IN ({active})"
    submitted = "AND (j.status <> 'submitting' OR j.provider_job_id IS NOT NULL)"
    return (
        f"SELECT id, name, status, model, {connection_name}, owner, request_count, succeeded, failed, "
        f"pending, not_run, estimated_cost_usd, created_at, updated_at, {advanced}, "
        f"EXISTS ({jobs}) AND NOT EXISTS ({jobs} {submitted}) FROM batches b"
        + (f" WHERE lower(owner) = {placeholder}" if owner else "")
        + " ORDER BY created_at DESC"
        + (f" LIMIT {placeholder}" if limit else "")
    )


def summary_of_row(row: tuple[Any, ...]) -> BatchSummary:
    """A ``BatchSummary`` of a row of ``summaries_query`` (its columns are the summary's fields, in order)."""
    values = dict(zip(_SUMMARY_FIELDS, row, strict=True))
    for count in ("request_count", "succeeded", "failed", "pending", "not_run"):
        values[count] = values[count] or 0
    values["start_interrupted"] = bool(values["start_interrupted"])
    return BatchSummary(**values)


class BatchStorage(ABC):
    """A place that keeps batch records. Subclass it and implement save, load, list and delete.

        class MyStorage(BatchStorage):
            def save(self, record): ...       # record: BatchRecord (use record.to_dict() for JSON)
            def load(self, batch_id): ...     # -> BatchRecord; unknown id -> BatchNotFoundError
            def list(self, owner=None): ...   # -> list[BatchRecord], newest first (only owner's, any case)
            def delete(self, batch_id): ...

    ``summaries(owner=None, limit=None)`` (the listing of the Batches page and ``langbatch list``) is built
    from ``list()`` unless a store reads the few columns it needs more cheaply (DuckDB, PostgreSQL).

    The audit log (``langbatch_core.audit``) goes through ``append_audit`` / ``read_audit``: by default a
    JSONL file ``<data_dir>/audit.jsonl``; a store with a database of its own overrides both.

    The batch's files stay in ``<data_dir>/batches/<id>/``; ``data_dir`` defaults to ``LANGBATCH_DATA_DIR``
    (``~/.langbatch``) for subclasses that do not call ``super().__init__(data_dir)``.
    """

    #: Several ``langbatch worker`` processes may share this store (it leases batches to them).
    shared_by_workers = False

    def __init__(self, data_dir: str | Path | None = None) -> None:
        self._data_dir = Path(data_dir).expanduser() if data_dir is not None else None

    @property
    def data_dir(self) -> Path:
        """The data directory whose ``batches/`` folder holds the batches' files."""
        path = getattr(self, "_data_dir", None)
        return config.ensure_data_dir(path, f"given to {type(self).__name__}") if path else config.data_dir()

    def batch_dir(self, batch_id: str) -> Path:
        """``<data_dir>/batches/<id>`` (the id is checked: no path tricks)."""
        return self.data_dir / "batches" / check_batch_id(batch_id)

    @abstractmethod
    def save(self, record: BatchRecord) -> None:
        """Insert or replace the record of ``record.id``."""

    @abstractmethod
    def load(self, batch_id: str) -> BatchRecord:
        """The record of ``batch_id``; raise BatchNotFoundError if there is none."""

    @abstractmethod
    def list(self, owner: str | None = None) -> list[BatchRecord]:
        """Every record, newest first; with ``owner``, only the records of that owner (``owner_key``: in any
        case)."""

    @abstractmethod
    def delete(self, batch_id: str) -> None:
        """Forget ``batch_id`` (unknown ids: BatchNotFoundError)."""

    def summaries(self, owner: str | None = None, limit: int | None = None) -> builtins.list[BatchSummary]:
        """A ``BatchSummary`` of every batch (only ``owner``'s if given), newest first, at most ``limit``."""
        records = self.list() if owner is None else self.list(owner=owner)
        return [BatchSummary.of(record) for record in records[:limit]]

    def append_audit(self, event: dict[str, Any]) -> None:
        """Add one audit event (``at``, ``actor``, ``action``, ``batch_id``, ``detail``) to the log."""
        line = orjson.dumps(event) + b"\n"
        path = self.data_dir / AUDIT_FILE
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line)  # one write with O_APPEND: concurrent writers never interleave a line
            finally:
                os.close(fd)
        except OSError as exc:
            raise StorageError(f"Cannot write the audit log {path}: {exc.strerror or exc}.") from exc

    def read_audit(self) -> builtins.list[dict[str, Any]]:
        """Every audit event, oldest first."""
        path = self.data_dir / AUDIT_FILE
        try:
            lines = path.read_bytes().splitlines() if path.exists() else []
        except OSError as exc:
            raise StorageError(f"Cannot read the audit log {path}: {exc.strerror or exc}.") from exc
        events = []
        for number, line in enumerate(lines, start=1):
            try:
                events.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise StorageError(f"The audit log {path} line {number} is not JSON ({exc}).") from exc
        return events

    @contextlib.contextmanager
    def lock(self, batch_id: str, wait: bool = True) -> Iterator[bool]:
        """Hold the lock of one batch (its writers take turns); yields False at once when ``wait`` is False
        and another writer holds it. This one is ``<batch dir>/.lock`` (processes of one machine); a store
        shared by machines (PostgreSQL) overrides it with a lock they all see."""
        with open(self.batch_dir(batch_id) / ".lock", "a+b") as handle:
            yield _flock(handle, wait)  # closing the file releases the lock

    def active_batch_ids(self, worker: str, limit: int, lease_seconds: float) -> builtins.list[str]:
        """Ids of the batches ``worker`` should advance now (oldest advance first): those with running jobs,
        and those that finished by someone else's refresh since a worker last saw them (``awaits_worker``).

        This one gives them all (one worker per store); a store shared by several workers (PostgreSQL)
        leases each batch to one worker for ``lease_seconds``."""
        now = time.time()
        records = [r for r in self.list() if awaits_worker(r, now)]
        records.sort(key=lambda r: r.advanced_at or 0.0)
        return [r.id for r in records[:limit]]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(data_dir={str(self.data_dir)!r})"


#: How long after it finished a batch that no worker saw finish is still handed to one (its auto-retry and
#: notification): a worker started on an old store leaves its history alone.
CATCH_UP_SECONDS = 86_400.0


def awaits_worker(record: BatchRecord, now: float) -> bool:
    """Whether a worker should advance ``record``: it has running jobs, or it was started and written since a
    worker last advanced it (a dashboard or CLI refresh finished it), within ``CATCH_UP_SECONDS``."""
    if any(job.active for job in record.jobs):
        return True
    changed_since_worker = record.updated_at > (record.advanced_at or 0.0)
    return bool(record.jobs) and changed_since_worker and record.updated_at > now - CATCH_UP_SECONDS


def _flock(handle: Any, wait: bool) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def not_found(batch_id: str, where: str, elsewhere: str = "") -> BatchNotFoundError:
    """The BatchNotFoundError for ``batch_id`` in a store described by ``where``; ``elsewhere`` says which
    other store may have it."""
    return BatchNotFoundError(
        f"No batch {batch_id!r} in {where}. Run `langbatch list` to see the stored batches, "
        f"or check that you are using the same store and LANGBATCH_DATA_DIR as when it was saved.{elsewhere}"
    )
