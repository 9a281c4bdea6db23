"""One count of failures by error code for Python, the CLI and the dashboard (error_summary)."""

from __future__ import annotations

import pandas as pd

from langbatch_core.results.summary import errors_by_code
from langbatch_core.storage import JobRecord


def results(*rows):
    return pd.DataFrame(rows, columns=["custom_id", "status", "error_code", "error_message"])


def failed_job(*errors):
    return JobRecord("a1-j1", 1, 3, "jobs/a1-j1/input.jsonl", status="failed", errors=list(errors))


def test_a_code_from_a_job_and_from_requests_is_one_row_counted_once_each():
    job = failed_job({"code": "invalid_model", "message": "model x does not exist", "line": 1}, {"line": 2})
    table = results(
        ("a", "succeeded", None, None),
        ("b", "failed", "invalid_model", None),
        ("c", "failed", "invalid_model", "no such model"),
        ("d", "expired", None, None),
    )
    summary = errors_by_code([job], table, running=False)
    assert summary.to_dict("records") == [
        {"code": "invalid_model", "count": 3, "example": "model x does not exist"},
        {"code": "unknown", "count": 1, "example": ""},
        {"code": "expired", "count": 1, "example": ""},
    ]


def test_while_running_requests_without_a_result_are_pending_not_errors():
    table = results(("a", "missing", None, None), ("b", "failed", "timeout", "too slow"))
    assert list(errors_by_code([], table, running=True)["code"]) == ["timeout"]
    assert list(errors_by_code([], table, running=False)["code"]) == ["missing", "timeout"]
    assert errors_by_code([], None, running=False).empty
