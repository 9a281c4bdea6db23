"""Shared fixtures. Every test gets its own data directory: no test touches a user's real one."""

from __future__ import annotations

import pytest

pytest_plugins = ["support.fixtures", "support.browser", "support.postgres"]


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path_factory, monkeypatch):
    """Point LANGBATCH_DATA_DIR (and HOME) at a fresh temp dir, and drop any real API key."""
    home = tmp_path_factory.mktemp("home")
    data = home / "langbatch-data"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("LANGBATCH_DATA_DIR", str(data))
    monkeypatch.delenv("LANGBATCH_STORE", raising=False)
    monkeypatch.delenv("LANGBATCH_FILES", raising=False)
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    return data
