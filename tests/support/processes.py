"""Servers and workers run as processes of their own for a test, each with a log file.

    with ExitStack() as stack:
        url = stack.enter_context(running([python, "-m", "oidc_provider_mock", ...], log, ready=url + "/"))
        stack.enter_context(running([python, "-m", "langbatch_core.cli", "worker"], log2, env=env))

``ready``: a URL that answers 200 once the process serves; ``running`` waits for it (60 s, generous: the
machine is shared) and fails with the end of the log if the process exits or never answers. On leaving, the
process gets SIGTERM, then SIGKILL after 10 s.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} did not come up: " + log.read_text(errors="replace")[-2000:])


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running(
    command: list[str], log: Path, *, env: dict[str, str] | None = None, ready: str | None = None
) -> Iterator[subprocess.Popen]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        if ready:
            wait_until_up(ready, process, log)
        yield process
    finally:
        stop(process)
