"""Seeing and stopping the shared local engine of a data directory (the one the dashboard and CLI start).

    from langbatch_core.local.control import engine_status, stop_engine
    engine_status()     # {"base_url", "pid", "backend", "model", "data_dir", "running_batches", ...} or None
    stop_engine()       # the status it had, or None when none was running

Stopping is a SIGTERM: the engine ends its HTTP server and leaves its state on disk, so batches that were
running resume at its next start (``ensure_local_engine``, ``langbatch serve``, the dashboard).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

from langbatch_core.errors import ProviderUnavailableError
from langbatch_core.local.engine import clear_info, engine_root, health, running_engine


def engine_status(data_dir: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """The running engine serving ``data_dir`` (default: the data directory), or None.

    Keys: ``base_url``, ``pid``, ``backend``, ``model``, ``data_dir``, ``running_batches``, ``started_at``.
    """
    root = engine_root(data_dir)
    info = running_engine(root.parent)
    answer = health(info["base_url"]) if info else None
    if info is None or answer is None:
        return None
    return {
        "base_url": info["base_url"],
        "pid": answer.get("pid", info.get("pid")),
        "backend": answer.get("backend"),
        "model": answer.get("model"),
        "data_dir": str(root.parent),
        "running_batches": answer.get("running_batches"),
        "started_at": answer.get("started_at", info.get("started_at")),
    }


def stop_engine(
    data_dir: str | os.PathLike[str] | None = None, timeout: float = 30.0
) -> dict[str, Any] | None:
    """Stop the engine serving ``data_dir`` and wait until it has exited; the status it had, or None when
    none was running. ProviderUnavailableError if it outlives ``timeout`` seconds."""
    status = engine_status(data_dir)
    if status is None:
        return None
    pid = int(status["pid"])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            raise ProviderUnavailableError(
                f"The local engine (pid {pid}, {status['base_url']}) did not stop within {timeout:g} s. "
                f"Stop it with `kill {pid}` (or `kill -9 {pid}`: its batches still resume at the next start)."
            )
        time.sleep(0.05)
    clear_info(engine_root(status["data_dir"]), pid)  # in case it could not remove it itself
    return status


def _alive(pid: int) -> bool:
    """True while ``pid`` runs. An engine that exited but whose parent (the dashboard that started it) has
    not reaped it yet is a zombie: not running. A child of this process is reaped here."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): the signal check above is all there is
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
