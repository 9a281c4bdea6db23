"""The table pages through AppTest against a real local engine (upstream backend): From a table (upload,
preview, template, fields, first requests, pilot), Results of a table batch (joined rows, field filters,
rest of a pilot, downloads), Compare."""

from __future__ import annotations

import io
import json

import common
import connections
import pandas as pd
import pytest

from langbatch_core import Batch

from .conftest import open_page, texts

CSV = b"sku,review,stars\nA1,great kettle,5\nB2,broke in a week,1\nC3,,3\nD4,fine,4\n"


@pytest.fixture
def local_engine(engine, monkeypatch):
    monkeypatch.setenv(connections.ENGINE_URL_ENV, engine.base_url)
    return engine


def table_page(data: bytes = CSV, name: str = "reviews.csv"):
    at = open_page("new_table")
    at.file_uploader(key="nt_upload").set_value((name, data, "text/csv")).run()
    assert not at.exception, at.exception
    return at


def wait_all():
    for record in common.list_batches():
        batch = Batch.load(record.id, storage=common.storage())
        if batch.record.jobs:
            batch.wait(poll_interval=0.05, timeout=60)


def test_preview_types_and_a_misspelt_column(data_dir):
    at = table_page()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Rows"] == "4" and metrics["Columns"] == "3"
    types = at.dataframe[1].value
    assert dict(zip(types["column"], types["type"], strict=True)) == {
        "sku": "text",
        "review": "text",
        "stars": "integer",
    }
    at.text_area(key="nt_template").input("Sentiment of: {{ reveiw }}").run()
    assert "Did you mean 'review'?" in texts(at, "error").replace("\\", "")


def test_insert_a_column_fields_and_the_first_requests(data_dir):
    at = table_page()
    at.selectbox(key="nt_insert").set_value("review").run()
    at.button(key="nt_insert_button").click().run()
    assert at.text_area(key="nt_template").value == "{{ review }}"
    assert "renders to nothing on row" in texts(at, "error")  # row 3's review is empty
    at.text_area(key="nt_template").input("Review: {{ review }}").run()
    at.radio(key="nt_answer").set_value("Fields").run()
    first = json.loads(next(c.value for c in at.code if c.language == "json"))
    assert first["body"]["messages"][-1]["content"] == "Review: great kettle"
    schema = first["body"]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["sentiment"]["enum"] == ["positive", "negative", "neutral"]
    messages = [str(frame.value["message"].tolist()) for frame in at.dataframe if "message" in frame.value]
    assert "column 'review' is empty on 1 row(s) (3)" in " ".join(messages)
    at.radio(key="nt_answer").set_value("JSON Schema").run()
    at.text_area(key="nt_schema").input('{"type": "object", "properties": {"x": {"type": "string"}}}').run()
    assert "additionalProperties" in texts(at, "error")


def test_a_ragged_csv_and_latin1_are_explained(data_dir):
    at = table_page(b"a,b\n1,2\n3,4,5\n", "bad.csv")
    assert "row 2 (line 3) has 3 cells" in texts(at, "error").replace("\\", "")
    at = table_page("name,city\nZoë,Köln\n".encode("latin-1"), "latin.csv")
    shown = texts(at, "error").replace("\\", "")
    assert "latin.csv is not UTF-8 (a byte at row 1, column 'name' is not)" in shown
    assert "cp1252 for a file Excel saved on Windows, else latin-1 (Encoding on the dashboard's page" in shown
    at.selectbox(key="nt_encoding").set_value("latin-1").run()
    assert not texts(at, "error") and at.dataframe[0].value["city"].tolist() == ["Köln"]


def test_pilot_then_the_rest_then_results_and_downloads(local_engine):
    at = table_page()
    at.text_area(key="nt_template").input("Review: {{ review }}").run()
    at.selectbox(key="nt_id").set_value("sku").run()
    at.radio(key="nt_answer").set_value("Fields").run()
    at.number_input(key="nt_pilot").set_value(2).run()
    at.button(key="nt_run_pilot").click().run()
    assert "Pilot of 2 rows started" in texts(at, "success"), texts(at, "error")
    wait_all()
    at = open_page("results")
    assert "A pilot of 2 of 4 rows" in texts(at, "info")
    grid = at.dataframe[0].value
    assert grid["sku"].tolist() == ["A1", "B2"] and grid["answer"].tolist()[0] == "echo: Review: great kettle"
    assert grid["schema_error"].notna().all()  # the upstream echoes text: kept, with the reason
    at.button(key="rt_rest").click().run()
    assert "The rest started" in texts(at, "success"), texts(at, "error")
    wait_all()
    rest_id = at.session_state["selected_batch"]
    at = open_page("results")
    at.selectbox(key="results_batch").set_value(rest_id).run()
    grid = at.dataframe[0].value
    assert grid["sku"].tolist() == ["A1", "B2", "C3", "D4"] and set(grid["status"]) == {"succeeded"}
    at.multiselect(key="rt_status").set_value(["succeeded"]).run()
    downloads = {b.label for b in at.get("download_button")}
    assert downloads == {"CSV", "Excel", "Parquet"}


def test_compare_two_prompt_versions(local_engine):
    for template in ("A {{ review }}", "B {{ review }}"):
        at = table_page()
        at.text_area(key="nt_template").input(template).run()
        at.selectbox(key="nt_id").set_value("sku").run()
        at.text_input(key="nt_name").input(f"v {template}").run()
        at.button(key="nt_run_all").click().run()
        assert "Batch of 4 rows started" in texts(at, "success")
    wait_all()
    at = open_page("compare")
    assert not at.exception, at.exception
    assert {m.label: m.value for m in at.metric}["answer"] == "0%"
    at.toggle(key="cmp_only_disagreements").set_value(True).run()
    assert len(at.dataframe[-1].value) == 4


def test_joined_downloads_escape_formulas(local_engine):
    import table_support

    frame = pd.DataFrame({"text": ["=1+1"], "answer": ["x"]})
    data = table_support.export_bytes(frame, ".csv")
    assert pd.read_csv(io.BytesIO(data))["text"][0] == "'=1+1"
    assert table_support.export_bytes(frame, ".xlsx")[:2] == b"PK"


def test_the_local_model_takes_answer_fields_and_refuses_what_it_cannot_follow(data_dir):
    at = table_page()
    at.text_area(key="nt_template").input("Review: {{ review }}").run()
    at.radio(key="nt_answer").set_value("Fields").run()  # constrained decoding: the bundled model takes them
    assert "cannot do what these requests ask" not in texts(at, "error")
    assert [b for b in at.button if b.key == "nt_run_pilot"]
    at.radio(key="nt_answer").set_value("JSON Schema").run()
    lookahead = {"type": "object", "properties": {"a": {"type": "string", "pattern": "(?=a)b"}}}
    lookahead |= {"required": ["a"], "additionalProperties": False}
    at.text_area(key="nt_schema").input(json.dumps(lookahead)).run()
    shown = texts(at, "error").replace("\\", "")
    assert "cannot do what these requests ask" in shown and "regex" in shown
    assert not [b for b in at.button if b.key == "nt_run_pilot"]  # nothing to press


def test_run_again_on_another_file_from_the_results_page(local_engine):
    at = table_page()
    at.text_area(key="nt_template").input("Review: {{ review }}").run()
    at.text_area(key="nt_system").input("Be brief.").run()
    at.number_input(key="nt_temperature").set_value(0.5).run()
    at.number_input(key="nt_max_tokens").set_value(30).run()
    at.selectbox(key="nt_id").set_value("sku").run()
    at.radio(key="nt_answer").set_value("Fields").run()
    at.button(key="nt_run_all").click().run()
    assert "Batch of 4 rows started" in texts(at, "success"), texts(at, "error")
    first = Batch.load(at.session_state["selected_batch"], storage=common.storage())
    wait_all()
    at = open_page("results")
    at.button(key="rt_again").click().run()
    assert not at.exception, at.exception
    assert f"Running batch {first.id} again" in texts(at, "info")
    assert [t.value for t in at.title] == ["New batch from a table"]
    at.switch_page("views/new_table.py")  # AppTest stays on a page the script left: as the browser's URL does
    at.file_uploader(key="nt_upload").set_value(("bad.csv", b"code,text\nX1,nice\n", "text/csv")).run()
    assert "uses the column 'review', which the table does not have" in texts(at, "error")
    assert "no column 'sku', the id column of batch" in texts(at, "warning")
    june = b"sku,review,extra\nJ1,lovely,1\nJ2,leaks,2\n"
    at.file_uploader(key="nt_upload").set_value(("june.csv", june, "text/csv")).run()
    assert not at.exception and not texts(at, "error"), texts(at, "error")
    filled = {key: at.session_state[key] for key in ("nt_template", "nt_system", "nt_temperature",
                                                     "nt_max_tokens", "nt_answer", "nt_id")}  # fmt: skip
    assert filled == {"nt_template": "Review: {{ review }}", "nt_system": "Be brief.", "nt_temperature": 0.5,
                      "nt_max_tokens": 30, "nt_answer": "JSON Schema", "nt_id": "sku"}  # fmt: skip
    assert json.loads(at.text_area(key="nt_schema").value) == first.table_spec.schema
    assert '"Review: lovely"' in texts(at, "code")
    at.button(key="nt_run_all").click().run()
    assert "Batch of 2 rows started" in texts(at, "success"), texts(at, "error")
    again = Batch.load(at.session_state["selected_batch"], storage=common.storage()).table_spec
    for name in ("template", "system", "schema", "id_column", "model", "request_kwargs"):
        assert getattr(again, name) == getattr(first.table_spec, name), name
    assert again.source == "june.csv" and again.columns == ["sku", "review", "extra"]


def test_a_long_table_shows_its_first_rows_in_the_grid_and_says_so(local_engine, monkeypatch):
    import explore

    at = table_page()
    at.text_area(key="nt_template").input("Review: {{ review }}").run()
    at.button(key="nt_run_all").click().run()
    assert "Batch of 4 rows started" in texts(at, "success"), texts(at, "error")
    wait_all()
    monkeypatch.setattr(explore, "GRID_ROWS", 2)
    at = open_page("results")
    assert len(at.dataframe[0].value) == 2
    said = "4 of 4 rows, in your table's order. The grid shows the first 2"
    assert said in texts(at, "caption")
