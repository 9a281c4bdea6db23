"""Run again on another file: a table batch's template, system prompt, schema, id column, model, parameters
and connection reused on a new table, from Python (``from_table(..., like=)``) and the CLI (``--like``)."""

from __future__ import annotations

import json
import re

import orjson
import pandas as pd
import pytest
from batch_support import to_engine
from click.testing import CliRunner

from langbatch_core import (
    Batch,
    BatchStateError,
    OpenAIChatCompletionBatch,
    OpenAIEmbeddingBatch,
    TableError,
    TemplateError,
)
from langbatch_core.cli import cli
from langbatch_core.storage import default_storage

FIELDS = [{"name": "sentiment", "type": "enum", "values": ["positive", "negative"]}]
MAY = pd.DataFrame({"sku": ["A1", "B2"], "review": ["great", "awful"]})
JUNE = pd.DataFrame({"sku": ["C3", "D4", "E5"], "review": ["fine", "meh", "good"], "extra": [1, 2, 3]})


def first_body(batch) -> dict:
    return orjson.loads(batch.requests_path.read_bytes().splitlines()[0])["body"]


def original(engine, **kw):
    batch = OpenAIChatCompletionBatch.from_table(
        MAY,
        template="Sentiment of: {{ review }}",
        system="Answer in JSON.",
        schema=FIELDS,
        id_column="sku",
        model="gpt-4o-mini",
        request_kwargs={"temperature": 0, "max_tokens": 20},
        connection=to_engine(engine),
        name="may",
        **kw,
    )
    batch.save()
    return batch


def test_like_a_finished_batch_runs_its_settings_on_a_new_table(engine, tmp_path):
    may = original(engine)
    may.start()
    may.wait(poll_interval=0.05, timeout=60)
    june = OpenAIChatCompletionBatch.from_table(JUNE, like=may.id)  # by id: loaded from the store
    spec, before = june.table_spec, may.table_spec
    for name in ("template", "system", "schema", "id_column", "model", "request_kwargs", "kind"):
        assert getattr(spec, name) == getattr(before, name), name
    assert spec.columns == ["sku", "review", "extra"] and spec.rows == [0, 3]
    assert june.connection.base_url == may.connection.base_url  # its connection, unless given
    body = first_body(june)
    assert body["messages"][-1]["content"] == "Sentiment of: fine" and body["temperature"] == 0
    assert body["response_format"]["json_schema"]["schema"]["properties"]["sentiment"]["enum"] == [
        "positive",
        "negative",
    ]
    june.start()
    june.wait(poll_interval=0.05, timeout=60)
    joined = june.get_results_table()
    assert joined["sku"].tolist() == ["C3", "D4", "E5"] and (joined["status"] == "succeeded").all()


def test_what_is_given_wins_and_parameters_are_laid_over(engine):
    may = original(engine)
    csv = default_storage().data_dir / "june.csv"
    JUNE.to_csv(csv, index=False)
    june = OpenAIChatCompletionBatch.from_table(
        csv, like=may, template="Say {{ review }} ({{ extra }})", request_kwargs={"temperature": 1}, pilot=2
    )
    body = first_body(june)
    assert body["messages"] == [
        {"role": "system", "content": "Answer in JSON."},
        {"role": "user", "content": "Say fine (1)"},
    ]
    assert (body["temperature"], body["max_tokens"]) == (1, 20)
    assert june.table_spec.rows == [0, 2] and june.table_spec.source == "june.csv"


def test_a_new_table_lacking_a_column_the_batch_uses_is_named(engine, tmp_path):
    may = original(engine)
    csv = tmp_path / "june.csv"
    csv.write_text("sku,text\nC3,fine\n")
    with pytest.raises(TemplateError, match=f"june.csv lacks a column batch {may.id} uses: .*'review'"):
        OpenAIChatCompletionBatch.from_table(csv, like=may)
    csv.write_text("code,review\nC3,fine\n")
    with pytest.raises(TableError, match=r"id column 'sku' is not in the table \(columns: code, review\)"):
        OpenAIChatCompletionBatch.from_table(csv, like=may)
    assert len(list((default_storage().data_dir / "batches").iterdir())) == 1  # only may's


def test_like_needs_a_table_batch_of_the_same_kind(engine, tmp_path):
    may = original(engine)
    with pytest.raises(TableError, match="is a chat batch: make the new one with OpenAIChatCompletionBatch"):
        OpenAIEmbeddingBatch.from_table(JUNE, like=may)
    requests = tmp_path / "r.jsonl"
    body = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": body}
    requests.write_text(json.dumps(line) + "\n")
    plain = Batch.from_file(requests, connection=to_engine(engine))
    plain.save()
    with pytest.raises(BatchStateError, match="was not made from a table"):
        OpenAIChatCompletionBatch.from_table(JUNE, like=plain.id)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_cli_create_like_a_batch(engine, tmp_path):
    may = original(engine)
    JUNE.to_csv(tmp_path / "june.csv", index=False)
    result = run("create", "--table", tmp_path / "june.csv", "--like", may.id, "--max-tokens", 7, "--start")
    assert result.exit_code == 0, result.output
    june = Batch.load(re.findall(r"Created batch (lb_[0-9a-f]+)", result.output)[-1])
    assert june.table_spec.template == "Sentiment of: {{ review }}" and june.table_spec.id_column == "sku"
    assert june.connection.base_url == engine.base_url
    body = first_body(june)
    assert (body["max_tokens"], body["temperature"], body["model"]) == (7, 0, "gpt-4o-mini")
    assert run("wait", june.id, "--poll-interval", "0.05").exit_code == 0
    assert "succeeded" in run("results", june.id, "--table").output
    (tmp_path / "bad.csv").write_text("sku,text\nC3,fine\n")
    bad = run("create", "--table", tmp_path / "bad.csv", "--like", may.id)
    assert bad.exit_code == 1 and f"bad.csv lacks a column batch {may.id} uses" in bad.output
    assert "'review'" in bad.output
