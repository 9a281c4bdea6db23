"""The bundled sample request files offered to newcomers."""

from __future__ import annotations

import pytest

from langbatch_core.errors import InvalidRequestsError
from langbatch_core.requests import iter_requests, sample_file, validate_file


@pytest.mark.parametrize(
    ("kind", "endpoint", "count"), [("chat", "/v1/chat/completions", 12), ("embeddings", "/v1/embeddings", 8)]
)
def test_samples_are_valid_and_small(kind, endpoint, count):
    report = validate_file(sample_file(kind))
    assert report.ok and report.warning_count == 0
    assert (report.endpoint, report.request_count) == (endpoint, count)
    assert report.estimated_cost_usd is not None and report.estimated_cost_usd < 0.01


def test_chat_sample_is_varied_and_cheap():
    requests = list(iter_requests(sample_file("chat")))
    assert {r["body"]["model"] for r in requests} == {"gpt-4o-mini"}
    assert all(r["body"]["max_tokens"] <= 48 for r in requests)
    assert len({r["body"]["messages"][-1]["content"] for r in requests}) == len(requests)


def test_unknown_sample_names_the_known_ones():
    with pytest.raises(InvalidRequestsError, match="chat, embeddings"):
        sample_file("images")


def test_every_chat_sample_is_accepted_by_the_bundled_model():
    # A newcomer's first batch runs on the bundled model: no sample request may be refused there.
    from langbatch_core.local.model.chat_request import parse_chat_request

    for request in iter_requests(sample_file("chat")):
        parse_chat_request(request["body"])
