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
half-written by a crash), is ignored and written again. Never the record's version: a worker saves a running
batch every cycle without changing its table.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

CACHE_FILE = ".joined.parquet"
FORMAT = 1  # raise it when join_results' output changes: files of an older format are then rebuilt
KEY, _ATTRS = b"langbatch.joined.key", b"langbatch.joined.attrs"  # in the file's metadata
ABANDONED_AFTER = 3600.0  # seconds: a temporary file older than this was left by a killed process
log = logging.getLogger("langbatch.tables")


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
    answer says. Files count by identity (inode, size, modification and change times): a merge replaces
    the results file, so a new one never has the old one's identity."""
    import pandas as pd
    import pyarrow as pa

    from langbatch_core import __version__

    inputs = {
        "format": FORMAT,
        "versions": [__version__, pd.__version__, pa.__version__],
        "spec": {name: value for name, value in spec.items() if name != "rest_id"},
        "table": _identity(table),
        "results": [[batch_id, _identity(path)] for batch_id, path in results],
        "price": list(price) if price is not None else None,
        "free": free,
        "unanswered": unanswered,
    }
    return orjson.dumps(inputs, option=orjson.OPT_SORT_KEYS)


def read_joined(folder: Path, key: bytes) -> Any:
    """The table kept in ``folder`` if it was made with ``key``, else None (none, other inputs, damaged)."""
    import pandas as pd
    import pyarrow.parquet as pq

    path = Path(folder) / CACHE_FILE
    try:
        with path.open("rb") as file:  # one open file: a rename meanwhile cannot mix two versions
            metadata = pq.read_schema(file).metadata or {}
            if metadata.get(KEY) != key:
                return None
            file.seek(0)
            frame = pd.read_parquet(file)
        frame.attrs = orjson.loads(metadata[_ATTRS])
    except FileNotFoundError:
        return None
    except Exception as exc:  # whatever is wrong with it, the results are still there to join
        log.info("Ignoring %s (%s): the table is joined again.", path, exc)
        return None
    return _vectors_as_lists(frame)


def write_joined(folder: Path, frame: Any, key: bytes) -> None:
    """Keeps ``frame`` in ``folder`` under ``key``; whatever goes wrong is logged (the table was joined
    and is shown all the same) and leaves no file behind."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    temp = None
    try:
        _drop_abandoned(Path(folder))
        table = pa.Table.from_pandas(frame)
        metadata = {**(table.schema.metadata or {}), KEY: key, _ATTRS: orjson.dumps(frame.attrs)}
        fd, temp = tempfile.mkstemp(prefix=f"{CACHE_FILE}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as out:
            pq.write_table(table.replace_schema_metadata(metadata), out)
        os.replace(temp, Path(folder) / CACHE_FILE)
    except Exception as exc:
        log.warning("Cannot keep the joined table in %s (%s); it is joined when asked for.", folder, exc)
        if temp is not None:
            Path(temp).unlink(missing_ok=True)


def _drop_abandoned(folder: Path) -> None:
    """Removes temporary files a killed process left (a write takes a second or so, not an hour)."""
    for temp in folder.glob(f"{CACHE_FILE}.*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - temp.stat().st_mtime > ABANDONED_AFTER:
                temp.unlink()


def _identity(path: Path) -> list[int] | None:
    try:
        stat = Path(path).stat()
    except FileNotFoundError:
        return None
    return [stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def _vectors_as_lists(frame: Any) -> Any:
    """Parquet gives list cells back as arrays: the embedding column holds lists, as join_results makes it."""
    import pandas as pd

    column = frame.attrs.get("answer_columns", {}).get("embedding")
    if column is not None:
        vectors = [None if vector is None else vector.tolist() for vector in frame[column]]
        frame[column] = pd.Series(vectors, index=frame.index, dtype=object)
    return frame
