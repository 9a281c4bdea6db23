"""Helpers for the dashboard's AppTest tests: the app, page switching, sample request files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"
if str(DASHBOARD) not in sys.path:  # the pages import `common` and `connections` from there
    sys.path.insert(0, str(DASHBOARD))

APP = str(DASHBOARD / "app.py")


def open_page(page: str, timeout: float = 60) -> AppTest:
    """Run the app on ``page`` ("new_batch", "batches", "results", "settings") and return the AppTest."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    if page != "new_batch":
        at.switch_page(f"views/{page}.py").run()
    return at


def chat_lines(n: int = 3, model: str = "gpt-4o-mini", prompt: str = "question {i}") -> bytes:
    """``n`` valid chat completion request lines."""
    lines = [
        {
            "custom_id": f"req-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": prompt.format(i=i)}]},
        }
        for i in range(n)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def texts(at: AppTest, kind: str) -> str:
    """Every ``kind`` element's text (error, warning, info, success, text, code, markdown) joined."""
    return "\n".join(str(el.value) for el in getattr(at, kind))


@pytest.fixture
def data_dir(isolated_data_dir: Path) -> Path:
    isolated_data_dir.mkdir(parents=True, exist_ok=True)
    return isolated_data_dir


def make_record(n: int = 0, status: str = "completed", jobs: int = 1, **fields):
    """A stored-looking BatchRecord (no files), for pages that only read the store."""
    import time

    from langbatch_core.storage import BatchRecord, JobRecord

    now = time.time() - 1000 + n
    record = BatchRecord(
        id=f"lb_test{n:05d}",
        endpoint="/v1/chat/completions",
        kind="OpenAIChatCompletionBatch",
        name=f"batch {n}",
        model="gpt-4o-mini",
        connection={"kind": "local", "name": "Local engine"},
        status=status,
        request_count=10,
        succeeded=6,
        failed=2,
        pending=2,
        estimated_cost_usd=0.0012,
        created_at=now,
        updated_at=now + 5,
        jobs=[
            JobRecord(
                key=f"a1-j{j + 1}",
                attempt=1,
                request_count=5,
                input_file=f"jobs/a1-j{j + 1}/input.jsonl",
                status=status,
                provider_job_id=f"batch_{n}_{j}",
                created_at=now,
                updated_at=now + 5,
            )
            for j in range(jobs)
        ],
    )
    for key, value in fields.items():
        setattr(record, key, value)
    return record


def store(records) -> None:
    """Save ``records`` in the dashboard's DuckDB store."""
    import common

    for record in records:
        common.storage().save(record)
