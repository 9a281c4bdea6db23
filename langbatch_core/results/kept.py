"""A batch's flat results table kept beside its result file (``.results.arrow``), so that a fresh process
— the dashboard after a restart, another replica on the same folder — reads it back in a fraction of the
time ``load_results`` takes.

    table = results_table(batch_dir / "results.jsonl", batch_dir / "requests.jsonl")

It is written when a refresh or a worker merges new results (``Batch._results_merged``) or, failing that,
by the first read; it is made again whenever the result or request file changes (their identities are in
its key, see ``langbatch_core.kept``). A file with garbled lines is not kept: its table says so each time.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson

from langbatch_core.kept import file_identity, is_kept, read_kept, versions, write_kept

KEPT_FILE = ".results.arrow"
FORMAT = 1  # raise it when load_results' table changes: kept files of an older format are then rebuilt
_ONE_AT_A_TIME = threading.Lock()  # a worker merges several batches at once: one table in memory at a time


def results_table(results: Path, requests: Path | None) -> Any:
    """``load_results(results, requests=requests, order="requests")``, read from ``.results.arrow`` beside
    ``results`` if it was made from these very files, else loaded and kept there."""
    key = _key(Path(results), requests)
    path = Path(results).parent / KEPT_FILE
    table = read_kept(path, key)
    if table is None:
        table = _load_and_keep(Path(results), requests, path, key)
    return table


def keep_results_table(results: Path, requests: Path | None) -> None:
    """Builds and keeps the table now unless it is kept already (after new results were merged)."""
    key = _key(Path(results), requests)
    path = Path(results).parent / KEPT_FILE
    with _ONE_AT_A_TIME:
        if not is_kept(path, key):
            _load_and_keep(Path(results), requests, path, key)


def _load_and_keep(results: Path, requests: Path | None, path: Path, key: bytes) -> Any:
    from langbatch_core.results.table import load_results

    table = load_results([results], requests=requests, order="requests")
    if not table.attrs.get("garbled_count"):
        write_kept(path, table, key)
    return table


def _key(results: Path, requests: Path | None) -> bytes:
    inputs = {
        "format": FORMAT,
        "versions": versions(),
        "results": file_identity(results),
        "requests": None if requests is None else file_identity(Path(requests)),
    }
    return orjson.dumps(inputs, option=orjson.OPT_SORT_KEYS)
