"""The New batch page's validation: hostile files are reported like any other, and what the chosen
connection's model cannot run is listed by line before Create."""

from __future__ import annotations

import json

from .conftest import chat_lines, open_page, texts
from .test_new_batch import upload


def test_a_hostile_file_is_reported_by_line_not_as_a_failure(data_dir):
    good = chat_lines(1).decode()
    deep = good.replace('"model"', '"x": ' + "[" * 100_000 + "]" * 100_000 + ', "model"')
    huge = good.replace('"model"', '"seed": ' + "1" * 5000 + ', "model"').replace("req-0", "req-1")
    at = upload(open_page("new_batch"), "hostile.jsonl", (good + deep + huge).encode())
    assert not at.exception
    assert "failed unexpectedly" not in texts(at, "error")
    assert "cannot be started" in texts(at, "error")
    issues = at.dataframe[1].value  # after the summary by code
    assert list(issues["line"].astype(int)) == [2, 3] and set(issues["code"]) == {"invalid_json"}


def test_what_the_local_model_cannot_run_is_listed_before_create(data_dir):
    lines = chat_lines(3).decode().splitlines()
    asks = json.loads(lines[1])
    asks["body"]["logprobs"] = True
    lines[1] = json.dumps(asks)
    at = upload(open_page("new_batch"), "logprobs.jsonl", ("\n".join(lines) + "\n").encode())
    assert not at.exception
    assert "Valid: 3 requests" in texts(at, "success")  # OpenAI would take it
    assert at.selectbox(key="nb_conn").value.kind == "local"
    assert "1 request(s) ask for what Local engine cannot do" in texts(at, "error")
    refused = at.dataframe[-1].value
    assert list(refused["line"].astype(int)) == [2] and "logprobs" in refused["message"][0]
    assert not [b for b in at.button if b.key in ("nb_create", "nb_start")]
    at.selectbox(key="nb_conn").select_index(1).run()  # OpenAI: nothing refused
    assert not at.exception and at.button(key="nb_create")
