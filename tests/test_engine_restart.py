"""The engine as a real process: SIGKILL mid-batch and restart, and the shared engine of a data directory."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest
from test_engine import chat_line, results, run_batch, wait

from langbatch_core.errors import ProviderUnavailableError
from langbatch_core.local.engine import ensure_local_engine, read_info, running_engine
from langbatch_core.local.state import EngineState


def start_engine(data_dir: Path, upstream_url: str, *extra: str) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "langbatch_core.local", "serve", "--data-dir", str(data_dir)]
    command += ["--upstream", upstream_url, "--port", "0", *extra]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        info = read_info(data_dir / "engine")
        if info is not None and info["pid"] == process.pid:
            return process, info["base_url"]
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.02)
    process.kill()
    raise AssertionError("the engine process did not start")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(10)
    process.stderr.close()


def test_sigkill_mid_batch_then_restart_runs_only_unfinished_requests(tmp_path, upstream):
    data = tmp_path / "data"
    process, base_url = start_engine(data, upstream.base_url, "--concurrency", "4")
    client = openai.OpenAI(base_url=base_url, api_key="k", max_retries=0)
    lines = [chat_line(f"r{i:02d}", f"n{i:02d} [[slow:0.05]]") for i in range(60)]
    batch_id = run_batch(client, lines).id
    progress = data / "engine" / "progress" / f"{batch_id}.jsonl"
    deadline = time.monotonic() + 20
    while not progress.exists() or progress.read_bytes().count(b"\n") < 12:
        assert time.monotonic() < deadline, "no progress recorded"
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    stop(process)
    client.close()

    state = EngineState(data / "engine")
    finished_before = {result["custom_id"] for _, result in state.read_progress(batch_id)}
    state.close()
    sent_before = collections.Counter(json.dumps(r["body"]) for r in upstream.received)
    assert 12 <= len(finished_before) < 60

    process, base_url = start_engine(data, upstream.base_url, "--concurrency", "4")
    try:
        client = openai.OpenAI(base_url=base_url, api_key="k", max_retries=0)
        batch = wait(client, batch_id, timeout=30)
        output = results(client, batch.output_file_id)
        client.close()
    finally:
        stop(process)
    assert batch.status == "completed" and batch.request_counts.completed == 60
    assert set(output) == {f"r{i:02d}" for i in range(60)}
    sent = collections.Counter(r["body"]["messages"][0]["content"].split()[0] for r in upstream.received)
    for custom_id in finished_before:  # recorded before the kill: never run again
        assert sent["n" + custom_id[1:]] == 1
    in_flight = sum(count - 1 for count in sent.values())
    assert in_flight <= 4  # only requests in flight at the kill ran twice (concurrency 4)
    assert sum(sent_before.values()) - len(finished_before) <= 4


def test_ensure_local_engine_starts_one_shared_engine_and_replaces_a_stale_one(tmp_path, upstream):
    data = tmp_path / "one-data-dir"
    backend = f"upstream:{upstream.base_url}"
    first = ensure_local_engine(data, backend=backend)
    pid = read_info(data / "engine")["pid"]
    try:
        assert ensure_local_engine(data, backend=backend) == first  # the second caller shares it
        client = openai.OpenAI(base_url=first, api_key="k", max_retries=0)
        batch = wait(client, run_batch(client, [chat_line("a", "one engine")]).id)
        assert results(client, batch.output_file_id)["a"]["response"]["status_code"] == 200
        client.close()
    finally:
        os.kill(pid, signal.SIGKILL)
    _wait_gone(pid)
    assert read_info(data / "engine")["pid"] == pid  # a killed engine leaves its address file behind
    assert running_engine(data) is None  # ... which is recognised as stale
    second = ensure_local_engine(data, backend=backend)
    new_pid = read_info(data / "engine")["pid"]
    try:
        assert new_pid != pid
        client = openai.OpenAI(base_url=second, api_key="k", max_retries=0)
        assert client.batches.retrieve(batch.id).status == "completed"  # same data, new process
        client.close()
    finally:
        os.kill(new_pid, signal.SIGTERM)
        _wait_gone(new_pid)
    assert read_info(data / "engine") is None  # a clean stop removes the address file


def test_ensure_local_engine_reports_a_backend_that_cannot_start(tmp_path):
    with pytest.raises(ProviderUnavailableError) as error:
        ensure_local_engine(tmp_path / "d", backend="nonsense")
    assert "Unknown local engine backend" in str(error.value)


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # a detached child of ours: reap it once it exits
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return
        except ChildProcessError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"process {pid} did not exit")


def test_a_second_engine_on_the_same_data_dir_does_not_run_a_batch_twice(make_engine, upstream):
    first = make_engine(concurrency=2)
    client = openai.OpenAI(base_url=first.base_url, api_key="k", max_retries=0)
    created = run_batch(client, [chat_line(f"r{i}", f"t{i} [[slow:0.05]]") for i in range(16)])
    wait(client, created.id, {"in_progress"})
    second = make_engine()  # resumes unfinished batches of the data dir ... except the one `first` runs
    batch = wait(client, created.id)
    client.close()
    assert batch.status == "completed" and batch.request_counts.completed == 16
    sent = collections.Counter(r["body"]["messages"][0]["content"] for r in upstream.received)
    assert len(sent) == 16 and set(sent.values()) == {1}
    other = openai.OpenAI(base_url=second.base_url, api_key="k", max_retries=0)
    assert other.batches.retrieve(created.id).status == "completed"  # shared state
    other.close()


def test_a_stopped_engine_resumes_its_batch_when_started_again(make_engine, upstream):
    first = make_engine(concurrency=2)
    client = openai.OpenAI(base_url=first.base_url, api_key="k", max_retries=0)
    batch_id = run_batch(client, [chat_line(f"r{i}", f"t{i} [[slow:0.05]]") for i in range(20)]).id
    while client.batches.retrieve(batch_id).request_counts.completed < 4:
        time.sleep(0.01)
    client.close()
    first.stop()  # a clean stop leaves the batch in_progress on disk
    second = make_engine(concurrency=4)
    client = openai.OpenAI(base_url=second.base_url, api_key="k", max_retries=0)
    batch = wait(client, batch_id)
    output = results(client, batch.output_file_id)
    client.close()
    assert batch.status == "completed" and set(output) == {f"r{i}" for i in range(20)}
    sent = collections.Counter(r["body"]["messages"][0]["content"] for r in upstream.received)
    assert len(sent) == 20 and sum(sent.values()) <= 20 + 2  # at most the 2 in flight at the stop re-ran
