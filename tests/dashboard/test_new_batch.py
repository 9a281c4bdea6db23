"""The New batch page: upload or sample → validation report → connection and name → create / start."""

from __future__ import annotations

import json

import common
import pytest
from streamlit.testing.v1 import AppTest

from .conftest import chat_lines, open_page, texts


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="nb_upload").set_value((name, data, "application/octet-stream"))
    return at.run()


def stored_files(data_dir) -> list:
    return (
        [p for p in (data_dir / "uploads").rglob("*") if p.is_file()]
        if (data_dir / "uploads").exists()
        else []
    )


def test_empty_page_invites_an_upload_or_the_sample(data_dir):
    at = open_page("new_batch")
    assert not at.exception
    assert "try the bundled sample" in texts(at, "info")
    at.button(key="nb_try_sample").click().run()  # one click from the empty page to a valid report
    assert not at.exception
    assert at.radio(key="nb_source").value == "Try a sample"
    assert "Valid: 12 requests ready to run." in texts(at, "success")


def test_valid_upload_shows_the_report_and_the_create_buttons(data_dir):
    at = upload(open_page("new_batch"), "questions.jsonl", chat_lines(3))
    assert not at.exception
    assert "Valid: 3 requests" in texts(at, "success")
    assert "Endpoint: /v1/chat/completions" in texts(at, "text")
    assert "Model: gpt-4o-mini" in texts(at, "text")
    assert at.metric[0].value == "3"
    assert at.button(key="nb_create").disabled is False
    assert at.text_input(key="nb_name").value == "questions"
    assert len(stored_files(data_dir)) == 1


def test_invalid_file_lists_issues_with_line_numbers_and_cannot_be_started(data_dir):
    good = chat_lines(2).decode().splitlines()
    lines = [good[0], "this is not json", good[1].replace('"POST"', '"GET"'), good[0]]
    at = upload(open_page("new_batch"), "broken.jsonl", ("\n".join(lines) + "\n").encode())
    assert not at.exception
    assert "cannot be started" in texts(at, "error")
    issues = at.dataframe[0].value  # no summary: no code repeats
    assert {2, 3, 4} <= set(issues["line"].dropna().astype(int))
    assert {"invalid_json", "duplicate_custom_id"} <= set(issues["code"])
    assert not [b for b in at.button if b.key in ("nb_create", "nb_start")]


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("notes.txt", b'{"custom_id": "a"}\n', "is not a .jsonl file"),
        ("image.jsonl", b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary file"),
        ("table.jsonl", b"a,b,c\n1,2,3\n", "does not look like JSONL"),
    ],
)
def test_files_that_are_not_jsonl_are_refused_and_nothing_is_stored(data_dir, name, data, reason):
    at = upload(open_page("new_batch"), name, data)
    assert not at.exception
    assert reason in texts(at, "error").replace("\\", "")
    assert stored_files(data_dir) == []
    assert not at.button


def test_oversized_upload_is_refused_with_the_limit(data_dir, monkeypatch):
    monkeypatch.setattr(common, "MAX_UPLOAD_BYTES", 1000)
    at = upload(open_page("new_batch"), "big.jsonl", chat_lines(50))
    assert "may be at most" in texts(at, "error")
    assert stored_files(data_dir) == []


def test_upload_name_cannot_write_outside_the_data_dir(data_dir):
    at = upload(open_page("new_batch"), "../../../../tmp/escape.jsonl", chat_lines(1))
    assert not at.exception
    files = stored_files(data_dir)
    assert len(files) == 1
    assert files[0].resolve().is_relative_to((data_dir / "uploads").resolve())
    assert files[0].name == "escape.jsonl"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd.jsonl", "passwd.jsonl"),
        ("..\\..\\win.jsonl", "win.jsonl"),
        ("...jsonl", "jsonl.jsonl"),
        ("a b;$(rm).jsonl", "a_b_rm.jsonl"),
        ("noext", "noext.jsonl"),
    ],
)
def test_safe_file_name_keeps_only_a_harmless_base_name(name, expected):
    assert common.safe_file_name(name) == expected


def test_the_sample_gives_a_valid_report_in_one_click(data_dir):
    at = open_page("new_batch")
    at.radio(key="nb_source").set_value("Try a sample").run()
    assert not at.exception
    assert "Valid:" in texts(at, "success")
    assert at.text_input(key="nb_name").value == "chat"
    at.selectbox(key="nb_sample").select_index(1).run()
    assert "Endpoint: /v1/embeddings" in texts(at, "text")
    assert at.text_input(key="nb_name").value == "embeddings"  # the name follows the file
    at.text_input(key="nb_name").input("my embeddings").run()
    assert at.text_input(key="nb_name").value == "my embeddings"  # and a name typed in stays


def test_text_from_the_file_is_never_rendered_as_markdown(data_dir):
    evil = "![x](http://evil.example/pixel.png)"
    at = upload(open_page("new_batch"), "evil.jsonl", chat_lines(1, model=evil))
    assert f"Model: {evil}" in texts(at, "text")  # st.text: shown verbatim, never interpreted
    for kind in ("markdown", "success", "info", "warning", "error", "caption"):
        assert "](http://evil" not in texts(at, kind)


def test_a_connection_without_its_key_cannot_start_and_says_which_variable(data_dir):
    at = upload(open_page("new_batch"), "q.jsonl", chat_lines(2))
    at.selectbox(key="nb_conn").select_index(1).run()  # OpenAI
    assert "OPENAI_API_KEY" in texts(at, "warning")
    assert at.button(key="nb_start").disabled is True


def test_a_key_from_the_environment_enables_start_without_showing_it(data_dir, monkeypatch):
    key = "sk-" + "test-never-shown-123"  # built, so the file holds no key-like string
    monkeypatch.setenv("OPENAI_API_KEY", key)
    at = upload(open_page("new_batch"), "q.jsonl", chat_lines(2))
    at.selectbox(key="nb_conn").select_index(1).run()
    assert at.button(key="nb_start").disabled is False
    assert key not in json.dumps([str(e) for e in at.main])


def test_many_issues_are_summed_up_by_code_with_their_lines(data_dir):
    good = chat_lines(60).decode().splitlines()
    lines = [
        "{broken json" if i % 2 else line.replace('"POST"', '"GET"') if i % 4 == 0 else line
        for i, line in enumerate(good)
    ]  # 30 lines of broken JSON (2, 4, …, 60), 15 with GET (1, 5, …, 57)
    at = upload(open_page("new_batch"), "thirty.jsonl", ("\n".join(lines) + "\n").encode())
    assert not at.exception
    summary = at.dataframe[0].value.set_index("code")
    assert summary.loc["invalid_json", "count"] == 30
    assert summary.loc["invalid_json", "lines"] == "2, 4, 6, 8, 10, 12, 14, 16, 18, 20 … (+20)"
    assert summary.loc["invalid_method", "count"] == 15
    assert summary.loc["invalid_method", "lines"].startswith("1, 5, 9")
    assert len(at.dataframe[1].value) == 45  # and every issue, line by line


def test_urls_in_messages_never_become_links():
    # Streamlit's markdown links bare URLs even with ':' escaped (checked in Chromium); a word joiner stops it
    shown = common.md_escape(
        "see http://127.0.0.1:9/v1, https://evil.example/x, www.evil.example, a@evil.example"
    )
    assert "://" not in shown and "www." not in shown and "@e" not in shown
    assert shown.replace("\u2060", "").replace("\\", "") == (
        "see http://127.0.0.1:9/v1, https://evil.example/x, www.evil.example, a@evil.example"
    )


def test_the_run_shows_its_cost_on_the_connection_and_its_time_on_the_local_engine(data_dir):
    at = open_page("new_batch")
    at.radio(key="nb_source").set_value("Try a sample").run()
    shown = texts(at, "text")
    assert "cost: $0 on the local engine" in shown and "on the bundled model (estimate" in shown
    assert not texts(at, "warning")
    at.selectbox(key="nb_conn").select_index(1).run()  # OpenAI: its batch price, no duration
    shown = texts(at, "text")
    assert "cost: $0.0002 at OpenAI's batch prices" in shown and "time:" not in shown


def test_a_batch_of_hours_is_announced_before_it_starts(data_dir):
    at = upload(open_page("new_batch"), "long.jsonl", chat_lines(2_000, prompt="Tell me story {i}."))
    assert not at.exception
    assert "This batch will take about 8.4 h on the bundled model" in texts(at, "warning")
