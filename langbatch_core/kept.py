"""Tables derived from a batch's files, kept in its folder so that a fresh process reads one file instead of
building them again: the flat results table (``results.kept``) and a table batch's joined table
(``tables._cache``).

    frame = read_kept(folder / ".results.arrow", key)   # None unless it was made with exactly ``key``
    write_kept(folder / ".results.arrow", frame, key)   # a temporary file renamed; a failure is logged

``key`` (bytes, kept in the file's metadata) names every input the table was made from — files by
``file_identity``, and ``versions()`` — so that new results, a retry's, or a new version of the code each make
a new key: a file with another key, or one that cannot be read (damaged, half-written by a crash), is
ignored, and its caller builds the table and writes it again. A kept file is derived data (the same rows and
answers as the batch's other files); its dotted name keeps it on this machine (``SharedFilesStorage`` skips
dotted names). ``.parquet`` files are Parquet (small); ``.arrow`` files Arrow IPC with LZ4 (long texts read
back about three times faster than from Parquet).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

KEY, ATTRS = b"langbatch.kept.key", b"langbatch.kept.attrs"  # in the file's metadata
ABANDONED_AFTER = 3600.0  # seconds: a temporary file older than this was left by a killed process
log = logging.getLogger("langbatch.kept")


def file_identity(path: Path) -> list[int] | None:
    """A file's identity (inode, size, modification and change times), None if it is missing: a file
    replaced by a rename, as every merge does, never has the old one's identity."""
    try:
        stat = Path(path).stat()
    except FileNotFoundError:
        return None
    return [stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def versions() -> list[str]:
    """What else shapes a kept table: the versions of LangBatch, pandas and pyarrow."""
    import pandas as pd
    import pyarrow as pa

    from langbatch_core import __version__

    return [__version__, pd.__version__, pa.__version__]


def read_kept(path: Path, key: bytes) -> Any:
    """The DataFrame kept at ``path`` (its ``attrs`` too) if it was made with ``key``, else None."""
    try:
        with Path(path).open("rb") as file:  # one open file: a rename meanwhile cannot mix two versions
            if _key_of(Path(path), file) != key:
                return None
            table = _read(Path(path), file)
        frame = table.to_pandas()
        frame.attrs = orjson.loads(table.schema.metadata[ATTRS])
    except FileNotFoundError:
        return None
    except Exception as exc:  # whatever is wrong with it, the files it was made from are still there
        log.info("Ignoring %s (%s): it is made again.", path, exc)
        return None
    return frame


def is_kept(path: Path, key: bytes) -> bool:
    """Whether ``path`` holds a table made with ``key`` (its metadata only is read)."""
    try:
        with Path(path).open("rb") as file:
            return _key_of(Path(path), file) == key
    except Exception:
        return False


def _key_of(path: Path, file: Any) -> bytes | None:
    if path.suffix == ".arrow":
        import pyarrow.ipc as ipc

        metadata = ipc.open_file(file).schema.metadata
    else:
        import pyarrow.parquet as pq

        metadata = pq.read_schema(file).metadata
    file.seek(0)
    found: bytes | None = (metadata or {}).get(KEY)
    return found


def _read(path: Path, file: Any) -> Any:
    if path.suffix == ".arrow":
        import pyarrow.ipc as ipc

        return ipc.open_file(file).read_all()
    import pyarrow.parquet as pq

    return pq.read_table(file)


def write_kept(path: Path, frame: Any, key: bytes) -> None:
    """Keeps ``frame`` (and its ``attrs``, JSON) at ``path`` under ``key``; whatever goes wrong is logged
    (the table was built and is used all the same) and leaves no file behind."""
    import pyarrow as pa

    path, temp = Path(path), None
    try:
        _drop_abandoned(path)
        table = pa.Table.from_pandas(frame)
        metadata = {**(table.schema.metadata or {}), KEY: key, ATTRS: orjson.dumps(frame.attrs)}
        table = table.replace_schema_metadata(metadata)
        fd, temp = tempfile.mkstemp(prefix=f"{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as out:
            _write(path, table, out)
        os.replace(temp, path)
    except Exception as exc:
        log.warning("Cannot keep %s (%s); it is made again when asked for.", path, exc)
        if temp is not None:
            Path(temp).unlink(missing_ok=True)


def _write(path: Path, table: Any, out: Any) -> None:
    if path.suffix == ".arrow":
        import pyarrow as pa
        import pyarrow.ipc as ipc

        options = ipc.IpcWriteOptions(compression="lz4")
        with ipc.new_file(pa.output_stream(out), table.schema, options=options) as writer:
            writer.write_table(table)
        return
    import pyarrow.parquet as pq

    pq.write_table(table, out)


def _drop_abandoned(path: Path) -> None:
    """Removes temporary files a killed process left (a write takes a second or so, not an hour)."""
    for temp in path.parent.glob(f"{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - temp.stat().st_mtime > ABANDONED_AFTER:
                temp.unlink()
