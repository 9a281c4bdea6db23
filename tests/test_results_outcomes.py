"""read_outcomes: the brief outcome of each result line that counting and retry() use, read with a typed
decoder; it must say what classify() and is_retryable() say of the full line."""

from __future__ import annotations

import tracemalloc

import pytest
from batch_support import chat_line
from support.data_results import never_run, rejected, success, write_jsonl

from langbatch_core import OpenAIChatCompletionBatch
from langbatch_core.batch.rules import is_retryable, is_retryable_failure
from langbatch_core.errors import ResultsError
from langbatch_core.results import classify, lines, read_outcomes

SHAPES = [
    success("ok"),
    rejected("bad-request"),
    rejected("rate", 429, code="rate_limit_exceeded"),
    rejected("server", 500, code=None),
    rejected("timeout-400", 400, code="timeout"),
    {
        **rejected("typed-only", 400),
        "response": {"status_code": 400, "body": {"error": {"type": "server_error"}}},
    },
    never_run("expired"),
    never_run("cancelled", "batch_cancelled"),
    never_run("other", "something_else"),
    {"custom_id": "no-response-no-error", "response": None, "error": None},
    {"custom_id": "ok-with-error", "response": {"status_code": 200, "body": {}}, "error": {"code": "x"}},
    {"custom_id": 42, "response": {"status_code": 200, "body": {}}},  # odd types: the lenient path
    {"custom_id": "string-status", "response": {"status_code": "500", "body": []}, "error": None},
    {"custom_id": "body-not-object", "response": {"status_code": 503, "body": "Service Unavailable"}},
]


def test_each_outcome_says_what_classify_and_is_retryable_say(tmp_path):
    path = write_jsonl(tmp_path / "results.jsonl", [*SHAPES, ""])
    outcomes = read_outcomes(path)
    assert len(outcomes) == len(SHAPES)
    for result in SHAPES:
        outcome = outcomes[str(result["custom_id"])]
        assert outcome.status == classify(result), result
        if outcome.status != "succeeded" and result["custom_id"] != "string-status":  # "500" < 400: a crash
            for clients in (False, True):
                assert is_retryable_at(outcome, clients) is is_retryable(result, clients), result


def is_retryable_at(outcome, include_client_errors):
    return is_retryable_failure(outcome.status_code, outcome.code, include_client_errors)


def test_a_later_line_wins_and_garbled_lines_are_named(tmp_path):
    path = write_jsonl(tmp_path / "results.jsonl", [never_run("a"), success("a"), "{garbled", success("b")])
    with pytest.raises(ResultsError, match=r"1 line\(s\) .*lines 3\)"):
        read_outcomes(path)
    path = write_jsonl(tmp_path / "results.jsonl", [never_run("a"), success("a")])
    assert read_outcomes(path)["a"].status == "succeeded"


def test_retry_picks_and_counts_from_the_result_file(tmp_path):
    """_update_counts and _ids_to_retry on a batch whose results.jsonl holds every shape of outcome."""
    ids = [str(result["custom_id"]) for result in SHAPES] + ["never-answered"]
    requests = write_jsonl(tmp_path / "in.jsonl", [chat_line(custom_id, "hi") for custom_id in ids])
    batch = OpenAIChatCompletionBatch(requests)
    write_jsonl(batch.results_path, SHAPES)
    batch._jobs.update_counts()
    assert (batch.record.succeeded, batch.record.failed, batch.record.not_run) == (3, 9, 3)
    assert batch._jobs.ids_to_retry(include_client_errors=False) == {
        "rate", "server", "timeout-400", "typed-only", "expired", "cancelled", "other",
        "no-response-no-error", "string-status", "body-not-object", "never-answered",
    }  # fmt: skip
    assert batch._jobs.ids_to_retry(include_client_errors=True) - {"bad-request"} == batch._jobs.ids_to_retry(
        False
    )


def test_counting_a_big_result_file_holds_a_fraction_of_it(tmp_path, monkeypatch):
    monkeypatch.setattr(lines, "BLOCK_SIZE", 256 * 1024)  # the reader's fixed buffers: small next to 10 MB
    ids = [f"r-{i}" for i in range(4_000)]
    batch = OpenAIChatCompletionBatch(write_jsonl(tmp_path / "in.jsonl", [chat_line(i, "hi") for i in ids]))
    answer = "A long answer that fills the result file. " * 50
    path = write_jsonl(batch.results_path, [success(custom_id, answer) for custom_id in ids])
    tracemalloc.start()
    try:
        batch._jobs.update_counts()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert batch.record.succeeded == 4_000
    assert peak < 0.25 * path.stat().st_size, f"peak {peak:,} bytes for a {path.stat().st_size:,}-byte file"
