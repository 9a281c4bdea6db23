"""What each result line says, in brief, read by a typed decode: enough to count outcomes and pick what to
retry without building a dict per line (``Batch`` counts and ``retry()``, ``merge_results``).

    counts = collections.Counter(o.status for o in read_outcomes("results.jsonl").values())
"""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec

from langbatch_core.results.lines import (
    PathLike,
    classify,
    garbled_error,
    loads_object,
    result_blocks,
    status_of,
)


class Outcome(NamedTuple):
    """What a result line says, in brief: enough to count outcomes and to pick what to retry."""

    custom_id: str | None
    status: str  # succeeded | failed | expired | cancelled
    status_code: int | None
    code: str | None  # the failure's code: the line's error.code, else the API error's code or type


class _OutcomeError(msgspec.Struct, gc=False):
    code: str | None = None
    type: str | None = None


class _OutcomeBody(msgspec.Struct, gc=False):
    error: _OutcomeError | None = None


class _OutcomeResponse(msgspec.Struct, gc=False):
    status_code: int | None = None
    body: _OutcomeBody | None = None


class _Outcome(msgspec.Struct, gc=False):
    custom_id: str | None = None
    response: _OutcomeResponse | None = None
    error: _OutcomeError | None = None


_decode_outcome = msgspec.json.Decoder(_Outcome).decode
_decode_outcome_lines = msgspec.json.Decoder(_Outcome).decode_lines


def outcome_of(raw: Any) -> Outcome | None:
    """The outcome of a result line, or None when it is not a result object."""
    try:
        return _typed_outcome(_decode_outcome(raw))
    except (msgspec.DecodeError, msgspec.ValidationError):
        result = loads_object(raw)
        return None if result is None else _dict_outcome(result)


def _typed_outcome(item: _Outcome) -> Outcome:
    response, error = item.response, item.error
    api_error = response.body.error if response is not None and response.body is not None else None
    code = (error.code if error else None) or (api_error.code or api_error.type if api_error else None)
    if response is not None:
        status_code = response.status_code
        return Outcome(item.custom_id, status_of(status_code, None, True), status_code, code)
    return Outcome(item.custom_id, status_of(None, error.code if error else None, False), None, code)


def _dict_outcome(result: dict[str, Any]) -> Outcome:
    """The outcome of a line the typed decode refused (odd types), read with ``dict.get``."""
    custom_id, response = result.get("custom_id"), result.get("response")
    response = response if isinstance(response, dict) else {}
    error, body = _object(result.get("error")), _object(response.get("body"))
    api_error = _object(body.get("error"))
    code = error.get("code") or api_error.get("code") or api_error.get("type")
    status_code = response.get("status_code")
    return Outcome(
        None if custom_id is None else str(custom_id),
        classify(result),
        status_code if isinstance(status_code, int) else None,
        code if isinstance(code, str) else None,
    )


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def read_outcomes(path: PathLike) -> dict[str | None, Outcome]:
    """custom_id -> ``Outcome`` of each result line of ``path`` (a later line for an id wins).

    A typed decode of a block of lines at a time: no dict, no answer text is built per line. Lines that
    are not result objects are raised together as one ``ResultsError`` (as ``iter_results`` does).

        counts = collections.Counter(o.status for o in read_outcomes("results.jsonl").values())
    """
    found: dict[str | None, Outcome] = {}
    garbled: list[int] = []
    first_line = 1
    for lines, block in result_blocks(path):
        try:
            found.update((o.custom_id, o) for o in map(_typed_outcome, _decode_outcome_lines(block)))
        except (msgspec.DecodeError, msgspec.ValidationError):
            for offset, raw in enumerate(bytes(block).split(b"\n")):
                if not raw.strip():
                    continue
                outcome = outcome_of(raw)
                if outcome is None:
                    garbled.append(first_line + offset)
                else:
                    found[outcome.custom_id] = outcome
        first_line += lines
    if garbled:
        raise garbled_error(path, garbled)
    return found
