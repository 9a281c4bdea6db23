"""How a batch's requests become jobs at its provider and come back: submission, reconciliation, polling,
download, merge and the counts of the record.

    runner = JobRunner(state, provider=lambda: provider)
    with state.exclusive():                       # one start/retry/cancel at a time, across processes
        runner.plan_attempt(state.requests_path, attempt=1)
        runner.submit_pending(check_existing=False)

Every job is tagged with ``langbatch_batch_id``/``langbatch_attempt``/``langbatch_job`` in the provider's
metadata and recorded as ``submitting`` before it is created, so ``find_existing`` can adopt a job whose
create succeeded but whose record did not (a crash) instead of creating it twice. The runner changes
``state.record``; its callers hold the lock and write it.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langbatch_core import budgets
from langbatch_core.batch.rules import aggregate_status, is_retryable_failure
from langbatch_core.batch.state import BatchState
from langbatch_core.errors import ProviderError, ProviderNotFoundError
from langbatch_core.providers import Job, Provider
from langbatch_core.requests import request_ids, validate_file, write_job_files
from langbatch_core.results import Outcome, merge_results, read_outcomes
from langbatch_core.storage import JobRecord

RECONCILE_SLACK = 3600.0  # seconds of clock difference tolerated when looking for our jobs


class JobRunner:
    """The jobs of one batch at its provider (``provider()`` gives it, built on first use)."""

    def __init__(
        self, state: BatchState, provider: Callable[[], Provider], on_merged: Callable[[], None] | None = None
    ) -> None:
        self.state = state
        self._provider = provider
        self._on_merged = on_merged  # told after new results were merged (a table batch joins them)
        # (results.jsonl's identity, successes, API errors): the file's counts, read once per version of it
        self._merged: tuple[Any, int, int] | None = None

    @property
    def provider(self) -> Provider:
        return self._provider()

    # -- submission ---------------------------------------------------------------------------------------

    def plan_attempt(self, source: Path, attempt: int) -> None:
        """Split ``source`` into the attempt's jobs (``a<attempt>-j<n>``), recorded as ``submitting``."""
        state, provider = self.state, self.provider
        report = validate_file(
            source, endpoint=state.record.endpoint, limits=provider.limits, capabilities=provider.capabilities
        )
        report.raise_for_errors()
        staging = state.directory / "jobs" / f".staging-{attempt}"
        paths = write_job_files(source, report.jobs, staging)
        for index, (plan, path) in enumerate(zip(report.jobs, paths, strict=True), start=1):
            key = f"a{attempt}-j{index}"
            target = state.directory / "jobs" / key / "input.jsonl"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            state.record.jobs.append(
                JobRecord(
                    key=key,
                    attempt=attempt,
                    request_count=plan.request_count,
                    input_file=state.relative(target),
                )
            )
        shutil.rmtree(staging, ignore_errors=True)
        self.update_counts()
        state.write()

    def submit_pending(self, check_existing: bool) -> None:
        """Create every job still ``submitting`` (adopting those already at the provider, when asked)."""
        found = self.find_existing() if check_existing else {}
        for job in self.state.record.jobs:
            if job.status != "submitting":
                continue
            remote = found.get(job.key) or self._submit(job)
            self.record_submission(job, remote)
            self.update_counts()
            self.state.write()

    def _metadata(self, job: JobRecord) -> dict[str, str]:
        return {
            "langbatch_batch_id": self.state.id,
            "langbatch_attempt": str(job.attempt),
            "langbatch_job": job.key,
        }

    def _submit(self, job: JobRecord) -> Job:
        """Upload (once: the file's id is saved before the create, and reused after a crash) and create."""
        state, provider = self.state, self.provider
        path, metadata, endpoint = (
            state.directory / job.input_file,
            self._metadata(job),
            state.record.endpoint,
        )
        if job.input_file_id:
            try:
                return provider.create(job.input_file_id, endpoint, metadata)
            except ProviderNotFoundError:
                job.input_file_id = None  # the provider no longer has it (deleted, expired): upload again
        job.input_file_id = provider.upload(path, metadata)
        if job.input_file_id is None:  # a provider that uploads inside submit()
            return provider.submit(path, endpoint, metadata)
        state.write()
        return provider.create(job.input_file_id, endpoint, metadata)

    def find_existing(self) -> dict[str | None, Job]:
        """Our jobs already at the provider but recorded as ``submitting`` (a crash after create)."""
        waiting = self.state.interrupted()
        if not waiting:
            return {}
        since = min(job.created_at for job in waiting) - RECONCILE_SLACK
        jobs = self.provider.find({"langbatch_batch_id": self.state.id}, created_after=since)
        return {job.metadata.get("langbatch_job"): job for job in jobs}

    def record_submission(self, job: JobRecord, remote: Job) -> None:
        job.provider_job_id = remote.id
        self.update_job(job, remote)

    def update_job(self, job: JobRecord, remote: Job) -> None:
        job.status = remote.status
        job.request_counts = dict(remote.request_counts)
        job.errors = list(remote.errors)
        job.updated_at = time.time()

    # -- running jobs -------------------------------------------------------------------------------------

    def poll(self) -> None:
        """Adopt jobs created but not recorded, poll the running ones, download and merge finished ones."""
        found = self.find_existing()
        for job in self.state.interrupted():
            if job.key in found:
                self.record_submission(job, found[job.key])
        changed = False
        for job in self.state.record.jobs:
            if job.active and job.provider_job_id:
                self.update_job(job, self.provider.poll(job.provider_job_id))
            if not job.active and job.provider_job_id and not job.downloaded:
                self._download(job)
                changed = True
        merged = changed or bool(self.state.record.jobs and not self.state.results_path.exists())
        if merged:
            self._merge()
            self.state.record.cost_usd = budgets.actual_cost(self.state.record, self.state.results_path)
        self.update_counts()
        if merged and self._on_merged is not None:
            self._on_merged()

    def cancel(self) -> None:
        """Cancel every running job; one that never reached the provider is simply marked cancelled."""
        found = self.find_existing()
        for job in self.state.active_jobs():
            if job.status == "submitting" and job.key not in found:
                job.status = "cancelled"
                continue
            if job.status == "submitting":
                self.record_submission(job, found[job.key])
            self.update_job(job, self._cancel_job(job.provider_job_id or ""))

    def _cancel_job(self, job_id: str) -> Job:
        try:
            return self.provider.cancel(job_id)
        except ProviderError as exc:
            remote = self.provider.poll(job_id)
            if remote.terminal or remote.status == "cancelling":
                return remote  # it ended between our last poll and the cancel
            raise exc from None

    def _download(self, job: JobRecord) -> None:
        remote = self.provider.poll(job.provider_job_id or "")
        self.update_job(job, remote)
        output, error = self.provider.download(remote, self.state.directory / "jobs" / job.key)
        job.output_file = self.state.relative(output) if output else None
        job.error_file = self.state.relative(error) if error else None
        job.downloaded = True

    def _merge(self) -> None:
        directory, paths = self.state.directory, []
        for job in sorted(self.state.record.jobs, key=lambda j: (j.attempt, j.created_at)):
            paths += [directory / p for p in (job.output_file, job.error_file) if p]
        report = merge_results(paths, self.state.results_path)
        counts = report.counts
        self._merged = (
            _identity(self.state.results_path),
            counts.get("succeeded", 0),
            counts.get("failed", 0),
        )

    # -- counts and what to retry -------------------------------------------------------------------------

    def outcomes(self) -> dict[str | None, Outcome]:
        """custom_id -> outcome of its merged result (a typed decode: no dict per line)."""
        path = self.state.results_path
        return read_outcomes(path) if path.exists() else {}

    def _merged_counts(self) -> tuple[int, int]:
        """(successes, API errors) in results.jsonl, read again only when the file changed."""
        identity = _identity(self.state.results_path)
        if self._merged is None or self._merged[0] != identity:
            statuses = [outcome.status for outcome in self.outcomes().values()]
            self._merged = (identity, statuses.count("succeeded"), statuses.count("failed"))
        return self._merged[1], self._merged[2]

    def update_counts(self) -> None:
        """One vocabulary for a request's outcome: succeeded; failed (the API answered with an error);
        pending (in a running job); not run (expired, cancelled or lost: never answered)."""
        succeeded, failed = self._merged_counts()
        pending = 0
        for job in self.state.active_jobs():
            counts = job.request_counts
            succeeded += counts.get("completed", 0)
            failed += counts.get("failed", 0)
            pending += max(job.request_count - counts.get("completed", 0) - counts.get("failed", 0), 0)
        r = self.state.record
        r.succeeded, r.pending = succeeded, pending
        # a retried request is pending again while its earlier outcome is still in results.jsonl
        r.failed = min(failed, max(r.request_count - succeeded - pending, 0))
        r.not_run = max(r.request_count - succeeded - pending - r.failed, 0)
        r.status = aggregate_status(r.jobs, all_succeeded=succeeded == r.request_count)

    def ids_to_retry(self, include_client_errors: bool) -> set[str]:
        """custom_ids without a success worth submitting again (see ``Batch.retry``)."""
        outcomes = self.outcomes()
        return {
            custom_id
            for custom_id in request_ids(self.state.requests_path)
            if (outcome := outcomes.get(custom_id)) is None or _worth_retrying(outcome, include_client_errors)
        }

    def running_ids(self) -> set[str]:
        """custom_ids of the requests in running jobs."""
        running: set[str] = set()
        for job in self.state.active_jobs():
            running.update(request_ids(self.state.directory / job.input_file))
        return running


def _identity(path: Path) -> Any:
    """What changes when ``path`` is rewritten (merges replace the file), or None when there is none."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _worth_retrying(outcome: Outcome, include_client_errors: bool) -> bool:
    if outcome.status == "succeeded":
        return False
    return is_retryable_failure(outcome.status_code, outcome.code, include_client_errors)
