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


def result_lines(n: int, answer: str = "answer {i}") -> tuple[bytes, bytes]:
    """(requests, results) JSONL for ``n`` chat requests: every 5th rejected (400), every 7th expired."""
    requests, results = [], []
    for i in range(n):
        cid = f"req-{i}"
        requests.append(
            {
                "custom_id": cid,
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"question {i}"}]},
            }
        )
        if i % 7 == 6:
            response, error = None, {"code": "batch_expired", "message": "The completion window expired."}
        elif i % 5 == 4:
            body = {
                "error": {"message": "bad value", "type": "invalid_request_error", "code": "invalid_value"}
            }
            response, error = {"status_code": 400, "request_id": f"r{i}", "body": body}, None
        else:
            usage = {"prompt_tokens": 10 + i, "completion_tokens": 5, "total_tokens": 15 + i}
            message = {"role": "assistant", "content": answer.format(i=i)}
            choice = {"index": 0, "message": message, "finish_reason": "length" if i % 3 == 2 else "stop"}
            body = {
                "id": f"c{i}",
                "object": "chat.completion",
                "model": "gpt-4o-mini",
                "choices": [choice],
                "usage": usage,
            }
            response, error = {"status_code": 200, "request_id": f"r{i}", "body": body}, None
        results.append({"id": f"batch_req_{i}", "custom_id": cid, "response": response, "error": error})

    def jsonl(rows):
        return "".join(json.dumps(r) + "\n" for r in rows).encode()

    return jsonl(requests), jsonl(results)


def stored_batch_with_results(n: int = 20, answer: str = "answer {i}", **fields):
    """A stored record whose folder holds ``n`` requests and their (mixed) results; returns the record."""
    import common

    requests, results = result_lines(n, answer)
    not_run = sum(1 for i in range(n) if i % 7 == 6)
    failed = sum(1 for i in range(n) if i % 7 != 6 and i % 5 == 4)
    counts = {"succeeded": n - not_run - failed, "failed": failed, "not_run": not_run, "pending": 0}
    record = make_record(1, request_count=n, **{**counts, **fields})
    folder = common.storage().batch_dir(record.id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "requests.jsonl").write_bytes(requests)
    (folder / "results.jsonl").write_bytes(results)
    store([record])
    return record


def button(at: AppTest, label: str):
    """The button labelled ``label`` (the Batches page's action buttons are keyed by the state drawn)."""
    found = [b for b in at.button if b.label == label]
    assert len(found) == 1, f"{len(found)} buttons labelled {label!r}: {[b.label for b in at.button]}"
    return found[0]
