"""Result files: read, classify, merge over jobs, flatten into one table, export.

A result line is ``{"id", "custom_id", "response": {"status_code", "request_id", "body"} | null, "error"}``.
A request rejected by the API has ``status_code >= 400`` and the reason in ``response.body.error``; one never
run (expired, cancelled) has ``response: null`` and ``error: {code, message}``.

    merge_results(["job1/output.jsonl", "job1/errors.jsonl", "job2/output.jsonl"], "results.jsonl")
    table = load_results("results.jsonl", requests="requests.jsonl")   # one row per request
    export_results(table[table.status == "failed"], "failed.csv")

The table is built from a typed decode of each line straight into arrow columns (``_result_rows``), so a
field first seen late in the file is never lost, and memory stays near the size of the text it holds.
"""

from __future__ import annotations

import gc
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from langbatch_core._result_export import export_results
from langbatch_core._result_rows import Columns, loads_object, request_prompts, status_of
from langbatch_core.errors import ResultsError
from langbatch_core.jsonl import BlockReader

__all__ = [
    "STATUSES",
    "MergeReport",
    "Outcome",
    "classify",
    "export_results",
    "iter_results",
    "load_results",
    "merge_results",
    "read_outcomes",
    "read_result_line",
]

STATUSES = ("succeeded", "failed", "expired", "cancelled", "missing")
BLOCK_SIZE = 4 * 1024 * 1024  # result lines are decoded a block at a time
MAX_LISTED = 100  # garbled lines / unknown ids listed in reports and table attrs (all are counted)
PathLike = str | os.PathLike[str]


def classify(result: dict[str, Any]) -> str:
    """The outcome of one result line: ``succeeded``, ``failed``, ``expired`` or ``cancelled``.

    classify({"custom_id": "a", "response": None, "error": {"code": "batch_expired"}})   # "expired"
    """
    response = result.get("response")
    error = result.get("error") if isinstance(result.get("error"), dict) else {}
    if isinstance(response, dict):
        code = response.get("status_code")
        return status_of(code if isinstance(code, int) else None, None, True)
    return status_of(None, error.get("code"), False)


def _lines(path: PathLike) -> Iterator[tuple[int, memoryview]]:
    """(line number, line) of the non-empty lines of a file; missing files are a ResultsError."""
    try:
        handle = Path(path).open("rb", buffering=0)  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise ResultsError(f"Cannot read the result file {path}: {exc.strerror}; check the path.") from exc
    with handle:
        for line, raw in BlockReader(handle).lines(_too_long(path)):
            if raw:
                yield line, raw


def _too_long(path: PathLike) -> Any:
    def error(line: int, limit: int) -> ResultsError:
        return ResultsError(
            f"{path}: line {line} is longer than {limit:,} bytes: no result is; download it again."
        )

    return error


def _blocks(path: PathLike) -> Iterator[tuple[int, memoryview]]:
    """(number of lines, block of whole lines) over a file; blocks are views into one reused buffer."""
    try:
        handle = Path(path).open("rb", buffering=0)  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise ResultsError(f"Cannot read the result file {path}: {exc.strerror}; check the path.") from exc
    with handle:
        for block in BlockReader(handle, BLOCK_SIZE):
            yield block.count, block.data


def iter_results(path: PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, result)`` for each result line, in file order.

    Lines that are not JSON result objects are skipped while reading and then raised together as one
    ``ResultsError`` naming their line numbers, after every good line was yielded.

        for line, result in iter_results("results.jsonl"): ...
    """
    garbled: list[int] = []
    for line, raw in _lines(path):
        try:
            result = orjson.loads(raw)
        except orjson.JSONDecodeError:
            result = None
        if isinstance(result, dict):
            yield line, result
        else:
            garbled.append(line)
    if garbled:
        raise _garbled_error(path, garbled)


def _garbled_error(path: PathLike, garbled: list[int]) -> ResultsError:
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
    for number, raw in _lines(path):
        if number == line:
            return orjson.loads(raw)
        if number > line:
            break
    raise ResultsError(f"{path} has no result on line {line}.")


# ---------------------------------------------------------------------------------------------- merge


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


def _outcome(raw: Any) -> Outcome | None:
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
    for lines, block in _blocks(path):
        try:
            found.update((o.custom_id, o) for o in map(_typed_outcome, _decode_outcome_lines(block)))
        except (msgspec.DecodeError, msgspec.ValidationError):
            for offset, raw in enumerate(bytes(block).split(b"\n")):
                outcome = _outcome(raw) if raw.strip() else False
                if outcome is None:
                    garbled.append(first_line + offset)
                elif outcome:
                    found[outcome.custom_id] = outcome
        first_line += lines
    if garbled:
        raise _garbled_error(path, garbled)
    return found


@dataclass
class MergeReport:
    """What ``merge_results`` wrote and what it left out (every left-out line is named)."""

    output: Path
    written: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # status -> results written
    replaced: int = 0  # older results superseded by a later one for the same custom_id
    kept_success: int = 0  # later failures ignored because a success was already there
    unknown: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, custom_id) not asked for
    unknown_count: int = 0
    bad_lines: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, why)
    bad_count: int = 0
    missing: int = 0  # asked-for custom_ids with no result at all (only with custom_ids=)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "output": str(self.output)}


def merge_results(
    paths: Sequence[PathLike], out: PathLike, custom_ids: set[str] | None = None
) -> MergeReport:
    """Merges several jobs' result files (oldest job first) into one OpenAI result JSONL at ``out``.

    The latest result per custom_id wins, but a success is never replaced by a later failure. With
    ``custom_ids``, results for other ids are left out and listed in ``report.unknown``. Lines that are not
    result objects are listed in ``report.bad_lines``. ``out`` is written to a temporary file and renamed.

        report = merge_results([old_output, old_errors, retry_output], "results.jsonl", ids)
    """
    report = MergeReport(Path(out))
    chosen: dict[str, tuple[int, int, bool]] = {}  # custom_id -> (file index, line, succeeded)
    for index, path in enumerate(paths):
        for line, raw in _lines(path):
            _consider(report, chosen, custom_ids, index, str(path), line, raw)
    keep: list[set[int]] = [set() for _ in paths]
    for index, line, _ in chosen.values():
        keep[index].add(line)
    _write_chosen(paths, keep, Path(out), report)
    if custom_ids is not None:
        report.missing = len(custom_ids - chosen.keys())
    return report


def _consider(
    report: MergeReport,
    chosen: dict[str, tuple[int, int, bool]],
    custom_ids: set[str] | None,
    index: int,
    name: str,
    line: int,
    raw: Any,
) -> None:
    outcome = _outcome(raw)
    if outcome is None or outcome.custom_id is None:
        why = "not a JSON result object" if outcome is None else "no custom_id"
        report.bad_count += 1
        if len(report.bad_lines) < MAX_LISTED:
            report.bad_lines.append((name, line, why))
        return
    custom_id, status = outcome.custom_id, outcome.status
    if custom_ids is not None and custom_id not in custom_ids:
        report.unknown_count += 1
        if len(report.unknown) < MAX_LISTED:
            report.unknown.append((name, line, custom_id))
        return
    previous = chosen.get(custom_id)
    succeeded = status == "succeeded"
    if previous is not None:
        if previous[2] and not succeeded:
            report.kept_success += 1
            return
        report.replaced += 1
    chosen[custom_id] = (index, line, succeeded)


def _write_chosen(paths: Sequence[PathLike], keep: list[set[int]], out: Path, report: MergeReport) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            for path, lines in zip(paths, keep, strict=True):
                if not lines:
                    continue
                for line, raw in _lines(path):
                    if line in lines:
                        handle.write(raw)
                        handle.write(b"\n")
                        status = _outcome(raw).status  # type: ignore[union-attr]
                        report.counts[status] = report.counts.get(status, 0) + 1
                        report.written += 1
        os.replace(temp, out)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------- the table


def load_results(paths: PathLike | Sequence[PathLike], requests: PathLike | None = None) -> pd.DataFrame:
    """The flat results table: one row per request (see ``_result_rows.SCHEMA`` for the columns).

    Rows come in result-file order. Several files are merged like ``merge_results`` does (latest result
    wins, a success is never replaced). With ``requests`` (the batch's request file) the table gains a
    ``prompt`` column (the last user message, or the embedding input) and a ``missing`` row, at the end in
    request order, for each request without a result. Lines that are not result objects, and results for
    custom_ids not in ``requests``, are named in ``table.attrs`` (``garbled_lines``, ``unknown_custom_ids``,
    each with a ``*_count``); unknown ones are still rows. ``line`` is the result's line in its file.

        table = load_results("results.jsonl", requests="requests.jsonl")
    """
    files = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    attrs: dict[str, Any] = {"garbled_lines": [], "garbled_count": 0}
    table = _read_results(files, attrs)
    if len(files) > 1 or _has_duplicates(table):
        keep = _winners(table)
        if len(keep) < table.num_rows:
            table = table.take(pa.array(keep, type=pa.int64()))
    if requests is not None:
        table = _with_requests(table, Path(requests), attrs)
    frame = _to_pandas(table)
    frame.attrs.update(attrs)
    return frame


def _read_results(files: list[PathLike], attrs: dict[str, Any]) -> pa.Table:
    """Every result line of ``files`` as one arrow table (garbled lines counted in ``attrs``)."""
    columns, garbled = Columns(), attrs["garbled_lines"]
    for path in files:
        _read_part(path, columns, attrs, garbled)
    return columns.table()


def _read_part(path: PathLike, columns: Columns, attrs: dict[str, Any], garbled: list) -> None:
    """Adds the rows of the lines of ``path`` to ``columns``."""
    collecting = gc.isenabled()
    gc.disable()  # millions of short-lived objects, no cycles: the collector would only walk them
    try:
        first_line = 1
        for lines, block in _blocks(path):
            bad = columns.add_block(block, first_line, lines)
            first_line += lines
            attrs["garbled_count"] += len(bad)
            garbled += [(str(path), number) for number in bad[: MAX_LISTED - len(garbled)]]
    finally:
        if collecting:
            gc.enable()


def _has_duplicates(table: pa.Table) -> bool:
    ids = table.column("custom_id")
    return pc.count_distinct(ids, mode="all").as_py() != len(ids)


def _winners(table: pa.Table) -> list[int]:
    """Row indices to keep, in file order: per custom_id the latest, unless that drops a success."""
    ids = table.column("custom_id").to_pylist()
    succeeded = pc.equal(table.column("status"), "succeeded").to_pylist()
    best: dict[Any, int] = {}
    for row, custom_id in enumerate(ids):
        key = custom_id if custom_id is not None else ("row", row)
        previous = best.get(key)
        if previous is None or not (succeeded[previous] and not succeeded[row]):
            best[key] = row
    return sorted(best.values())


def _request_columns(requests: Path) -> tuple[pa.Array, pa.Array]:
    """The request file's custom_ids and prompts as arrow arrays."""
    ids, prompts = request_prompts(requests)
    return pa.array(ids, type=pa.large_string()), pa.array(prompts, type=pa.large_string())


def _with_requests(table: pa.Table, requests: Path, attrs: dict[str, Any]) -> pa.Table:
    """Adds the prompt column and a ``missing`` row per request without result (no copy of the results)."""
    all_ids, all_prompts = _request_columns(requests)
    request_ids, prompts = all_ids, all_prompts
    if pc.count_distinct(all_ids, mode="all").as_py() != len(all_ids):
        last = {custom_id: row for row, custom_id in enumerate(all_ids.to_pylist())}  # the last wins
        keep = pa.array(sorted(last.values()), type=pa.int64())
        request_ids, prompts = all_ids.take(keep), all_prompts.take(keep)
    ids = table.column("custom_id")
    where = pc.index_in(ids, value_set=request_ids)
    unknown = pc.filter(ids, pc.is_null(where)).to_pylist()
    attrs["unknown_custom_ids"] = unknown[:MAX_LISTED]
    attrs["unknown_count"] = len(unknown)
    table = table.add_column(1, "prompt", prompts.take(where))
    missing = pc.invert(pc.is_in(all_ids, value_set=ids))
    return _with_missing(table, all_ids, all_prompts, missing)


def _with_missing(table: pa.Table, request_ids: pa.Array, prompts: pa.Array, missing: pa.Array) -> pa.Table:
    count = pc.sum(missing).as_py() or 0
    if not count:
        return table
    extra = {column.name: pa.nulls(count, type=column.type) for column in table.schema}
    extra["custom_id"] = pc.filter(request_ids, missing)
    extra["prompt"] = pc.filter(prompts, missing)
    extra["status"] = pa.array(["missing"] * count, type=pa.large_string())
    return pa.concat_tables([table, pa.table(extra, schema=table.schema)])


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    ints = {pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int64Dtype()}
    frame = table.to_pandas(types_mapper=ints.get, self_destruct=True, split_blocks=True)
    return frame
