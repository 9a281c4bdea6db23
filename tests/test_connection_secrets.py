"""A key written into a base URL (its user part or its query) is refused at every door, never repeated in
the message and never written under the data directory; the engine's upstream uses the same check."""

from __future__ import annotations

import pytest
from batch_support import write_chat_file
from click.testing import CliRunner

from langbatch_core import ConfigurationError, Connection, OpenAIChatCompletionBatch
from langbatch_core.cli import cli

KEY = "sk-" + "proj" + "Q7x2Lm9Vb4Nc8Rt1Zp6Wd3Ky5"  # built, so the file holds no key-like string
KEYED_URLS = [
    f"http://{KEY}@127.0.0.1:9/v1",
    f"https://user:{KEY}@api.example.com/v1",
    f"https://api.example.com/v1?api-key={KEY}",
    f"https://api.example.com/v1?api_key={KEY}&x=1",
    f"https://api.example.com/v1?token={KEY}",
    f"https://api.example.com/v1?k={KEY}",  # a key-like value, whatever the parameter's name
]


def files_holding_the_key(data_dir):
    return [p for p in data_dir.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]


@pytest.mark.parametrize("url", KEYED_URLS)
def test_a_key_in_the_base_url_is_refused_unrepeated(url, isolated_data_dir):
    with pytest.raises(ConfigurationError, match="credential") as caught:
        Connection.compatible(url)
    assert KEY not in str(caught.value)
    with pytest.raises(ConfigurationError) as caught:
        Connection.from_dict({"kind": "openai", "base_url": url})  # a record written by an older version
    assert KEY not in str(caught.value)


@pytest.mark.parametrize("url", KEYED_URLS[:3])
def test_no_door_stores_a_key_given_in_the_url(url, tmp_path, isolated_data_dir):
    import openai

    requests = write_chat_file(tmp_path / "in.jsonl", ["hi"])
    with pytest.raises(ConfigurationError) as caught:
        OpenAIChatCompletionBatch(requests, client=openai.OpenAI(base_url=url, api_key="unused"))
    assert KEY not in str(caught.value)
    result = CliRunner().invoke(
        cli, ["create", str(requests), "--connection", "compatible", "--base-url", url, "--start"]
    )
    assert result.exit_code != 0 and "credential" in result.output and KEY not in result.output
    assert files_holding_the_key(isolated_data_dir) == []


def test_ordinary_urls_and_queries_are_accepted():
    for url in (
        "https://api.groq.com/openai/v1",
        "http://127.0.0.1:8765/v1",
        "https://my.openai.azure.com/openai/v1?api-version=2024-10-21",
    ):
        assert Connection.compatible(url).base_url == url


def test_the_engine_refuses_the_same_urls_for_its_upstream():
    from langbatch_core.local.backends import UpstreamBackend

    for url in KEYED_URLS:
        with pytest.raises(ConfigurationError, match="credentials") as caught:
            UpstreamBackend(url)
        assert KEY not in str(caught.value)
