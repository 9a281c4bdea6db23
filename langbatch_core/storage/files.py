"""A store of one ``batch.json`` per batch, next to the batch's files (the default of earlier versions).

from langbatch_core import FileBatchStorage
storage = FileBatchStorage()            # <LANGBATCH_DATA_DIR or ~/.langbatch>/batches/<id>/batch.json
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import orjson

from langbatch_core.errors import StorageError
from langbatch_core.storage.base import BatchRecord, BatchStorage, not_found, owner_key

RECORD_FILE = "batch.json"
DEFAULT_STORE_HINT = (
    " Batches saved without storage= (Python, the `langbatch` CLI, the dashboard) are in the default DuckDB "
    "store: Batch.load(batch_id), or storage=DuckDBBatchStorage()."
)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file + rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FileBatchStorage(BatchStorage):
    """Keeps each record as ``<data_dir>/batches/<id>/batch.json`` (written atomically).

    ``delete()`` forgets the record; ``Batch.delete()`` also removes the batch's files.
    """

    def _record_path(self, batch_id: str) -> Path:
        return self.batch_dir(batch_id) / RECORD_FILE

    def save(self, record: BatchRecord) -> None:
        try:
            write_atomic(
                self._record_path(record.id), orjson.dumps(record.to_dict(), option=orjson.OPT_INDENT_2)
            )
        except OSError as exc:
            raise StorageError(f"Cannot write the record of batch {record.id}: {exc}") from exc

    def load(self, batch_id: str) -> BatchRecord:
        path = self._record_path(batch_id)
        if not path.is_file():
            raise not_found(batch_id, f"the file store at {self.data_dir / 'batches'}", DEFAULT_STORE_HINT)
        return self._read(path)

    def list(self, owner: str | None = None) -> list[BatchRecord]:
        root = self.data_dir / "batches"
        paths = sorted(root.glob(f"*/{RECORD_FILE}")) if root.is_dir() else []
        wanted = None if owner is None else owner_key(owner)
        records = [r for r in map(self._read, paths) if wanted is None or owner_key(r.owner or "") == wanted]
        return sorted(records, key=lambda r: r.created_at, reverse=True)

    def delete(self, batch_id: str) -> None:
        path = self._record_path(batch_id)
        if not path.is_file():
            raise not_found(batch_id, f"the file store at {self.data_dir / 'batches'}", DEFAULT_STORE_HINT)
        path.unlink()

    @staticmethod
    def _read(path: Path) -> BatchRecord:
        try:
            data = orjson.loads(path.read_bytes())
            if not isinstance(data, dict):
                raise TypeError(f"a JSON {type(data).__name__}, not an object")
            record = BatchRecord.from_dict(data)
        except (OSError, orjson.JSONDecodeError, TypeError) as exc:
            raise StorageError(
                f"The batch record {path} is unreadable ({exc}); restore or delete it."
            ) from exc
        if record.id != path.parent.name:
            raise StorageError(
                f"The batch record {path} names another batch ({record.id!r}); restore or delete it."
            )
        return record
