"""Without Chromium, `make test` says once, at the end, that the browser tests did not run, and how to fix it;
in CI (LANGBATCH_REQUIRE_BROWSER=1) that is an error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pytest_without_chromium(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    missing = {"LANGBATCH_TEST_CHROMIUM": str(tmp_path / "no-chromium"), "LANGBATCH_REQUIRE_BROWSER": "0"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/test_browser_dashboard.py",
         "tests/test_self_contained.py::test_levels_up_counts_parent_steps"],
        cwd=ROOT, env={**os.environ, **missing, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_missing_chromium_is_reported_once_with_the_fix(tmp_path):
    run = pytest_without_chromium(tmp_path)
    assert run.returncode == 0, run.stdout[-2000:]
    lines = [line for line in run.stdout.splitlines() if "chromium" in line.lower()]
    assert len(lines) == 1, run.stdout[-2000:]
    assert "browser tests skipped" in lines[0] and "apt-get install chromium" in lines[0]
    assert "SKIPPED" not in run.stdout and "1 passed" in run.stdout


def test_missing_chromium_is_an_error_when_the_browser_is_required(tmp_path):
    run = pytest_without_chromium(tmp_path, LANGBATCH_REQUIRE_BROWSER="1")
    assert run.returncode != 0
    assert "LANGBATCH_REQUIRE_BROWSER=1" in run.stdout + run.stderr
    assert "apt-get install chromium" in run.stdout + run.stderr
