"""Reading a batch's results: what its files say, without a provider call (``Batch`` refreshes first).

reader = ResultsReader(state, jobs, success_entry)
successful, unsuccessful = reader.split()
reader.table()                              # pandas, one row per request
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from langbatch_core.batch.jobs import JobRunner
from langbatch_core.batch.rules import failure_of
from langbatch_core.batch.state import BatchState
from langbatch_core.errors import BatchStateError
from langbatch_core.requests import iter_requests, request_ids
from langbatch_core.results import classify, errors_by_code, export_results, iter_results, load_results
from langbatch_core.results.kept import results_table

SuccessEntry = Callable[[str | None, dict[str, Any]], dict[str, Any]]  # (custom_id, response body) -> entry


class ResultsReader:
    """The results of one batch; ``success_entry`` shapes a success as the batch's kind gives it."""

    def __init__(self, state: BatchState, jobs: JobRunner, success_entry: SuccessEntry) -> None:
        self.state, self.jobs, self.success_entry = state, jobs, success_entry

    def split(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """``(successful, unsuccessful)``: see ``Batch.get_results``."""
        state = self.state
        successful, unsuccessful, seen = [], [], set()
        if state.results_path.exists():
            for _, result in iter_results(state.results_path):
                custom_id = result.get("custom_id")
                seen.add(custom_id)
                status = classify(result)
                if status == "succeeded":
                    successful.append(self.success_entry(custom_id, result["response"]["body"]))
                else:
                    unsuccessful.append({"custom_id": custom_id, "status": status, **failure_of(result)})
        running, lost = self.jobs.running_ids(), self._lost_reasons()
        for custom_id in request_ids(state.requests_path):
            if custom_id not in seen and custom_id not in running:
                unsuccessful.append(_missing(custom_id, lost.get(custom_id)))
        return successful, unsuccessful

    def _lost_reasons(self) -> dict[str, str]:
        """custom_id -> why its latest failed job gave no result (from the job's ``errors.data``)."""
        reasons: dict[str, str] = {}
        for job in self.state.record.jobs:
            if job.status == "failed":
                first = job.errors[0] if job.errors else {}
                why = (
                    f"job {job.key} failed ({first.get('code') or 'no code'}: {first.get('message') or '-'})"
                )
                for custom_id in request_ids(self.state.directory / job.input_file):
                    reasons[custom_id] = why
        return reasons

    def results_file(self) -> Path:
        """The merged OpenAI result JSONL; BatchStateError while no job's results are in."""
        state = self.state
        if not state.results_path.exists() or not any(job.downloaded for job in state.record.jobs):
            raise BatchStateError(
                f"Batch {state.id} has no results yet ({state.record.status}); wait() first "
                f"(`langbatch wait {state.id}`)."
            )
        return state.results_path

    def requests_by_ids(self, custom_ids: Iterable[str]) -> list[dict[str, Any]]:
        """The original request lines with these custom_ids, in file order (one id may be a string)."""
        self.state.check_not_deleted()
        wanted = {custom_ids} if isinstance(custom_ids, str) else set(custom_ids)
        return [
            request for request in iter_requests(self.state.requests_path) if request["custom_id"] in wanted
        ]

    def table(self) -> Any:
        """The flat results table (pandas), one row per request in the request file's order, including
        ``missing`` ones: the table kept beside the results (``results.kept``), made again if they changed."""
        state = self.state
        if not state.results_path.exists():
            return load_results([], requests=state.requests_path)
        return results_table(state.results_path, state.requests_path)

    def error_counts(self) -> dict[str, int]:
        """Failures by error code, most frequent first (as stored: no refresh)."""
        record = self.state.record
        table = self.table() if record.jobs else None
        summary = errors_by_code(record.jobs, table, running=bool(self.state.active_jobs()))
        return {code: int(count) for code, count in zip(summary["code"], summary["count"], strict=True)}

    def export(self, path: str | os.PathLike[str], format: str | None = None) -> Path:
        return export_results(self.table(), path, format=format)


def _missing(custom_id: str, reason: str | None) -> dict[str, Any]:
    why = reason or "its job ended without one"
    return {
        "custom_id": custom_id,
        "status": "missing",
        "code": "missing",
        "message": f"No result: {why}; retry() resubmits it.",
        "status_code": None,
    }
