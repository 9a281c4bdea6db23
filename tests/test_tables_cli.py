"""`langbatch create --table`, `results --table` and `rest` (after a pilot) on the local engine."""

from __future__ import annotations

import json
import re

import pandas as pd
from click.testing import CliRunner
from python_calamine import CalamineWorkbook

from langbatch_core import Batch
from langbatch_core.cli import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def created(result):
    return re.findall(r"Created batch (lb_[0-9a-f]+)", result.output)[-1]


def on_engine(engine):
    return ["--connection", "compatible", "--base-url", engine.base_url]


def test_table_in_pilot_rest_and_an_excel_out(tmp_path, engine):
    (tmp_path / "reviews.csv").write_text("sku,review\nA1,great\nB2,\nC3,meh\n")
    (tmp_path / "fields.json").write_text(json.dumps([{"name": "sentiment", "type": "string"}]))
    result = run(
        "create", "--table", tmp_path / "reviews.csv", "--template", "Sentiment of: {{ review }} ({{ sku }})",
        "--schema", tmp_path / "fields.json", "--id-column", "sku", "--system", "Be brief.",
        "--max-tokens", 5, "--pilot", 2, "--start", *on_engine(engine),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "warning: column 'review' is empty on 1 row(s) (2)" in result.output
    assert "langbatch rest" in result.output
    pilot = created(result)
    assert run("wait", pilot, "--poll-interval", "0.05").exit_code == 0
    rest = run("rest", pilot, "--start")
    assert rest.exit_code == 0, rest.output
    rest_id = created(rest)
    run("wait", rest_id, "--poll-interval", "0.05")
    out = tmp_path / "answers.xlsx"
    result = run("results", rest_id, "--table", "-o", out)
    assert result.exit_code == 0, result.output and "3 rows" in result.output
    rows = CalamineWorkbook.from_path(str(out)).get_sheet_by_index(0).to_python()
    header = rows[0]
    assert header[:4] == ["sku", "review", "answer", "sentiment"]
    assert [row[0] for row in rows[1:]] == ["A1", "B2", "C3"]
    assert rows[1][2] == "echo: Sentiment of: great (A1)"
    assert "succeeded" in run("results", rest_id, "--table").output
    body = Batch.load(pilot).get_requests_by_custom_ids(["A1"])[0]["body"]
    assert body["max_tokens"] == 5 and body["response_format"]["type"] == "json_schema"


def test_embeddings_from_a_column_to_parquet(tmp_path, engine):
    pd.DataFrame({"text": ["a", "b"]}).to_parquet(tmp_path / "t.parquet")
    result = run(
        "create", "--table", tmp_path / "t.parquet", "--text-column", "text", "--start", *on_engine(engine)
    )
    assert result.exit_code == 0, result.output
    batch_id = created(result)
    run("wait", batch_id, "--poll-interval", "0.05")
    run("results", batch_id, "--table", "-o", tmp_path / "v.parquet")
    assert len(pd.read_parquet(tmp_path / "v.parquet")["embedding"][0]) == 8


def test_table_errors_are_messages(tmp_path):
    (tmp_path / "t.csv").write_text("review\nx\n")
    result = run("create", "--table", tmp_path / "t.csv", "--template", "{{ reviews }}")
    assert result.exit_code == 1 and "Did you mean 'review'?" in result.output
    assert "needs --template" in run("create", "--table", tmp_path / "t.csv").output
    assert "Give a request FILE" in run("create").output
