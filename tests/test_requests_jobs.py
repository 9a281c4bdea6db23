"""The split plan, job files and iter_requests."""

from __future__ import annotations

import json

import pytest
from support.data_requests import chat_request, embedding_request, write_chat_file, write_lines

from langbatch_core.errors import ConfigurationError, InvalidRequestsError
from langbatch_core.requests import JobPlan, Limits, iter_requests, validate_file, write_job_files


def requests(count: int) -> list[dict]:
    return [chat_request(f"r-{i}", f"prompt {i}", max_tokens=16) for i in range(1, count + 1)]


def test_small_file_is_one_job(tmp_path):
    path = write_lines(tmp_path / "r.jsonl", requests(5))
    report = validate_file(path)
    assert len(report.jobs) == 1
    job = report.jobs[0]
    assert (job.first_line, job.last_line, job.request_count) == (1, 5, 5)
    assert job.bytes == path.stat().st_size
    assert job.input_tokens == report.input_tokens


def test_request_limit_splits_into_contiguous_jobs(tmp_path):
    report = validate_file(write_lines(tmp_path / "r.jsonl", requests(7)), limits=Limits(max_requests=3))
    assert [(j.first_line, j.last_line, j.request_count) for j in report.jobs] == [
        (1, 3, 3),
        (4, 6, 3),
        (7, 7, 1),
    ]
    assert sum(job.input_tokens for job in report.jobs) == report.input_tokens


def test_byte_limit_splits(tmp_path):
    path = write_lines(tmp_path / "r.jsonl", requests(6))
    line_bytes = len(path.read_bytes().splitlines()[0]) + 1
    report = validate_file(path, limits=Limits(max_bytes=2 * line_bytes + 5))
    assert [job.request_count for job in report.jobs] == [2, 2, 2]
    assert all(job.bytes <= 2 * line_bytes + 5 for job in report.jobs)


def test_embedding_input_limit_splits(tmp_path):
    lines = [embedding_request(f"e-{i}", ["a", "b", "c"]) for i in range(4)]
    report = validate_file(write_lines(tmp_path / "e.jsonl", lines), limits=Limits(max_embedding_inputs=7))
    assert [job.request_count for job in report.jobs] == [2, 2]


def test_enqueued_token_limit_splits(tmp_path):
    path = write_lines(tmp_path / "r.jsonl", requests(10))
    whole = validate_file(path).input_tokens
    report = validate_file(path, limits=Limits(max_enqueued_tokens=whole // 3))
    assert len(report.jobs) >= 3
    assert all(job.input_tokens <= whole // 3 for job in report.jobs)


def test_blank_lines_stay_inside_ranges_but_are_not_counted(tmp_path):
    path = write_lines(tmp_path / "r.jsonl", [*requests(2), "", *requests(4)[2:]])
    report = validate_file(path, limits=Limits(max_requests=2))
    assert [(j.first_line, j.last_line) for j in report.jobs] == [(1, 2), (4, 5)]


def test_write_job_files_round_trip(tmp_path):
    source = write_lines(
        tmp_path / "win.jsonl", [*requests(3), "", *requests(5)[3:]], newline="\r\n", bom=True
    )
    report = validate_file(source, limits=Limits(max_requests=2))
    paths = write_job_files(source, report.jobs, tmp_path / "jobs")
    assert [p.name for p in paths] == ["job-001.jsonl", "job-002.jsonl", "job-003.jsonl"]
    written = [json.loads(line) for p in paths for line in p.read_bytes().split(b"\n") if line]
    assert [r["custom_id"] for r in written] == ["r-1", "r-2", "r-3", "r-4", "r-5"]
    for path, job in zip(paths, report.jobs, strict=True):
        data = path.read_bytes()
        assert b"\r" not in data and not data.startswith(b"\xef\xbb\xbf")
        assert len(data) == job.bytes
        assert validate_file(path).ok
    assert not list((tmp_path / "jobs").glob(".*.tmp"))


def test_write_job_files_of_a_big_file_preserves_every_byte(tmp_path):
    source = write_chat_file(tmp_path / "big.jsonl", 300)
    report = validate_file(source, limits=Limits(max_bytes=100_000))
    assert len(report.jobs) > 3
    paths = write_job_files(source, report.jobs, tmp_path / "jobs")
    assert b"".join(p.read_bytes() for p in paths) == source.read_bytes()


def test_write_job_files_uses_the_given_plan(tmp_path):
    source = write_lines(tmp_path / "r.jsonl", requests(4))
    paths = write_job_files(source, [JobPlan(3, 4, 2, 0, 0), JobPlan(1, 2, 2, 0, 0)], tmp_path / "out")
    ids = [[json.loads(line)["custom_id"] for line in p.read_text().splitlines()] for p in paths]
    assert ids == [["r-1", "r-2"], ["r-3", "r-4"]]


def test_iter_requests_in_order_skipping_blank_lines(tmp_path):
    source = write_lines(
        tmp_path / "r.jsonl", [*requests(2), "", "   ", *requests(3)[2:]], newline="\r\n", bom=True
    )
    assert [r["custom_id"] for r in iter_requests(source)] == ["r-1", "r-2", "r-3"]


def test_iter_requests_names_a_broken_line(tmp_path):
    source = write_lines(tmp_path / "r.jsonl", [*requests(2), "{broken"])
    with pytest.raises(InvalidRequestsError, match="line 3"):
        list(iter_requests(source))


def test_reader_handles_lines_longer_than_a_block(tmp_path, monkeypatch):
    from langbatch_core import jsonl

    monkeypatch.setattr(jsonl, "BLOCK_SIZE", 1024)
    lines = [chat_request("a", "x" * 5000), chat_request("b", "short"), chat_request("c", "y" * 3000)]
    source = write_lines(tmp_path / "r.jsonl", lines)
    report = validate_file(source)
    assert report.ok and report.request_count == 3
    assert [r["custom_id"] for r in iter_requests(source)] == ["a", "b", "c"]


def test_last_line_without_newline(tmp_path):
    source = tmp_path / "r.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in requests(3)))
    report = validate_file(source)
    assert report.ok and report.request_count == 3
    assert report.jobs[0].bytes == source.stat().st_size + 1


def test_plan_is_the_same_whatever_the_block_size(tmp_path, monkeypatch):
    from langbatch_core import jsonl

    source = write_chat_file(tmp_path / "big.jsonl", 300)
    limits = Limits(max_bytes=150_000, max_requests=70)
    expected = validate_file(source, limits=limits)
    monkeypatch.setattr(jsonl, "BLOCK_SIZE", 4096)  # many blocks, most decoded in one call
    for report in (validate_file(source, limits=limits), validate_file(source)):
        assert report.ok and report.request_count == 300
        assert sum(job.bytes for job in report.jobs) == source.stat().st_size
        assert report.input_tokens == expected.input_tokens
    assert validate_file(source, limits=limits).jobs == expected.jobs
    assert len(expected.jobs) > 4


def test_duplicates_and_models_across_blocks(tmp_path, monkeypatch):
    from langbatch_core import jsonl

    monkeypatch.setattr(jsonl, "BLOCK_SIZE", 2048)  # about ten requests per block
    lines = requests(60)
    lines[45]["custom_id"] = "r-3"  # same id as line 3, several blocks later
    lines[50]["body"]["model"] = "gpt-4o"
    report = validate_file(write_lines(tmp_path / "r.jsonl", lines))
    found = [(issue.line, issue.code) for issue in report.issues]
    assert found == [(46, "duplicate_custom_id"), (51, "multiple_models")]
    assert "lines 3 and 46" in report.issues[0].message
    assert report.request_count == 60


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_requests", 0),
        ("max_requests", -1),
        ("max_bytes", 1.5),
        ("max_embedding_inputs", True),
        ("max_enqueued_tokens", 0),
    ],
)
def test_limits_refuse_values_that_would_plan_nonsense(field, value):
    with pytest.raises(ConfigurationError, match=f"Limits.{field}"):
        Limits(**{field: value})


def test_limits_allow_no_token_limit():
    assert Limits(max_enqueued_tokens=None).max_enqueued_tokens is None
