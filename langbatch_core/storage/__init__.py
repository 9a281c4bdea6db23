"""Batch stores: ``FileBatchStorage`` (default), ``DuckDBBatchStorage`` (shared by the CLI and dashboard).

from langbatch_core.storage import DuckDBBatchStorage
rows = [record.summary() for record in DuckDBBatchStorage().list()]
"""

from langbatch_core.storage.base import BatchRecord, BatchStorage, JobRecord, check_batch_id
from langbatch_core.storage.duckdb import DuckDBBatchStorage
from langbatch_core.storage.files import FileBatchStorage

__all__ = [
    "BatchRecord",
    "BatchStorage",
    "DuckDBBatchStorage",
    "FileBatchStorage",
    "JobRecord",
    "check_batch_id",
]
