"""The one default store, used by Python (no ``storage=``), the CLI and the dashboard alike.

    from langbatch_core.storage import default_storage
    storage = default_storage()        # DuckDBBatchStorage at <data dir>/langbatch.duckdb
    storage, record = load_from_default_stores("lb_3f2a...")

The data directory is ``$LANGBATCH_DATA_DIR`` or ``~/.langbatch``; batch files are in
``<data dir>/batches/<id>/``. One setting, ``LANGBATCH_STORE``, chooses another default store for a team:
``postgresql://user:password@host:5432/db`` (``PostgresBatchStorage``), or ``duckdb:///path/to/file.duckdb``
(or a plain path) for a DuckDB file elsewhere; unset, it is the DuckDB file of the data directory.
``LANGBATCH_FILES=s3://bucket/prefix`` mirrors the batches' files to an object store (``SharedFilesStorage``).
Batches saved by earlier versions, whose Python default was the file store, are still found: loading falls
back to the file store of the same data directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from langbatch_core import config
from langbatch_core.errors import BatchNotFoundError, ConfigurationError
from langbatch_core.storage.base import BatchRecord, BatchStorage, check_batch_id
from langbatch_core.storage.duckdb import DB_FILE, DuckDBBatchStorage
from langbatch_core.storage.files import FileBatchStorage

STORE_ENV = "LANGBATCH_STORE"
FILES_ENV = "LANGBATCH_FILES"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def default_storage(data_dir: str | Path | None = None) -> BatchStorage:
    """The default store: what ``LANGBATCH_STORE`` names, else ``<data dir>/langbatch.duckdb``; the batches'
    files are in ``data_dir`` (default: the data directory), mirrored to ``LANGBATCH_FILES`` when set."""
    store = _records_store(data_dir)
    files = os.environ.get(FILES_ENV, "").strip()
    if not files:
        return store
    from langbatch_core.storage.shared_files import SharedFilesStorage

    return SharedFilesStorage(store, files)


def _records_store(data_dir: str | Path | None) -> BatchStorage:
    setting = os.environ.get(STORE_ENV, "").strip()
    if setting.startswith(POSTGRES_SCHEMES):
        from langbatch_core.storage.postgres import PostgresBatchStorage

        return PostgresBatchStorage(setting, data_dir=data_dir)
    path = _duckdb_path(setting)
    if path is None:
        return DuckDBBatchStorage(data_dir=data_dir)
    return DuckDBBatchStorage(path, data_dir=data_dir if data_dir is not None else config.data_dir_path())


def _duckdb_path(setting: str) -> Path | None:
    if not setting:
        return None
    if setting.startswith("duckdb://"):
        setting = setting.removeprefix("duckdb://")
    elif "://" in setting:
        raise ConfigurationError(
            f"{STORE_ENV} names an unknown kind of store ({setting.split('://')[0]}://): use "
            "postgresql://user:password@host:5432/database, duckdb:///path/to/file.duckdb, or leave it unset "
            "for the DuckDB file of the data directory.",
            field="store",
        )
    return Path(setting).expanduser()


def describe_default_storage(data_dir: str | Path | None = None) -> dict[str, Path | str]:
    """Where a user's batches are: ``{"data_dir", "store", "batches"}`` (nothing is created; a database
    server is named by host, port and database, never with its password)."""
    root = Path(data_dir).expanduser() if data_dir is not None else config.data_dir_path()
    setting = os.environ.get(STORE_ENV, "").strip()
    if setting.startswith(POSTGRES_SCHEMES):
        store: Path | str = _records_store(root).where  # type: ignore[attr-defined]
    else:
        store = _duckdb_path(setting) or root / DB_FILE
    files = os.environ.get(FILES_ENV, "").strip()
    return {
        "data_dir": root,
        "store": store,
        "batches": f"{root / 'batches'} (shared: {files})" if files else root / "batches",
    }


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
            f"No batch {batch_id!r} in the default store ({_where(default)}) or the file store "
            f"({default.data_dir / 'batches'}). Run `langbatch list` to see the stored batches, or check "
            "that LANGBATCH_DATA_DIR (or --data-dir) is the one used when it was saved; a batch saved with "
            "storage=<your store> loads with the same storage=."
        ) from None


def _where(storage: BatchStorage) -> str:
    storage = getattr(storage, "store", storage)  # SharedFilesStorage: where its records are
    return str(getattr(storage, "where", None) or getattr(storage, "path", storage))
