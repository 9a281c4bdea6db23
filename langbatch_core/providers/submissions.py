"""A local ledger of submissions, for batch APIs that keep no metadata on a job (Anthropic's message
batches): what LangBatch is about to create is written down first, and the provider's id is added as soon as
the create answers. After a crash in between, ``find`` matches the unrecorded submission against the jobs the
provider lists (see ``AnthropicProvider.find``).

    ledger = SubmissionLedger(data_dir / "providers" / "anthropic")
    ledger.intend(Intent("lb_1", "a1-j1", count=500, digest=ids_digest(ids), at=time.time()))
    ledger.adopt("lb_1", "a1-j1", "msgbatch_01...")

One small JSON file per LangBatch batch (``<batch id>.json``), replaced atomically; the batch's lock (held by
start/retry) keeps writers of one file to one at a time. It holds ids and counts, never a request or a key.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from langbatch_core.errors import StorageError


@dataclass
class Intent:
    """One job LangBatch is creating: its batch and job key, how many requests, a digest of their
    custom_ids (``ids_digest``), when it was written (local clock), and the provider's id once known."""

    batch_id: str
    job: str
    count: int
    digest: str
    at: float
    provider_id: str | None = None


def ids_digest(custom_ids: Iterable[str]) -> str:
    """A digest of a set of custom_ids, whatever their order (results come back in any order)."""
    return hashlib.sha256("\n".join(sorted(custom_ids)).encode()).hexdigest()


class SubmissionLedger:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def intend(self, intent: Intent) -> None:
        entries = self.load(intent.batch_id)
        entries[intent.job] = intent
        self._save(intent.batch_id, entries)

    def adopt(self, batch_id: str, job: str, provider_id: str) -> None:
        entries = self.load(batch_id)
        if job in entries:
            entries[job].provider_id = provider_id
            self._save(batch_id, entries)

    def forget(self, batch_id: str, job: str) -> None:
        entries = self.load(batch_id)
        if entries.pop(job, None) is not None:
            self._save(batch_id, entries)

    def load(self, batch_id: str) -> dict[str, Intent]:
        path = self._path(batch_id)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise StorageError(
                f"Cannot read the submission ledger {path} ({exc}): restore or remove it, then try again."
            ) from exc
        return {key: Intent(**value) for key, value in data.items()}

    def claimed(self) -> set[str]:
        """The provider ids every ledger entry holds: jobs known to be someone's, never adopted again."""
        ids: set[str] = set()
        if not self.directory.is_dir():
            return ids
        for path in self.directory.glob("*.json"):
            try:
                entries = json.loads(path.read_text()).values()
                ids.update(v["provider_id"] for v in entries if v.get("provider_id") is not None)
            except (OSError, ValueError, AttributeError, TypeError):
                continue
        return ids

    def _path(self, batch_id: str) -> Path:
        if not batch_id or "/" in batch_id or batch_id.startswith("."):
            raise StorageError(f"Not a batch id: {batch_id!r}.")
        return self.directory / f"{batch_id}.json"

    def _save(self, batch_id: str, entries: dict[str, Intent]) -> None:
        path = self._path(batch_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as out:
                json.dump({key: asdict(intent) for key, intent in entries.items()}, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
