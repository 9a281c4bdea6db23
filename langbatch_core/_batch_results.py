"""Reading a batch's results: the part of ``Batch`` that looks at its files, not at its provider.

successful, unsuccessful = batch.get_results()
batch.get_results_file()                   # merged OpenAI result JSONL
batch.results_table()                      # pandas, one row per request
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langbatch_core import results as results_io
from langbatch_core._batch_jobs import BatchJobs
from langbatch_core._batch_rules import failure_of
from langbatch_core.errors import BatchStateError
from langbatch_core.requests import iter_requests
from langbatch_core.results.summary import errors_by_code

if TYPE_CHECKING:
    from langbatch_core.storage import BatchRecord


class BatchResults(BatchJobs):
    """The readers of ``Batch`` (over ``BatchJobs``): each refreshes first, so it sees what the provider has
    finished."""

    def refresh(self) -> BatchRecord:  # pragma: no cover - provided by Batch
        raise NotImplementedError

    def get_results(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """``(successful, unsuccessful)`` lists of dicts keyed by ``custom_id``.

        Successes carry what the kind gives (chat: ``content``, ``choices``, ``usage``, ``model``; embeddings:
        ``embedding``, ``embeddings``); failures ``status``, ``code``, ``message``, ``status_code``. Requests
        whose job ended without a result appear as failures with code ``missing``; running ones not at all.
        """
        self._require_started()
        self.refresh()
        successful, unsuccessful, seen = [], [], set()
        if self.results_path.exists():
            for _, result in results_io.iter_results(self.results_path):
                custom_id = result.get("custom_id")
                seen.add(custom_id)
                status = results_io.classify(result)
                if status == "succeeded":
                    successful.append(self._success_entry(custom_id, result["response"]["body"]))
                else:
                    unsuccessful.append({"custom_id": custom_id, "status": status, **failure_of(result)})
        running, lost = self._running_ids(), self._lost_reasons()
        for request in iter_requests(self.requests_path):
            custom_id = request["custom_id"]
            if custom_id not in seen and custom_id not in running:
                unsuccessful.append(_missing(custom_id, lost.get(custom_id)))
        return successful, unsuccessful

    def _lost_reasons(self) -> dict[str, str]:
        """custom_id -> why its latest failed job gave no result (from the job's ``errors.data``)."""
        reasons: dict[str, str] = {}
        for job in self.record.jobs:
            if job.status == "failed":
                first = job.errors[0] if job.errors else {}
                why = (
                    f"job {job.key} failed ({first.get('code') or 'no code'}: {first.get('message') or '-'})"
                )
                for request in iter_requests(self.directory / job.input_file):
                    reasons[request["custom_id"]] = why
        return reasons

    def _success_entry(self, custom_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "custom_id": custom_id,
            "model": body.get("model"),
            "usage": body.get("usage"),
            "response": body,
        }

    def get_results_file(self) -> Path:
        """The merged OpenAI result JSONL (latest result per custom_id over every job)."""
        self._require_started()
        self.refresh()
        if not self.results_path.exists() or not any(job.downloaded for job in self.record.jobs):
            raise BatchStateError(
                f"Batch {self.id} has no results yet ({self.record.status}); wait() first "
                f"(`langbatch wait {self.id}`)."
            )
        return self.results_path

    def get_unsuccessful_requests(self) -> list[dict[str, Any]]:
        """The original request lines of every unsuccessful request (see get_results)."""
        _, unsuccessful = self.get_results()
        return self.get_requests_by_custom_ids([entry["custom_id"] for entry in unsuccessful])

    def get_requests_by_custom_ids(self, custom_ids: Iterable[str]) -> list[dict[str, Any]]:
        """The original request lines with these custom_ids, in file order (unknown ids are skipped; one id
        may be given as a string)."""
        self._check_not_deleted()
        wanted = {custom_ids} if isinstance(custom_ids, str) else set(custom_ids)
        return [request for request in iter_requests(self.requests_path) if request["custom_id"] in wanted]

    def results_table(self) -> Any:
        """The flat results table (pandas), one row per request, including ``missing`` ones."""
        paths = [self.results_path] if self.results_path.exists() else []
        return results_io.load_results(paths, requests=self.requests_path)

    def error_counts(self) -> dict[str, int]:
        """How many requests failed with each error code, most frequent first (as stored: no refresh); see
        ``langbatch_core.results.summary.errors_by_code``."""
        table = self.results_table() if self.record.jobs else None
        summary = errors_by_code(self.record.jobs, table, running=bool(self._active_jobs()))
        return {code: int(count) for code, count in zip(summary["code"], summary["count"], strict=True)}

    def export_results(self, path: str | os.PathLike[str], format: str | None = None) -> Path:
        """Write the results table as CSV, JSONL or Parquet (by ``format`` or the suffix)."""
        return results_io.export_results(self.results_table(), path, format=format)


def _missing(custom_id: str, reason: str | None) -> dict[str, Any]:
    why = reason or "its job ended without one"
    return {
        "custom_id": custom_id,
        "status": "missing",
        "code": "missing",
        "message": f"No result: {why}; retry() resubmits it.",
        "status_code": None,
    }
