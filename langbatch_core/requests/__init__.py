"""Request files: reading, validating, estimating and splitting OpenAI batch JSONL.

    from langbatch_core.requests import validate_file
    report = validate_file("requests.jsonl")       # every problem as an Issue, the estimate, the split plan
    report.raise_for_errors()

The package's modules, one concept each:

- ``files``: the public operations on a request file (``validate_file``, ``iter_requests``,
  ``request_ids``, ``write_job_files``, ``write_subset``, ``sample_file``);
- ``report``: what a validation reports (``Issue``, ``Limits``, ``Capabilities``, ``JobPlan``,
  ``ValidationReport``);
- ``chat_body``: what a valid chat completions body is (types, bounds, roles and parts), shared by the
  fast path, the rules and the local engine's bundled model;
- ``scan``: the one pass over a file; ``fast``: its typed decode of chat lines; ``rules`` and ``params``:
  the detailed checker that names every problem;
- ``tokens``: the offline token estimate; ``pricing``: the price table.

The lines themselves are read by ``langbatch_core.jsonl``, which the result files share.
"""

from __future__ import annotations

from langbatch_core.jsonl import BOM, MAX_LINE_BYTES, read_json
from langbatch_core.requests.files import (
    SAMPLES,
    iter_requests,
    request_ids,
    sample_file,
    validate_file,
    write_job_files,
    write_subset,
)
from langbatch_core.requests.report import Capabilities, Issue, JobPlan, Limits, ValidationReport
from langbatch_core.requests.rules import ENDPOINTS

__all__ = [
    "BOM",
    "ENDPOINTS",
    "MAX_LINE_BYTES",
    "SAMPLES",
    "Capabilities",
    "Issue",
    "JobPlan",
    "Limits",
    "ValidationReport",
    "iter_requests",
    "read_json",
    "request_ids",
    "sample_file",
    "validate_file",
    "write_job_files",
    "write_subset",
]
