"""Why requests failed, by error code: the one count behind ``Batch.error_counts()``, ``langbatch status``
and the dashboard's "Errors by code".

    errors_by_code(record.jobs, batch.results_table(), running=False)   # code, count, example
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

COLUMNS = ["code", "count", "example"]


def errors_by_code(jobs: Iterable[Any], table: pd.DataFrame | None, *, running: bool) -> pd.DataFrame:
    """Failed jobs (their ``errors.data``, one per entry) and failed requests of the results ``table`` (a
    failure's code, else its status: ``expired``, ``cancelled``, ``missing``) grouped by code: how many, and
    the first message as an example ("" when none); most frequent first. While ``running``, requests
    without a result are pending, not errors."""
    job_rows = [
        (str(error.get("code") or "unknown"), error.get("message"))
        for job in jobs
        for error in job.errors or []
    ]
    frames = [pd.DataFrame(job_rows, columns=["code", "example"])]
    if table is not None:
        failed = table[table["status"] != "succeeded"]
        if running:
            failed = failed[failed["status"] != "missing"]
        codes = failed["error_code"].fillna(failed["status"]).astype(str)
        frames.append(pd.DataFrame({"code": codes, "example": failed["error_message"]}))
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    failures = pd.concat(frames, ignore_index=True)
    summary = (
        failures.groupby("code", sort=False)
        .agg(count=("code", "size"), example=("example", "first"))
        .reset_index()
    )
    summary["example"] = summary["example"].fillna("")  # "None" in a grid reads like a message
    return summary.sort_values("count", ascending=False, kind="stable", ignore_index=True)[COLUMNS]
