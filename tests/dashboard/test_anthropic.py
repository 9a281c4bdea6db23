"""The dashboard lists Anthropic from the one registry of kinds, with no list of its own."""

from __future__ import annotations

from .conftest import open_page


def test_settings_lists_the_anthropic_connection_and_its_key_variable(data_dir, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret-value-123")
    at = open_page("settings")
    assert not at.exception
    rows = {row["name"]: row for row in at.dataframe[0].value.to_dict("records")}
    assert rows["Anthropic"]["key variable"] == "ANTHROPIC_API_KEY"
    assert rows["Anthropic"]["key configured"] is True
    assert "sk-ant-secret-value-123" not in str(list(at.main))
