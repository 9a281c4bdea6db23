"""LangBatch: run large LLM jobs through batch APIs, safely.

    from langbatch_core import OpenAIChatCompletionBatch

    batch = OpenAIChatCompletionBatch("data.jsonl")
    batch.start()

Public names are imported lazily, so ``import langbatch_core`` stays cheap for the CLI and the dashboard;
type checkers read them from the ``TYPE_CHECKING`` imports. The three lists below (those imports,
``_EXPORTS``, ``__all__``) name the same things: tests/test_types.py checks it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langbatch_core._lazy import lazy_names

__version__ = "0.1.0"

if TYPE_CHECKING:  # what __getattr__ imports at run time
    from langbatch_core.batch import Batch
    from langbatch_core.chat import OpenAIChatCompletionBatch
    from langbatch_core.embeddings import OpenAIEmbeddingBatch
    from langbatch_core.errors import (
        AuthenticationError,
        BatchNotFoundError,
        BatchStateError,
        BudgetExceededError,
        ConfigurationError,
        InvalidRequestsError,
        JobFailedError,
        LangBatchError,
        MissingAPIKeyError,
        NotOwnerError,
        ProviderError,
        ProviderNotFoundError,
        ProviderUnavailableError,
        RateLimitError,
        ResultsError,
        SchemaError,
        StaleRecordError,
        StorageError,
        TableError,
        TemplateError,
    )
    from langbatch_core.local import LocalEngine
    from langbatch_core.provider_batches import AnthropicChatCompletionBatch, BedrockClaudeChatCompletionBatch
    from langbatch_core.providers import Connection, Retrying
    from langbatch_core.requests import (
        Issue,
        JobPlan,
        Limits,
        ValidationReport,
        iter_requests,
        sample_file,
        validate_file,
        write_job_files,
    )
    from langbatch_core.results import (
        MergeReport,
        classify,
        export_results,
        iter_results,
        load_results,
        merge_results,
        read_result_line,
    )
    from langbatch_core.storage import BatchRecord, BatchStorage, DuckDBBatchStorage, FileBatchStorage
    from langbatch_core.storage.postgres import PostgresBatchStorage

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # errors
    "LangBatchError": "langbatch_core.errors",
    "InvalidRequestsError": "langbatch_core.errors",
    "ConfigurationError": "langbatch_core.errors",
    "MissingAPIKeyError": "langbatch_core.errors",
    "NotOwnerError": "langbatch_core.errors",
    "BatchStateError": "langbatch_core.errors",
    "BudgetExceededError": "langbatch_core.errors",
    "ProviderError": "langbatch_core.errors",
    "AuthenticationError": "langbatch_core.errors",
    "RateLimitError": "langbatch_core.errors",
    "ProviderNotFoundError": "langbatch_core.errors",
    "ProviderUnavailableError": "langbatch_core.errors",
    "JobFailedError": "langbatch_core.errors",
    "ResultsError": "langbatch_core.errors",
    "StorageError": "langbatch_core.errors",
    "BatchNotFoundError": "langbatch_core.errors",
    "StaleRecordError": "langbatch_core.errors",
    "TableError": "langbatch_core.errors",
    "TemplateError": "langbatch_core.errors",
    "SchemaError": "langbatch_core.errors",
    # request files
    "validate_file": "langbatch_core.requests",
    "ValidationReport": "langbatch_core.requests",
    "Issue": "langbatch_core.requests",
    "Limits": "langbatch_core.requests",
    "JobPlan": "langbatch_core.requests",
    "iter_requests": "langbatch_core.requests",
    "write_job_files": "langbatch_core.requests",
    "sample_file": "langbatch_core.requests",
    # result files
    "load_results": "langbatch_core.results",
    "export_results": "langbatch_core.results",
    "merge_results": "langbatch_core.results",
    "iter_results": "langbatch_core.results",
    "classify": "langbatch_core.results",
    "MergeReport": "langbatch_core.results",
    "read_result_line": "langbatch_core.results",
    # batches
    "Batch": "langbatch_core.batch",
    "OpenAIChatCompletionBatch": "langbatch_core.chat",
    "OpenAIEmbeddingBatch": "langbatch_core.embeddings",
    "AnthropicChatCompletionBatch": "langbatch_core.provider_batches",
    "BedrockClaudeChatCompletionBatch": "langbatch_core.provider_batches",
    "Connection": "langbatch_core.providers",
    "Retrying": "langbatch_core.providers",
    # storage
    "BatchStorage": "langbatch_core.storage",
    "FileBatchStorage": "langbatch_core.storage",
    "DuckDBBatchStorage": "langbatch_core.storage",
    "PostgresBatchStorage": "langbatch_core.storage.postgres",
    "BatchRecord": "langbatch_core.storage",
    # local engine
    "LocalEngine": "langbatch_core.local",
}

# a literal list: type checkers take it as what the package exports
__all__ = [
    "AnthropicChatCompletionBatch",
    "AuthenticationError",
    "Batch",
    "BatchNotFoundError",
    "BatchRecord",
    "BatchStateError",
    "BatchStorage",
    "BedrockClaudeChatCompletionBatch",
    "BudgetExceededError",
    "ConfigurationError",
    "Connection",
    "DuckDBBatchStorage",
    "FileBatchStorage",
    "InvalidRequestsError",
    "Issue",
    "JobFailedError",
    "JobPlan",
    "LangBatchError",
    "Limits",
    "LocalEngine",
    "MergeReport",
    "MissingAPIKeyError",
    "NotOwnerError",
    "OpenAIChatCompletionBatch",
    "OpenAIEmbeddingBatch",
    "PostgresBatchStorage",
    "ProviderError",
    "ProviderNotFoundError",
    "ProviderUnavailableError",
    "RateLimitError",
    "ResultsError",
    "Retrying",
    "SchemaError",
    "StaleRecordError",
    "StorageError",
    "TableError",
    "TemplateError",
    "ValidationReport",
    "classify",
    "export_results",
    "iter_requests",
    "iter_results",
    "load_results",
    "merge_results",
    "read_result_line",
    "sample_file",
    "validate_file",
    "write_job_files",
]


__getattr__, __dir__ = lazy_names(__name__, _EXPORTS)
