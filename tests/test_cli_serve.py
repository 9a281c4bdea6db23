"""`langbatch serve` runs the local engine in the foreground (a real process)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from langbatch_core.cli import cli
from langbatch_core.local.engine import running_engine


def test_serve_starts_the_engine_on_the_data_dir(isolated_data_dir, upstream):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "langbatch_core.cli",
            "serve",
            "--port",
            "0",
            "--backend",
            f"upstream:{upstream.base_url}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        info = None
        while info is None and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
            info = running_engine(isolated_data_dir)
        assert info is not None, process.stderr.read() if process.poll() is not None else "no engine"
        assert info["pid"] == process.pid  # the CLI process became the engine (exec)
        assert info["base_url"].startswith("http://127.0.0.1:")
    finally:
        process.terminate()
        process.wait(timeout=30)


# every option of the engine, as `langbatch serve --help` shows it, with its default
SERVE_OPTIONS = {
    "--host": "127.0.0.1",
    "--port": "8765",
    "--data-dir": "$LANGBATCH_DATA_DIR, else ~/.langbatch",
    "--upstream": None,
    "--backend": "model",
    "--upstream-key-env": None,
    "--concurrency": "64",
    "--rpm": "no limit",
    "--tpm": "no limit",
    "--completion-window": "24 hours",
    "--max-enqueued-tokens": "no limit",
    "--request-timeout": "600.0",
    "--max-retries": "5",
    "--max-file-bytes": "200 MiB",
    "--read-timeout": "30.0",
}


def _help(*command: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", *command, "serve", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    options = done.stdout.split("Options:", 1)[1]
    return " " + " ".join(options.split())  # one line: click wraps the option table


@pytest.mark.parametrize("command", [("langbatch_core.cli",), ("langbatch_core.local",)])
def test_serve_help_lists_every_option_with_its_default(command):
    shown = _help(*command)
    for option, default in SERVE_OPTIONS.items():
        assert f" {option} " in shown, option
        if default is not None:
            after = shown.split(f" {option} ", 1)[1]
            described = after[: after.index("]") + 1]  # its help, up to the end of the first [default: ...]
            assert described.endswith((f"[default: {default}]", f"[default: ({default})]")), (
                option,
                described,
            )


def test_the_engine_is_not_imported_by_other_commands():
    done = subprocess.run(
        [sys.executable, "-c", "import sys, langbatch_core.cli; print('uvicorn' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "False", done.stderr


def test_upstream_and_backend_together_are_refused(isolated_data_dir):
    argv = ["serve", "--upstream", "http://127.0.0.1:9/v1", "--backend", "model", "--port", "0"]
    done = CliRunner().invoke(cli, argv)
    assert done.exit_code == 2
    assert "--upstream URL or --backend, not both" in done.stderr


def test_an_upstream_key_variable_needs_an_upstream(isolated_data_dir, monkeypatch):
    monkeypatch.setenv("SOME_KEY", "sk-test")
    done = CliRunner().invoke(cli, ["serve", "--upstream-key-env", "SOME_KEY", "--port", "0"])
    assert done.exit_code == 1
    assert "--upstream-key-env is for an upstream backend" in done.stderr
