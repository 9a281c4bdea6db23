"""The local engine's state on disk, under ``<data dir>/engine/``.

    state = EngineState(Path("~/.langbatch/engine").expanduser())
    file = state.add_file(tmp_path, "requests.jsonl", "batch")      # moves tmp_path into the store

Layout::

    engine/state.sqlite3             files and batches (their API objects as JSON), SQLite in WAL mode
    engine/files/<file id>           file contents (written to a temp name, then renamed)
    engine/progress/<batch id>.jsonl one line per finished request: "<input index>\\t<ok 1|0>\\t<result line>"
    engine/progress/<batch id>.lock  held (flock) by the engine running the batch
    engine/engine.json               address and pid of the running engine (see engine.py)

The progress file is append-only and written with one ``write`` per result, so a process killed at any moment
keeps every result it had recorded; a torn last line (power loss) is ignored on reading.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_kind ON objects (kind, seq);
"""


def new_id(prefix: str) -> str:
    """A fresh object id: ``new_id("batch_")`` -> ``"batch_6f1c..."``."""
    return prefix + secrets.token_hex(12)


class EngineState:
    """Files, batches and per-request progress of one engine data directory.

    Not thread-safe: the engine uses it from its one event-loop thread.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.files_dir = self.root / "files"
        self.progress_dir = self.root / "progress"
        for path in (self.files_dir, self.progress_dir):
            path.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.root / "state.sqlite3", isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self._remove_stale_temp_files()

    def _remove_stale_temp_files(self, age: float = 3600.0) -> None:
        """Temp files a killed engine left (a half-copied upload, a half-written output): those older than
        ``age`` seconds, so that another engine's write in progress on the same directory is spared."""
        cutoff = time.time() - age
        for path in self.files_dir.glob(".*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()

    def close(self) -> None:
        self.db.close()

    # --- generic objects -------------------------------------------------------------------------------
    def put(self, obj: dict[str, Any], kind: str) -> None:
        """Insert or update an object (keeps its place in the listing order)."""
        body = orjson.dumps(obj).decode()
        self.db.execute(
            "INSERT INTO objects (id, kind, body) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET body=excluded.body",
            (obj["id"], kind, body),
        )

    def get(self, object_id: str, kind: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT body FROM objects WHERE id=? AND kind=?", (object_id, kind)).fetchone()
        return orjson.loads(row[0]) if row else None

    def page(
        self, kind: str, *, after: str | None = None, limit: int = 20, order: str = "desc"
    ) -> tuple[list[dict[str, Any]], bool] | None:
        """One page of objects, newest first (or oldest first with ``order="asc"``), and whether more exist.

        Returns None when ``after`` names no object of that kind.
        """
        newest_first = order != "asc"
        cursor_clause, params = "", [kind]
        if after:
            row = self.db.execute("SELECT seq FROM objects WHERE id=? AND kind=?", (after, kind)).fetchone()
            if row is None:
                return None
            cursor_clause = " AND seq < ?" if newest_first else " AND seq > ?"
            params.append(row[0])
        direction = "DESC" if newest_first else "ASC"
        rows = self.db.execute(
            f"SELECT body FROM objects WHERE kind=?{cursor_clause} ORDER BY seq {direction} LIMIT ?",
            (*params, limit + 1),
        ).fetchall()
        return [orjson.loads(r[0]) for r in rows[:limit]], len(rows) > limit

    def all(self, kind: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT body FROM objects WHERE kind=? ORDER BY seq", (kind,)).fetchall()
        return [orjson.loads(r[0]) for r in rows]

    def delete(self, object_id: str) -> None:
        self.db.execute("DELETE FROM objects WHERE id=?", (object_id,))

    # --- files -----------------------------------------------------------------------------------------
    def add_file(self, source: Path, filename: str, purpose: str) -> dict[str, Any]:
        """Move ``source`` into the store as a new file object and return that object."""
        file_id = new_id("file-")
        target = self.file_path(file_id)
        os.replace(source, target)
        return self._register_file(file_id, target, filename, purpose)

    def _register_file(self, file_id: str, path: Path, filename: str, purpose: str) -> dict[str, Any]:
        obj = {
            "id": file_id,
            "object": "file",
            "bytes": path.stat().st_size,
            "created_at": int(time.time()),
            "expires_at": None,
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "status_details": None,
        }
        self.put(obj, "file")
        return obj

    def file_path(self, file_id: str) -> Path:
        return self.files_dir / file_id

    def delete_file(self, file_id: str, *, keep_bytes: bool = False) -> None:
        """Forget the file object; its bytes stay on disk with ``keep_bytes`` (a batch still reads them)."""
        self.delete(file_id)
        if not keep_bytes:
            self.file_path(file_id).unlink(missing_ok=True)

    # --- per-request progress --------------------------------------------------------------------------
    def progress_path(self, batch_id: str) -> Path:
        return self.progress_dir / f"{batch_id}.jsonl"

    def read_progress(self, batch_id: str) -> Iterator[tuple[int, dict[str, Any]]]:
        """(input index, result line) for every request recorded as finished; torn lines are skipped."""
        for index, _ok, raw in self.read_progress_raw(batch_id):
            try:
                yield index, orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue

    def read_progress_raw(self, batch_id: str) -> Iterator[tuple[int, bool, bytes]]:
        """(input index, succeeded?, result line as JSON bytes) for every whole recorded line."""
        for index, ok, _start, line in self._progress_lines(batch_id):
            yield index, ok, line

    def progress_offsets(self, batch_id: str) -> dict[int, tuple[bool, int, int]]:
        """{input index: (succeeded?, start, end)} of each recorded result line in the progress file, so
        that results can be copied from it without holding them all in memory."""
        return {
            index: (ok, start, start + len(line)) for index, ok, start, line in self._progress_lines(batch_id)
        }

    def _progress_lines(self, batch_id: str) -> Iterator[tuple[int, bool, int, bytes]]:
        path = self.progress_path(batch_id)
        if not path.exists():
            return
        offset = 0
        with path.open("rb") as handle:
            for line in handle:
                start, offset = offset, offset + len(line)
                parts = line.split(b"\t", 2)
                if len(parts) != 3 or not line.endswith(b"\n") or not parts[0].isdigit():
                    continue
                yield (
                    int(parts[0]),
                    parts[1] == b"1",
                    start + len(parts[0]) + len(parts[1]) + 2,
                    parts[2][:-1],
                )

    # --- files written by the engine (from a worker thread: no database access here) ---------------------
    def new_file(self) -> NewFile:
        """A file written piece by piece: ``with state.new_file() as out: out.write(b"..."); out.file_id``
        (None when nothing was written). Stored at the end of the ``with`` (temp + rename);
        ``register_file`` it next."""
        return NewFile(self.files_dir)

    def register_file(self, file_id: str, filename: str, purpose: str) -> dict[str, Any]:
        return self._register_file(file_id, self.file_path(file_id), filename, purpose)


class ProgressLog:
    """Append-only record of finished requests: ``log.append(index, ok, result_line)``; ``log.sync()``.

    A line is ``<input index>\t<1 if it succeeded else 0>\t<result line JSON>``.
    """

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.dirty = False

    def append(self, index: int, ok: bool, result: dict[str, Any]) -> None:
        # one write() per line: a killed process leaves whole lines (the kernel has them)
        os.write(self.fd, b"%d\t%d\t%s\n" % (index, ok, result_bytes(result)))
        self.dirty = True

    def sync(self) -> None:
        """Push recorded lines to the disk (survives power loss, not just a killed process)."""
        if self.dirty:
            os.fsync(self.fd)
            self.dirty = False

    def close(self) -> None:
        self.sync()
        os.close(self.fd)


class NewFile:
    """See ``EngineState.new_file``: the temp file is created on the first write, renamed on a clean exit
    and removed after an error."""

    def __init__(self, files_dir: Path) -> None:
        self.files_dir = files_dir
        self.file_id: str | None = None
        self._handle: Any = None
        self._tmp: Path | None = None

    def __enter__(self) -> NewFile:
        return self

    def write(self, data: bytes | memoryview) -> None:
        if self._handle is None:
            self._tmp = self.files_dir / f".new-{secrets.token_hex(6)}.tmp"
            self._handle = self._tmp.open("wb")
        self._handle.write(data)

    def __exit__(self, exc_type: object, *_: object) -> None:
        if self._handle is None:
            return
        assert self._tmp is not None
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        if exc_type is not None:
            self._tmp.unlink(missing_ok=True)
            return
        self.file_id = new_id("file-")
        os.replace(self._tmp, self.files_dir / self.file_id)


def result_bytes(result: dict[str, Any]) -> bytes:
    """A result line as OpenAI writes it: ``{"id": "batch_req_...", "custom_id": ...}`` (Python's JSON
    separators and ASCII escapes, byte for byte like OpenAI's files: ``grep '"error": null'`` works)."""
    return json.dumps(result).encode()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file + rename: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
