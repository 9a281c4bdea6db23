"""The local engine measures its own speed from the batches it runs (``speed.json``, ``/health``)."""

from __future__ import annotations

import httpx
from test_engine import chat_line, run_batch, wait

from langbatch_core.local.speed import read_speed, record_speed


def test_a_finished_batch_is_measured_and_shown_on_health(engine, openai_client):
    lines = [chat_line(f"r{i}", f"q{i} [[slow:0.05]]") for i in range(6)]
    assert httpx.get(engine.base_url + "/health").json()["speed"] is None  # nothing measured yet
    batch = wait(openai_client, run_batch(openai_client, lines).id)
    assert batch.status == "completed"
    speed = httpx.get(engine.base_url + "/health").json()["speed"]
    assert speed["backend"] == f"upstream {engine.upstream.base_url}"
    chat = speed["endpoints"]["/v1/chat/completions"]
    assert chat["requests"] == 6 and chat["batches"] == 1 and chat["output_tokens"] > 0
    assert 0.05 <= chat["seconds"] < 5
    assert read_speed(engine.root) == speed  # kept in the engine folder for the next start


def test_recent_batches_weigh_more_and_another_backend_starts_afresh(tmp_path):
    record_speed(tmp_path, "model m", "/v1/chat/completions", requests=100, seconds=100, output_tokens=1000)
    record_speed(tmp_path, "model m", "/v1/chat/completions", requests=10, seconds=2, output_tokens=100)
    chat = read_speed(tmp_path)["endpoints"]["/v1/chat/completions"]
    assert (chat["requests"], chat["seconds"], chat["batches"]) == (60, 52, 2)
    record_speed(tmp_path, "upstream http://x/v1", "/v1/embeddings", requests=5, seconds=1)
    assert list(read_speed(tmp_path)["endpoints"]) == ["/v1/embeddings"]
    record_speed(tmp_path, "upstream http://x/v1", "/v1/embeddings", requests=0, seconds=1)  # nothing ran
    assert read_speed(tmp_path)["endpoints"]["/v1/embeddings"]["batches"] == 1
