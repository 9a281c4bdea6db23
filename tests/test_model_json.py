"""The bundled model answers in JSON when ``response_format`` asks: constrained decoding makes every answer
parse and match its schema, through the engine and the official client, a Python batch, and the generator."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import openai
import orjson
import pytest
from batch_support import CHAT
from support.data_requests import write_lines
from test_engine import run_batch, wait

from langbatch_core import Connection, OpenAIChatCompletionBatch
from langbatch_core.local import LocalEngine
from langbatch_core.local.model import BundledModelBackend
from langbatch_core.local.model.chat_request import BUNDLED_MODEL, parse_chat_request
from langbatch_core.local.model.generation import Generator
from langbatch_core.local.model.gguf_weights import load_weights
from langbatch_core.local.model.json_output import ConstrainedDecodingError, GrammarMatcher, TokenGrammars
from langbatch_core.local.model.llama import LlamaModel
from langbatch_core.local.model.sampling import SamplingParams
from langbatch_core.local.model.tokenizer import ChatTokenizer
from langbatch_core.requests import validate_file

pytestmark = [pytest.mark.model, pytest.mark.timeout(1800)]  # a shared 2-core machine can be 10x slower

REFERENCE = Path(__file__).parent / "fixtures" / "model" / "smollm2_reference.npz"


def strict(properties: dict, **extra) -> dict:
    """An object schema as OpenAI's strict mode wants it: every property required, nothing else allowed."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
        **extra,
    }


SCHEMAS = {
    "enum": strict({"sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]}}),
    "nested": strict(
        {
            "city": {"type": "string"},
            "country": strict({"name": {"type": "string"}, "in_europe": {"type": "boolean"}}),
        }
    ),
    "array_of_objects": strict(
        {
            "items": {  # without maxItems greedy decoding may repeat an item until max_tokens
                "type": "array",
                "items": strict({"name": {"type": "string"}, "colour": {"type": "string"}}),
                "maxItems": 3,
            }
        }
    ),
    "scalars": strict(
        {
            "year": {"type": "integer"},
            "price": {"type": "number"},
            "available": {"type": "boolean"},
            # a free string can run on until max_tokens on a model this small: a pattern keeps it short
            "note": {"anyOf": [{"type": "string", "pattern": "^[A-Za-z ]{1,24}$"}, {"type": "null"}]},
        }
    ),
}
PROMPTS = [
    "I loved this phone, the battery lasts for days.",
    "Tell me about Paris.",
    "Describe a fruit bowl with three fruits.",
]


def schema_format(name: str) -> dict:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": SCHEMAS[name], "strict": True}}


def chat_line(custom_id: str, content: str, **body) -> dict:
    messages = [{"role": "user", "content": content}]
    body = {"model": "local", "messages": messages, "max_tokens": 120, "temperature": 0, **body}
    return {"custom_id": custom_id, "method": "POST", "url": CHAT, "body": body}


def json_lines() -> list[dict]:
    lines = [
        chat_line(f"{name}-{index}", prompt, response_format=schema_format(name))
        for name in SCHEMAS
        for index, prompt in enumerate(PROMPTS)
    ]
    for index, prompt in enumerate(PROMPTS):
        sampled = {"temperature": 0.9, "seed": index}
        lines.append(
            chat_line(f"object-{index}", f"{prompt} Answer in JSON.", response_format={"type": "json_object"})
        )
        lines.append(
            chat_line(f"sampled-{index}", prompt, response_format=schema_format("nested"), **sampled)
        )
    return lines


@pytest.fixture(scope="module")
def engine_results(tmp_path_factory):
    """Every JSON request above run as one batch on the bundled model, through the official client."""
    lines = [orjson.dumps(line).decode() for line in json_lines()]
    data_dir = tmp_path_factory.mktemp("engine")
    with LocalEngine(data_dir, backend=BundledModelBackend(max_batch=8), sync_interval=0.05) as engine:
        client = openai.OpenAI(base_url=engine.base_url, api_key="local", max_retries=0)
        created = run_batch(client, lines, endpoint=CHAT)
        batch = wait(client, created.id, timeout=1500)
        output = client.files.content(batch.output_file_id).text if batch.output_file_id else ""
        client.close()
    assert batch.status == "completed", batch
    return {row["custom_id"]: row["response"] for row in map(orjson.loads, output.splitlines())}


def answer(results: dict, custom_id: str) -> dict:
    response = results[custom_id]
    assert response["status_code"] == 200, response
    [choice] = response["body"]["choices"]
    return choice


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_schema_answer_parses_and_matches_its_schema(engine_results, name):
    for index in range(2):
        choice = answer(engine_results, f"{name}-{index}")
        assert choice["finish_reason"] == "stop", choice
        parsed = json.loads(choice["message"]["content"])
        jsonschema.validate(parsed, SCHEMAS[name])
        assert list(parsed) == list(SCHEMAS[name]["properties"])  # in the schema's order, as OpenAI writes


def test_sampled_answers_follow_the_schema_too(engine_results):
    for index in range(2):
        choice = answer(engine_results, f"sampled-{index}")
        jsonschema.validate(json.loads(choice["message"]["content"]), SCHEMAS["nested"])


def test_json_object_answers_are_json_objects(engine_results):
    for index in range(2):
        choice = answer(engine_results, f"object-{index}")
        assert isinstance(json.loads(choice["message"]["content"]), dict)


def test_a_python_batch_with_a_schema_gets_answers_that_parse(tmp_path):
    schema = SCHEMAS["scalars"]
    bodies = [{"messages": [{"role": "user", "content": prompt}]} for prompt in PROMPTS]
    kwargs = {"max_tokens": 120, "temperature": 0, "response_format": schema_format("scalars")}
    with LocalEngine(
        tmp_path / "engine", backend=BundledModelBackend(max_batch=4), sync_interval=0.05
    ) as engine:
        connection = Connection.compatible(engine.base_url)
        batch = OpenAIChatCompletionBatch.create(bodies, request_kwargs=kwargs, connection=connection)
        batch.start()
        assert batch.wait(poll_interval=0.1) == "completed"
        successful, unsuccessful = batch.get_results()
    assert unsuccessful == [] and len(successful) == len(PROMPTS)
    for result in successful:
        jsonschema.validate(json.loads(result["content"]), schema)


def test_a_schema_the_model_cannot_follow_is_flagged_by_line_before_a_start(tmp_path):
    impossible = strict({"n": {"type": "integer", "minimum": 3, "maximum": 1}})
    broken = {"type": "json_schema", "json_schema": {"name": "a", "schema": impossible}}
    lines = [
        chat_line("ok", "hi", response_format=schema_format("enum")),
        chat_line("bad", "hi", response_format=broken),
    ]
    report = validate_file(write_lines(tmp_path / "r.jsonl", lines), capabilities=BUNDLED_MODEL)
    assert [(issue.line, issue.param) for issue in report.issues] == [
        (2, "body.response_format.json_schema.schema")
    ]
    assert "required property 'n' is unsatisfiable" in report.issues[0].message


def test_a_valid_schema_compiles_into_the_request():
    request = parse_chat_request(chat_line("a", "hi", response_format=schema_format("nested"))["body"])
    assert request.grammar and parse_chat_request(chat_line("b", "hi")["body"]).grammar is None


# --- the generator itself -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def generator():
    weights = load_weights()
    running = Generator(LlamaModel(weights), ChatTokenizer.from_metadata(weights.metadata), max_batch=8)
    yield running
    running.close()


def prompt_ids(generator: Generator, content: str) -> list[int]:
    tokenizer = generator.tokenizer
    return tokenizer.encode(tokenizer.render_chat([{"role": "user", "content": content}]))


def grammar(name: str) -> str:
    return parse_chat_request(chat_line("x", "x", response_format=schema_format(name))["body"]).grammar


def test_plain_answers_are_unchanged_beside_json_answers_in_the_same_batch(generator):
    with np.load(REFERENCE) as stored:
        raw_ids, continuation = stored["raw.ids"].tolist(), stored["raw.continuation"].tolist()
    constrained = SamplingParams(max_tokens=60, temperature=0.0, grammar=grammar("nested"))
    json_futures = [generator.submit(prompt_ids(generator, p), constrained) for p in PROMPTS]
    plain = generator.submit(raw_ids, SamplingParams(max_tokens=len(continuation), temperature=0.0))
    [choice] = plain.result(timeout=300)
    assert list(choice.token_ids) == continuation  # the greedy tokens of the reference fixture
    for future in json_futures:
        jsonschema.validate(json.loads(future.result(timeout=300)[0].text), SCHEMAS["nested"])


def test_an_answer_cut_by_max_tokens_ends_with_length_and_is_not_complete_json(generator):
    params = SamplingParams(max_tokens=6, temperature=0.0, grammar=grammar("array_of_objects"))
    [choice] = generator.submit(prompt_ids(generator, PROMPTS[2]), params).result(timeout=300)
    assert choice.finish_reason == "length" and len(choice.token_ids) == 6
    assert choice.text.startswith('{"items": [')
    with pytest.raises(json.JSONDecodeError):
        json.loads(choice.text)


def test_every_choice_of_a_request_follows_the_grammar(generator):
    params = SamplingParams(max_tokens=80, temperature=1.0, seed=11, grammar=grammar("scalars"))
    choices = generator.submit(prompt_ids(generator, PROMPTS[1]), params, n=3).result(timeout=300)
    for choice in choices:
        jsonschema.validate(json.loads(choice.text), SCHEMAS["scalars"])


class BreakingGrammars(TokenGrammars):
    """Matchers that break down at their third token, as a matcher bug would."""

    def matcher(self, grammar: str) -> GrammarMatcher:
        return BreakingMatcher(self.ll_tokenizer(), grammar)


class BreakingMatcher(GrammarMatcher):
    consumed = 0

    def consume(self, token: int) -> None:
        super().consume(token)
        self.consumed += 1
        if self.consumed == 3:
            raise ConstrainedDecodingError("constrained decoding failed: the matcher broke down")


def test_a_broken_matcher_fails_its_request_only(generator):
    model, tokenizer = generator.model, generator.tokenizer
    own = Generator(model, tokenizer, max_batch=4)
    own.grammars = BreakingGrammars(tokenizer)
    try:
        broken = own.submit(
            prompt_ids(own, PROMPTS[0]), SamplingParams(max_tokens=20, grammar=grammar("enum")), n=2
        )
        plain = own.submit(prompt_ids(own, PROMPTS[1]), SamplingParams(max_tokens=12, temperature=0.0))
        with pytest.raises(ConstrainedDecodingError, match="broke down"):
            broken.result(timeout=300)
        [choice] = plain.result(timeout=300)
        assert choice.finish_reason == "length" and len(choice.token_ids) == 12
        assert own.active_sequences == 0  # the failed request's second choice was dropped too
    finally:
        own.close()
