"""Exporting the (filtered) results table: CSV, JSONL, Parquet round trips."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from support.data_requests import chat_request, write_lines
from support.data_results import success, write_jsonl, write_results_file

from langbatch_core.errors import ResultsError
from langbatch_core.results import export_results, load_results


@pytest.fixture
def table(tmp_path):
    requests = write_lines(
        tmp_path / "r.jsonl",
        [chat_request(f"request-{i}", f"Grüße {i}, «quoted»\nline") for i in range(1, 121)],
    )
    results = write_results_file(tmp_path / "o.jsonl", 100, answer_chars=60)
    return load_results(results, requests=requests)


def test_parquet_round_trip_keeps_values_and_types(table, tmp_path):
    path = export_results(table, tmp_path / "out.parquet")
    back = pd.read_parquet(path)
    assert list(back.columns) == list(table.columns)
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    assert str(back["total_tokens"].dtype) == "Int64"


def test_csv_round_trip(table, tmp_path):
    path = export_results(table, tmp_path / "out.csv")
    back = pd.read_csv(path, dtype={"custom_id": str}, keep_default_na=True)
    assert list(back["custom_id"]) == list(table["custom_id"])
    assert list(back["status"]) == list(table["status"])
    assert back["prompt"].iloc[0] == table["prompt"].iloc[0]  # newlines and unicode survive quoting
    assert back["total_tokens"].fillna(-1).astype(int).tolist() == table["total_tokens"].fillna(-1).tolist()


def test_jsonl_round_trip_of_a_filtered_view(table, tmp_path):
    failed = table[table["status"] != "succeeded"]
    path = export_results(failed, tmp_path / "failed.jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [row["custom_id"] for row in rows] == list(failed["custom_id"])
    assert {row["status"] for row in rows} == set(failed["status"])
    missing = next(row for row in rows if row["status"] == "missing")
    assert missing["total_tokens"] is None and "Grüße" in missing["prompt"]


def test_format_argument_overrides_the_suffix(table, tmp_path):
    path = export_results(table, tmp_path / "data.txt", format="jsonl")
    assert (
        json.loads(path.read_text(encoding="utf-8").splitlines()[0])["custom_id"]
        == table["custom_id"].iloc[0]
    )


def test_unknown_format_is_a_clear_error_and_writes_nothing(table, tmp_path):
    with pytest.raises(ResultsError, match="csv"):
        export_results(table, tmp_path / "out.xlsx")
    assert list(tmp_path.glob("out.*")) == []


def test_export_of_an_empty_view(tmp_path):
    table = load_results(write_jsonl(tmp_path / "o.jsonl", [success("a")]))
    empty = table[table["status"] == "failed"]
    for suffix in ("csv", "jsonl", "parquet"):
        path = export_results(empty, tmp_path / f"empty.{suffix}")
        assert path.exists()
    assert pd.read_parquet(tmp_path / "empty.parquet").columns.tolist() == table.columns.tolist()


def test_csv_cells_a_spreadsheet_would_run_start_with_an_apostrophe(tmp_path):
    df = pd.DataFrame(
        {
            "answer": ['=HYPERLINK("http://x")', "+1", "@SUM(A1)", "-2+3", "plain", None],
            "tokens": [1, -2, 3, 4, 5, 6],
        }
    )
    back = pd.read_csv(export_results(df, tmp_path / "out.csv"), keep_default_na=False)
    assert list(back["answer"]) == ['\'=HYPERLINK("http://x")', "'+1", "'@SUM(A1)", "'-2+3", "plain", ""]
    assert list(back["tokens"]) == [1, -2, 3, 4, 5, 6]  # numbers are numbers, never escaped
    raw = pd.read_csv(export_results(df, tmp_path / "raw.csv", escape_formulas=False), keep_default_na=False)
    assert raw["answer"][0] == '=HYPERLINK("http://x")'


def test_export_into_a_missing_folder_says_so_and_creates_nothing(tmp_path):
    with pytest.raises(ResultsError, match="does not exist"):
        export_results(pd.DataFrame({"a": [1]}), tmp_path / "nowhere" / "out.csv")
    assert not (tmp_path / "nowhere").exists()


def test_exported_files_get_the_usual_permissions(tmp_path):
    path = export_results(pd.DataFrame({"a": [1]}), tmp_path / "out.jsonl")
    assert path.stat().st_mode & 0o777 == 0o666 & ~_current_umask()


def _current_umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask
