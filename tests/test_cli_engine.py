"""`langbatch engine status|stop` and `langbatch dashboard`, as real processes on a real engine."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import openai
import pytest
from test_engine import chat_line, results, run_batch, wait

from langbatch_core.local import ensure_local_engine
from langbatch_core.local.control import stop_engine
from langbatch_core.local.engine import read_info

ROOT = Path(__file__).resolve().parents[1]


def langbatch(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "langbatch_core.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=cwd)


def gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


@pytest.fixture
def shared_engine(isolated_data_dir, upstream):
    """The data directory's shared engine, started as the dashboard starts it (a detached process)."""
    url = ensure_local_engine(isolated_data_dir, backend=f"upstream:{upstream.base_url}")
    pid = read_info(isolated_data_dir / "engine")["pid"]
    yield url, pid
    if not gone(pid, timeout=0):
        os.kill(pid, signal.SIGKILL)
        gone(pid)


def test_engine_status_stop_and_resume(shared_engine, isolated_data_dir, upstream):
    url, pid = shared_engine
    client = openai.OpenAI(base_url=url, api_key="k", max_retries=0)
    # each request takes 15 s: the status and stop commands (two Python processes each) run while it does,
    # even on a loaded machine
    batch = run_batch(client, [chat_line(f"r{i}", f"t{i} [[slow:15]]") for i in range(6)])
    wait(client, batch.id, {"in_progress"})

    status = langbatch("engine", "status")
    assert status.returncode == 0, status.stderr
    for text in (url, str(pid), "upstream", str(isolated_data_dir), "running batches  1"):
        assert text in status.stdout

    stop = langbatch("engine", "stop")
    assert stop.returncode == 0 and f"pid {pid}" in stop.stdout and "resume" in stop.stdout
    assert gone(pid) and read_info(isolated_data_dir / "engine") is None
    assert "No local engine is running" in langbatch("engine", "status").stdout
    assert "nothing to stop" in langbatch("engine", "stop").stdout

    again = ensure_local_engine(isolated_data_dir, backend=f"upstream:{upstream.base_url}")
    client = openai.OpenAI(base_url=again, api_key="k", max_retries=0)
    done = wait(client, batch.id, timeout=120)
    assert done.status == "completed" and len(results(client, done.output_file_id)) == 6
    assert stop_engine(isolated_data_dir) is not None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def streamlit_command_line(parent: int) -> list[str]:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return Path(f"/proc/{children[0]}/cmdline").read_bytes().decode().split("\0")


def test_dashboard_from_any_folder_uses_the_project_settings_and_reports_the_engine(shared_engine, tmp_path):
    url, pid = shared_engine
    port = free_port()
    command = [sys.executable, "-m", "langbatch_core.cli", "dashboard", "--port", str(port)]
    dashboard = subprocess.Popen(
        command,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).text == "ok":
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        streamlit = streamlit_command_line(dashboard.pid)
    finally:
        os.killpg(dashboard.pid, signal.SIGINT)  # Ctrl-C in its terminal
        out, err = dashboard.communicate(timeout=60)
    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    for section, values in settings.items():
        for key, value in values.items():
            if key not in ("address", "port"):
                expected = str(value).lower() if isinstance(value, bool) else str(value)
                flag = streamlit.index(f"--{section}.{key}")
                assert streamlit[flag + 1] == expected, (section, key)
    assert dashboard.returncode == 0, err
    assert f"started on 127.0.0.1:{port}" in err  # local only, though the folder has no config
    assert "usage statistics" not in out + err
    assert "The local engine keeps running" in err and url in err and "langbatch engine stop" in err
    assert not gone(pid, timeout=0)  # the engine runs on: batches finish
