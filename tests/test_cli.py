"""The `langbatch` command through click's runner, against the local engine."""

from __future__ import annotations

import re

import click
import orjson
import pytest
from batch_support import write_chat_file
from click.testing import CliRunner

from langbatch_core import DuckDBBatchStorage, FileBatchStorage
from langbatch_core import cli as cli_module
from langbatch_core.cli import cli


def run(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)


def on_engine(engine):
    return ["--connection", "compatible", "--base-url", engine.base_url]


def created_id(result):
    return re.search(r"Created batch (lb_[0-9a-f]+)", result.output).group(1)


def all_commands():
    return [(name, command) for name, command in cli.commands.items()]


@pytest.mark.parametrize(("name", "command"), all_commands())
def test_every_command_has_help_with_an_example(name, command):
    result = run(name, "--help")
    assert result.exit_code == 0, result.output
    assert command.help and "Example:" in result.output, (
        f"`langbatch {name}` needs help with an Example: block"
    )
    assert f"langbatch {name}" in result.output.split("Example:")[1]


def test_group_help_names_the_default_store():
    output = run("--help").output
    assert "langbatch.duckdb" in output and "Example:" in output


def test_validate_reports_ok_and_errors(tmp_path):
    good = write_chat_file(tmp_path / "good.jsonl", ["a", "b"])
    result = run("validate", good)
    assert result.exit_code == 0 and "2 requests" in result.output and result.output.strip().endswith("OK")
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(good.read_bytes() + b"{oops\n")
    result = run("validate", bad)
    assert result.exit_code == 1 and "line 3" in result.output
    assert orjson.loads(run("validate", good, "--json").output)["request_count"] == 2


def test_the_whole_lifecycle_from_the_command_line(tmp_path, engine, upstream):
    path = write_chat_file(tmp_path / "in.jsonl", ["a", "b", "c [[400]]"])
    result = run("create", path, "--name", "cli demo", "--start", "--max-requests", "2", *on_engine(engine))
    assert result.exit_code == 0, result.output
    batch_id = created_id(result)
    assert "2 job(s)" in result.output

    result = run("wait", batch_id, "--poll-interval", "0.05")
    assert result.exit_code == 0
    assert "completed: 2 succeeded, 1 failed, 0 not run, 0 pending of 3" in result.output

    status = run("status", batch_id)
    assert "status completed" in status.output and "a1-j2" in status.output
    assert orjson.loads(run("status", batch_id, "--json").output)["succeeded"] == 2

    listed = run("list").output
    assert batch_id in listed and "cli demo" in listed and "2/3 ok" in listed
    assert [row["id"] for row in orjson.loads(run("list", "--json").output)] == [batch_id]
    assert DuckDBBatchStorage().load(batch_id).name == "cli demo"  # the dashboard's store by default

    refused = "Nothing to retry: the 1 failed request(s) were rejected as invalid"
    assert refused in run("retry", batch_id).output
    assert "Resubmitted 1 request(s)." in run("retry", batch_id, "--include-client-errors").output
    run("wait", batch_id, "--poll-interval", "0.05")

    result = run("results", batch_id)
    assert "results.jsonl" in result.output


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_results_export(tmp_path, engine, suffix):
    path = write_chat_file(tmp_path / "in.jsonl", ["a", "b"])
    batch_id = created_id(run("create", path, "--start", *on_engine(engine)))
    run("wait", batch_id, "--poll-interval", "0.05")
    target = tmp_path / f"out.{suffix}"
    result = run("results", batch_id, "-o", target)
    assert result.exit_code == 0, result.output
    assert target.stat().st_size > 0 and str(target) in result.output


def test_start_a_stored_batch_and_cancel_it(tmp_path, make_engine):
    engine = make_engine(concurrency=1)
    path = write_chat_file(tmp_path / "in.jsonl", [f"p{i} [[slow:0.3]]" for i in range(4)])
    batch_id = created_id(run("create", path, *on_engine(engine)))
    assert "Started" in run("start", batch_id).output
    assert "already started" in run("start", batch_id).output
    result = run("cancel", batch_id)
    assert result.exit_code == 0, result.output
    assert re.search(r"cancell(ing|ed)", result.output)


def test_start_from_a_file_with_the_file_store(tmp_path, engine):
    path = write_chat_file(tmp_path / "in.jsonl", ["a"])
    result = run("--store", "files", "start", path, *on_engine(engine))
    assert result.exit_code == 0, result.output
    assert FileBatchStorage().load(created_id(result)).status in {"validating", "in_progress", "completed"}


def test_delete_asks_then_removes(tmp_path, engine):
    batch_id = created_id(run("create", write_chat_file(tmp_path / "in.jsonl", ["a"]), *on_engine(engine)))
    assert run("delete", batch_id, input="n\n").exit_code == 1
    assert run("delete", batch_id, "--yes").exit_code == 0
    assert DuckDBBatchStorage().list() == []


def test_errors_are_messages_not_tracebacks(tmp_path):
    result = run("status", "lb_nope")
    assert result.exit_code == 1
    assert "Error: No batch 'lb_nope'" in result.output and "Traceback" not in result.output
    result = run("status", "../../etc")
    assert result.exit_code == 1 and "Invalid batch id" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{}\n")
    result = run("create", bad)
    assert result.exit_code == 1 and "line 1" in result.output


def test_a_missing_key_names_the_variable(tmp_path):
    result = run("create", write_chat_file(tmp_path / "in.jsonl", ["a"]), "--connection", "openai", "--start")
    assert result.exit_code == 1 and "OPENAI_API_KEY" in result.output


def test_dashboard_without_its_folder_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(cli_module, "DASHBOARD_APP", tmp_path / "dashboard" / "app.py")
    result = run("dashboard")
    assert result.exit_code == 1 and "dashboard/ and .streamlit/ folders" in result.output


def test_dashboard_command_runs_the_launcher_of_this_checkout():
    command = cli_module.dashboard_command(8502, "127.0.0.1")
    assert command[1] == str(cli_module.DASHBOARD_APP.with_name("launch.py"))
    assert command[command.index("--server.port") + 1] == "8502"


def test_help_says_where_the_batches_are(isolated_data_dir):
    result = run("--help")
    assert result.exit_code == 0
    assert str(isolated_data_dir) in result.output
    assert str(isolated_data_dir / "langbatch.duckdb") in result.output


def test_every_command_is_in_the_readme_section():
    # keeps the documented command list and the real one in step
    context = click.Context(cli)
    assert set(cli.list_commands(context)) == {
        "validate", "create", "start", "status", "wait", "retry", "cancel", "delete", "results", "list",
        "serve", "dashboard", "engine", "connections", "audit", "spend", "worker", "rest",
    }  # fmt: skip
    assert all(
        isinstance(cli.get_command(context, name), click.Command) for name in cli.list_commands(context)
    )
