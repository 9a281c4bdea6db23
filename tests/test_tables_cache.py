"""The joined table kept in the batch's folder (``.joined.parquet``): read back exactly as joined (typed
fields, the table's own types, embeddings), written when results arrive, and never stale: a retry, the
pilot's retry, a job starting, a damaged file each give the table of the files as they are."""

from __future__ import annotations

import json
import os
import time

import pandas as pd
import pyarrow.parquet as pq
import pytest
from batch_support import to_engine
from pandas.testing import assert_frame_equal
from support.data_results import rejected, success

from langbatch_core import Batch, OpenAIChatCompletionBatch, OpenAIEmbeddingBatch
from langbatch_core.tables import schema_from_fields
from langbatch_core.tables._cache import CACHE_FILE, KEY, read_joined
from langbatch_core.worker import Worker

ROWS = pd.DataFrame(
    {
        "sku": ["A1", "B2", "C3", "D4", "E5"],
        "stars": pd.array([5, None, 3, 1, 2], dtype="Int64"),
        "shop": pd.Categorical(["north", "south", "north", None, "south"]),
        "gift": [True, False, True, False, False],
        "checked": pd.array([True, None, False, True, None], dtype="boolean"),
        "bought": pd.to_datetime(["2024-01-01", None, "2024-03-01", "2024-04-01", "2024-05-01"]).tz_localize(
            "UTC"
        ),
        "price": [1.5, float("nan"), 2.0, 3.0, 4.25],
        "tags": [["a"], [], None, ["b", "c"], ["d"]],
    }
)


def typed_schema():
    fields = [
        {"name": "sentiment", "type": "enum", "values": ["positive", "negative"]},
        {"name": "score", "type": "number"},
        {"name": "count", "type": "integer"},
        {"name": "status", "type": "boolean"},  # the outcome's column then becomes status_2
        {"name": "note", "type": "string", "required": False},
    ]
    schema = schema_from_fields(fields)
    schema["properties"]["topics"] = {"type": "array", "items": {"type": "string"}}
    schema["required"].append("topics")
    return schema


def kept(batch):
    """The table kept in the batch's folder, read as get_results_table reads it; None without one."""
    path = batch.directory / CACHE_FILE
    if not path.exists():
        return None
    return read_joined(batch.directory, pq.read_schema(path).metadata[KEY])


def kept_at(batch):
    return (batch.directory / CACHE_FILE).stat().st_mtime_ns


def answer(**fields):
    return json.dumps({"note": None, "topics": [], **fields})


def test_a_typed_table_is_read_back_exactly_as_joined():
    batch = OpenAIChatCompletionBatch.from_table(
        ROWS, template="{{ sku }}", schema=typed_schema(), id_column="sku"
    )
    lines = [
        success("A1", answer(sentiment="positive", score=0.5, count=3, status=True, topics=["fit"])),
        success("C3", "not JSON at all"),
        rejected("D4"),
        success("E5", answer(sentiment="negative", score=1, count=0, status=False, note="late")),
    ]
    batch.results_path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    batch.save()

    joined = batch.get_results_table(refresh=False)
    assert [str(joined[c].dtype) for c in ("score", "count", "status", "shop")] == [
        "Float64",
        "Int64",
        "boolean",
        "category",
    ]
    assert joined["status_2"].tolist() == ["succeeded", "not started", "succeeded", "failed", "succeeded"]
    from_disk = kept(batch)
    assert_frame_equal(from_disk, joined, check_exact=True)
    assert from_disk.attrs == joined.attrs

    written = kept_at(batch)
    again = Batch.load(batch.id).get_results_table(refresh=False)  # a fresh process's first look
    assert kept_at(batch) == written  # read, not joined and written again
    assert_frame_equal(again, joined, check_exact=True)
    assert again.attrs == joined.attrs


def test_embeddings_are_read_back_as_lists(engine):
    texts = pd.DataFrame({"id": ["a", "b", "c"], "text": ["great", "refused [[400]]", "fine"]})
    batch = OpenAIEmbeddingBatch.from_table(
        texts, text_column="text", id_column="id", connection=to_engine(engine)
    )
    batch.start()
    batch.wait(poll_interval=0.05, timeout=60)
    joined = batch.get_results_table()
    assert [v is None for v in joined["embedding"]] == [False, True, False]
    from_disk = kept(batch)
    assert_frame_equal(from_disk, joined, check_exact=True)
    assert all(isinstance(v, list) for v in from_disk["embedding"].dropna())


def test_the_rest_of_an_embeddings_pilot_before_it_runs(engine):
    texts = pd.DataFrame({"id": ["a", "b", "c"], "text": ["great", "awful", "fine"]})
    pilot = OpenAIEmbeddingBatch.from_table(
        texts, text_column="text", id_column="id", pilot=1, connection=to_engine(engine)
    )
    pilot.start()
    pilot.wait(poll_interval=0.05, timeout=60)
    rest = pilot.rest()
    joined = rest.get_results_table()  # the pilot's vector, then rows without one (empty cells)
    assert [v is None for v in joined["embedding"]] == [False, True, True]
    assert_frame_equal(kept(rest), joined, check_exact=True)


def test_results_arriving_keep_the_table_before_anyone_asks(engine, tmp_path):
    batch = OpenAIChatCompletionBatch.from_table(ROWS, template="Say {{ sku }}", connection=to_engine(engine))
    batch.start()
    batch.wait(poll_interval=0.05, timeout=60)  # its refresh merged the results: the table is joined then
    assert kept(batch)["answer"].tolist() == [f"echo: Say {sku}" for sku in ROWS.sku]
    written = kept_at(batch)
    Batch.load(batch.id).get_results_table(refresh=False)
    assert kept_at(batch) == written


def test_a_worker_keeps_the_table_of_the_results_it_merged(engine):
    batch = OpenAIChatCompletionBatch.from_table(ROWS, template="Say {{ sku }}", connection=to_engine(engine))
    batch.start()
    worker = Worker(name="w", poll_interval=0.05)
    deadline = time.monotonic() + 60
    while kept(batch) is None:
        assert time.monotonic() < deadline, "the worker did not merge the results"
        worker.run_once()
        time.sleep(0.05)
    assert kept(batch)["status"].tolist() == ["succeeded"] * 5


def test_a_retry_shows_the_retried_answers(engine):
    rows = pd.DataFrame({"sku": ["ok", "flaky [[500x3]] kept table"]})
    batch = OpenAIChatCompletionBatch.from_table(rows, template="{{ sku }}", connection=to_engine(engine))
    batch.start()
    batch.wait(poll_interval=0.05, timeout=60)
    assert batch.get_results_table()["status"].tolist() == ["succeeded", "failed"]
    assert batch.retry() == 1
    batch.wait(poll_interval=0.05, timeout=60)
    joined = Batch.load(batch.id).get_results_table(refresh=False)
    assert joined["status"].tolist() == ["succeeded", "succeeded"]
    assert joined["answer"].tolist()[1] == "echo: flaky [[500x3]] kept table"


def test_the_pilot_s_retried_answers_reach_the_rest_s_table(engine):
    rows = pd.DataFrame({"sku": ["flaky [[500x3]] pilot row", "two", "three"]})
    pilot = OpenAIChatCompletionBatch.from_table(
        rows, template="{{ sku }}", pilot=1, connection=to_engine(engine)
    )
    pilot.start()
    pilot.wait(poll_interval=0.05, timeout=60)
    rest = pilot.rest()
    rest.start()
    rest.wait(poll_interval=0.05, timeout=60)
    assert rest.get_results_table()["status"].tolist() == ["failed", "succeeded", "succeeded"]
    assert kept(rest) is not None
    pilot.retry()
    pilot.wait(poll_interval=0.05, timeout=60)  # only the pilot's files change
    joined = Batch.load(rest.id).get_results_table(refresh=False)
    assert joined["status"].tolist() == ["succeeded"] * 3


def test_rows_not_started_become_pending_when_the_batch_starts(engine):
    batch = OpenAIChatCompletionBatch.from_table(ROWS, template="Say {{ sku }}", connection=to_engine(engine))
    batch.save()
    assert set(batch.get_results_table()["status"]) == {"not started"}
    batch.start()  # no results yet: only the record's jobs changed
    assert set(Batch.load(batch.id).get_results_table(refresh=False)["status"]) == {"pending"}
    batch.wait(poll_interval=0.05, timeout=60)


@pytest.mark.parametrize("damage", ["garbage", "half written", "a folder"])
def test_a_damaged_kept_table_is_joined_again(engine, damage):
    batch = OpenAIChatCompletionBatch.from_table(ROWS, template="Say {{ sku }}", connection=to_engine(engine))
    batch.start()
    batch.wait(poll_interval=0.05, timeout=60)
    joined = batch.get_results_table(refresh=False)
    path = batch.directory / CACHE_FILE
    if damage == "a folder":
        path.unlink()
        path.mkdir()
    else:
        whole = path.read_bytes()
        path.write_bytes(b"not parquet" * 100 if damage == "garbage" else whole[: len(whole) // 2])
    again = Batch.load(batch.id).get_results_table(refresh=False)
    assert_frame_equal(again, joined, check_exact=True)
    if damage != "a folder":  # joined again and kept again
        assert_frame_equal(kept(batch), joined, check_exact=True)
    assert not list(batch.directory.glob(f"{CACHE_FILE}.*"))  # no temporary file left behind


def test_a_write_removes_what_a_killed_one_left(engine):
    batch = OpenAIChatCompletionBatch.from_table(ROWS, template="Say {{ sku }}", connection=to_engine(engine))
    left = batch.directory / f"{CACHE_FILE}.abc123.tmp"
    left.write_bytes(b"half a table")
    os.utime(left, (time.time() - 7200, time.time() - 7200))
    recent = batch.directory / f"{CACHE_FILE}.def456.tmp"  # another process's write under way
    recent.write_bytes(b"being written")
    batch.save()
    batch.get_results_table()
    assert not left.exists() and recent.exists()
