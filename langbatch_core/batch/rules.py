"""The rules of the batch lifecycle that need no I/O: the batch status, what a failure says, what to retry.

aggregate_status(jobs, all_succeeded=False)    # -> "in_progress", "completed", ...
failure_of(result)                             # -> {"code", "message", "status_code"}
is_retryable(result)                           # -> True for expired, cancelled, 429, 5xx, ...
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langbatch_core.storage import JobRecord

#: Failure codes of requests that never ran or ran into limits: worth submitting again.
RETRYABLE_CODES = frozenset(
    {
        "batch_expired",
        "batch_cancelled",
        "token_limit_exceeded",
        "rate_limit_exceeded",
        "server_error",
        "timeout",
        "internal_error",
    }
)
# terminal job statuses of the latest attempt, strongest first, when they differ
_TERMINAL_ORDER = ("cancelled", "failed", "expired", "completed")


def aggregate_status(jobs: Sequence[JobRecord], all_succeeded: bool = False) -> str:
    """One status in OpenAI's vocabulary for a batch's jobs.

    No jobs: ``not_started``. Jobs running: their common status if they share one (``submitting`` counts as
    ``validating``), else ``cancelling`` if any is, else ``in_progress``. All finished: ``completed`` when
    every request succeeded, else the latest attempt's status (when its jobs differ: cancelled > failed >
    expired > completed).
    """
    if not jobs:
        return "not_started"
    active = {("validating" if j.status == "submitting" else j.status) for j in jobs if j.active}
    if active:
        if len(active) == 1:
            return active.pop()
        return "cancelling" if "cancelling" in active else "in_progress"
    if all_succeeded:
        return "completed"
    latest = max(job.attempt for job in jobs)
    statuses = {job.status for job in jobs if job.attempt == latest}
    return next((s for s in _TERMINAL_ORDER if s in statuses), min(statuses))


def failure_of(result: dict[str, Any]) -> dict[str, Any]:
    """``{"code", "message", "status_code"}`` of a failed result line, from either of OpenAI's shapes.

    Rejected by the API: ``response.status_code >= 400`` with ``response.body.error``; never run:
    ``response: null`` with ``error: {code, message}``.
    """
    response = result.get("response") or {}
    error = result.get("error") or {}
    body = found if isinstance(found := response.get("body"), dict) else {}
    api_error = found if isinstance(found := body.get("error"), dict) else {}
    status_code = response.get("status_code")
    code = error.get("code") or api_error.get("code") or api_error.get("type")
    message = error.get("message") or api_error.get("message")
    if code is None and status_code is not None:
        code = f"http_{status_code}"
    return {"code": code, "message": message or "no message given", "status_code": status_code}


def is_retryable(result: dict[str, Any], include_client_errors: bool = False) -> bool:
    """Whether a result without success is worth submitting again.

    Yes: never run (expired, cancelled, ...), rate limits, timeouts, server errors (408, 409, 429, 5xx) and
    the codes in RETRYABLE_CODES. No: a success, and other 4xx (the request itself is wrong) unless
    ``include_client_errors``.
    """
    response = result.get("response")
    status_code = response.get("status_code") if isinstance(response, dict) else None
    if status_code is not None and status_code < 400 and not result.get("error"):
        return False
    return is_retryable_failure(status_code, failure_of(result)["code"], include_client_errors)


def is_retryable_failure(status_code: int | None, code: Any, include_client_errors: bool = False) -> bool:
    """``is_retryable`` for a failure given as its HTTP status (None: never answered) and code."""
    if code in RETRYABLE_CODES or status_code is None:
        return True
    if status_code in (408, 409, 429) or status_code >= 500:
        return True
    return include_client_errors
