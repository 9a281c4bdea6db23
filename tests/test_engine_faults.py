"""The local engine facing a faulty upstream: retries, backoff, Retry-After, timeouts, garbage, rates."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from support.upstream import Upstream
from test_engine import chat_line, results, run_batch, wait

from langbatch_core.local.backends import Backend, BackendResponse
from langbatch_core.local.executor import CallError, Executor, ExecutorSettings, RateLimiter


def received_for(upstream: Upstream, text: str) -> list[dict]:
    return [r for r in upstream.received if text in json.dumps(r["body"])]


def test_transient_500_is_retried_until_it_succeeds(openai_client, upstream):
    batch = wait(openai_client, run_batch(openai_client, [chat_line("a", "flaky [[500x2]]")]).id)
    assert batch.status == "completed" and batch.request_counts.completed == 1
    assert len(received_for(upstream, "flaky")) == 3  # two 500s, then the answer


def test_persistent_500_ends_in_error_file_after_the_retries(openai_client, upstream):
    lines = [chat_line("ok", "fine"), chat_line("down", "broken [[500]]")]
    batch = wait(openai_client, run_batch(openai_client, lines).id)
    errors = results(openai_client, batch.error_file_id)
    assert errors["down"]["response"]["status_code"] == 500
    assert len(received_for(upstream, "broken")) == 3  # max_retries=2 in the test engine
    assert batch.request_counts.completed == 1 and batch.request_counts.failed == 1


def test_429_waits_for_retry_after_before_resending(openai_client, upstream):
    upstream.retry_after = 0.4
    try:
        batch = wait(openai_client, run_batch(openai_client, [chat_line("a", "busy [[429x1]]")]).id)
    finally:
        upstream.retry_after = 0.05
    assert batch.status == "completed" and batch.request_counts.completed == 1
    first, second = received_for(upstream, "busy")
    assert second["time"] - first["time"] >= 0.4


def test_timeout_is_retried_then_reported(make_engine, upstream):
    engine = make_engine(request_timeout=0.2, max_retries=1)
    client = openai.OpenAI(base_url=engine.base_url, api_key="k", max_retries=0)
    lines = [chat_line("stuck", "never [[timeout]]"), chat_line("fine", "ok")]
    batch = wait(client, run_batch(client, lines).id)
    errors = results(client, batch.error_file_id)
    assert errors["stuck"]["response"] is None and errors["stuck"]["error"]["code"] == "request_timeout"
    assert len(received_for(upstream, "never")) == 2
    assert set(results(client, batch.output_file_id)) == {"fine"}
    client.close()


def test_garbage_body_is_retried_and_reported_as_bad_gateway(openai_client, upstream):
    batch = wait(openai_client, run_batch(openai_client, [chat_line("g", "junk [[garbage]]")]).id)
    line = results(openai_client, batch.error_file_id)["g"]
    assert line["response"]["status_code"] == 502
    assert line["response"]["body"]["error"]["code"] == "invalid_upstream_response"
    assert len(received_for(upstream, "junk")) == 3


def test_unreachable_upstream_fails_requests_not_the_batch(make_engine):
    engine = make_engine(backend="upstream:http://127.0.0.1:9/v1", max_retries=1)  # the discard port
    client = openai.OpenAI(base_url=engine.base_url, api_key="k", max_retries=0)
    batch = wait(client, run_batch(client, [chat_line("a", "hello")]).id)
    assert batch.status == "completed" and batch.output_file_id is None
    assert results(client, batch.error_file_id)["a"]["error"]["code"] == "backend_unavailable"
    client.close()


def test_rpm_limit_paces_requests_without_causing_429s(make_engine):
    with Upstream(rpm_limit=1200) as limited:  # 20 a second, bursts of 20: unpaced, 10 of 30 would be refused
        engine = make_engine(backend=f"upstream:{limited.base_url}", rpm=1200, concurrency=16)
        client = openai.OpenAI(base_url=engine.base_url, api_key="k", max_retries=0)
        batch = wait(client, run_batch(client, [chat_line(f"r{i}", f"n{i}") for i in range(30)]).id)
        times = sorted(r["time"] for r in limited.received)
        client.close()
    assert batch.request_counts.completed == 30
    assert limited.rejected == 0
    assert times[-1] - times[0] >= 29 * 0.05 * 0.9  # one every 50 ms


def test_the_server_answers_while_requests_are_slow(make_engine, upstream):
    engine = make_engine(concurrency=4)
    client = openai.OpenAI(base_url=engine.base_url, api_key="k", max_retries=0, timeout=2)
    created = run_batch(client, [chat_line(f"r{i}", f"x{i} [[slow:0.5]]") for i in range(8)])
    wait(client, created.id, {"in_progress"})
    for _ in range(10):
        assert client.batches.retrieve(created.id).status == "in_progress"
        assert client.files.list().data
    assert wait(client, created.id).status == "completed"
    client.close()


# --- the executor on its own, with a real Backend subclass ------------------------------------------------
class ScriptedBackend(Backend):
    """Answers each call with the next scripted response (an exception is raised)."""

    name = "scripted"
    endpoints = frozenset({"/v1/chat/completions"})

    def __init__(self, script: list) -> None:
        self.script = list(script)
        self.calls = 0

    async def send(self, endpoint: str, body: dict) -> BackendResponse:
        self.calls += 1
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def run(coro):
    return asyncio.run(coro)


def test_executor_retries_429_and_5xx_and_broken_connections_then_succeeds():
    ok = BackendResponse(200, {"ok": True})
    backend = ScriptedBackend(
        [
            BackendResponse(429, {}, retry_after=0.01),
            BackendResponse(503, {}),
            ConnectionResetError("reset"),
            ok,
        ]
    )
    settings = ExecutorSettings(max_retries=3, retry_base_delay=0.001)
    answer = run(Executor(backend, settings).call("/v1/chat/completions", {}))
    assert answer is ok and backend.calls == 4


def test_executor_does_not_retry_a_client_error():
    backend = ScriptedBackend([BackendResponse(400, {"error": {}}), BackendResponse(200, {})])
    answer = run(Executor(backend, ExecutorSettings(retry_base_delay=0.001)).call("/v1/chat/completions", {}))
    assert answer.status_code == 400 and backend.calls == 1


def test_executor_reports_a_failing_backend_after_its_retries():
    backend = ScriptedBackend([RuntimeError("boom")] * 3)
    answer = run(Executor(backend, ExecutorSettings(max_retries=2, retry_base_delay=0.001)).call("/v1/x", {}))
    assert isinstance(answer, CallError) and answer.code == "backend_error" and "boom" in answer.message


@pytest.mark.parametrize("attempt", [0, 3])
def test_backoff_grows_exponentially_with_jitter_and_a_cap(attempt):
    settings = ExecutorSettings(retry_base_delay=0.5, retry_max_delay=3.0)
    executor = Executor(ScriptedBackend([]), settings)
    delays = {executor._delay(CallError("x", "y"), attempt) for _ in range(50)}
    expected = 0.5 * 2**attempt
    assert len(delays) > 1  # jitter
    assert all(min(expected * 0.5, 3.0) <= d <= min(expected * 1.5, 3.0) for d in delays)
    assert executor._delay(BackendResponse(429, {}, retry_after=2.0), attempt) >= 2.0  # Retry-After wins


def test_rate_limiter_spaces_requests_and_tokens_evenly():
    async def go() -> tuple[float, float]:
        limiter = RateLimiter(rpm=6000, tpm=60_000)  # 10 ms a request, 1 ms a token
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.gather(*(limiter.acquire(0) for _ in range(11)))
        middle = loop.time()
        await asyncio.gather(*(limiter.acquire(50) for _ in range(3)))  # 50 ms of tokens each
        return middle - start, loop.time() - middle

    requests_time, tokens_time = run(go())
    assert requests_time >= 0.1 * 0.95
    assert tokens_time >= 0.1 * 0.95


def test_rate_limiter_never_exceeds_the_cap_in_any_sliding_second():
    async def go() -> list[float]:
        limiter = RateLimiter(rpm=12_000)  # 200 a second
        loop = asyncio.get_running_loop()
        sent: list[float] = []

        async def sender() -> None:
            for _ in range(13):
                await limiter.acquire()
                sent.append(loop.time())
                await asyncio.sleep(0.03 if len(sent) % 7 == 0 else 0)  # stalls, then catching up

        await asyncio.gather(*(sender() for _ in range(20)))
        return sorted(sent)

    sent = run(go())
    busiest = max(sum(1 for t in sent if start <= t < start + 1.0) for start in sent)
    assert busiest <= 200
    assert sent[-1] - sent[0] >= 259 / 200 * 0.95  # 260 sends spread over the time the cap asks
