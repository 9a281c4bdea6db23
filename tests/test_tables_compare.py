"""Comparing two batches on the same rows: agreement per field, confusion of enum fields, disagreements."""

from __future__ import annotations

import pandas as pd
from batch_support import to_engine

from langbatch_core import OpenAIChatCompletionBatch
from langbatch_core.tables import compare_batches, compare_tables, join_results, load_schema

SCHEMA = load_schema(
    [{"name": "label", "type": "enum", "values": ["yes", "no"]}, {"name": "n", "type": "integer"}]
)


def joined(answers):
    table = pd.DataFrame({"id": [f"r{i}" for i in range(len(answers))]})
    results = pd.DataFrame(
        {
            "custom_id": table["id"],
            "status": "succeeded",
            "answer": answers,
            "error_code": None,
            "error_message": None,
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
        }
    )
    return join_results(table, table["id"].tolist(), results, schema=SCHEMA, model="gpt-4o-mini"), table[
        "id"
    ].tolist()


def test_agreement_confusion_and_disagreements():
    a, ids_a = joined(
        ['{"label": "yes", "n": 1}', '{"label": "no", "n": 2}', '{"label": "yes", "n": 3}', "oops"]
    )
    b, ids_b = joined(
        ['{"label": "yes", "n": 1}', '{"label": "yes", "n": 2}', '{"label": "yes", "n": 4}', "{}"]
    )
    found = compare_tables([a, b], [ids_a, ids_b], ["label", "n"], ("small", "big"))
    assert found.agreement == {"label": 2 / 3, "n": 2 / 3}
    assert found.confusion["label"].loc["no", "yes"] == 1 and found.confusion["label"].loc["yes", "yes"] == 2
    assert found.disagreements["custom_id"].tolist() == [
        "r1",
        "r2",
    ]  # row r3: no answer on either side to compare
    assert found.rows.columns[:4].tolist() == ["custom_id", "id", "label · small", "label · big"]
    assert found.totals["total tokens"].tolist() == [60, 60]


def test_two_prompt_versions_on_the_engine(engine):
    table = pd.DataFrame({"sku": ["a", "b", "c"], "text": ["x", "y", "x"]})
    one = OpenAIChatCompletionBatch.from_table(
        table, template="{{ text }}", id_column="sku", connection=to_engine(engine), name="v1"
    )
    two = OpenAIChatCompletionBatch.from_table(
        table, template="{{ sku }}", id_column="sku", connection=to_engine(engine), name="v2"
    )
    for batch in (one, two):
        batch.start()
        batch.wait(poll_interval=0.05, timeout=60)
    found = compare_batches(one, two)
    assert found.fields == ["answer"] and found.agreement["answer"] == 0.0
    assert found.rows["answer · v1"].tolist() == ["echo: x", "echo: y", "echo: x"]
    assert found.totals["batch"].tolist() == ["v1", "v2"]
