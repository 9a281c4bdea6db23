"""Filtering, charts, exports and row lookup behind the Results page."""

from __future__ import annotations

import io
import json

import explore
import pandas as pd
import pytest


@pytest.fixture
def table():
    return pd.DataFrame(
        {
            "custom_id": ["a", "b", "c", "d"],
            "status": ["succeeded", "failed", "succeeded", "expired"],
            "error_code": [None, "invalid_value", None, "batch_expired"],
            "error_message": [None, "Bad VALUE", None, "window"],
            "finish_reason": ["stop", None, "length", None],
            "prompt": ["Hello", "x", "Bonjour", "y"],
            "answer": ["Hi there", None, "Salut", None],
            "total_tokens": [10, None, 30, None],
        }
    )


def test_no_filter_keeps_every_row(table):
    assert list(explore.apply(table, explore.Filters())["custom_id"]) == ["a", "b", "c", "d"]


def test_filters_combine(table):
    view = explore.apply(table, explore.Filters(statuses=["succeeded"], finish_reasons=["length"]))
    assert list(view["custom_id"]) == ["c"]


def test_text_search_covers_ids_prompts_answers_and_errors(table):
    assert list(explore.apply(table, explore.Filters(text="salut"))["custom_id"]) == ["c"]
    assert list(explore.apply(table, explore.Filters(text="bad value"))["custom_id"]) == ["b"]
    assert list(explore.apply(table, explore.Filters(text="(regex["))["custom_id"]) == []


def test_token_range_drops_rows_outside_it_and_rows_without_tokens(table):
    assert list(explore.apply(table, explore.Filters(tokens=(5, 20)))["custom_id"]) == ["a"]


def test_sorting(table):
    view = explore.apply(table, explore.Filters(sort_by="total_tokens", descending=True))
    assert list(view["custom_id"][:2]) == ["c", "a"]


def test_choices_and_bounds(table):
    assert explore.choices(table, "status") == ["succeeded", "failed", "expired"]
    assert explore.token_bounds(table) == (10, 30)


def test_charts_aggregate_before_drawing(table):
    assert len(explore.status_chart(table).data) == 3
    assert explore.error_chart(table[table.status == "succeeded"]) is None
    assert explore.token_chart(table.assign(total_tokens=None)) is None


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_exports_round_trip_the_filtered_rows(table, fmt):
    view = explore.apply(table, explore.Filters(statuses=["failed", "expired"]))
    data = explore.export_bytes(view, fmt)
    if fmt == "csv":
        back = pd.read_csv(io.BytesIO(data))
    elif fmt == "jsonl":
        back = pd.DataFrame([json.loads(line) for line in data.decode().splitlines()])
    else:
        back = pd.read_parquet(io.BytesIO(data))
    assert list(back["custom_id"]) == ["b", "d"]


def test_the_grid_gets_the_first_rows_with_long_texts_cut(table, monkeypatch):
    monkeypatch.setattr(explore, "GRID_ROWS", 2)
    monkeypatch.setattr(explore, "GRID_TEXT", 3)
    grid = explore.grid_rows(table)
    assert list(grid["custom_id"]) == ["a", "b"]
    assert list(grid["answer"].fillna("")) == ["Hi ", ""]
    assert table["answer"][0] == "Hi there"  # the loaded table is not changed


def test_counts_and_tokens_are_charted_in_whole_numbers(table):
    same = table.assign(total_tokens=[17, 17, 17, None])
    bins = explore.token_chart(same).data
    assert list(zip(bins["from"], bins["to"], bins["requests"], strict=True)) == [(17, 18, 3)]
    spread = explore.token_chart(table.assign(total_tokens=[36, 82, 55, 40])).data
    assert len(spread) <= 30 and (spread["from"] % 1 == 0).all() and spread["requests"].sum() == 4
    for chart in (explore.status_chart(table), explore.error_chart(table), explore.token_chart(table)):
        spec = chart.to_dict()["encoding"]
        counts = spec["x"] if spec["x"]["field"] == "requests" else spec["y"]
        assert counts["axis"]["tickMinStep"] == 1 and counts["axis"]["format"] == "d"
