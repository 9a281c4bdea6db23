"""The flat results table: one row per request, built from a typed decode of each line straight into arrow
columns (``rows``), so a field first seen late in the file is never lost, and memory stays near the size of
the text it holds.

    table = load_results("results.jsonl", requests="requests.jsonl")   # one row per request
    export_results(table[table.status == "failed"], "failed.csv")
"""

from __future__ import annotations

import gc
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from langbatch_core.results.lines import MAX_LISTED, PathLike, result_blocks
from langbatch_core.results.rows import Columns, request_prompts


def load_results(
    paths: PathLike | Sequence[PathLike],
    requests: PathLike | None = None,
    *,
    order: Literal["results", "requests"] = "results",
) -> pd.DataFrame:
    """The flat results table: one row per request (see ``rows.SCHEMA`` for the columns).

    Rows come in result-file order. Several files are merged like ``merge_results`` does (latest result
    wins, a success is never replaced). With ``requests`` (the batch's request file) the table gains a
    ``prompt`` column (the last user message, or the embedding input) and a ``missing`` row, at the end in
    request order, for each request without a result; with ``order="requests"`` too, every row is in the
    request file's order (read in the same pass), rows of custom_ids not in it last. Lines that are not
    result objects, and results for custom_ids not in ``requests``, are named in ``table.attrs``
    (``garbled_lines``, ``unknown_custom_ids``, each with a ``*_count``); unknown ones are still rows.
    ``line`` is the result's line in its file.

        table = load_results("results.jsonl", requests="requests.jsonl", order="requests")
    """
    files = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    attrs: dict[str, Any] = {"garbled_lines": [], "garbled_count": 0}
    table = _read_results(files, attrs)
    if len(files) > 1 or _has_duplicates(table):
        keep = _winners(table)
        if len(keep) < table.num_rows:
            table = table.take(pa.array(keep, type=pa.int64()))
    if requests is not None:
        table, request_ids = _with_requests(table, Path(requests), attrs)
        if order == "requests":
            table = _in_order_of(table, request_ids)
    frame = _to_pandas(table)
    frame.attrs.update(attrs)
    return frame


def _read_results(files: list[PathLike], attrs: dict[str, Any]) -> pa.Table:
    """Every result line of ``files`` as one arrow table (garbled lines counted in ``attrs``)."""
    columns, garbled = Columns(), attrs["garbled_lines"]
    for path in files:
        _read_part(path, columns, attrs, garbled)
    return columns.table()


def _read_part(
    path: PathLike, columns: Columns, attrs: dict[str, Any], garbled: list[tuple[str, int]]
) -> None:
    """Adds the rows of the lines of ``path`` to ``columns``."""
    collecting = gc.isenabled()
    gc.disable()  # millions of short-lived objects, no cycles: the collector would only walk them
    try:
        first_line = 1
        for lines, block in result_blocks(path):
            bad = columns.add_block(block, first_line, lines)
            first_line += lines
            attrs["garbled_count"] += len(bad)
            garbled += [(str(path), number) for number in bad[: MAX_LISTED - len(garbled)]]
    finally:
        if collecting:
            gc.enable()


def _has_duplicates(table: pa.Table) -> bool:
    ids = table.column("custom_id")
    distinct: int = pc.count_distinct(ids, mode="all").as_py()
    return distinct != len(ids)


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


def _with_requests(table: pa.Table, requests: Path, attrs: dict[str, Any]) -> tuple[pa.Table, pa.Array]:
    """Adds the prompt column and a ``missing`` row per request without result (no copy of the results);
    the table and the request file's custom_ids in order (each once)."""
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
    return _with_missing(table, all_ids, all_prompts, missing), request_ids


def _in_order_of(table: pa.Table, request_ids: pa.Array) -> pa.Table:
    """``table``'s rows in the order of ``request_ids`` (a stable sort), custom_ids not in it last."""
    position = pc.index_in(table.column("custom_id"), value_set=request_ids)
    if position.null_count == 0 and len(position) and pc.all(pc.greater(position[1:], position[:-1])).as_py():
        return table
    return table.take(pc.sort_indices(position))  # nulls (unknown custom_ids) go last


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
    frame: pd.DataFrame = table.to_pandas(types_mapper=ints.get, self_destruct=True, split_blocks=True)
    return frame
