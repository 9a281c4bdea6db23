"""The engine's measured speed, for run estimates: ``<data dir>/engine/speed.json``, also on ``/health``.

    record_speed(root, "model SmolLM2-135M-Instruct", "/v1/chat/completions", requests=120, seconds=40.2,
                 output_tokens=3_400)
    read_speed(root)   # {"backend": "model SmolLM2-135M-Instruct", "endpoints": {"/v1/chat/completions":
                       #   {"requests": 120.0, "seconds": 40.2, "output_tokens": 3400.0, "batches": 1, ...}}}

Each batch adds the requests it ran, the seconds it spent running them and their output tokens, per endpoint;
what was there before counts half (``DECAY``), so recent batches weigh more and big ones more than small. A
different backend (the engine restarted with another model or upstream) starts the measurement afresh.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import orjson

from langbatch_core.local.state import write_atomic

SPEED_FILE = "speed.json"
DECAY = 0.5


def backend_key(described: dict[str, Any]) -> str:
    """``"model SmolLM2-135M-Instruct"``, ``"upstream http://host/v1"``: what a measurement is valid for."""
    where = described.get("model") or described.get("upstream") or ""
    return f"{described.get('backend', '')} {where}".strip()


def read_speed(root: Path) -> dict[str, Any] | None:
    """What ``root`` (an engine folder) has measured, or None before its first batch."""
    with contextlib.suppress(OSError, orjson.JSONDecodeError):
        speed = orjson.loads((Path(root) / SPEED_FILE).read_bytes())
        if isinstance(speed, dict) and isinstance(speed.get("endpoints"), dict):
            return speed
    return None


def record_speed(
    root: Path, backend: str, endpoint: str, *, requests: int, seconds: float, output_tokens: int = 0
) -> None:
    """Add one batch's run (``requests`` finished in ``seconds``) to the measurement of ``endpoint``."""
    if requests <= 0 or seconds <= 0:
        return
    speed = read_speed(root)
    if speed is None or speed.get("backend") != backend:
        speed = {"backend": backend, "endpoints": {}}
    old = speed["endpoints"].get(endpoint) or {}
    speed["endpoints"][endpoint] = {
        "requests": old.get("requests", 0) * DECAY + requests,
        "seconds": old.get("seconds", 0) * DECAY + seconds,
        "output_tokens": old.get("output_tokens", 0) * DECAY + output_tokens,
        "batches": old.get("batches", 0) + 1,
        "updated_at": int(time.time()),
    }
    write_atomic(Path(root) / SPEED_FILE, orjson.dumps(speed))
