"""Join-back: typed columns per schema field, answers that do not fit kept with schema_error, exports."""

from __future__ import annotations

import orjson
import pandas as pd
from python_calamine import CalamineWorkbook

from langbatch_core.results import load_results
from langbatch_core.tables import custom_ids, export_table, join_results, load_schema

SCHEMA = load_schema(
    [
        {"name": "sentiment", "type": "enum", "values": ["positive", "negative"]},
        {"name": "score", "type": "number"},
        {"name": "stars", "type": "integer", "required": False},
        {"name": "status", "type": "boolean"},
    ]
)
TABLE = pd.DataFrame({"id": ["a", "b", "c", "d"], "text": ["=HYPERLINK(1)", "x", "y", "z"]})


def result(custom_id, content=None, status=200):
    body = {
        "model": "gpt-4o-mini",
        "choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100},
    }
    if status != 200:
        body = {"error": {"code": "bad", "message": "refused"}}
    line = {
        "id": "r",
        "custom_id": custom_id,
        "response": {"status_code": status, "body": body},
        "error": None,
    }
    return orjson.dumps(line)


def joined_table(tmp_path):
    path = tmp_path / "results.jsonl"
    answers = [
        result("c", '{"sentiment": "neutral", "score": 1, "stars": 2, "status": true}'),
        result("a", '{"sentiment": "positive", "score": 0.5, "stars": null, "status": false}'),
        result("b", status=400),
    ]
    path.write_bytes(b"\n".join(answers) + b"\n")
    ids = custom_ids(TABLE, "id")
    return join_results(
        TABLE, ids, load_results(path), schema=SCHEMA, model="gpt-4o-mini", unanswered="pending"
    )


def test_typed_fields_in_the_table_s_order(tmp_path):
    joined = joined_table(tmp_path)
    assert joined["id"].tolist() == ["a", "b", "c", "d"]
    assert joined["sentiment"].tolist()[0] == "positive" and pd.isna(joined.loc[2, "sentiment"])
    assert str(joined["score"].dtype) == "Float64" and str(joined["stars"].dtype) == "Int64"
    assert "neutral" in joined.loc[2, "schema_error"] and joined.loc[2, "answer"].startswith('{"sentiment"')
    # the field "status" and the outcome "status" do not collide: the outcome gets a free name
    names = joined.attrs["answer_columns"]
    assert names["status"] == "status_2" and names["field:status"] == "status"
    assert str(joined["status"].dtype) == "boolean"
    assert joined["status_2"].tolist() == ["succeeded", "failed", "succeeded", "pending"]
    assert joined.loc[1, "error_code"] == "bad"
    assert joined.loc[0, "cost_usd"] == (1000 * 0.075 + 100 * 0.30) / 1e6


def test_exports_escape_formulas(tmp_path):
    joined = joined_table(tmp_path)
    xlsx = export_table(joined, tmp_path / "out.xlsx")
    rows = CalamineWorkbook.from_path(str(xlsx)).get_sheet_by_index(0).to_python()
    assert rows[0][:3] == ["id", "text", "answer"] and rows[1][1] == "=HYPERLINK(1)"  # text, not a formula
    assert b"<f>" not in __import__("zipfile").ZipFile(xlsx).read("xl/worksheets/sheet1.xml")
    csv = pd.read_csv(export_table(joined, tmp_path / "out.csv"))
    assert csv.loc[0, "text"] == "'=HYPERLINK(1)"
    parquet = pd.read_parquet(export_table(joined, tmp_path / "out.parquet"))
    assert str(parquet["stars"].dtype) == "Int64"


def test_join_imports_in_a_fresh_interpreter():
    # the dashboard imports the join first thing: nothing else may have loaded its dependencies before
    import subprocess
    import sys

    code = "from langbatch_core.tables import join_results; print(join_results.__name__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
