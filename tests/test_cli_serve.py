"""`langbatch serve` runs the local engine in the foreground (a real process)."""

from __future__ import annotations

import subprocess
import sys
import time

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
