"""The one default store, used by Python (no ``storage=``), the CLI and the dashboard alike.

    from langbatch_core.storage import default_storage
    storage = default_storage()        # DuckDBBatchStorage at <data dir>/langbatch.duckdb
    storage, record = load_from_default_stores("lb_3f2a...")

The data directory is ``$LANGBATCH_DATA_DIR`` or ``~/.langbatch``; batch files are in
``<data dir>/batches/<id>/``.
Batches saved by earlier versions, whose Python default was the file store, are still found: loading falls
back to the file store of the same data directory.
"""

from __future__ import annotations

from pathlib import Path

from langbatch_core import config
from langbatch_core.errors import BatchNotFoundError
from langbatch_core.storage.base import BatchRecord, BatchStorage, check_batch_id
from langbatch_core.storage.duckdb import DB_FILE, DuckDBBatchStorage
from langbatch_core.storage.files import FileBatchStorage


def default_storage(data_dir: str | Path | None = None) -> DuckDBBatchStorage:
    """The default store of ``data_dir`` (default: the data directory): ``<data dir>/langbatch.duckdb``."""
    return DuckDBBatchStorage(data_dir=data_dir)


def describe_default_storage(data_dir: str | Path | None = None) -> dict[str, Path]:
    """Where a user's batches are: ``{"data_dir", "store", "batches"}`` (nothing is created)."""
    root = Path(data_dir).expanduser() if data_dir is not None else config.data_dir_path()
    return {"data_dir": root, "store": root / DB_FILE, "batches": root / "batches"}


def load_from_default_stores(
    batch_id: str, data_dir: str | Path | None = None
) -> tuple[BatchStorage, BatchRecord]:
    """The store holding ``batch_id`` and its record: the default store, else the file store of the same
    data directory (batches saved by earlier versions). BatchNotFoundError naming both if neither has it."""
    check_batch_id(batch_id)
    default = default_storage(data_dir)
    try:
        return default, default.load(batch_id)
    except BatchNotFoundError:
        pass
    files = FileBatchStorage(default.data_dir)
    try:
        return files, files.load(batch_id)
    except BatchNotFoundError:
        raise BatchNotFoundError(
            f"No batch {batch_id!r} in the default store ({default.path}) or the file store "
            f"({default.data_dir / 'batches'}). Run `langbatch list` to see the stored batches, or check "
            "that LANGBATCH_DATA_DIR (or --data-dir) is the one used when it was saved; a batch saved with "
            "storage=<your store> loads with the same storage=."
        ) from None
