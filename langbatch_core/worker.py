"""``langbatch worker``: advances every running batch without a browser.

    from langbatch_core.worker import Worker, RetryPolicy, Notifier
    worker = Worker(retry=RetryPolicy(retry_on=("server_error", "expired"), max_attempts=3),
                    notifier=Notifier(webhook_url="https://hooks.example.com/langbatch"))
    worker.run()                     # every poll_interval: refresh, download, retry, notify; Ctrl-C stops
    worker.run_once()                # one cycle -> CycleReport

A cycle takes from the store the running batches and those a dashboard or CLI refresh finished since a worker
last saw them, so they still get the auto-retry and the notice (``storage.active_batch_ids``: with PostgreSQL
each is leased to one worker, so several workers share the work; an embedded store, DuckDB or files, has one
worker, which holds ``<data dir>/worker.lock``). Each batch is advanced under its lock, skipped if another
writer (a dashboard, a CLI, another worker) holds it: its jobs are polled, finished ones downloaded and
merged, an auto-retry submitted when the policy says so, notifications sent, and ``advanced_at`` /
``advanced_by`` recorded. The record is written last, so a worker killed at any point loses nothing: the next
cycle (of any worker, once the lease runs out) does the step again; a notification may then be sent twice,
never lost.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from langbatch_core import team
from langbatch_core.errors import ConfigurationError, LangBatchError
from langbatch_core.notify import Notifier
from langbatch_core.storage import BatchStorage, default_storage

log = logging.getLogger("langbatch.worker")

#: Why requests may be retried automatically (``RetryPolicy.retry_on``).
RETRY_REASONS = ("server_error", "rate_limit", "expired", "cancelled")
_REASON_OF_CODE = {
    "batch_expired": "expired",
    "batch_cancelled": "cancelled",
    "rate_limit_exceeded": "rate_limit",
    "server_error": "server_error",
    "internal_error": "server_error",
    "timeout": "server_error",
}

LEASE_CHUNK = 20  # batches a worker leases at once from a shared store
# batches a worker on a shared store advances side by side: each mostly waits on the provider and the store,
# and one after another a cycle over a few dozen running batches outlasted the poll interval
ADVANCE_THREADS = 8
LOCK_PATIENCE = 1.0  # seconds a worker waits for a batch's lock held elsewhere (at most a quarter interval)

__all__ = ["RETRY_REASONS", "CycleReport", "Notifier", "RetryPolicy", "Worker"]


@dataclass(frozen=True)
class RetryPolicy:
    """Retry a finished batch by itself when some request failed for one of ``retry_on`` (see
    ``RETRY_REASONS``), until ``max_attempts`` submissions. ``RetryPolicy(retry_on=("expired",))``"""

    retry_on: tuple[str, ...] = ("server_error", "expired")
    max_attempts: int = 3

    def __post_init__(self) -> None:
        unknown = sorted(set(self.retry_on) - set(RETRY_REASONS))
        if unknown:
            raise ConfigurationError(
                f"Unknown retry reason(s) {', '.join(unknown)}: choose from {', '.join(RETRY_REASONS)}.",
                field="retry_on",
            )
        if self.max_attempts < 1:
            raise ConfigurationError("max_attempts must be 1 or more.", field="max_attempts")


@dataclass
class CycleReport:
    """What one cycle did: batch ids ``advanced``, ``skipped`` (another writer held them), ``finished``,
    ``retried``, and ``errors`` ({batch id: message})."""

    advanced: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{len(self.advanced)} advanced, {len(self.finished)} finished, {len(self.retried)} retried, "
            f"{len(self.skipped)} busy elsewhere, {len(self.errors)} errors ({self.seconds:.1f} s)"
        )


class Worker:
    """Advances the running batches of ``storage`` (default: ``default_storage()``) every
    ``poll_interval`` seconds; ``name`` (default ``<host>:<pid>``) is recorded on each batch it advances;
    ``batch_limit`` caps the batches of one cycle."""

    def __init__(
        self,
        storage: BatchStorage | None = None,
        *,
        name: str | None = None,
        poll_interval: float = 10.0,
        retry: RetryPolicy | None = None,
        notifier: Notifier | None = None,
        batch_limit: int = 1000,
    ) -> None:
        self.storage = storage if storage is not None else default_storage()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.poll_interval = poll_interval
        self.retry = retry
        self.notifier = notifier or Notifier()
        self.batch_limit = batch_limit
        self._providers: dict[bytes, Any] = {}  # one provider (and HTTP client) per connection, reused

    def run(self, stop: threading.Event | None = None, cycles: int | None = None) -> None:
        """Cycle until ``stop`` is set (or ``cycles`` ran); ConfigurationError if the store is embedded and
        another worker runs on it."""
        stop = stop or threading.Event()
        with self._sole_worker():
            load_batch_code()
            done = 0
            while not stop.is_set() and (cycles is None or done < cycles):
                started = time.monotonic()
                report = self.run_once()
                log.info("%s: %s", self.name, report.summary())
                done += 1
                stop.wait(max(self.poll_interval - (time.monotonic() - started), 0.0))

    def run_once(self) -> CycleReport:
        """Advance every running batch once (those another writer holds are skipped)."""
        started = time.monotonic()
        report = CycleReport()
        seen: set[str] = set()
        # an embedded store (one worker, DuckDB's connection) is advanced from this thread, one by one
        side_by_side = ADVANCE_THREADS if self.storage.shared_by_workers else 0
        with ThreadPoolExecutor(side_by_side) if side_by_side else contextlib.nullcontext() as pool:
            while len(seen) < self.batch_limit:
                chunk = [i for i in self._lease(self.batch_limit - len(seen)) if i not in seen]
                if not chunk:
                    break  # none left, or only those this cycle advanced (their lease ran out meanwhile)
                seen.update(chunk)
                advance = functools.partial(self._advance_or_report, report=report)
                for _ in pool.map(advance, chunk) if pool else map(advance, chunk):
                    pass
        report.seconds = time.monotonic() - started
        return report

    def _advance_or_report(self, batch_id: str, report: CycleReport) -> None:
        try:
            self.advance(batch_id, report)
        except LangBatchError as exc:
            report.errors[batch_id] = str(exc)
            log.warning("%s: batch %s: %s", self.name, batch_id, exc)

    def _lease(self, most: int) -> list[str]:
        """The next running batches to advance. A shared store leases a few at a time, just before they are
        advanced, so that workers split a cycle's work between them as they go."""
        chunk = min(LEASE_CHUNK, most) if self.storage.shared_by_workers else most
        return self.storage.active_batch_ids(self.name, chunk, max(self.poll_interval, 1.0))

    def advance(self, batch_id: str, report: CycleReport) -> None:
        """Poll, download, retry and notify one batch under its lock; the record is written once, last. A lock
        held elsewhere (a dashboard's or CLI's refresh: a fraction of a second) is waited for a moment, so the
        batch is advanced this cycle, not two intervals later; one held longer is skipped."""
        from langbatch_core.batch import Batch

        batch = Batch.load(batch_id, storage=self.storage)
        batch.access = team.Access(self.name, admin=True)  # the deployment's service: every owner's batches
        self._share_provider(batch)
        deadline = time.monotonic() + min(LOCK_PATIENCE, self.poll_interval / 4)
        while True:
            with batch._state.exclusive(wait=False) as held:
                if held:
                    self._advance_held(batch, report)
                    return
            if time.monotonic() >= deadline:
                report.skipped.append(batch_id)
                return
            time.sleep(0.05)

    def _advance_held(self, batch: Any, report: CycleReport) -> None:
        if batch.record.jobs:
            batch._jobs.poll()
        if self._retry_if_due(batch):
            report.retried.append(batch.id)
        elif not batch._state.active_jobs():
            report.finished.append(batch.id)
        self._notify(batch)
        now = time.time()  # the record's change time too: a later change by anyone else shows
        batch.record.advanced_at, batch.record.advanced_by = now, self.name
        batch._state.write(at=now)
        report.advanced.append(batch.id)

    def _share_provider(self, batch: Any) -> None:
        """Give the batch the provider of its connection made for an earlier batch: a new HTTP client per
        batch would cost more than the poll itself (its TLS setup: ~20 ms idle, 170 ms on a busy machine)."""
        key = orjson.dumps(batch.record.connection, option=orjson.OPT_SORT_KEYS)
        if key in self._providers:
            batch._provider = self._providers[key]
        else:
            self._providers[key] = batch.provider

    def _retry_if_due(self, batch: Any) -> bool:
        record = batch.record
        policy = self.retry
        if policy is None or batch._state.active_jobs() or record.attempts >= policy.max_attempts:
            return False
        reasons = retry_reasons(batch)
        if not reasons & set(policy.retry_on):
            return False
        submitted = batch.retry()
        log.info(
            "%s: batch %s: retried %d request(s) (%s)", self.name, batch.id, submitted, ", ".join(reasons)
        )
        return submitted > 0

    def _notify(self, batch: Any) -> None:
        record = batch.record
        events = []
        if self.notifier.failure_threshold is not None and record.request_count:
            share = (record.failed + record.not_run) / record.request_count
            if share >= self.notifier.failure_threshold:
                events.append(f"failures@{record.attempts}")
        if record.jobs and not batch._state.active_jobs():
            events.append(f"finished@{record.attempts}")
        for event in events:
            if event not in record.notified and self.notifier.configured:
                self.notifier.send(event.split("@")[0], record, worker=self.name)
                record.notified.append(event)

    @contextlib.contextmanager
    def _sole_worker(self) -> Iterator[None]:
        """Several workers share a PostgreSQL store; an embedded store has one, holding worker.lock."""
        if getattr(self.storage, "shared_by_workers", False):
            yield
            return
        import fcntl

        path = Path(self.storage.data_dir) / "worker.lock"
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                raise ConfigurationError(
                    f"Another worker ({handle.read().strip() or 'unknown'}) runs on the store of "
                    f"{self.storage.data_dir}: an embedded store (DuckDB, files) has one worker. Stop it, or "
                    "use a PostgreSQL store (LANGBATCH_STORE=postgresql://...) to run several."
                ) from None
            handle.truncate(0)
            handle.write(self.name)
            handle.flush()
            yield


def load_batch_code() -> None:
    """Import what advancing a batch needs (the batch and results code, the OpenAI SDK) now: done lazily by
    the first cycle that finds a batch, it made that batch wait seconds longer (15 s on a busy machine)."""
    import langbatch_core.batch
    import langbatch_core.providers.openai  # noqa: F401


def retry_reasons(batch: Any) -> set[str]:
    """Why the batch's requests without a success failed: server_error, rate_limit, expired, cancelled."""
    reasons = set()
    for outcome in batch._jobs.outcomes().values():
        if outcome.status == "succeeded":
            continue
        if outcome.status_code is not None and outcome.status_code >= 500:
            reasons.add("server_error")
        elif outcome.status_code == 429:
            reasons.add("rate_limit")
        elif outcome.code in _REASON_OF_CODE:
            reasons.add(_REASON_OF_CODE[outcome.code])
    return reasons
