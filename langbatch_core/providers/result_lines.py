"""OpenAI batch result lines, built from what any provider answered, so ``get_results``, the results table
and the exports read every provider's results as they read OpenAI's.

    success_line("req-1", body, request_id="msgbatch_1")            # {"id", "custom_id", "response": 200}
    api_error_line("req-2", 529, "Overloaded", code="overloaded_error")  # answered with an error body
    not_run_line("req-3", "batch_expired", "...")                    # never answered: response null

``native``: what the provider sent for the line, kept under ``native`` (the Results page's row detail
shows it); left out when not given.
"""

from __future__ import annotations

from typing import Any

_NO_NATIVE: Any = object()
#: The error ``type`` OpenAI gives a request its API refused.
REFUSED = "invalid_request_error"


def _line(custom_id: str, response: dict[str, Any] | None, error: Any, native: Any) -> dict[str, Any]:
    line = {"id": f"batch_req_{custom_id}", "custom_id": custom_id, "response": response, "error": error}
    if native is not _NO_NATIVE:
        line["native"] = native
    return line


def success_line(
    custom_id: str, body: dict[str, Any], *, request_id: str | None = None, native: Any = _NO_NATIVE
) -> dict[str, Any]:
    """A request the model answered: ``body`` is OpenAI's response body (a ``chat.completion``)."""
    return _line(custom_id, {"status_code": 200, "request_id": request_id, "body": body}, None, native)


def api_error_line(
    custom_id: str,
    status_code: int,
    message: str,
    *,
    code: str | None,
    kind: str | None = None,
    request_id: str | None = None,
    native: Any = _NO_NATIVE,
) -> dict[str, Any]:
    """A request the API answered with an error: HTTP ``status_code`` and an OpenAI error body (``kind``:
    its ``type``, ``code`` when not given)."""
    body = {"error": {"message": message, "type": kind or code, "param": None, "code": code}}
    response = {"status_code": status_code, "request_id": request_id, "body": body}
    return _line(custom_id, response, None, native)


def not_run_line(custom_id: str, code: str, message: str, *, native: Any = _NO_NATIVE) -> dict[str, Any]:
    """A request that never ran (``batch_expired``, ``batch_cancelled``), as OpenAI writes one."""
    return _line(custom_id, None, {"code": code, "message": message}, native)
