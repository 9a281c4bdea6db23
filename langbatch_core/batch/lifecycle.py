"""The lifecycle of a batch: create, start (split over limits), status, wait, cancel, retry, results.

    from langbatch_core import OpenAIChatCompletionBatch
    batch = OpenAIChatCompletionBatch("data.jsonl")      # validated; batch.id is "lb_<hex>"
    batch.start()                                       # one job per slice that fits the provider's limits
    batch.wait(callback=print)                          # polls until no job runs
    successful, unsuccessful = batch.get_results()
    batch.retry()                                       # only what has no success yet, as new jobs

Files live in ``<data dir>/batches/<id>/`` (``requests.jsonl``, ``jobs/<key>/``, ``results.jsonl``); the
record (``BatchRecord``) lives in the storage. Every job is tagged in the provider's metadata with
``langbatch_batch_id``, ``langbatch_attempt`` and ``langbatch_job`` and recorded as ``submitting`` before
it is created, so a crash between the provider's create and the local record is healed by ``find`` on the
next call. ``start``, ``retry`` and ``cancel`` hold ``<batch dir>/.lock``, so two processes never submit the
same requests twice.

A batch holds three parts: its ``BatchState`` (the record, its folder and lock, ``state.py``), a
``JobRunner`` (submission, polling, reconciliation, counts, ``jobs.py``) and a ``ResultsReader`` (what the
result files say, ``reader.py``); this class puts them in order under the lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from langbatch_core import budgets, team
from langbatch_core.batch.create import RequestLines, check_create_arguments
from langbatch_core.batch.jobs import JobRunner
from langbatch_core.batch.reader import ResultsReader
from langbatch_core.batch.state import BatchState
from langbatch_core.errors import (
    BatchNotFoundError,
    BatchStateError,
    ConfigurationError,
    InvalidRequestsError,
    StorageError,
)
from langbatch_core.providers import Connection, Job, Provider, provider_for
from langbatch_core.requests import (
    ValidationReport,
    iter_requests,
    pricing,
    validate_file,
    write_subset,
)
from langbatch_core.storage import (
    BatchRecord,
    BatchStorage,
    check_batch_id,
    default_storage,
    load_from_default_stores,
)

INTERRUPTED_GRACE = 120.0  # seconds a "submitting" job may belong to a start() running elsewhere

_log = logging.getLogger("langbatch.batch")


class Batch:
    """A batch of requests to one endpoint through one connection (see the module docstring).

    ``Batch(file, storage=None, connection=None, client=None, name=None)``: ``storage`` defaults to
    ``default_storage()`` (DuckDB, shared with the CLI and the dashboard), ``connection`` to
    ``Connection.openai()`` (``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``), or to what ``client`` (an
    ``openai.OpenAI`` / ``AzureOpenAI``) points at. ``owner`` (default ``team.current_user()``:
    ``$LANGBATCH_USER`` or the OS user) is recorded as the batch's owner; ``max_cost_usd`` is its own spend
    cap, checked at start() and retry() (BudgetExceededError), as are the owner's monthly caps
    (``langbatch_core.budgets``). ``actor`` (default: the current user) is who the audit log names for
    what this object does; ``team_settings`` (default ``team.settings()``) gives the caps and, where they
    restrict access (admins or an allowlist), the ownership rule: only the owner and admins start, retry,
    cancel, delete, save or read the results of a batch (NotOwnerError, audited as ``refused``); reading its
    status stays open. ``access`` (a ``team.Access``) replaces that rule (the dashboard's sign-in).
    """

    endpoint: ClassVar[str | None] = None
    default_model: ClassVar[str | None] = None
    _kinds: ClassVar[dict[str, type[Batch]]] = {}
    validation: ValidationReport | None  # the request file's report, when made from a file

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if "endpoint" in cls.__dict__ and cls.endpoint:  # a kind, not a provider's alias of one
            Batch._kinds[cls.endpoint] = cls

    def __init__(
        self,
        file: str | os.PathLike[str],
        *,
        storage: BatchStorage | None = None,
        connection: Connection | None = None,
        client: Any = None,
        name: str | None = None,
        owner: str | None = None,
        max_cost_usd: float | None = None,
    ) -> None:
        self._attach(storage, connection or _connection_of(client), client, actor=owner)
        batch_id = f"lb_{uuid.uuid4().hex}"
        report = self._validate_and_copy(file, self.storage.batch_dir(batch_id))
        endpoint = report.endpoint or self.endpoint or ""
        record = BatchRecord(
            id=batch_id,
            endpoint=endpoint,
            kind=_kind_for(endpoint, type(self)).__name__,
            name=name,
            model=report.model,
            connection=self.connection.to_dict(),
            request_count=report.request_count,
            pending=report.request_count,
            input_tokens=report.input_tokens,
            estimated_cost_usd=pricing.connection_cost(self.connection.kind, report.estimated_cost_usd),
            owner=self.actor,
            max_cost_usd=_cap(max_cost_usd),
        )
        self._hold(record)
        self.validation = report

    def _validate_and_copy(self, file: str | os.PathLike[str], directory: Path) -> ValidationReport:
        """Validates ``file`` while copying it to ``<directory>/requests.jsonl`` (one read); an invalid file
        leaves no directory and no copy behind (InvalidRequestsError)."""
        provider = self.provider
        try:
            directory.mkdir(parents=True, exist_ok=True)
            try:
                report = validate_file(
                    file,
                    endpoint=self.endpoint,
                    limits=provider.limits,
                    capabilities=provider.capabilities,
                    copy_to=directory / "requests.jsonl",
                )
                report.raise_for_errors()
            except (InvalidRequestsError, StorageError):
                with contextlib.suppress(OSError):
                    directory.rmdir()
                raise
        except OSError as exc:
            raise StorageError(
                f"Cannot write the batch's files in {directory} ({exc.strerror or exc}): point "
                "LANGBATCH_DATA_DIR (or the storage's data_dir) at a folder you can write to."
            ) from exc
        return report

    def _attach(
        self, storage: BatchStorage | None, connection: Connection, client: Any, actor: str | None = None
    ) -> None:
        self.storage = storage if storage is not None else default_storage()
        self.actor = actor or team.current_user()
        self.team_settings: team.TeamSettings | None = None
        self.access: team.Access | None = None
        self.connection = connection
        self._client = client
        self._provider: Provider | None = None
        self.validation = None

    def _hold(self, record: BatchRecord) -> None:
        """The batch's parts, around ``record``: its state, its job runner, its results reader."""
        self._state = BatchState(self.storage, record, actor=self.actor, access=self._access)
        self._jobs = JobRunner(self._state, provider=lambda: self.provider, on_merged=self._results_merged)
        self._results = ResultsReader(self._state, self._jobs, self._success_entry)

    def _team(self) -> team.TeamSettings:
        return self.team_settings or team.settings(self.storage.data_dir)

    def _access(self) -> team.Access:
        return self.access or self._team().access(self.actor)

    # -- construction -------------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        requests: Iterable[dict[str, Any] | str],
        *,
        model: str | None = None,
        request_kwargs: dict[str, Any] | None = None,
        **kw: Any,
    ) -> Batch:
        """A batch from request bodies (``{"messages": [...]}``), strings, or full request lines.

        Bodies get ``custom_id`` ``request-1``, ``request-2``, ...; a body without ``model`` gets ``model``,
        else the connection's model, else the class default; ``request_kwargs`` (e.g. ``{"max_tokens": 200}``)
        are added to every body that does not set them. Other keywords go to the constructor.

            batch = OpenAIChatCompletionBatch.create([{"messages": [...]}], model="gpt-4o", name="demo")
        """
        check_create_arguments(cls.__name__, requests, request_kwargs)
        connection = kw.get("connection") or _connection_of(kw.get("client"))
        default = model or connection.model or cls.default_model
        storage = kw.get("storage") or default_storage()
        tmp_dir = storage.data_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="create-", suffix=".jsonl", dir=tmp_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                lines = RequestLines(cls.__name__, cls.endpoint, cls._body_from_text, default, request_kwargs)
                lines.write(out, requests)
            return cls(tmp, **{**kw, "connection": connection, "storage": storage})
        except InvalidRequestsError as exc:
            message = str(exc).replace(tmp, "the requests given to create() (line N is item N)", 1)
            raise InvalidRequestsError(message, exc.issues, exc.report) from None
        finally:
            Path(tmp).unlink(missing_ok=True)

    @classmethod
    def _body_from_text(cls, text: str) -> dict[str, Any]:
        raise ConfigurationError(f"{cls.__name__}.create takes request bodies (dicts), not strings.")

    @classmethod
    def from_file(cls, file: str | os.PathLike[str], **kw: Any) -> Batch:
        """A batch of the kind its first request's url calls for (chat, embeddings, ...).

        batch = Batch.from_file("requests.jsonl", connection=Connection.local())
        """
        try:
            first = next(iter_requests(file), None)
        except InvalidRequestsError:
            first = None  # the constructor reports every issue
        url = first.get("url") if first else None
        return _kind_for(url, cls)(file, **kw)

    @classmethod
    def load(
        cls,
        batch_id: str,
        storage: BatchStorage | None = None,
        *,
        connection: Connection | None = None,
        client: Any = None,
        actor: str | None = None,
    ) -> Batch:
        """The batch saved under ``batch_id`` (BatchNotFoundError if the store does not have it).

        Without ``storage``: the default store, else the file store of the same data directory (batches
        saved by earlier versions). ``connection`` / ``client`` replace the stored connection (e.g. to pass
        a configured client again).
        """
        if storage is None:
            storage, record = load_from_default_stores(batch_id)
        else:
            record = storage.load(check_batch_id(batch_id))
        kind = _kind_for(record.endpoint, cls)
        if cls is not Batch and not issubclass(kind, cls):
            raise BatchStateError(
                f"Batch {batch_id} is of kind {record.kind} ({record.endpoint}); load it with "
                f"{record.kind}.load or Batch.load."
            )
        batch = kind.__new__(kind)
        stored = Connection.from_dict(record.connection)
        batch._attach(storage, connection or (_connection_of(client) if client else stored), client, actor)
        batch._hold(record)
        return batch

    # -- where things are ---------------------------------------------------------------------------------

    @property
    def record(self) -> BatchRecord:
        """The stored record (metadata, jobs, counts); replaced when a newer one is loaded."""
        return self._state.record

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def name(self) -> str | None:
        return self.record.name

    @property
    def directory(self) -> Path:
        """``<data dir>/batches/<id>``: requests.jsonl, jobs/, results.jsonl."""
        return self._state.directory

    @property
    def requests_path(self) -> Path:
        return self._state.requests_path

    @property
    def results_path(self) -> Path:
        return self._state.results_path

    @property
    def provider(self) -> Provider:
        if self._provider is None:
            self._provider = provider_for(
                self.connection, client=self._client, data_dir=self.storage.data_dir
            )
        return self._provider

    @property
    def started(self) -> bool:
        return bool(self.record.jobs)

    # -- lifecycle ----------------------------------------------------------------------------------------

    def save(self) -> None:
        """Write the record to the storage (start/refresh/retry/cancel save by themselves).

        If another process saved this batch since this object read it, its newer record is kept (and taken
        here, with this object's name): a save never puts back an older list of jobs.
        """
        self._state.check_access("save over")
        name = self.record.name
        with self._state.exclusive():
            self.record.name = name
            self._state.write()

    def start(self, max_cost_usd: float | None = None) -> None:
        """Submit the requests as jobs that fit the provider's limits.

        BatchStateError if already started; after an interrupted start (a crash, a provider error) it
        finishes the submission without duplicating jobs. ``max_cost_usd`` sets the batch's own cap;
        BudgetExceededError (nothing submitted) if the estimated cost would pass it or a monthly cap.
        """
        state, jobs = self._state, self._jobs
        state.check_access("start")
        with state.exclusive():
            if self.record.jobs:
                if state.interrupted():
                    jobs.submit_pending(check_existing=True)
                    return
                raise BatchStateError(
                    f"Batch {self.id} is already started ({self.record.status}). Use get_status(), wait(), "
                    "retry() or cancel()."
                )
            if max_cost_usd is not None:
                self.record.max_cost_usd = _cap(max_cost_usd)
            self._check_budget(self.record.estimated_cost_usd, f"Starting batch {self.id}")
            self.provider.check()  # a missing key fails here, before a job is recorded
            self.record.started_at = time.time()
            self.record.committed_usd += self.record.estimated_cost_usd or 0.0
            jobs.plan_attempt(self.requests_path, attempt=1)
            jobs.submit_pending(check_existing=False)
            state.audit("started", f"{self.record.request_count:,} requests")

    def _check_budget(self, adding: float | None, what: str) -> None:
        budgets.check(self.storage, self.record, adding, self._team(), what)

    def refresh(self) -> BatchRecord:
        """Poll the running jobs, download finished ones, merge results, update and save the record.

        Picks up what another process saved first; adopts jobs created but not recorded (a crash), but
        never submits: an interrupted start is finished by start() or retry(). While another process is
        changing the batch (a start uploading, a retry), it only reads what that process saved.
        """
        with self._state.exclusive(wait=False) as held:
            if not held:
                self._state.sync()
                return self.record
            if not self.record.jobs:
                return self.record
            self._jobs.poll()
            self._state.write()
        return self.record

    def get_status(self) -> str:
        """OpenAI's status aggregated over the jobs (``not_started`` before start()); refreshes the record."""
        return self.refresh().status

    def progress(self) -> dict[str, Any]:
        """Where the batch is, without a provider call: status, total, succeeded, failed (the API answered
        with an error), pending, not_run (expired, cancelled or lost), jobs, attempts."""
        r = self.record
        return {
            "batch_id": r.id,
            "status": r.status,
            "total": r.request_count,
            "succeeded": r.succeeded,
            "failed": r.failed,
            "pending": r.pending,
            "not_run": r.not_run,
            "jobs": len(r.jobs),
            "attempts": r.attempts,
        }

    def wait(
        self,
        poll_interval: float = 10.0,
        callback: Callable[[dict[str, Any]], None] | None = None,
        timeout: float | None = None,
    ) -> str:
        """Refresh until no job runs (or ``timeout`` seconds pass); ``callback(progress())`` after each poll.

        Returns the final status. BatchStateError if the batch was not started.
        """
        self._state.require_started()
        if poll_interval < 0 or (timeout is not None and timeout < 0):
            raise ConfigurationError("wait() needs poll_interval and timeout of 0 seconds or more.")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.refresh()
            if callback is not None:
                callback(self.progress())
            self._check_not_stuck()
            if not self._state.active_jobs() or (deadline is not None and time.monotonic() >= deadline):
                return self.record.status
            time.sleep(poll_interval)

    def _check_not_stuck(self) -> None:
        """BatchStateError if only interrupted submissions are left, old enough not to be another
        process's start still in progress."""
        active, interrupted = self._state.active_jobs(), self._state.interrupted()
        if not active or len(active) != len(interrupted):
            return
        if time.time() - max(job.created_at for job in interrupted) > INTERRUPTED_GRACE:
            keys = ", ".join(job.key for job in interrupted)
            raise BatchStateError(
                f"Batch {self.id}: the submission of job(s) {keys} was interrupted. Call start() (or "
                "`langbatch start <id>`) to finish it; jobs that reached the provider are not duplicated."
            )

    def raise_for_status(self) -> None:
        """Raise JobFailedError (with the provider's ``errors.data``) if a job of the latest attempt failed.

        batch.wait(); batch.raise_for_status()
        """
        latest = self.record.attempts
        for job in self.record.jobs:
            if job.attempt == latest and job.status == "failed":
                raise Job(id=job.provider_job_id or job.key, status=job.status, errors=job.errors).failure()

    def cancel(self) -> str:
        """Cancel every running job (finished results are kept; retry() can resubmit the rest)."""
        self._state.check_access("cancel")
        with self._state.exclusive():
            self._state.require_started()
            self._jobs.cancel()
            self._state.audit("cancelled")
            return self.get_status()

    def retry(self, include_client_errors: bool = False) -> int:
        """Submit, as new jobs, only the requests without a successful result; returns how many.

        Resubmitted: expired, cancelled, lost (their job failed), and failures worth retrying (429, 5xx,
        timeouts, token limits). Requests the API rejected as invalid (other 4xx) are kept as failures unless
        ``include_client_errors``. Successes and requests of still running jobs are never resubmitted. Call
        it as many times as needed; it returns 0 when there is nothing to retry.
        """
        state, jobs = self._state, self._jobs
        state.check_access("retry")
        with state.exclusive():
            self.refresh()  # polls with the lock held: what it saves is what we build on
            state.require_started()
            interrupted = state.interrupted()
            if interrupted:  # finish an interrupted submission first: that is the retry
                jobs.submit_pending(check_existing=True)
                return sum(job.request_count for job in interrupted)
            todo = jobs.ids_to_retry(include_client_errors) - jobs.running_ids()
            if not todo:
                return 0
            adding = budgets.share(self.record, len(todo))
            self._check_budget(adding, f"Retrying {len(todo):,} request(s) of batch {self.id}")
            self.provider.check()
            self.record.committed_usd += adding or 0.0
            attempt = self.record.attempts + 1
            subset = write_subset(
                self.requests_path, self.directory / "jobs" / f"retry-{attempt}.jsonl", todo
            )
            jobs.plan_attempt(subset, attempt)
            jobs.submit_pending(check_existing=False)
            state.audit("retried", f"{len(todo):,} requests, attempt {attempt}")
            return len(todo)

    def delete(self, force: bool = False) -> None:
        """Forget the batch and remove its files. Running jobs are not cancelled: BatchStateError unless
        ``force`` (cancel() first to stop them)."""
        self._state.check_access("delete")
        with self._state.exclusive():  # not while a start or retry of another process is submitting
            if self._state.active_jobs() and not force:
                raise BatchStateError(
                    f"Batch {self.id} has running jobs: cancel() it first (`langbatch cancel`), or "
                    "delete(force=True) (`langbatch delete --force`) to leave them running at the provider."
                )
            with contextlib.suppress(BatchNotFoundError):  # never saved: only files to remove
                self.storage.delete(self.id)
                self._state.audit("deleted", self.record.name or "")
            shutil.rmtree(self.directory, ignore_errors=True)

    # -- results ------------------------------------------------------------------------------------------

    def get_results(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """``(successful, unsuccessful)`` lists of dicts keyed by ``custom_id``.

        Successes carry what the kind gives (chat: ``content``, ``choices``, ``usage``, ``model``; embeddings:
        ``embedding``, ``embeddings``); failures ``status``, ``code``, ``message``, ``status_code``. Requests
        whose job ended without a result appear as failures with code ``missing``; running ones not at all.
        """
        self._state.check_access("read the results of")
        self._state.require_started()
        self.refresh()
        return self._results.split()

    def _results_merged(self) -> None:
        """Called after a poll merged new results into results.jsonl: the results table is built and kept
        now (``results.kept``), so that the first look at it is fast (a table batch joins its table)."""
        from langbatch_core.results.kept import keep_results_table

        try:
            keep_results_table(self._state.results_path, self._state.requests_path)
        except Exception as exc:  # the results are merged and saved: the table is built when asked for
            _log.warning("Batch %s: cannot keep its results table (%s).", self.id, exc)

    def _success_entry(self, custom_id: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """A success as ``get_results`` gives it; each kind adds its own fields."""
        return {
            "custom_id": custom_id,
            "model": body.get("model"),
            "usage": body.get("usage"),
            "response": body,
        }

    def get_results_file(self) -> Path:
        """The merged OpenAI result JSONL (latest result per custom_id over every job)."""
        self._state.check_access("read the results of")
        self._state.require_started()
        self.refresh()
        return self._results.results_file()

    def get_unsuccessful_requests(self) -> list[dict[str, Any]]:
        """The original request lines of every unsuccessful request (see get_results)."""
        _, unsuccessful = self.get_results()
        return self.get_requests_by_custom_ids([entry["custom_id"] for entry in unsuccessful])

    def get_requests_by_custom_ids(self, custom_ids: Iterable[str]) -> list[dict[str, Any]]:
        """The original request lines with these custom_ids, in file order (unknown ids are skipped; one id
        may be given as a string)."""
        self._state.check_access("read the requests of")
        return self._results.requests_by_ids(custom_ids)

    def results_table(self) -> Any:
        """The flat results table (pandas), one row per request in the request file's order, including
        ``missing`` ones (read from the copy kept when the results arrived)."""
        self._state.check_access("read the results of")
        return self._results.table()

    def error_counts(self) -> dict[str, int]:
        """How many requests failed with each error code, most frequent first (as stored: no refresh); see
        ``langbatch_core.results.errors_by_code``."""
        return self._results.error_counts()

    def export_results(self, path: str | os.PathLike[str], format: str | None = None) -> Path:
        """Write the results table as CSV, JSONL or Parquet (by ``format`` or the suffix)."""
        self._state.check_access("export the results of")
        return self._results.export(path, format=format)

    def __repr__(self) -> str:

        return f"<{type(self).__name__} {self.id} {self.record.status} {self.record.request_count} requests>"


def _kind_for(endpoint: Any, default: type[Batch]) -> type[Batch]:
    """The Batch subclass registered for ``endpoint`` (built-in kinds loaded first), else ``default``."""
    from langbatch_core import chat, embeddings  # noqa: F401  (importing them registers their kinds)

    return Batch._kinds.get(endpoint, default) if isinstance(endpoint, str) else default


def _cap(value: float | None) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or value < 0 or value != value:
        raise ConfigurationError(f"max_cost_usd must be an amount of US dollars ≥ 0, got {value!r}.")
    return float(value)


def _connection_of(client: Any) -> Connection:
    """The connection to record for a client object (its URL, no key), or the seed's default (OpenAI, or
    where ``OPENAI_BASE_URL`` points now: the jobs will live there whatever the variable says later)."""
    if client is None:
        return Connection.openai(base_url=os.environ.get("OPENAI_BASE_URL") or None)
    import openai

    if isinstance(client, openai.AzureOpenAI):
        return Connection("azure", base_url=str(client.base_url), api_key_env=None)
    return Connection("compatible", base_url=str(client.base_url))
