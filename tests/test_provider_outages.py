"""Provider calls ride out transient trouble (429, 503, resets, timeouts) through a real fault-injecting
proxy in front of the engine, never doing a job or an upload twice, and give up with one clear error."""

from __future__ import annotations

import email.utils
import time

import pytest
from batch_support import prompts_received, write_chat_file
from support.fault_proxy import OUTAGE, FaultProxy

from langbatch_core import (
    ConfigurationError,
    Connection,
    Limits,
    OpenAIChatCompletionBatch,
    ProviderUnavailableError,
    Retrying,
)
from langbatch_core.providers import provider_for
from langbatch_core.providers.retry import parse_retry_after

FAST = Retrying(deadline=30, base_delay=0.005, max_delay=0.05, attempt_timeout=0.5)


@pytest.fixture
def make_proxy(engine):
    proxies = []

    def make(**kw):
        proxies.append(FaultProxy(engine.base_url, slow_seconds=0.8, **kw).start())
        return proxies[-1]

    yield make
    for proxy in proxies:
        proxy.stop()


def start_batch(tmp_path, proxy, prompts, retrying=FAST):
    connection = Connection.compatible(proxy.base_url, limits=Limits(max_requests=2), retrying=retrying)
    batch = OpenAIChatCompletionBatch(write_chat_file(tmp_path / "in.jsonl", prompts), connection=connection)
    batch.start()
    return batch


def jobs_at_engine(openai_client, batch_id):
    return [b for b in openai_client.batches.list() if b.metadata.get("langbatch_batch_id") == batch_id]


def input_files_at_engine(openai_client, batch_id):
    return [f.filename for f in openai_client.files.list(purpose="batch") if f.filename.startswith(batch_id)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_batch_rides_out_a_provider_failing_half_its_calls(
    seed, tmp_path, make_proxy, upstream, openai_client
):
    proxy = make_proxy(seed=seed, rates=OUTAGE)
    prompts = [f"question {i}" for i in range(7)]
    batch = start_batch(tmp_path, proxy, prompts)
    assert batch.wait(poll_interval=0.02) == "completed"
    succeeded, failed = batch.get_results()

    assert sorted(r["content"] for r in succeeded) == sorted(f"echo: {p}" for p in prompts) and not failed
    assert prompts_received(upstream) == {p: 1 for p in prompts}  # every request answered exactly once
    assert len(jobs_at_engine(openai_client, batch.id)) == 4  # no job made twice
    assert sorted(input_files_at_engine(openai_client, batch.id)) == [
        f"{batch.id}-a1-j{i}.jsonl" for i in range(1, 5)
    ]  # no file uploaded twice
    assert proxy.faults["503"] >= 3 and proxy.faults["429"] >= 2  # the provider really misbehaved


@pytest.mark.parametrize("fault", ["reset_after", "slow_after", "500_after"])
def test_a_create_whose_answer_was_lost_is_looked_up_not_sent_twice(
    fault, tmp_path, make_proxy, upstream, openai_client
):
    proxy = make_proxy()
    proxy.script("POST", "/v1/batches", fault)  # the job is made, its answer lost
    batch = start_batch(tmp_path, proxy, ["only once"])
    assert batch.wait(poll_interval=0.02) == "completed"
    assert proxy.faults[fault] == 1
    made = [job.id for job in jobs_at_engine(openai_client, batch.id)]
    assert made == [batch.record.jobs[0].provider_job_id]
    assert prompts_received(upstream) == {"only once": 1}


@pytest.mark.parametrize("fault", ["reset_after", "slow_after"])
def test_an_upload_whose_answer_was_lost_is_reused_not_sent_twice(fault, tmp_path, make_proxy, openai_client):
    proxy = make_proxy()
    proxy.script("POST", "/v1/files", fault)
    batch = start_batch(tmp_path, proxy, ["a file"])
    assert batch.wait(poll_interval=0.02) == "completed"
    assert proxy.faults[fault] == 1
    assert input_files_at_engine(openai_client, batch.id) == [f"{batch.id}-a1-j1.jsonl"]


def test_a_provider_that_stays_down_gives_one_clear_error_and_loses_nothing(tmp_path, make_proxy):
    proxy = make_proxy()
    batch = start_batch(tmp_path, proxy, ["patience"])
    proxy.always = "503"
    batch.provider.retrying = Retrying(deadline=0.3, base_delay=0.01, max_delay=0.05)
    began = time.monotonic()
    with pytest.raises(ProviderUnavailableError) as caught:
        batch.wait(poll_interval=0.01)
    message = str(caught.value)
    assert time.monotonic() - began < 5
    assert "kept failing for 0.3 s" in message and proxy.base_url in message
    assert "503 Service Unavailable on GET /v1/batches/" in message
    assert "Nothing was lost" in message and "langbatch wait" in message
    assert caught.value.status_code == 503

    proxy.always = None  # the provider is back: the batch carries on where it stopped
    assert batch.wait(poll_interval=0.02) == "completed"
    assert batch.get_results()[0][0]["content"] == "echo: patience"


def test_retry_after_is_waited_for(tmp_path, make_proxy):
    proxy = make_proxy(retry_after="0.6")
    provider = provider_for(
        Connection.compatible(proxy.base_url, retrying=Retrying(base_delay=0.001, max_delay=0.001))
    )
    job = provider.submit(write_chat_file(tmp_path / "in.jsonl", ["x"]), "/v1/chat/completions", {})
    proxy.script("GET", "/v1/batches/", "429")  # the first 429 asks for Retry-After: 0.6
    began = time.monotonic()
    assert provider.poll(job.id).id == job.id
    assert proxy.faults["429"] == 1 and time.monotonic() - began >= 0.6


def test_retry_after_may_be_seconds_or_an_http_date():
    assert parse_retry_after("2.5") == 2.5
    assert 25 < parse_retry_after(email.utils.formatdate(time.time() + 30, usegmt=True)) <= 30
    assert parse_retry_after("soon") is None and parse_retry_after("-3") == 0.0


def test_backoff_grows_with_jitter_up_to_the_cap():
    policy = Retrying(base_delay=1, max_delay=8, jitter=0.5)
    assert 0.5 <= policy.delay(0) <= 1.5 and 2 <= policy.delay(2) <= 6 and 4 <= policy.delay(10) <= 12
    assert 3 <= policy.delay(0, retry_after=3) <= 3.4  # what the provider asked, not the backoff


def test_the_deadline_comes_from_the_connection_else_the_environment(monkeypatch):
    monkeypatch.setenv("LANGBATCH_PROVIDER_RETRY_SECONDS", "42")
    assert provider_for(Connection.compatible("http://x/v1")).retrying.deadline == 42
    chosen = Connection.compatible("http://x/v1", retrying=Retrying(deadline=7))
    assert provider_for(chosen).retrying.deadline == 7
    assert Connection.from_dict(chosen.to_dict()).retrying == Retrying(deadline=7)  # kept with the batch
    assert provider_for(Connection.compatible("http://x/v1")).retrying.deadline == 42
    with pytest.raises(ConfigurationError, match="Retrying"):
        Connection.compatible("http://x/v1", retrying=300)
    monkeypatch.setenv("LANGBATCH_PROVIDER_RETRY_SECONDS", "five minutes")
    with pytest.raises(ConfigurationError, match="LANGBATCH_PROVIDER_RETRY_SECONDS"):
        provider_for(Connection.compatible("http://x/v1"))


def test_an_exhausted_quota_is_not_retried():
    # a 429 whose code says the quota is gone will not heal by waiting: raise it at once
    import httpx2
    import openai

    from langbatch_core.providers.openai import transient_failure

    request = httpx2.Request("GET", "http://x/v1/batches")
    response = httpx2.Response(429, request=request)
    quota = openai.RateLimitError("quota", response=response, body={"code": "insufficient_quota"})
    busy = openai.RateLimitError("busy", response=response, body={"code": "rate_limit_exceeded"})
    connection = Connection.compatible("http://x/v1")
    assert transient_failure(quota, connection) is None
    assert transient_failure(busy, connection).reason == "429 Too Many Requests on GET /v1/batches"
