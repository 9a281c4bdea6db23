"""A batch's record, its folder, and the lock that guards changing them.

    state = BatchState(storage, record)
    with state.exclusive():          # held across processes; the record is reloaded once it is held
        state.record.name = "renamed"
        state.write()                # version + 1; only under the lock

Every writer of a batch record (start, retry, cancel, save, delete, refresh) holds ``<batch dir>/.lock``
and works on the latest stored record, so no two writers (the CLI, the dashboard, a script) interleave and
one loses the other's jobs. A reader that does not hold it takes a newer stored record with ``sync()``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from langbatch_core import audit
from langbatch_core.errors import BatchNotFoundError, BatchStateError, NotOwnerError
from langbatch_core.storage import BatchRecord, BatchStorage, JobRecord
from langbatch_core.team import Access


class BatchState:
    """The record of one batch (``record``, replaced when a newer one is loaded) and its files.

    ``access`` gives the ownership rule for who acts through this state (default: no restriction)."""

    def __init__(
        self,
        storage: BatchStorage,
        record: BatchRecord,
        actor: str = "",
        access: Callable[[], Access] | None = None,
    ) -> None:
        self.storage = storage
        self.record = record
        self.actor = actor  # who the audit log names for what is done through this state
        self._access = access or (lambda: Access(actor))
        self._lock_depth = 0

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def directory(self) -> Path:
        """``<data dir>/batches/<id>``: requests.jsonl, jobs/, results.jsonl, .lock."""
        return self.storage.batch_dir(self.id)

    @property
    def requests_path(self) -> Path:
        return self.directory / "requests.jsonl"

    @property
    def results_path(self) -> Path:
        return self.directory / "results.jsonl"

    def relative(self, path: Path) -> str:
        """``path`` as the record keeps it: relative to the batch's folder."""
        return path.relative_to(self.directory).as_posix()

    def active_jobs(self) -> list[JobRecord]:
        return [job for job in self.record.jobs if job.active]

    def interrupted(self) -> list[JobRecord]:
        """Jobs recorded as ``submitting``: their submission was interrupted (or is running elsewhere)."""
        return [job for job in self.record.jobs if job.status == "submitting"]

    def check_not_deleted(self) -> None:
        if not self.requests_path.is_file():
            raise BatchStateError(
                f"Batch {self.id} was deleted ({self.requests_path} is gone): create or load another batch."
            )

    def require_started(self) -> None:
        if not self.record.jobs:
            raise BatchStateError(
                f"Batch {self.id} is not started: call start() (`langbatch start {self.id}`) first, then "
                "wait()."
            )

    @contextlib.contextmanager
    def exclusive(self, wait: bool = True) -> Iterator[bool]:
        """Hold the batch's lock (``storage.lock``: ``<batch dir>/.lock``, or a shared store's lock that every
        machine sees) while the record is read, changed and written (processes, threads, workers).

        Yields True once held, with the record reloaded from the store (the holder works on the latest);
        with ``wait=False`` yields False at once if another writer holds it. Re-entrant per state.
        """
        self.check_not_deleted()
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
                self._reload(newer_only=False)
                yield True
            finally:
                self._lock_depth = 0

    def sync(self) -> None:
        """Take the stored record if another process saved a newer one; for reading only (writers reload
        under the lock, see ``exclusive``)."""
        self.check_not_deleted()
        self._reload(newer_only=True)

    def _reload(self, newer_only: bool) -> None:
        try:
            stored = self.storage.load(self.id)
        except BatchNotFoundError:
            return  # never saved: ours is the only one
        ours = (self.record.version, self.record.updated_at)
        if (
            (stored.version, stored.updated_at) > ours
            if newer_only
            else (stored.version, stored.updated_at) != ours
        ):
            self.record = stored

    def write(self, at: float | None = None) -> None:
        """Save the record, changed at ``at`` (now); the caller holds the lock and worked on the latest stored
        record."""
        if not self._lock_depth:
            raise RuntimeError("a batch record is written only under the batch's lock")
        first = self.record.version == 0
        self.record.version += 1
        self.record.updated_at = time.time() if at is None else at
        self.storage.save(self.record)
        if first:
            self.audit("created", self.record.name or "")

    def check_access(self, action: str) -> None:
        """NotOwnerError (and a ``refused`` audit event) unless the one acting may ``action`` this batch:
        its owner or an admin where team settings restrict access; anyone otherwise (see ``team.Access``)."""
        try:
            self._access().check(self.record, action)
        except NotOwnerError:
            self.audit("refused", f"{action}: owned by {self.record.owner or '—'}")
            raise

    def audit(self, action: str, detail: str = "") -> None:
        audit.record(self.storage, self.actor, action, self.id, detail)
