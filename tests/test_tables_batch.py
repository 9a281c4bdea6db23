"""Batches from tables on the local engine: the request file, the record of the table, pilot then rest,
the joined table, embeddings, and nothing written when something is wrong."""

from __future__ import annotations

import orjson
import pandas as pd
import pytest
from batch_support import prompts_received, to_engine

from langbatch_core import (
    Batch,
    BatchStateError,
    OpenAIChatCompletionBatch,
    OpenAIEmbeddingBatch,
    SchemaError,
    TableError,
    TemplateError,
)
from langbatch_core.storage import default_storage

REVIEWS = pd.DataFrame(
    {
        "sku": ["A1", "B2", "C3", "D4", "E5"],
        "review": ["great", "awful", None, "fine", "meh"],
        "stars": pd.array([5, 1, 3, None, 2], dtype="Int64"),
    }
)
FIELDS = [{"name": "sentiment", "type": "enum", "values": ["positive", "negative"]}]


def batch_dir_count() -> int:
    folder = default_storage().data_dir / "batches"
    return len(list(folder.iterdir())) if folder.exists() else 0


def test_the_request_file_and_what_the_batch_remembers(engine):
    batch = OpenAIChatCompletionBatch.from_table(
        REVIEWS,
        template="Sentiment of: {{ review }} ({{ stars }} stars)",
        system="Answer in JSON.",
        schema=FIELDS,
        id_column="sku",
        model="gpt-4o-mini",
        request_kwargs={"temperature": 0, "max_tokens": 20},
        connection=to_engine(engine),
        name="reviews",
    )
    lines = [orjson.loads(line) for line in batch.requests_path.read_bytes().splitlines()]
    assert [line["custom_id"] for line in lines] == ["A1", "B2", "C3", "D4", "E5"]
    body = lines[2]["body"]
    assert body["messages"] == [
        {"role": "system", "content": "Answer in JSON."},
        {"role": "user", "content": "Sentiment of:  (3 stars)"},
    ]
    assert body["temperature"] == 0 and body["model"] == "gpt-4o-mini"
    assert body["response_format"]["json_schema"]["schema"]["properties"]["sentiment"]["enum"] == [
        "positive",
        "negative",
    ]
    assert [(i.column, i.code) for i in batch.table_issues] == [
        ("review", "empty_cells"),
        ("stars", "empty_cells"),
    ]
    batch.save()
    loaded = Batch.load(batch.id)
    assert loaded.table_spec.template.startswith("Sentiment of")
    assert loaded.table_spec.id_column == "sku" and loaded.table_spec.system == "Answer in JSON."
    assert loaded.source_table().equals(REVIEWS)


def test_run_and_join_back_in_original_order_with_schema_errors_kept(engine, upstream):
    batch = OpenAIChatCompletionBatch.from_table(
        REVIEWS, template="{{ sku }}: {{ review }}", schema=FIELDS, connection=to_engine(engine)
    )
    assert batch.get_results_table()["status"].tolist() == ["not started"] * 5
    batch.start()
    batch.wait(poll_interval=0.05, timeout=60)
    joined = batch.get_results_table()
    assert joined[["sku", "review", "stars"]].equals(REVIEWS)
    assert joined["answer"].tolist() == [
        f"echo: {s}: {'' if pd.isna(r) else r}" for s, r in zip(REVIEWS.sku, REVIEWS.review, strict=True)
    ]
    assert joined["status"].tolist() == ["succeeded"] * 5
    assert joined["sentiment"].isna().all()  # the echo is not JSON: kept as text, the reason beside it
    assert joined["schema_error"].str.startswith("the answer is not JSON").all()
    assert (joined["total_tokens"] > 0).all() and (joined["cost_usd"] >= 0).all()
    assert str(joined["stars"].dtype) == "Int64"


def test_a_pilot_then_the_rest_without_resending(engine, upstream):
    pilot = OpenAIChatCompletionBatch.from_table(
        REVIEWS, template="Say {{ sku }}", pilot=2, connection=to_engine(engine), name="p"
    )
    assert pilot.record.request_count == 2
    pilot.start()
    pilot.wait(poll_interval=0.05, timeout=60)
    assert pilot.get_results_table()["sku"].tolist() == ["A1", "B2"]
    rest = pilot.rest()
    assert rest.record.request_count == 3 and rest.name == "p (rest)"
    with pytest.raises(BatchStateError, match="no rows left to send"):
        pilot.rest()
    rest.start()
    rest.wait(poll_interval=0.05, timeout=60)
    joined = rest.get_results_table()
    assert joined["answer"].tolist() == [f"echo: Say {sku}" for sku in REVIEWS.sku]
    assert set(prompts_received(upstream).values()) == {1}  # every row sent once
    assert Batch.load(pilot.id).table_spec.rest_id == rest.id


def test_embeddings_from_a_text_column(engine, tmp_path):
    batch = OpenAIEmbeddingBatch.from_table(
        REVIEWS.dropna(subset=["review"]), text_column="review", connection=to_engine(engine)
    )
    batch.start()
    batch.wait(poll_interval=0.05, timeout=60)
    joined = batch.get_results_table()
    assert all(len(vector) == 8 for vector in joined["embedding"])
    out = tmp_path / "vectors.parquet"
    from langbatch_core.tables import export_table

    export_table(joined, out)
    assert len(pd.read_parquet(out)["embedding"][0]) == 8


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"template": "{{ reviw }}"}, TemplateError, "Did you mean 'review'"),
        ({"template": "{{ review }}", "id_column": "stars"}, TableError, "empty on row"),
        ({"template": "{{ review }}"}, TableError, r"renders to nothing on row\(s\) 3"),
        ({"template": "x", "schema": {"type": "object"}}, SchemaError, "additionalProperties"),
        ({"template": "x", "pilot": 0}, TableError, "pilot= is a number of rows"),
    ],
)
def test_bad_input_writes_nothing(kwargs, error, message):
    with pytest.raises(error, match=message):
        OpenAIChatCompletionBatch.from_table(REVIEWS, **kwargs)
    assert batch_dir_count() == 0


def test_a_duplicate_id_names_both_rows(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("id,text\n7,a\n8,b\n7,c\n")
    with pytest.raises(TableError, match=r"the id '7' is on row 1 and row 3") as caught:
        OpenAIChatCompletionBatch.from_table(path, template="{{ text }}", id_column="id")
    assert (caught.value.issues[0].row, caught.value.issues[0].column) == (3, "id")
    assert batch_dir_count() == 0
