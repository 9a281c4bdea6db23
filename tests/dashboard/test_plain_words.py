"""Words a person reads: no Python ``None``, ``nan`` or class name on any page; empty is "—" or blank.
And the same counts everywhere: the Batches page and Results show the batch's one set of counts."""

from __future__ import annotations

import re

import common
import explore
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from langbatch_core.cli import cli

from .conftest import open_page, stored_batch_with_results, texts

PYTHON_WORDS = re.compile(r"\bNone\b|\bnan\b|\bNaN\b|\bNaT\b|Batch\b(?=[A-Z]|\))|[A-Z][a-z]+Batch\b")
KINDS = ("title", "subheader", "markdown", "text", "caption", "info", "warning", "error", "success", "code")


def shown(at: AppTest) -> str:
    """Every piece of text on the page a person reads (tables: their empty cells' placeholder)."""
    parts = [texts(at, kind) for kind in KINDS]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    parts += [b.label for b in at.button]
    return "\n".join(parts)


def assert_plain(at: AppTest) -> None:
    assert not at.exception, at.exception
    words = shown(at)
    assert not PYTHON_WORDS.search(words), PYTHON_WORDS.search(words)
    for table in at.dataframe:  # a grid draws an empty cell as its placeholder, "None" without one
        assert table.proto.placeholder == common.EMPTY


def test_an_empty_file_is_reported_in_plain_words(data_dir):
    at = open_page("new_batch")
    at.file_uploader(key="nb_upload").set_value(("empty.jsonl", b"", "application/jsonl")).run()
    assert "cannot be started" in texts(at, "error")
    assert at.dataframe, "the issue is listed in a table"
    assert_plain(at)


def test_a_failed_and_cancelled_batch_reads_plainly_and_counts_agree(data_dir):
    record = stored_batch_with_results(20, status="cancelled", model=None, name=None)
    batches = open_page("batches")
    assert_plain(batches)
    on_batches = {m.label: m.value for m in batches.metric}
    assert (on_batches["Failed"], on_batches["Not run"]) == ("4", "2")
    results = open_page("results")
    assert_plain(results)
    on_results = {m.label: m.value for m in results.metric}
    for label in ("Requests", "Succeeded", "Failed", "Not run", "Pending"):
        assert on_results[label] == on_batches[label], label
    results.text_input(key="rs_detail_id").input("req-4").run()  # a failed row's detail
    assert_plain(results)
    assert record.id in texts(batches, "subheader")


def test_sort_offers_only_columns_that_hold_something(data_dir):
    stored_batch_with_results(20)
    at = open_page("results")
    offered = at.selectbox(key="rs_sort").options
    table = common.results_table(common.list_batches()[0])
    empty = [c for c in table.columns if table[c].isna().all()]
    assert empty, "the table has empty columns (e.g. refusal, tool_calls)"
    assert not {c.replace("_", " ") for c in empty} & set(offered)
    assert not {"prompt", "answer", "error message"} & set(offered)
    assert {"status", "total tokens", "error code"} <= set(offered)
    assert explore.visible_columns(table)[:4] == ["custom_id", "status", "error_code", "error_message"]


def test_the_cli_says_no_none_or_class_name(data_dir, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    validated = CliRunner().invoke(cli, ["validate", str(empty)]).output
    assert "endpoint —, model —" in validated and not PYTHON_WORDS.search(validated)
    good = tmp_path / "good.jsonl"
    good.write_bytes(
        b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", '
        b'"body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}}\n'
    )
    created = CliRunner().invoke(cli, ["create", str(good)]).output
    assert "requests, chat completions)" in created and not PYTHON_WORDS.search(created)
