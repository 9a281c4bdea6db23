"""Checking and reading a batch's input file in the local engine.

    errors, parsed, tokens = validate_input(path, "/v1/chat/completions")
    # errors: OpenAI's errors.data entries [{"code", "message", "param", "line"}]; parsed: the requests

The rules are LangBatch's own (``langbatch_core.requests.validate_file``, the same check the library runs
before submitting). On top of it the engine checks what it needs to run a file: one JSON object per line with
a unique ``custom_id``, ``method`` POST, the batch's ``url`` and an object ``body``. Lines are read with the
validator's own JSON reader (``read_json``): what it calls valid, the engine can read.
"""

from __future__ import annotations

import array
import mmap
from pathlib import Path
from typing import Any

from langbatch_core.jsonl import JSONError, read_json
from langbatch_core.local.executor import estimate_tokens

MAX_ERRORS = 1000


class ParsedRequests:
    """The requests of one input file, in order: custom ids in memory, bodies read from the file on demand.

    Holding offsets rather than parsed bodies keeps a 200 MB file at a few MB of memory while it runs.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.custom_ids: list[str] = []
        self.offsets = array.array("q")
        self.model: str | None = None
        self.tokens = 0
        self._map: mmap.mmap | None = None

    def __len__(self) -> int:
        return len(self.custom_ids)

    def add(self, custom_id: str, start: int, end: int) -> None:
        self.custom_ids.append(custom_id)
        self.offsets.extend((start, end))

    def body(self, index: int) -> dict[str, Any]:
        """The ``body`` of request ``index`` (0-based)."""
        if self._map is None:
            with open(self.path, "rb") as handle:
                self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        start, end = self.offsets[2 * index], self.offsets[2 * index + 1]
        return read_json(self._map[start:end])["body"]

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None


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
    if errors:  # not read further: a line the library refused may be too long to hold
        return errors[:MAX_ERRORS], None, 0
    parsed, errors = parse_requests(path, endpoint if check else None)
    if errors:
        return errors[:MAX_ERRORS], None, 0
    return [], parsed, library_tokens if library_tokens is not None else parsed.tokens


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
    parsed = ParsedRequests(path)
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    offset = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            start, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            request, problem = _read_line(raw, endpoint, seen)
            if problem is not None:
                if len(errors) < MAX_ERRORS:
                    errors.append({**problem, "line": number})
                continue
            body = request["body"]
            parsed.add(request["custom_id"], start, offset)
            parsed.tokens += estimate_tokens(body)
            if parsed.model is None and isinstance(body.get("model"), str):
                parsed.model = body["model"]
    if endpoint is not None and len(parsed) == 0 and not errors:
        problem = _error(
            "empty_file", "The input file holds no requests: add one JSON request per line.", None
        )
        errors.append({**problem, "line": None})
    return parsed, errors


def _read_line(raw: bytes, endpoint: str | None, seen: set[str]) -> tuple[dict, dict | None]:
    try:
        request = read_json(raw)
    except JSONError as exc:
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
