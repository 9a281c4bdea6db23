"""Reading result files: their lines, each result as a dict, one outcome per line.

A result line is ``{"id", "custom_id", "response": {"status_code", "request_id", "body"} | null, "error"}``.
A request rejected by the API has ``status_code >= 400`` and the reason in ``response.body.error``; one never
run (expired, cancelled) has ``response: null`` and ``error: {code, message}``.

    for line, result in iter_results("results.jsonl"): ...
    classify(result)                                    # "succeeded" | "failed" | "expired" | "cancelled"
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from langbatch_core.errors import ResultsError
from langbatch_core.jsonl import BlockReader

STATUSES = ("succeeded", "failed", "expired", "cancelled", "missing")
BLOCK_SIZE = 4 * 1024 * 1024  # result lines are decoded a block at a time
MAX_LISTED = 100  # garbled lines / unknown ids listed in reports and table attrs (all are counted)
PathLike = str | os.PathLike[str]
_FAILURES = {"batch_expired": "expired", "batch_cancelled": "cancelled"}


def classify(result: dict[str, Any]) -> str:
    """The outcome of one result line: ``succeeded``, ``failed``, ``expired`` or ``cancelled``.

    classify({"custom_id": "a", "response": None, "error": {"code": "batch_expired"}})   # "expired"
    """
    response = result.get("response")
    error = found if isinstance(found := result.get("error"), dict) else {}
    if isinstance(response, dict):
        code = response.get("status_code")
        return status_of(code if isinstance(code, int) else None, None, True)
    return status_of(None, error.get("code"), False)


def status_of(status_code: int | None, error_code: str | None, has_response: bool) -> str:
    """succeeded | failed | expired | cancelled, from the parts of a result line."""
    if has_response:
        return "succeeded" if status_code is not None and status_code < 400 else "failed"
    return _FAILURES.get(error_code or "", "failed")


def loads_object(raw: Any) -> dict[str, Any] | None:
    """A line read leniently as a JSON object (None: not JSON, or not an object)."""
    try:
        result = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return result if isinstance(result, dict) else None


def _open(path: PathLike) -> Any:
    try:
        return Path(path).open("rb", buffering=0)
    except OSError as exc:
        raise ResultsError(f"Cannot read the result file {path}: {exc.strerror}; check the path.") from exc


def result_lines(path: PathLike) -> Iterator[tuple[int, memoryview]]:
    """(line number, line) of the non-empty lines of a file; missing files are a ResultsError."""
    with _open(path) as handle:
        for line, raw in BlockReader(handle).lines(_too_long(path)):
            if raw:
                yield line, raw


def _too_long(path: PathLike) -> Any:
    def error(line: int, limit: int) -> ResultsError:
        return ResultsError(
            f"{path}: line {line} is longer than {limit:,} bytes: no result is; download it again."
        )

    return error


def result_blocks(path: PathLike) -> Iterator[tuple[int, memoryview]]:
    """(number of lines, block of whole lines) over a file; blocks are views into one reused buffer."""
    with _open(path) as handle:
        for block in BlockReader(handle, BLOCK_SIZE):
            yield block.count, block.data


def iter_results(path: PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, result)`` for each result line, in file order.

    Lines that are not JSON result objects are skipped while reading and then raised together as one
    ``ResultsError`` naming their line numbers, after every good line was yielded.

        for line, result in iter_results("results.jsonl"): ...
    """
    garbled: list[int] = []
    for line, raw in result_lines(path):
        try:
            result = orjson.loads(raw)
        except orjson.JSONDecodeError:
            result = None
        if isinstance(result, dict):
            yield line, result
        else:
            garbled.append(line)
    if garbled:
        raise garbled_error(path, garbled)


def garbled_error(path: PathLike, garbled: list[int]) -> ResultsError:
    return ResultsError(
        f"{path}: {len(garbled)} line(s) are not JSON result objects (lines "
        f"{_list(garbled)}); the provider's file is damaged: download it again."
    )


def _list(numbers: Sequence[Any]) -> str:
    shown = ", ".join(str(n) for n in numbers[:20])
    return shown + (f", … ({len(numbers)} in all)" if len(numbers) > 20 else "")


def read_result_line(path: PathLike, line: int) -> dict[str, Any]:
    """The full JSON of result line ``line`` (1-based) of ``path``: the dashboard's row detail.

    ``read_result_line("results.jsonl", table.loc[i, "line"])``
    """
    for number, raw in result_lines(path):
        if number == line:
            found: dict[str, Any] = orjson.loads(raw)
            return found
        if number > line:
            break
    raise ResultsError(f"{path} has no result on line {line}.")
