"""What the `langbatch` command shows a person: help that keeps examples whole, progress lines, error codes,
answers, estimates — and never Python's None, nan or a class name."""

from __future__ import annotations

import inspect
import re

import click
import orjson
import pytest
from batch_support import write_chat_file
from click.testing import CliRunner

from langbatch_core.cli import cli


def every_command(group: click.Group = cli, path: tuple[str, ...] = ()):
    yield path, group
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from every_command(command, (*path, name))
        else:
            yield (*path, name), command


COMMANDS = list(every_command())


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "langbatch" for p, _ in COMMANDS])
def test_help_examples_stay_whole_at_80_columns(path, command):
    result = CliRunner().invoke(cli, [*path, "--help"], terminal_width=80, catch_exceptions=False)
    shown = [line.strip() for line in result.output.splitlines()]
    examples = [
        line.strip()
        for line in inspect.cleandoc(command.help or "").splitlines()
        if line.strip().startswith("langbatch ")
    ]
    assert examples, f"`langbatch {' '.join(path)}` has no example command in its help"
    for example in examples:
        assert example in shown, f"{example!r} is wrapped or reflowed in:\n{result.output}"


def run(*args, input=None):
    result = CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)
    assert not re.search(r"\bNone\b|\bnan\b|Batch\b", result.output), result.output  # no Python in sight
    return result


def on_engine(engine):
    return ["--connection", "compatible", "--base-url", engine.base_url]


def created_id(result):
    return re.search(r"Created batch (lb_[0-9a-f]+)", result.output).group(1)


def test_wait_off_a_terminal_prints_a_line_whenever_progress_changes(tmp_path, make_engine):
    engine = make_engine(concurrency=1)
    path = write_chat_file(tmp_path / "in.jsonl", [f"p{i} [[slow:0.15]]" for i in range(5)] + ["x [[400]]"])
    batch_id = created_id(run("create", path, "--start", *on_engine(engine)))
    result = run("wait", batch_id, "--poll-interval", "0.02")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith(batch_id)]
    assert len(lines) >= 3, result.output  # several polls saw progress
    assert len(set(lines)) == len(lines)  # printed when it changes, not at every poll
    pattern = rf"{batch_id} \w+ [\d,]+/6 succeeded · \d+ failed · \d+ not run · \d+ pending"
    assert all(re.fullmatch(pattern, line) for line in lines), lines
    assert lines[-1] == f"{batch_id} completed 5/6 succeeded · 1 failed · 0 not run · 0 pending"


def test_no_command_shows_none_nan_or_a_class_name(tmp_path, engine):
    invalid = tmp_path / "invalid.jsonl"
    invalid.write_text('{"custom_id": "a"}\n')
    result = run("validate", invalid)  # no endpoint, no model: shown as —, not None
    assert result.exit_code == 1 and "endpoint —" in result.output, result.output
    embeddings = tmp_path / "emb.jsonl"
    embeddings.write_text(
        '{"custom_id": "e1", "method": "POST", "url": "/v1/embeddings", '
        '"body": {"model": "text-embedding-3-small", "input": "hi"}}\n'
    )
    assert "embeddings" in run("create", embeddings, *on_engine(engine)).output
    path = write_chat_file(tmp_path / "in.jsonl", ["a", "b [[400]]"])
    batch_id = created_id(run("create", path, "--name", "demo", "--start", *on_engine(engine)))
    assert "chat completions" in run("validate", path).output
    run("wait", batch_id, "--poll-interval", "0.02")
    for command in (["status"], ["results"], ["results", "--show"], ["retry"], ["cancel"]):
        run(*command, batch_id)
    run("list")
    run("delete", batch_id, "--yes")


def test_status_lists_error_codes_with_counts(tmp_path, make_engine):
    engine = make_engine(completion_window=1.5, concurrency=1)
    prompts = ["a", "b [[400]]", "c [[400]]", "d [[slow:0.8]]", "e [[slow:0.8]]", "f [[slow:0.8]]"]
    batch_id = created_id(run("create", write_chat_file(tmp_path / "in.jsonl", prompts), *on_engine(engine)))
    run("start", batch_id)
    run("wait", batch_id, "--poll-interval", "0.05")
    output = run("status", batch_id).output
    errors = re.search(r"^errors: (.*)$", output, re.M)
    assert errors, output
    counts = dict(item.rsplit(" ", 1) for item in errors.group(1).split(" · "))
    assert counts["invalid_request_error"] == "2" and int(counts["batch_expired"]) >= 1, output


def test_status_of_a_clean_batch_has_no_error_line(tmp_path, engine):
    batch_id = created_id(run("create", write_chat_file(tmp_path / "in.jsonl", ["a"]), *on_engine(engine)))
    assert "errors" not in run("status", batch_id).output  # not started
    run("start", batch_id)
    run("wait", batch_id, "--poll-interval", "0.02")
    assert "errors" not in run("status", batch_id).output


def test_results_show_prints_answers_and_errors(tmp_path, engine):
    path = write_chat_file(tmp_path / "in.jsonl", ["first\nquestion", "bad [[400]]", "third", "fourth"])
    batch_id = created_id(run("create", path, "--start", *on_engine(engine)))
    run("wait", batch_id, "--poll-interval", "0.02")
    output = run("results", batch_id, "--show").output
    assert re.search(r"^request-1\s+succeeded\s+echo: first question$", output, re.M), output  # one line
    assert re.search(r"^request-2\s+failed\s+invalid_request_error: Invalid request", output, re.M), output
    shown = run("results", batch_id, "--show", "--limit", "3").output.splitlines()
    assert len([line for line in shown if line.startswith("request-")]) == 3
    assert any(line.startswith("… 1 more") for line in shown), shown


def test_results_show_describes_embeddings(tmp_path, engine):
    path = tmp_path / "emb.jsonl"
    path.write_text(
        '{"custom_id": "e1", "method": "POST", "url": "/v1/embeddings", '
        '"body": {"model": "text-embedding-3-small", "input": "hi"}}\n'
    )
    batch_id = created_id(run("create", path, "--start", *on_engine(engine)))
    run("wait", batch_id, "--poll-interval", "0.02")
    output = run("results", batch_id, "--show").output
    assert re.search(r"^e1\s+succeeded\s+embedding \(\d+ dimensions\)$", output, re.M), output


def on_local_engine(engine):
    return ["--connection", "local", "--base-url", engine.base_url]


def test_validate_and_create_show_cost_and_time_on_the_local_engine(tmp_path, engine):
    path = write_chat_file(tmp_path / "in.jsonl", ["a", "b", "c"])
    output = run("validate", path, *on_local_engine(engine)).output
    assert "cost: $0 on the local engine (at OpenAI's batch prices" in output
    assert "time: unknown (the engine's upstream has not run a batch yet" in output  # an upstream: no guess
    result = run("create", path, "--start", *on_local_engine(engine))
    assert "cost: $0 on the local engine" in result.output
    assert result.output.index("cost:") < result.output.index("Started")  # said before it starts
    run("wait", created_id(result), "--poll-interval", "0.02")
    output = run("validate", path, *on_local_engine(engine)).output
    assert re.search(
        r"^time: about \d+ s on the local engine \(estimate from the engine's measured speed", output, re.M
    )
    assert "time:" not in run("validate", path, "--connection", "openai").output  # OpenAI: within 24 h


def test_validate_warns_before_a_batch_of_hours_on_the_bundled_model(tmp_path):
    path = write_chat_file(tmp_path / "in.jsonl", [f"story {i}" for i in range(1_000)])  # 512 tokens each
    output = run("validate", path).output  # no engine runs: the bundled model's default speed
    assert "time: about 4.2 h on the bundled model (estimate at the bundled model's usual" in output
    assert "warning: This batch will take about 4.2 h on the bundled model" in output
    estimate = orjson.loads(run("validate", path, "--json").output)["estimate"]
    assert estimate["cost_usd"] == 0 and estimate["warning"].startswith("This batch will take")
