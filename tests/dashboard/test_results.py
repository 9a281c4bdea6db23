"""The Results page: load a batch's results, filter, sort, inspect a row, chart and download."""

from __future__ import annotations

import json

import common

from .conftest import open_page, stored_batch_with_results, texts


def shown_table(at):
    return at.dataframe[0].value


def test_no_results_gives_a_friendly_empty_state(data_dir):
    at = open_page("results")
    assert not at.exception
    assert "No results yet" in texts(at, "info")


def test_the_table_has_one_row_per_request_and_the_summary_counts(data_dir):
    stored_batch_with_results(20)
    at = open_page("results")
    assert not at.exception
    table = shown_table(at)
    assert len(table) == 20
    assert {"custom_id", "status", "prompt", "answer", "finish_reason", "total_tokens", "error_code"} <= set(
        table.columns
    )
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Requests"] == "20" and metrics["Succeeded"] == "14" and metrics["Failed"] == "4"
    assert metrics["Not run"] == "2"


def test_filters_by_status_error_code_and_finish_reason(data_dir):
    stored_batch_with_results(20)
    at = open_page("results")
    at.multiselect(key="rs_status").set_value(["failed"]).run()
    assert set(shown_table(at)["status"]) == {"failed"}
    assert "4 of 20 rows" in texts(at, "caption")
    at.multiselect(key="rs_status").set_value([]).run()
    at.multiselect(key="rs_code").set_value(["batch_expired"]).run()
    assert list(shown_table(at)["custom_id"]) == ["req-6", "req-13"]
    at.multiselect(key="rs_code").set_value([]).run()
    at.multiselect(key="rs_finish").set_value(["length"]).run()
    assert set(shown_table(at)["finish_reason"]) == {"length"}


def test_text_search_finds_prompts_answers_and_ids_case_insensitively(data_dir):
    stored_batch_with_results(20, answer="Answer number {i}")
    at = open_page("results")
    at.text_input(key="rs_text").input("ANSWER NUMBER 1").run()
    assert set(shown_table(at)["custom_id"]) == {
        "req-1",
        "req-10",
        "req-11",
        "req-12",
        "req-15",
        "req-16",
        "req-17",
        "req-18",
    }
    at.text_input(key="rs_text").input("question 19").run()
    assert list(shown_table(at)["custom_id"]) == ["req-19"]


def test_token_range_and_sorting(data_dir):
    stored_batch_with_results(20)
    at = open_page("results")
    at.slider(key="rs_tokens").set_range(20, 25).run()
    assert set(shown_table(at)["total_tokens"]) <= set(range(20, 26))
    at.slider(key="rs_tokens").set_range(15, 34).run()
    at.selectbox(key="rs_sort").set_value("total_tokens").run()
    at.toggle(key="rs_desc").set_value(True).run()
    tokens = list(shown_table(at)["total_tokens"].dropna())
    assert tokens == sorted(tokens, reverse=True)


def test_row_detail_shows_request_and_response_json_as_code(data_dir):
    stored_batch_with_results(5, answer="<script>alert(1)</script> ![x](http://evil.example/p.png) {i}")
    at = open_page("results")
    at.text_input(key="rs_detail_id").input("req-2").run()
    assert not at.exception
    codes = [c for c in at.code if c.language == "json"]
    request, response = (json.loads(c.value) for c in codes)
    assert request["custom_id"] == "req-2" and request["body"]["messages"][0]["content"] == "question 2"
    assert response["response"]["body"]["choices"][0]["message"]["content"].startswith("<script>")
    for kind in ("markdown", "caption", "info", "success", "error", "warning"):
        assert "<script>" not in texts(at, kind) and "](http://evil" not in texts(at, kind)


def test_an_unknown_custom_id_in_the_detail_says_so(data_dir):
    stored_batch_with_results(5)
    at = open_page("results")
    at.text_input(key="rs_detail_id").input("nope").run()
    assert "(not in the request file)" in [c.value for c in at.code]


def test_charts_and_downloads_are_offered(data_dir):
    stored_batch_with_results(20)
    at = open_page("results")
    assert not at.get("vega_lite_chart")  # drawn when their tab is opened, not on every load
    at.session_state["rs_tab"] = "Charts"
    at.run()
    assert len(at.get("vega_lite_chart")) == 3  # status, tokens, errors
    assert not at.dataframe  # the closed Table tab runs nothing
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["CSV", "JSONL", "Parquet"]


def test_a_big_view_shows_its_first_rows_and_says_so(data_dir, monkeypatch):
    import explore

    monkeypatch.setattr(explore, "GRID_ROWS", 5)
    stored_batch_with_results(20)
    at = open_page("results")
    assert len(shown_table(at)) == 5
    assert "20 of 20 rows. The grid shows the first 5" in texts(at, "caption")


def test_unreadable_result_lines_are_reported_not_dropped_silently(data_dir):
    record = stored_batch_with_results(5)
    results = common.storage().batch_dir(record.id) / "results.jsonl"
    results.write_bytes(results.read_bytes() + b"{this is not json\n")
    at = open_page("results")
    assert not at.exception
    assert "1 line(s) of the result file could not be read (lines 6" in texts(at, "warning")


def test_a_result_file_of_garbage_is_reported_line_by_line(data_dir):
    record = stored_batch_with_results(3)
    (common.storage().batch_dir(record.id) / "requests.jsonl").unlink()
    (common.storage().batch_dir(record.id) / "results.jsonl").write_bytes(b"\xff\xfe garbage\n" * 3)
    at = open_page("results")
    assert not at.exception
    assert "3 line(s) of the result file could not be read (lines 1, 2, 3" in texts(at, "warning")


def test_row_detail_shows_the_whole_prompt_and_answer_as_plain_text(data_dir):
    long_answer = "**Not bold** <b>tag</b> " + "word " * 400 + "{i}"
    stored_batch_with_results(5, answer=long_answer)
    at = open_page("results")
    at.text_input(key="rs_detail_id").input("req-2").run()
    assert not at.exception
    shown = [t.value for t in at.text]
    assert "question 2" in shown
    assert long_answer.format(i=2) in shown  # whole, though the grid cuts it to 300 characters
    assert "<b>tag</b>" not in texts(at, "markdown") + texts(at, "caption")


def test_rows_come_in_the_order_of_the_request_file(data_dir):
    record = stored_batch_with_results(12)
    results = common.storage().batch_dir(record.id) / "results.jsonl"
    lines = results.read_bytes().splitlines(keepends=True)
    failed_last = [line for line in lines if b'"status_code": 200' in line] + [
        line for line in lines if b'"status_code": 200' not in line
    ]  # as a provider's output file + error file merge them
    results.write_bytes(b"".join(failed_last[:-1]))  # the last failure has no result yet
    at = open_page("results")
    assert not at.exception
    table = shown_table(at)
    assert list(table["custom_id"]) == [f"req-{i}" for i in range(12)]
    assert table.set_index("custom_id").loc["req-9", "status"] == "missing"  # in its place, not last
