"""Checking and reading a batch's input file in the local engine.

    errors, parsed, tokens = validate_input(path, "/v1/chat/completions")
    # errors: OpenAI's errors.data entries [{"code", "message", "param", "line"}]; parsed: the requests

The rules are LangBatch's own (``langbatch_core.requests.validate_file``, the same check the library runs
before submitting). On top of it the engine checks what it needs to run a file: one JSON object per line with
a unique ``custom_id``, ``method`` POST, the batch's ``url`` and an object ``body``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from langbatch_core.local.executor import estimate_tokens

MAX_ERRORS = 1000


@dataclass
class ParsedRequests:
    """The requests of one input file, in order."""

    custom_ids: list[str] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None


def validate_input(
    path: Path, endpoint: str | None, *, check: bool = True
) -> tuple[list[dict[str, Any]], ParsedRequests | None, int]:
    """(errors, parsed requests or None when invalid, estimated input tokens) for the file at ``path``."""
    errors: list[dict[str, Any]] = []
    library_tokens = None
    if check:
        report = _library_report(path, endpoint)
        if report is not None:
            errors = [_as_error(issue) for issue in report.issues if issue.severity == "error"]
            library_tokens = report.input_tokens
    parsed, own_errors = parse_requests(path, endpoint if check else None)
    errors = errors or own_errors
    if errors:
        return errors[:MAX_ERRORS], None, 0
    tokens = library_tokens if library_tokens is not None else sum(map(estimate_tokens, parsed.bodies))
    return [], parsed, tokens


def _library_report(path: Path, endpoint: str | None) -> Any:
    try:
        from langbatch_core.requests import validate_file
    except ImportError:  # the request layer is optional for the engine: its own checks still run
        return None
    return validate_file(path, endpoint=endpoint, max_issues=MAX_ERRORS)


def _as_error(issue: Any) -> dict[str, Any]:
    return {"code": issue.code, "message": issue.message, "param": issue.param, "line": issue.line}


def parse_requests(path: Path, endpoint: str | None) -> tuple[ParsedRequests, list[dict[str, Any]]]:
    """Read every request; with ``endpoint``, also list what keeps the file from running as a batch."""
    parsed = ParsedRequests()
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            request, problem = _read_line(raw, endpoint, seen)
            if problem is not None:
                if len(errors) < MAX_ERRORS:
                    errors.append({**problem, "line": number})
                continue
            parsed.custom_ids.append(request["custom_id"])
            parsed.bodies.append(request["body"])
            if parsed.model is None and isinstance(request["body"].get("model"), str):
                parsed.model = request["body"]["model"]
    if endpoint is not None and not parsed.bodies and not errors:
        errors.append(
            _error("empty_file", "The input file holds no requests: add one JSON request per line.", None)
        )
        errors[-1]["line"] = None
    return parsed, errors


def _read_line(raw: bytes, endpoint: str | None, seen: set[str]) -> tuple[dict, dict | None]:
    try:
        request = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return {}, _error(
            "invalid_json_line", f"This line is not valid JSON ({exc}); write one object a line.", None
        )
    if not isinstance(request, dict):
        return {}, _error(
            "invalid_request", "Each line must be a JSON object with custom_id, method, url, body.", None
        )
    custom_id, body = request.get("custom_id"), request.get("body")
    if not isinstance(custom_id, str) or not custom_id:
        return {}, _error(
            "missing_custom_id", "Each request needs a non-empty string custom_id.", "custom_id"
        )
    if not isinstance(body, dict):
        return {}, _error("missing_body", "Each request needs a JSON object body.", "body")
    if endpoint is None:
        return request, None
    if custom_id in seen:
        message = f"The custom_id {custom_id!r} is used more than once; custom_ids must be unique in a batch."
        return {}, _error("duplicate_custom_id", message, "custom_id")
    seen.add(custom_id)
    if request.get("method") != "POST":
        return {}, _error("invalid_method", "The method must be 'POST'.", "method")
    if request.get("url") != endpoint:
        message = f"The url {request.get('url')!r} does not match the batch's endpoint {endpoint!r}."
        return {}, _error("mismatched_url", message, "url")
    return request, None


def _error(code: str, message: str, param: str | None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param}
