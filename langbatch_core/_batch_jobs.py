"""How a batch's requests become jobs at its provider and come back: the part of ``Batch`` that submits,
reconciles, downloads, merges and counts.

    with batch._exclusive():                        # one start/retry/cancel at a time, across processes
        batch._plan_attempt(batch.requests_path, attempt=1)
        batch._submit_pending(check_existing=False)

Every job is tagged with ``langbatch_batch_id``/``langbatch_attempt``/``langbatch_job`` in the provider's
metadata and recorded as ``submitting`` before it is created, so ``_find_existing`` can adopt a job whose
create succeeded but whose record did not (a crash) instead of creating it twice.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from langbatch_core import results as results_io
from langbatch_core._batch_rules import aggregate_status, is_retryable_failure
from langbatch_core.errors import BatchNotFoundError, BatchStateError, ProviderNotFoundError
from langbatch_core.requests import iter_requests, validate_file, write_job_files
from langbatch_core.storage import JobRecord

if TYPE_CHECKING:
    from langbatch_core.providers import Provider
    from langbatch_core.storage import BatchRecord, BatchStorage

RECONCILE_SLACK = 3600.0  # seconds of clock difference tolerated when looking for our jobs


class BatchJobs:
    """Mixed into ``Batch``: submission, reconciliation, download, merge and counts."""

    id: str
    record: BatchRecord
    storage: BatchStorage
    provider: Provider
    directory: Path
    requests_path: Path
    results_path: Path
    _merged_succeeded: int | None
    _merged_failed: int = 0  # API errors in results.jsonl, counted with _merged_succeeded

    _lock_depth: int = 0

    def _active_jobs(self) -> list[JobRecord]:
        return [job for job in self.record.jobs if job.active]

    def _check_not_deleted(self) -> None:
        if not self.requests_path.is_file():
            raise BatchStateError(
                f"Batch {self.id} was deleted ({self.requests_path} is gone): create or load another batch."
            )

    def _require_started(self) -> None:
        if not self.record.jobs:
            raise BatchStateError(
                f"Batch {self.id} is not started: call start() (`langbatch start {self.id}`) first, then "
                "wait()."
            )

    @contextlib.contextmanager
    def _exclusive(self, wait: bool = True) -> Iterator[bool]:
        """Hold the batch's lock (``storage.lock``: ``<batch dir>/.lock``, or the shared store's) while the
        record is read, changed and written, so that no two writers (processes or threads: the CLI, the
        dashboard, a script, a worker) interleave and one loses the other's jobs.

        Yields True once held, with the record reloaded from the store (the holder works on the latest);
        with ``wait=False`` yields False at once if another writer holds it. Re-entrant per batch object.
        """
        self._check_not_deleted()
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield True
            finally:
                self._lock_depth -= 1
            return
        with self.storage.lock(self.id, wait) as held:
            if not held:
                yield False
                return
            self._lock_depth = 1
            try:
                self._reload()
                yield True
            finally:
                self._lock_depth = 0

    def _reload(self) -> None:
        """Take the stored record, if there is one (the lock holder's view must be the latest)."""
        try:
            stored = self.storage.load(self.id)
        except BatchNotFoundError:
            return  # never saved: ours is the only one
        if stored.version != self.record.version or stored.updated_at != self.record.updated_at:
            self.record = stored
            self._merged_succeeded = None

    def _write(self) -> None:
        """Save the record; the caller holds the lock and worked on the latest stored record."""
        if not self._lock_depth:
            raise RuntimeError("a batch record is written only under the batch's lock")
        self.record.version += 1
        self.record.updated_at = time.time()
        self.storage.save(self.record)

    def _plan_attempt(self, source: Path, attempt: int) -> None:
        provider = self.provider
        report = validate_file(
            source, endpoint=self.record.endpoint, limits=provider.limits, capabilities=provider.capabilities
        )
        report.raise_for_errors()
        staging = self.directory / "jobs" / f".staging-{attempt}"
        paths = write_job_files(source, report.jobs, staging)
        for index, (plan, path) in enumerate(zip(report.jobs, paths, strict=True), start=1):
            key = f"a{attempt}-j{index}"
            target = self.directory / "jobs" / key / "input.jsonl"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            self.record.jobs.append(
                JobRecord(
                    key=key, attempt=attempt, request_count=plan.request_count, input_file=_rel(target, self)
                )
            )
        shutil.rmtree(staging, ignore_errors=True)
        self._update_counts()
        self._write()

    def _metadata(self, job: JobRecord) -> dict[str, str]:
        return {
            "langbatch_batch_id": self.id,
            "langbatch_attempt": str(job.attempt),
            "langbatch_job": job.key,
        }

    def _submit_pending(self, check_existing: bool) -> None:
        found = self._find_existing() if check_existing else {}
        for job in self.record.jobs:
            if job.status != "submitting":
                continue
            remote = found.get(job.key) or self._submit(job)
            self._record_submission(job, remote)
            self._update_counts()
            self._write()

    def _submit(self, job: JobRecord) -> Any:
        """Upload (once: the file's id is saved before the create, and reused after a crash) and create."""
        path, metadata = self.directory / job.input_file, self._metadata(job)
        if job.input_file_id:
            try:
                return self.provider.create(job.input_file_id, self.record.endpoint, metadata)
            except ProviderNotFoundError:
                job.input_file_id = None  # the provider no longer has it (deleted, expired): upload again
        job.input_file_id = self.provider.upload(path, metadata)
        if job.input_file_id is None:  # a provider that uploads inside submit()
            return self.provider.submit(path, self.record.endpoint, metadata)
        self._write()
        return self.provider.create(job.input_file_id, self.record.endpoint, metadata)

    def _find_existing(self) -> dict[str, Any]:
        """Our jobs already at the provider but recorded as ``submitting`` (a crash after create)."""
        waiting = [job for job in self.record.jobs if job.status == "submitting"]
        if not waiting:
            return {}
        since = min(job.created_at for job in waiting) - RECONCILE_SLACK
        jobs = self.provider.find({"langbatch_batch_id": self.id}, created_after=since)
        return {job.metadata.get("langbatch_job"): job for job in jobs}

    def _record_submission(self, job: JobRecord, remote: Any) -> None:
        job.provider_job_id = remote.id
        self._update_job(job, remote)

    def _update_job(self, job: JobRecord, remote: Any) -> None:
        job.status = remote.status
        job.request_counts = dict(remote.request_counts)
        job.errors = list(remote.errors)
        job.updated_at = time.time()

    def _download(self, job: JobRecord) -> None:
        remote = self.provider.poll(job.provider_job_id or "")
        self._update_job(job, remote)
        output, error = self.provider.download(remote, self.directory / "jobs" / job.key)
        job.output_file = _rel(output, self) if output else None
        job.error_file = _rel(error, self) if error else None
        job.downloaded = True

    def _merge(self) -> None:
        paths = []
        for job in sorted(self.record.jobs, key=lambda j: (j.attempt, j.created_at)):
            paths += [self.directory / p for p in (job.output_file, job.error_file) if p]
        report = results_io.merge_results(paths, self.results_path)
        self._merged_succeeded = report.counts.get("succeeded", 0)
        self._merged_failed = report.counts.get("failed", 0)

    def _outcomes(self) -> dict[str | None, results_io.Outcome]:
        if not self.results_path.exists():
            return {}
        return results_io.read_outcomes(self.results_path)

    def _update_counts(self) -> None:
        """One vocabulary for a request's outcome: succeeded; failed (the API answered with an error);
        pending (in a running job); not run (expired, cancelled or lost: never answered)."""
        if self._merged_succeeded is None:
            outcomes = [outcome.status for outcome in self._outcomes().values()]
            self._merged_succeeded = outcomes.count("succeeded")
            self._merged_failed = outcomes.count("failed")
        succeeded, failed, pending = self._merged_succeeded, self._merged_failed, 0
        for job in self._active_jobs():
            counts = job.request_counts
            succeeded += counts.get("completed", 0)
            failed += counts.get("failed", 0)
            pending += max(job.request_count - counts.get("completed", 0) - counts.get("failed", 0), 0)
        r = self.record
        r.succeeded, r.pending = succeeded, pending
        # a retried request is pending again while its earlier outcome is still in results.jsonl
        r.failed = min(failed, max(r.request_count - succeeded - pending, 0))
        r.not_run = max(r.request_count - succeeded - pending - r.failed, 0)
        r.status = aggregate_status(r.jobs, all_succeeded=succeeded == r.request_count)

    def _ids_to_retry(self, include_client_errors: bool) -> set[str]:
        outcomes = self._outcomes()
        todo = set()
        for request in iter_requests(self.requests_path):
            outcome = outcomes.get(request["custom_id"])
            if outcome is None or _worth_retrying(outcome, include_client_errors):
                todo.add(request["custom_id"])
        return todo

    def _running_ids(self) -> set[str]:
        running: set[str] = set()
        for job in self._active_jobs():
            running.update(r["custom_id"] for r in iter_requests(self.directory / job.input_file))
        return running


def _worth_retrying(outcome: results_io.Outcome, include_client_errors: bool) -> bool:
    if outcome.status == "succeeded":
        return False
    return is_retryable_failure(outcome.status_code, outcome.code, include_client_errors)


def _rel(path: Path, batch: BatchJobs) -> str:
    return path.relative_to(batch.directory).as_posix()


def write_request_subset(source: Path, target: Path, custom_ids: set[str]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for request in iter_requests(source):
                if request["custom_id"] in custom_ids:
                    out.write(orjson.dumps(request) + b"\n")
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
