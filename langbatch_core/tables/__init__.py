"""Tables in, tables out: a batch from a spreadsheet and a prompt template, answers joined back to the rows.

    from langbatch_core.tables import read_table, PromptTemplate, load_schema
    table = read_table("reviews.csv")                 # CSV/TSV, .xlsx (sheet=), Parquet, JSON lines
    table.summary()                                    # rows, column types, warnings
    PromptTemplate("Sentiment of: {{ review }}").check(table.frame.columns)
    write_requests("reviews.csv", spec, requests_path, parquet_path)   # a block at a time, never whole

The batch kinds use it through ``OpenAIChatCompletionBatch.from_table`` / ``OpenAIEmbeddingBatch.from_table``
and ``batch.get_results_table()`` (``_batch.TableBatch``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langbatch_core._lazy import lazy_names

if TYPE_CHECKING:  # what __getattr__ imports at run time
    from langbatch_core.tables._batch import TableBatch
    from langbatch_core.tables._build import TableSpec, custom_ids, request_body
    from langbatch_core.tables._compare import Comparison, compare_batches, compare_tables
    from langbatch_core.tables._issues import TableIssue
    from langbatch_core.tables._join import export_table, join_results, write_xlsx
    from langbatch_core.tables._plan import RequestPlan, WrittenTable, plan_requests, write_requests
    from langbatch_core.tables._read import Table, column_type, excel_sheets, read_table, table_format
    from langbatch_core.tables._schema import (
        FIELD_TYPES,
        AnswerSchema,
        Field,
        check_strict_schema,
        fields_from,
        load_schema,
        response_format,
        schema_from_fields,
    )
    from langbatch_core.tables._template import PromptTemplate

# public name -> private module (imported on first use: the batch kinds import this package, so importing
# it stays cheap for the CLI and the dashboard)
_EXPORTS = {
    "TableBatch": "._batch",
    **dict.fromkeys(["TableSpec", "custom_ids", "request_body"], "._build"),
    **dict.fromkeys(["RequestPlan", "WrittenTable", "plan_requests", "write_requests"], "._plan"),
    "TableIssue": "._issues",
    **dict.fromkeys(["Comparison", "compare_batches", "compare_tables"], "._compare"),
    **dict.fromkeys(["export_table", "join_results", "write_xlsx"], "._join"),
    **dict.fromkeys(["Table", "column_type", "excel_sheets", "read_table", "table_format"], "._read"),
    **dict.fromkeys(
        ["FIELD_TYPES", "AnswerSchema", "Field", "check_strict_schema", "fields_from", "load_schema",
         "response_format", "schema_from_fields"],
        "._schema",
    ),
    "PromptTemplate": "._template",
}  # fmt: skip

__all__ = [
    "FIELD_TYPES",
    "AnswerSchema",
    "Comparison",
    "Field",
    "PromptTemplate",
    "RequestPlan",
    "Table",
    "TableBatch",
    "TableIssue",
    "TableSpec",
    "WrittenTable",
    "check_strict_schema",
    "column_type",
    "compare_batches",
    "compare_tables",
    "custom_ids",
    "excel_sheets",
    "export_table",
    "fields_from",
    "join_results",
    "load_schema",
    "plan_requests",
    "read_table",
    "request_body",
    "response_format",
    "schema_from_fields",
    "table_format",
    "write_requests",
    "write_xlsx",
]


__getattr__, __dir__ = lazy_names(__name__, _EXPORTS)
