"""Result files: read, classify, merge over jobs, flatten into one table, export, count failures.

    merge_results(["job1/output.jsonl", "job1/errors.jsonl", "job2/output.jsonl"], "results.jsonl")
    table = load_results("results.jsonl", requests="requests.jsonl")   # one row per request
    export_results(table[table.status == "failed"], "failed.csv")

The package's modules, one concept each: ``lines`` (a result file's lines, ``iter_results``, ``classify``),
``outcomes`` (the typed brief of each line: ``read_outcomes``), ``merge`` (``merge_results``), ``rows``
(a line as a table row), ``table`` (``load_results``), ``export`` (``export_results``), ``index`` (a line
by custom_id), ``summary`` (failures by error code).

Names are imported on first use: ``index`` and ``lines`` need no pandas, so a caller of those (the
dashboard's first page) does not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langbatch_core._lazy import lazy_names

if TYPE_CHECKING:
    from langbatch_core.results.export import export_results
    from langbatch_core.results.index import find_line, line_index, read_line
    from langbatch_core.results.lines import STATUSES, classify, iter_results, read_result_line
    from langbatch_core.results.merge import MergeReport, merge_results
    from langbatch_core.results.outcomes import Outcome, read_outcomes
    from langbatch_core.results.summary import errors_by_code
    from langbatch_core.results.table import load_results

# public name -> the module of this package that defines it
_EXPORTS = {
    "STATUSES": ".lines",
    "classify": ".lines",
    "iter_results": ".lines",
    "read_result_line": ".lines",
    "Outcome": ".outcomes",
    "read_outcomes": ".outcomes",
    "MergeReport": ".merge",
    "merge_results": ".merge",
    "load_results": ".table",
    "export_results": ".export",
    "line_index": ".index",
    "find_line": ".index",
    "read_line": ".index",
    "errors_by_code": ".summary",
}

__all__ = [
    "STATUSES",
    "MergeReport",
    "Outcome",
    "classify",
    "errors_by_code",
    "export_results",
    "find_line",
    "iter_results",
    "line_index",
    "load_results",
    "merge_results",
    "read_line",
    "read_outcomes",
    "read_result_line",
]


__getattr__, __dir__ = lazy_names(__name__, _EXPORTS)
