"""Batch stores: ``DuckDBBatchStorage`` (the default, shared by Python, the CLI and the dashboard),
``FileBatchStorage`` (one ``batch.json`` per batch), or yours (a ``BatchStorage`` subclass).

from langbatch_core.storage import default_storage
rows = [record.summary() for record in default_storage().list()]
"""

from langbatch_core.storage.base import BatchRecord, BatchStorage, BatchSummary, JobRecord, check_batch_id
from langbatch_core.storage.default import (
    default_storage,
    describe_default_storage,
    load_from_default_stores,
)
from langbatch_core.storage.duckdb import DuckDBBatchStorage
from langbatch_core.storage.files import FileBatchStorage

__all__ = [
    "BatchRecord",
    "BatchStorage",
    "BatchSummary",
    "DuckDBBatchStorage",
    "FileBatchStorage",
    "JobRecord",
    "check_batch_id",
    "default_storage",
    "describe_default_storage",
    "load_from_default_stores",
]
