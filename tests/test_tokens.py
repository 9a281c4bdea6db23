"""Token estimates (offline tokenizer) and batch prices."""

from __future__ import annotations

import json

import pytest
from support.data_requests import chat_request, write_lines

from langbatch_core.requests import pricing, tokens, validate_file

needs_tokenizer = pytest.mark.skipif(not tokens.tokenizer_available(), reason="bpe-openai is not installed")


@needs_tokenizer
def test_exact_count_offline():
    assert tokens.count_tokens("Hello world!", model="gpt-4o-mini") == 3
    assert tokens.count_tokens("Hello world!", model="gpt-3.5-turbo") == 3
    long = "token " * 250_000  # over bpe-openai's per-call limit
    assert tokens.count_tokens(long) >= 250_000


def test_encoding_by_model():
    assert tokens.encoding_name("gpt-4o-mini-2024-07-18") == "o200k_base"
    assert tokens.encoding_name("gpt-3.5-turbo-0125") == "cl100k_base"
    assert tokens.encoding_name("text-embedding-3-small") == "cl100k_base"
    assert tokens.encoding_name("my-local-llama") == "o200k_base"


def test_text_estimate_is_close_for_english_and_cjk(tmp_path):
    english = "The quick brown fox jumps over the lazy dog while the customer waits for a refund. " * 20
    cjk = "日本語のテキストを数えます。東京は大きな都市です。" * 20
    for text in (english, cjk):
        path = write_lines(tmp_path / "r.jsonl", [chat_request("a", text)])
        estimate = validate_file(path).input_tokens
        if tokens.tokenizer_available():
            exact = (
                tokens.count_tokens(text, "gpt-4o-mini")
                + 3 * 2
                + 3
                + tokens.count_tokens("You are a careful assistant.", "gpt-4o-mini")
            )
            assert 0.6 * exact <= estimate <= 1.6 * exact, (text[:10], estimate, exact)


@needs_tokenizer
def test_token_sample_calibrates_the_estimate(tmp_path):
    text = "数" * 2000  # one token per character or so: far from 4 characters per token
    lines = [chat_request(f"r-{i}", text) for i in range(5)]
    path = tmp_path / "cjk.jsonl"
    path.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines), encoding="utf-8")
    sampled = validate_file(path, token_sample=2)
    exact = 5 * tokens.count_tokens(text + "\nYou are a careful assistant.", "gpt-4o-mini")
    assert abs(sampled.input_tokens - exact) <= 0.1 * exact + 60
    assert "counted exactly on 2 requests" in sampled.token_method
    assert "text length" in validate_file(path).token_method


def test_price_lookup_and_cost():
    assert pricing.price_for("gpt-4o-mini") == pricing.BATCH_PRICES["gpt-4o-mini"]
    assert pricing.price_for("gpt-4o-mini-2024-07-18") == pricing.BATCH_PRICES["gpt-4o-mini"]
    assert pricing.price_for("gpt-4o-2024-08-06") == pricing.BATCH_PRICES["gpt-4o"]
    assert pricing.price_for("llama3") is None
    assert pricing.estimate_cost("llama3", 100) is None
    price = pricing.BATCH_PRICES["gpt-4o-mini"]
    assert pricing.estimate_cost("gpt-4o-mini", 2_000_000, 1_000_000) == pytest.approx(
        2 * price.input + price.output
    )


def test_report_cost_uses_input_and_output_ceiling(tmp_path):
    path = write_lines(tmp_path / "r.jsonl", [chat_request("a", "hi " * 100, max_tokens=1000)])
    report = validate_file(path)
    expected = pricing.estimate_cost("gpt-4o-mini", report.input_tokens, 1000)
    assert report.estimated_cost_usd == expected
    assert report.prices_as_of == pricing.PRICES_AS_OF
