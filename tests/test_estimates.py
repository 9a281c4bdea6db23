"""Run estimates: a batch's cost on its connection and, on the local engine, how long it will take."""

from __future__ import annotations

import orjson
import pytest

from langbatch_core import Connection, OpenAIChatCompletionBatch, validate_file
from langbatch_core.estimates import duration_text, estimate_run
from langbatch_core.requests import sample_file

CHAT = "/v1/chat/completions"


def chat_file(path, count, max_tokens=512):
    lines = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": CHAT,
            "body": {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "Tell me a story."}],
                "max_tokens": max_tokens,
            },
        }
        for i in range(count)
    ]
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def test_the_local_engine_costs_nothing_and_openai_its_batch_price(tmp_path):
    report = validate_file(sample_file("chat"))
    local = estimate_run(report, Connection.local(), speed=None)
    assert local.cost_usd == 0 and local.list_cost_usd == report.estimated_cost_usd > 0
    assert local.lines()[0].startswith("cost: $0 on the local engine")
    remote = estimate_run(report, Connection.openai())
    assert remote.cost_usd == report.estimated_cost_usd and remote.seconds is None and remote.warning is None


def test_a_batch_of_hours_on_the_bundled_model_says_so(tmp_path):
    report = validate_file(chat_file(tmp_path / "long.jsonl", 2_000))  # up to 1,024,000 tokens at 34/s
    estimate = estimate_run(report, Connection.local(), speed=None)
    assert 8 * 3600 < estimate.seconds < 9 * 3600
    assert estimate.warning.startswith("This batch will take about 8.4 h on the bundled model")
    assert "estimate" in estimate.lines()[1]
    short = estimate_run(validate_file(sample_file("chat")), Connection.local(), speed=None)
    assert short.seconds < 60 and short.warning is None


def test_a_measured_engine_speed_replaces_the_default(tmp_path):
    report = validate_file(chat_file(tmp_path / "in.jsonl", 600, max_tokens=100))
    measured = {"requests": 100.0, "seconds": 50.0, "output_tokens": 20_000.0, "batches": 3}
    speed = {"backend": "model SmolLM2", "endpoints": {CHAT: measured}}
    estimate = estimate_run(report, Connection.local(), speed=speed)
    # 2 requests/s, but these answers stop at 100 tokens where the measured ones took 200
    assert estimate.seconds == pytest.approx(600 / 2 * 0.5)
    assert "measured speed: 2.00 requests/s over 3 batches" in estimate.lines()[1]
    upstream = estimate_run(
        report, Connection.local(), speed={"backend": "upstream http://x", "endpoints": {}}
    )
    assert upstream.seconds is None and "has not run a batch yet" in upstream.lines()[1]


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.2, "1 s"), (42, "42 s"), (600, "10 min"), (5400, "1.5 h"), (36_000, "10 h")]
)
def test_durations_read_as_people_say_them(seconds, text):
    assert duration_text(seconds) == text


def test_a_batch_on_the_local_engine_is_stored_with_cost_zero(tmp_path):
    local = OpenAIChatCompletionBatch(sample_file("chat"), connection=Connection.local())
    assert local.record.estimated_cost_usd == 0
    remote = OpenAIChatCompletionBatch(sample_file("chat"), connection=Connection.openai())
    assert remote.record.estimated_cost_usd == validate_file(sample_file("chat")).estimated_cost_usd > 0
