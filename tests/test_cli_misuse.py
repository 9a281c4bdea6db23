"""The `langbatch` command used carelessly: batches made in Python, existing output files, Ctrl-C, nothing
to retry, unusable folders. Every failure is a message and an exit code, never a traceback."""

from __future__ import annotations

import re

import pytest
from batch_support import to_engine, write_chat_file
from click.testing import CliRunner

from langbatch_core import Batch, FileBatchStorage, OpenAIChatCompletionBatch
from langbatch_core.cli import cli


def run(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)


def finished_python_batch(tmp_path, engine, prompts=("a",), **options):
    """A batch made the seed's way (no storage=: the default store) and run to the end."""
    batch = OpenAIChatCompletionBatch(
        write_chat_file(tmp_path / "in.jsonl", list(prompts)), connection=to_engine(engine), **options
    )
    batch.start()
    batch.wait(poll_interval=0.05)
    return batch


def test_a_batch_made_in_python_is_listed_and_found_by_the_cli(tmp_path, engine):
    batch = finished_python_batch(tmp_path, engine)
    result = run("status", batch.id)
    assert result.exit_code == 0 and "status completed" in result.output
    assert batch.id in run("list").output  # one default store for Python and the CLI


def test_a_batch_in_the_file_store_of_earlier_versions_is_still_found(tmp_path, engine):
    batch = finished_python_batch(tmp_path, engine, storage=FileBatchStorage())
    result = run("status", batch.id)
    assert result.exit_code == 0 and "status completed" in result.output
    listed = run("list").output
    assert "1 in the files store" in listed and "langbatch --store files list" in listed
    assert batch.id in run("--store", "files", "list").output


def test_an_unknown_id_names_both_stores(tmp_path):
    result = run("status", "lb_nope")
    assert result.exit_code == 1
    assert "default store" in result.output and "langbatch.duckdb" in result.output
    assert "file store" in result.output


def test_results_refuses_to_overwrite_without_force(tmp_path, engine):
    batch = finished_python_batch(tmp_path, engine)
    target = tmp_path / "out.csv"
    target.write_text("keep me")
    result = run("results", batch.id, "-o", target)
    assert result.exit_code == 1 and "--force" in result.output
    assert target.read_text() == "keep me"
    assert run("results", batch.id, "-o", target, "--force").exit_code == 0
    assert target.read_text().startswith("custom_id")


@pytest.mark.parametrize(
    ("prompts", "expected"),
    [
        (["a"], "all 1 request\\(s\\) succeeded"),
        (["bad [[400]]"], "the 1 failed .* rejected as invalid .* --include-client-errors"),
    ],
)
def test_nothing_to_retry_says_why(tmp_path, engine, prompts, expected):
    batch = finished_python_batch(tmp_path, engine, prompts)
    result = run("retry", batch.id)
    assert result.exit_code == 0 and re.search(f"Nothing to retry: {expected}", result.output), result.output


def test_ctrl_c_while_waiting_stops_waiting_not_the_batch(tmp_path, engine, monkeypatch):
    batch = finished_python_batch(tmp_path, engine)

    def interrupted(self, *args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(Batch, "wait", interrupted)
    result = run("wait", batch.id)
    assert result.exit_code == 130
    assert f"keeps running. Resume with `langbatch wait {batch.id}`" in result.output


def test_an_unusable_data_dir_is_a_message(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run("--data-dir", blocker / "data", "list")
    assert result.exit_code == 1 and "Cannot use the data directory" in result.output
    assert "Traceback" not in result.output


def test_start_with_a_missing_file_is_not_called_a_bad_id(tmp_path):
    result = run("start", tmp_path / "typo.jsonl")
    assert result.exit_code == 1 and "neither a request file nor a batch id" in result.output


def test_create_and_start_without_a_key_keeps_nothing(tmp_path):
    result = run("create", write_chat_file(tmp_path / "in.jsonl", ["a"]), "--connection", "openai", "--start")
    assert result.exit_code == 1 and "OPENAI_API_KEY" in result.output and "Nothing was kept" in result.output
    assert "No batches yet" in run("list").output


def test_a_submission_that_did_not_finish_says_how_to_go_on(tmp_path, engine):
    root = engine.base_url.removesuffix("/v1")  # a base URL missing its /v1
    path = write_chat_file(tmp_path / "in.jsonl", ["a"])
    result = run("create", path, "--connection", "compatible", "--base-url", root, "--start")
    assert result.exit_code == 1 and "Check the base URL" in result.output
    batch_id = re.search(r"`langbatch delete (lb_\w+) --yes --force`", result.output).group(1)
    assert "cancel() it first" in run("delete", batch_id, "--yes").output
    assert run("delete", batch_id, "--yes", "--force").exit_code == 0
    assert "No batches yet" in run("list").output


def test_wait_that_times_out_exits_1_and_says_the_batch_runs_on(tmp_path, make_engine):
    engine = make_engine(concurrency=1)
    path = write_chat_file(tmp_path / "in.jsonl", ["slow [[slow:5]]"])
    batch = OpenAIChatCompletionBatch(path, connection=to_engine(engine))
    batch.start()
    result = run("wait", batch.id, "--timeout", "0", "--poll-interval", "0.01")
    assert result.exit_code == 1 and f"keeps running: `langbatch wait {batch.id}` again" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ("validate", "{file}", "--max-requests", "0"),
        ("create", "{file}", "--max-requests", "-1"),
        ("wait", "lb_1", "--poll-interval", "-1"),
        ("wait", "lb_1", "--timeout", "-5"),
    ],
)
def test_negative_numbers_are_usage_errors(tmp_path, args):
    path = write_chat_file(tmp_path / "in.jsonl", ["a"])
    result = run(*[arg.format(file=path) for arg in args])
    assert result.exit_code == 2 and "Invalid value" in result.output
