"""Find a request or result line by its custom_id without reading the whole file.

    offsets = line_index("requests.jsonl")            # custom_id -> byte offset of its line
    find_line("requests.jsonl", "req-7", offsets)      # that line's JSON, or None

Results in request-file order: ``load_results(results, requests=..., order="requests")``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson

_CUSTOM_ID = re.compile(rb'"custom_id"\s*:\s*"((?:[^"\\]|\\.)*)"')


def line_index(path: str | Path) -> dict[str, int]:
    """custom_id → byte offset of its (first) line in a result or request JSONL file."""
    index: dict[str, int] = {}
    offset = 0
    with open(path, "rb") as lines:
        for line in lines:
            key = _custom_id(line)
            if isinstance(key, str):
                index.setdefault(key, offset)
            offset += len(line)
    return index


def _custom_id(line: bytes) -> Any:
    """The line's top-level custom_id: found by a regex near the start, else by parsing the line."""
    match = _CUSTOM_ID.search(line, 0, 512)
    if match and b"{" not in line[1 : match.start()]:  # a top-level key, not one inside "body"
        return orjson.loads(b'"' + match.group(1) + b'"')
    try:
        return orjson.loads(line).get("custom_id")
    except (orjson.JSONDecodeError, AttributeError):
        return None


def read_line(path: str | Path, offset: int) -> Any:
    """The JSON value of the line that starts at ``offset`` in ``path``."""
    with open(path, "rb") as lines:
        lines.seek(offset)
        return orjson.loads(lines.readline())


def find_line(path: str | Path, custom_id: str, offsets: dict[str, int]) -> dict[str, Any] | None:
    """The line of ``custom_id`` (``offsets`` from ``line_index(path)``); None if absent or changed since."""
    offset = offsets.get(custom_id)
    try:
        line = read_line(path, offset) if offset is not None else None
    except (OSError, orjson.JSONDecodeError):
        return None
    return line if isinstance(line, dict) and line.get("custom_id") == custom_id else None
