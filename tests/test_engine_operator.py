"""The local engine as an operator runs it for a self-hosted model: an upstream that misbehaves at the HTTP
level, and an API key for the upstream that must never be written anywhere."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest
from support.upstream import Upstream
from test_engine import EXAMPLES, chat_line, results, run_batch, wait
from test_engine_faults import received_for

from langbatch_core.errors import ConfigurationError
from langbatch_core.local.backends import UpstreamBackend
from langbatch_core.local.engine import is_loopback, read_info

SECRET = "sk-" + "test-0123456789-never-store-me"  # built, so the file holds no key-like string


def test_a_200_carrying_an_error_body_is_a_failure_not_a_result(openai_client, upstream):
    lines = [chat_line("bad", "overloaded [[error200]]"), chat_line("good", "fine")]
    batch = wait(openai_client, run_batch(openai_client, lines).id)
    assert batch.request_counts.completed == 1 and batch.request_counts.failed == 1
    line = results(openai_client, batch.error_file_id)["bad"]
    assert line["response"]["status_code"] == 502
    assert "overloaded" in line["response"]["body"]["error"]["message"]
    assert set(results(openai_client, batch.output_file_id)) == {"good"}


def test_an_oversized_upstream_answer_is_refused_not_buffered(make_engine, upstream):
    engine = make_engine(backend=UpstreamBackend(upstream.base_url, max_response_bytes=100_000))
    client = openai.OpenAI(base_url=engine.base_url, api_key="k", max_retries=0)
    batch = wait(client, run_batch(client, [chat_line("big", "[[huge]]"), chat_line("ok", "x")]).id)
    line = results(client, batch.error_file_id)["big"]
    assert line["response"]["status_code"] == 502
    assert "longer than 100,000 bytes" in line["response"]["body"]["error"]["message"]
    assert set(results(client, batch.output_file_id)) == {"ok"}
    client.close()


def test_retry_after_as_an_http_date_is_honoured_and_garbage_ignored(make_engine, upstream):
    engine = make_engine(retry_max_delay=5.0)
    client = openai.OpenAI(base_url=engine.base_url, api_key="k", max_retries=0)
    upstream.retry_after = 2.0  # HTTP dates count whole seconds: the wait is 1-2 s
    try:
        dated = wait(client, run_batch(client, [chat_line("date", "wait [[429datex1]]")]).id)
        junk = wait(client, run_batch(client, [chat_line("junk", "soon [[429junkx1]]")]).id)
    finally:
        upstream.retry_after = 0.05
        client.close()
    assert dated.request_counts.completed == 1 and junk.request_counts.completed == 1
    first, second = received_for(upstream, "wait")
    assert second["time"] - first["time"] >= 0.9
    first, second = received_for(upstream, "soon")  # no usable delay: the engine's own short backoff
    assert second["time"] - first["time"] < 0.9


def test_a_dropped_connection_is_retried(openai_client, upstream):
    batch = wait(openai_client, run_batch(openai_client, [chat_line("a", "drop [[closex1]]")]).id)
    assert batch.request_counts.completed == 1 and len(received_for(upstream, "drop")) == 2


def test_credentials_in_the_upstream_url_are_refused():
    with pytest.raises(ConfigurationError, match="--upstream-key-env"):
        UpstreamBackend("http://user:secret@127.0.0.1:8000/v1")


def test_the_upstream_key_is_sent_but_never_written(tmp_path, upstream):
    env = {**os.environ, "UPSTREAM_KEY": SECRET}
    process, base_url = _start_with_env(tmp_path, upstream, env, "--upstream-key-env", "UPSTREAM_KEY")
    try:
        client = openai.OpenAI(base_url=base_url, api_key="k", max_retries=0)
        lines = [chat_line("a", "hi"), chat_line("b", "fails [[400]]"), chat_line("c", "retry [[500x1]]")]
        batch = wait(client, run_batch(client, lines).id)
        assert batch.request_counts.completed == 2
        client.close()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
    assert "LangBatch local engine serving" in (tmp_path / "engine" / "engine.log").read_text()
    assert upstream.authorizations[-1] == f"Bearer {SECRET}"
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "state.sqlite3" for p in written)
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path


def test_an_unset_upstream_key_variable_stops_the_engine_with_a_clear_error(tmp_path, upstream):
    command = [sys.executable, "-m", "langbatch_core.local", "serve", "--data-dir", str(tmp_path)]
    command += ["--upstream", upstream.base_url, "--port", "0", "--upstream-key-env", "NO_SUCH_KEY_VAR"]
    env = {k: v for k, v in os.environ.items() if k != "NO_SUCH_KEY_VAR"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "NO_SUCH_KEY_VAR is not set" in done.stderr


def _start_with_env(tmp_path: Path, upstream: Upstream, env: dict, *extra: str):
    """The engine as a process, its output in ``<data>/engine/engine.log`` as ``ensure_local_engine`` does."""
    command = [sys.executable, "-m", "langbatch_core.local", "serve", "--data-dir", str(tmp_path)]
    command += ["--upstream", upstream.base_url, "--port", "0", *extra]
    (tmp_path / "engine").mkdir(parents=True, exist_ok=True)
    with open(tmp_path / "engine" / "engine.log", "ab") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while (info := read_info(tmp_path / "engine")) is None or info["pid"] != process.pid:
        assert process.poll() is None and time.monotonic() < deadline, "the engine did not start"
        time.sleep(0.02)
    return process, info["base_url"]


def _shape(value):
    """Keys in order and value types, at every depth of the result-line envelope (not of the body)."""
    if isinstance(value, dict):
        return [(k, "body" if k == "body" else _shape(v)) for k, v in value.items()]
    return type(value).__name__


def test_result_lines_have_openais_shape_line_for_line(make_engine, upstream):
    examples = {
        name: [json.loads(line) for line in (EXAMPLES / f"output_{name}.jsonl").read_text().splitlines()]
        for name in ("success", "errors")
    }
    engine = make_engine(completion_window=0.5)
    client = openai.OpenAI(base_url=engine.base_url, api_key="k", max_retries=0)
    lines = [chat_line("ok", "fine"), chat_line("bad", "[[400]]"), chat_line("late", "[[slow:1.5]]")]
    batch = wait(client, run_batch(client, lines).id)
    assert batch.status == "expired"
    output = client.files.content(batch.output_file_id).text
    errors = client.files.content(batch.error_file_id).text
    client.close()
    assert output.endswith("\n") and errors.endswith("\n") and "\n\n" not in output + errors
    got = {line["custom_id"]: line for line in map(json.loads, (output + errors).splitlines())}
    assert _shape(got["ok"]) == _shape(examples["success"][0])
    assert _shape(got["bad"]) == _shape(examples["errors"][0])
    expired, example = got["late"], examples["errors"][1]
    assert _shape(expired) == _shape(example) and expired["error"] == example["error"]
    assert got["ok"]["id"].startswith("batch_req_") and got["ok"]["response"]["request_id"].startswith("req_")
    for line in (output + errors).splitlines():  # OpenAI's bytes: its separators, escapes, key order
        assert json.dumps(json.loads(line)) == line
    assert '"error": null}' in output and '"response": null, "error": {"code": "batch_expired"' in errors


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.5", False),
        ("::", False),
        ("engine.example", False),
    ],
)
def test_only_loopback_hosts_are_served_without_the_exposure_warning(host, loopback):
    assert is_loopback(host) is loopback


def test_two_processes_ensuring_the_engine_at_once_start_exactly_one(tmp_path, upstream):
    go = tmp_path / "go"
    code = (
        "import os, sys, time\n"
        "from langbatch_core.local import ensure_local_engine\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.005)\n"
        f"print(ensure_local_engine({str(tmp_path)!r}, backend='upstream:{upstream.base_url}'))\n"
    )
    callers = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    go.touch()  # both are waiting: release them together
    urls = [caller.communicate(timeout=90)[0].strip() for caller in callers]
    info = read_info(tmp_path / "engine")
    try:
        assert urls[0] == urls[1] == info["base_url"]
        log = (tmp_path / "engine" / "engine.log").read_text()
        assert log.count("LangBatch local engine serving") == 1, log
    finally:
        os.kill(info["pid"], signal.SIGTERM)
        deadline = time.monotonic() + 15
        while read_info(tmp_path / "engine") is not None and time.monotonic() < deadline:
            time.sleep(0.02)  # the engine removes its address file as it stops


def test_an_upstream_key_with_a_stray_carriage_return_is_trimmed(make_engine, upstream):
    engine = make_engine(backend=UpstreamBackend(upstream.base_url, api_key=f" {SECRET}\r\n"))
    client = openai.OpenAI(base_url=engine.base_url, api_key="k", max_retries=0)
    batch = wait(client, run_batch(client, [chat_line("a", "hi")]).id)
    client.close()
    assert batch.request_counts.completed == 1
    assert upstream.authorizations == [f"Bearer {SECRET}"]


@pytest.mark.parametrize("key", ["", "sk-a\r\nX-Injected: 1", "sk-ä", "sk a"])
def test_an_upstream_key_a_header_cannot_carry_is_refused_without_showing_it(key):
    with pytest.raises(ConfigurationError, match="--upstream-key-env") as refused:
        UpstreamBackend("http://127.0.0.1:8000/v1", api_key=key)
    assert key.strip() == "" or key.strip() not in str(refused.value)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--concurrency", "0"], "--concurrency"),
        (["--rpm", "-5"], "--rpm"),
        (["--completion-window", "0"], "--completion-window"),
        (["--request-timeout", "0"], "--request-timeout"),
        (["--max-file-bytes", "-1"], "--max-file-bytes"),
        (["--read-timeout", "0"], "--read-timeout"),
    ],
)
def test_settings_that_would_hang_or_fail_every_batch_are_refused_at_start(tmp_path, flags, named):
    from click.testing import CliRunner

    from langbatch_core.cli import cli

    argv = ["serve", "--data-dir", str(tmp_path), "--upstream", "http://127.0.0.1:9/v1", "--port", "0"]
    done = CliRunner().invoke(cli, argv + flags)
    assert done.exit_code == 1
    assert named in done.stderr
