"""Batches: the lifecycle of a request file at a provider (``Batch``; its kinds are ``chat.py`` and
``embeddings.py``).

    from langbatch_core.batch import Batch
    batch = Batch.load("lb_…")

The package's modules: ``lifecycle`` (``Batch``: create, start, refresh, wait, cancel, retry, results),
``state`` (the record, the folder and the lock: ``BatchState``), ``create`` (the request file of
``Batch.create``), ``jobs`` (submission, polling,
reconciliation and counts: ``JobRunner``), ``reader`` (what the result files say: ``ResultsReader``) and
``rules`` (status aggregation and what is retryable: no I/O).
"""

from __future__ import annotations

from langbatch_core.batch.lifecycle import Batch

__all__ = ["Batch"]
