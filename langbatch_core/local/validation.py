"""Checking and reading a batch's input file in the local engine.

    errors, parsed, tokens = validate_input(path, "/v1/chat/completions")
    # errors: OpenAI's errors.data entries [{"code", "message", "param", "line"}]; parsed: the requests

The rules are LangBatch's own, in one place: ``langbatch_core.requests.validate_file``, the same check the
library runs before submitting (custom_ids unique, method POST, the batch's url, a valid body). What it
calls valid, the engine reads here with the same JSON reader (``read_json``), keeping only each request's
custom_id and where its line is.
"""

from __future__ import annotations

import array
import mmap
from pathlib import Path
from typing import Any

from langbatch_core.jsonl import JSONError, read_json
from langbatch_core.local.executor import estimate_tokens
from langbatch_core.requests import validate_file

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
    """(errors, parsed requests or None when invalid, estimated input tokens) for the file at ``path``;
    ``check=False`` reads a file checked before (a batch resumed after a restart)."""
    tokens = None
    if check:
        report = validate_file(path, endpoint=endpoint, max_issues=MAX_ERRORS)
        errors = [_as_error(issue) for issue in report.issues if issue.severity == "error"]
        if errors:  # not read further: a line the check refused may be too long to hold
            return errors[:MAX_ERRORS], None, 0
        tokens = report.input_tokens
    parsed, errors = read_requests(path)
    if errors:
        return errors[:MAX_ERRORS], None, 0
    return [], parsed, tokens if tokens is not None else parsed.tokens


def _as_error(issue: Any) -> dict[str, Any]:
    return {"code": issue.code, "message": issue.message, "param": issue.param, "line": issue.line}


def read_requests(path: Path) -> tuple[ParsedRequests, list[dict[str, Any]]]:
    """Every request of a checked file (custom_id, offsets, tokens); a line that is no request object
    with a custom_id and a body is listed as an error."""
    parsed = ParsedRequests(path)
    errors: list[dict[str, Any]] = []
    offset = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            start, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            request = _request(raw)
            if request is None:
                if len(errors) < MAX_ERRORS:
                    message = "This line is not a JSON request object with a custom_id and a body."
                    errors.append(
                        {"code": "invalid_request", "message": message, "param": None, "line": number}
                    )
                continue
            body = request["body"]
            parsed.add(request["custom_id"], start, offset)
            parsed.tokens += estimate_tokens(body)
            if parsed.model is None and isinstance(body.get("model"), str):
                parsed.model = body["model"]
    return parsed, errors


def _request(raw: bytes) -> dict[str, Any] | None:
    try:
        request = read_json(raw)
    except JSONError:
        return None
    if not isinstance(request, dict) or not isinstance(request.get("custom_id"), str):
        return None
    return request if isinstance(request.get("body"), dict) else None
