"""A user's batches live in one place whichever door they use: Python, the CLI and the dashboard."""

from __future__ import annotations

from batch_support import write_chat_file
from click.testing import CliRunner

from langbatch_core import OpenAIChatCompletionBatch
from langbatch_core.cli import cli

from .conftest import open_page


def test_a_batch_saved_from_python_is_in_the_cli_list_and_on_the_batches_page(data_dir, tmp_path):
    batch = OpenAIChatCompletionBatch(write_chat_file(tmp_path / "in.jsonl", ["a"]), name="from python")
    batch.save()
    listed = CliRunner().invoke(cli, ["list"]).output
    assert batch.id in listed and "from python" in listed
    at = open_page("batches")
    assert not at.exception
    assert list(at.dataframe[0].value["id"]) == [batch.id]
