"""What the benchmark scripts share: each variant runs in a child process of its own (so its peak memory is
its own), the variants take turns (a busy spell of the machine hits them all), the best run counts.

    found = measure(["baseline", "mine"], lambda variant: run_child(__file__, variant, path), repeat=5)
    report({"seconds": ..., "cpu": ...})      # in the child: its figures, as the last line it prints
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    """Wall and CPU seconds of the ``with`` body, and the peak RSS before it (``base_mb``) and at its end."""
    found = {"base_mb": peak_rss_mb()}
    start, cpu = time.perf_counter(), time.process_time()
    yield found
    found.update(seconds=time.perf_counter() - start, cpu=time.process_time() - cpu, peak_mb=peak_rss_mb())


def report(found: dict[str, Any]) -> None:
    """Prints a child's figures as the JSON line ``run_child`` reads."""
    print(json.dumps(found), flush=True)


def run_child(script: str, *args: str, python: str | None = None, env: dict[str, str] | None = None) -> dict:
    """Runs ``script --child *args`` in a new process; the figures it reported."""
    command = [python or sys.executable, script, "--child", *args]
    env = {**os.environ, **(env or {})}
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(variants: list[str], run: Callable[[str], dict], repeat: int) -> dict[str, dict]:
    """Best run of each variant (least wall time; least CPU; most memory), the variants taking turns."""
    runs: dict[str, list[dict]] = {variant: [] for variant in variants}
    for _ in range(repeat):
        for variant in variants:
            runs[variant].append(run(variant))
    return {variant: _best(found) for variant, found in runs.items()}


def _best(runs: list[dict]) -> dict:
    best = min(runs, key=lambda run: run["seconds"])
    return {**best, "cpu": min(run["cpu"] for run in runs), "peak_mb": max(run["peak_mb"] for run in runs)}


def machine() -> str:
    """The machine and how busy it is, for the header of a run."""
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{os.cpu_count()} cores, Python {platform.python_version()}, load average {load} "
        f"(at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})"
    )
