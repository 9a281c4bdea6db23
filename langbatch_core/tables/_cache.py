"""The joined table of a table batch kept on disk, so that a fresh process reads one Parquet file instead of
loading every result and joining them again.

    key = joined_key(spec, table_path, [(batch_id, results_path), ...], price, free, unanswered)
    joined = read_joined(batch_dir, key)      # None unless the file was made from exactly these inputs
    write_joined(batch_dir, joined, key)      # a temporary file renamed; a failure is logged, never raised

The file, ``.joined.parquet`` in the batch's folder, is derived data (the user's rows and their answers, as
in the batch's other files). Its name is hidden so that a shared object store leaves it on this machine
(``SharedFilesStorage`` skips dotted names): another machine builds its own. Its key, kept in the file's
metadata, names every input of the join, so that a retry's results, the pilot's, a job that ended or a new
version of the code each make a new key: a file with another key, or one that cannot be read (damaged,
half-written by a crash), is ignored and written again (``langbatch_core.kept``). Never the record's version:
a worker saves a running batch every cycle without changing its table.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from langbatch_core.kept import KEY, file_identity, read_kept, versions, write_kept

CACHE_FILE = ".joined.parquet"
FORMAT = 1  # raise it when join_results' output changes: files of an older format are then rebuilt
__all__ = ["CACHE_FILE", "KEY", "joined_key", "read_joined", "write_joined"]


def joined_key(
    spec: dict[str, Any],
    table: Path,
    results: Sequence[tuple[str, Path]],
    price: Sequence[float] | None,
    free: bool,
    unanswered: str,
) -> bytes:
    """What the joined table is made from: ``spec`` (``TableSpec.to_dict()``), the table's copy, each part's
    (batch id, results file), the model's price, whether the connection is free, what a row without an
    answer says."""
    inputs = {
        "format": FORMAT,
        "versions": versions(),
        "spec": {name: value for name, value in spec.items() if name != "rest_id"},
        "table": file_identity(table),
        "results": [[batch_id, file_identity(path)] for batch_id, path in results],
        "price": list(price) if price is not None else None,
        "free": free,
        "unanswered": unanswered,
    }
    return orjson.dumps(inputs, option=orjson.OPT_SORT_KEYS)


def read_joined(folder: Path, key: bytes) -> Any:
    """The table kept in ``folder`` if it was made with ``key``, else None (none, other inputs, damaged)."""
    frame = read_kept(Path(folder) / CACHE_FILE, key)
    return None if frame is None else _vectors_as_lists(frame)


def write_joined(folder: Path, frame: Any, key: bytes) -> None:
    """Keeps ``frame`` in ``folder`` under ``key``; whatever goes wrong is logged (the table was joined
    and is shown all the same) and leaves no file behind."""
    write_kept(Path(folder) / CACHE_FILE, frame, key)


def _vectors_as_lists(frame: Any) -> Any:
    """Parquet gives list cells back as arrays: the embedding column holds lists, as join_results makes it."""
    import pandas as pd

    column = frame.attrs.get("answer_columns", {}).get("embedding")
    if column is not None:
        vectors = [None if vector is None else vector.tolist() for vector in frame[column]]
        frame[column] = pd.Series(vectors, index=frame.index, dtype=object)
    return frame
