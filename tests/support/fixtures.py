"""Fixtures shared across test modules: the test upstream and a running local engine.

- ``upstream``: a real HTTP server (``support.upstream.Upstream``) answering OpenAI realtime requests with
  ``"echo: <last user message>"`` and fixed-length embeddings; ``.received`` lists what it got
  (``[{"endpoint", "body", "time"}]``), ``.reset()`` forgets it; faults on request by markers in the prompt
  (``[[429]]``, ``[[500]]``, ``[[400]]``, ``[[timeout]]``, ``[[garbage]]``, ``[[slow:0.5]]``, ``[[500x2]]``;
  also ``[[429date]]``, ``[[429junk]]``, ``[[error200]]``, ``[[close]]``, ``[[huge]]``);
  ``.authorizations`` lists the Authorization headers it got.
- ``engine``: a ``LocalEngine`` on a fresh data dir (``$LANGBATCH_DATA_DIR``) with the upstream as backend,
  tuned for tests: retries after ~10 ms (``max_retries=2``), requests time out after 1 s, progress saved every
  50 ms. ``.base_url``; ``engine.upstream`` is the upstream.
- ``openai_client``: the official ``openai.OpenAI`` client pointed at the engine (no retries of its own).
- ``make_engine``: a factory for engines with other settings (``make_engine(completion_window=1, rpm=600)``);
  every engine it makes is stopped after the test.
- ``openai_spec``: ``openai_spec.check(obj, "Batch")`` validates an answer (a dict or an SDK model) against
  ``tests/fixtures/openai/batch-openapi.yaml`` after dropping null fields, as the real API sends them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.upstream import Upstream

#: The repository's own copies of OpenAI's spec and example lines, and the seed API description.
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SPEC_PATH = FIXTURES / "openai" / "batch-openapi.yaml"
EXAMPLES = FIXTURES / "openai" / "examples"
SEED_API = FIXTURES / "seed" / "batch-api.md"

TEST_ENGINE_SETTINGS: dict[str, Any] = {
    "max_retries": 2,
    "retry_base_delay": 0.01,
    "retry_max_delay": 0.5,
    "request_timeout": 1.0,
    "sync_interval": 0.05,
    "concurrency": 16,
}


@pytest.fixture(scope="session")
def _session_upstream() -> Iterator[Upstream]:
    with Upstream(retry_after=0.05) as server:
        yield server


@pytest.fixture
def upstream(_session_upstream: Upstream) -> Iterator[Upstream]:
    """The test upstream, emptied of what earlier tests sent it."""
    _session_upstream.reset()
    yield _session_upstream
    _session_upstream.reset()


@pytest.fixture
def make_engine(upstream: Upstream) -> Iterator[Callable[..., Any]]:
    """``make_engine(**settings)`` -> a started LocalEngine (upstream backend, data dir of the test)."""
    from langbatch_core.local import LocalEngine

    started: list[Any] = []

    def make(**settings: Any) -> Any:
        options = {**TEST_ENGINE_SETTINGS, **settings}
        options.setdefault("backend", f"upstream:{upstream.base_url}")
        options.setdefault("data_dir", Path(os.environ["LANGBATCH_DATA_DIR"]))
        engine = LocalEngine(**options).start()
        engine.upstream = upstream
        started.append(engine)
        return engine

    yield make
    for engine in reversed(started):
        engine.stop()


@pytest.fixture
def engine(make_engine: Callable[..., Any]) -> Any:
    """A running local engine whose backend is the test upstream."""
    return make_engine()


@pytest.fixture
def openai_client(engine: Any) -> Iterator[Any]:
    """The official OpenAI client talking to ``engine`` over real HTTP."""
    import openai

    client = openai.OpenAI(base_url=engine.base_url, api_key="test-key", max_retries=0, timeout=30)
    yield client
    client.close()


class OpenAISpec:
    """OpenAI's Files + Batches schemas: ``spec.check(answer, "Batch")`` raises if the answer breaks them."""

    def __init__(self, path: Path) -> None:
        import yaml

        self.components = yaml.safe_load(path.read_text())["components"]

    def check(self, answer: Any, schema: str) -> dict[str, Any]:
        import jsonschema

        if hasattr(answer, "model_dump"):
            answer = answer.model_dump(mode="json", exclude_unset=True)
        document = drop_nulls(answer)
        root = {"$ref": f"#/components/schemas/{schema}", "components": self.components}
        jsonschema.Draft202012Validator(root).validate(document)
        return document


def drop_nulls(value: Any) -> Any:
    """``value`` without null fields, at every depth (the spec types them as non-null)."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


@pytest.fixture(scope="session")
def openai_spec() -> OpenAISpec:
    """OpenAI's schemas of the Files + Batches API (the repository's copy: tests/fixtures/openai/)."""
    return OpenAISpec(SPEC_PATH)
