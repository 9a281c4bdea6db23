"""The Batches page: the table of every batch, details, jobs, errors and the actions."""

from __future__ import annotations

import common
import tables

from langbatch_core.storage import BatchStorage, BatchSummary

from .conftest import button, make_record, open_page, store, stored_batch_with_results, texts


def test_no_batches_gives_a_friendly_empty_state(data_dir):
    at = open_page("batches")
    assert not at.exception
    assert "No batches yet" in texts(at, "info")


def test_every_batch_is_listed_with_progress_and_counts(data_dir):
    store([make_record(1), make_record(2, status="failed", succeeded=0, failed=10, pending=0)])
    at = open_page("batches")
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["id"]) == ["lb_test00002", "lb_test00001"]  # newest first
    assert {
        "name",
        "connection",
        "model",
        "status",
        "progress",
        "succeeded",
        "failed",
        "pending",
        "created",
        "cost",
    } <= set(table.columns)
    assert table.set_index("id").loc["lb_test00001", "progress"] == 0.8
    assert table.set_index("id").loc["lb_test00002", "status"] == "failed"


class MemoryStorage(BatchStorage):
    """A real store subclass kept in memory: seeding 1,000 DuckDB rows one save at a time takes a minute."""

    def __init__(self, records):
        super().__init__()
        self.records = {r.id: r for r in records}

    def save(self, record):
        self.records[record.id] = record

    def load(self, batch_id):
        return self.records[batch_id]

    def list(self):
        return sorted(self.records.values(), key=lambda r: r.created_at, reverse=True)

    def delete(self, batch_id):
        del self.records[batch_id]


def test_a_thousand_batches_render(data_dir, monkeypatch):
    monkeypatch.setattr(common, "storage", lambda: MemoryStorage(make_record(n) for n in range(1000)))
    at = open_page("batches")
    assert not at.exception
    assert len(at.dataframe[0].value) == 1000


class SummariesOnlyStorage(MemoryStorage):
    """A store whose whole-record listing fails: the page must list summaries and load the one it shows."""

    def list(self, owner=None):
        raise AssertionError("the Batches page read every whole record")

    def summaries(self, owner=None, limit=None):
        return [BatchSummary.of(r) for r in MemoryStorage.list(self)][:limit]


def test_the_page_lists_summaries_and_loads_only_the_batch_it_details(data_dir, monkeypatch):
    shown = SummariesOnlyStorage([make_record(n, jobs=2) for n in range(1, 4)])
    monkeypatch.setattr(common, "storage", lambda: shown)
    at = open_page("batches")
    assert not at.exception and not texts(at, "error")
    assert list(at.dataframe[0].value["id"]) == ["lb_test00003", "lb_test00002", "lb_test00001"]
    assert "Batch lb_test00003" in [s.value for s in at.subheader]
    assert list(at.dataframe[1].value["job"]) == ["a1-j1", "a1-j2"]  # its jobs: the whole record, loaded


def test_details_show_metrics_jobs_and_a_timeline(data_dir):
    store([make_record(1, jobs=3)])
    at = open_page("batches")
    assert "Batch lb_test00001" in [s.value for s in at.subheader]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Succeeded"] == "6" and metrics["Failed"] == "2" and metrics["Pending"] == "2"
    jobs = at.dataframe[1].value
    assert list(jobs["job"]) == ["a1-j1", "a1-j2", "a1-j3"]
    assert at.get("vega_lite_chart")


def test_job_errors_are_grouped_by_code(data_dir):
    record = make_record(1, status="failed")
    record.jobs[0].errors = [
        {"code": "invalid_model", "message": "model x does not exist", "line": 1},
        {"code": "invalid_model", "message": "model x does not exist", "line": 2},
        {"code": "too_long", "message": "line too long", "line": 3},
    ]
    store([record])
    at = open_page("batches")
    errors = at.dataframe[-1].value
    assert dict(zip(errors["code"], errors["count"], strict=True)) == {"invalid_model": 2, "too_long": 1}


def test_names_are_shown_as_text_never_markdown(data_dir):
    store([make_record(1, name="[click](http://evil.example) **bold**")])
    at = open_page("batches")
    assert "Name: [click](http://evil.example) **bold**" in texts(at, "text")
    for kind in ("markdown", "success", "info", "warning", "error", "caption"):
        assert "](http://evil" not in texts(at, kind)


def test_the_actions_fit_the_state(data_dir):
    store([make_record(1, status="not_started", jobs=0, succeeded=0, failed=0, pending=10)])
    at = open_page("batches")
    assert button(at, "Start").disabled is False
    assert button(at, "Cancel").disabled is True
    assert button(at, "Retry failed").disabled is True
    assert "has not been started" in texts(at, "caption")


def test_the_list_can_be_narrowed_by_text_and_status(data_dir):
    store([make_record(1, name="french questions"), make_record(2, status="failed"), make_record(3)])
    at = open_page("batches")
    at.text_input(key="bt_find").input("FRENCH").run()
    assert list(at.dataframe[0].value["id"]) == ["lb_test00001"]
    at.text_input(key="bt_find").input("").run()
    at.multiselect(key="bt_status").set_value(["failed"]).run()
    assert list(at.dataframe[0].value["id"]) == ["lb_test00002"]
    assert "Batch lb_test00002" in [s.value for s in at.subheader]
    at.text_input(key="bt_find").input("nothing like this").run()
    assert "No batch matches" in texts(at, "info")


def test_an_unexpected_failure_is_a_sentence_not_a_traceback(data_dir, monkeypatch):
    store([make_record(1)])

    def broken(records):
        raise KeyError("surprise")

    monkeypatch.setattr(tables, "batch_table", broken)
    at = open_page("batches")
    assert not at.exception
    assert "failed unexpectedly: KeyError" in texts(at, "error")


def test_requests_still_running_are_not_listed_as_errors(data_dir):
    record = stored_batch_with_results(10, status="in_progress")
    folder = common.storage().batch_dir(record.id)
    finished = (folder / "results.jsonl").read_bytes().splitlines(keepends=True)[:5]
    (folder / "results.jsonl").write_bytes(b"".join(finished))  # 5 of 10 have a result so far
    errors = common.errors_by_code(record)
    assert "missing" not in set(errors["code"])
    assert dict(zip(errors["code"], errors["count"], strict=True)) == {"invalid_value": 1}
    assert not errors["example"].isna().any()


def test_a_start_that_never_reached_the_provider_is_not_watched_forever(data_dir):
    stuck = make_record(1, status="validating")
    stuck.jobs[0].status, stuck.jobs[0].provider_job_id = "submitting", None  # the upload failed
    store([stuck])
    at = open_page("batches")
    assert not at.exception
    assert "Refreshing every" not in texts(at, "caption")  # no timer, no polling of a provider
    assert "Refreshing batch" not in texts(at, "warning")  # and no poll failing every 2 s
    assert "Press Start to submit them again" in texts(at, "warning")
    assert button(at, "Start").disabled is False
    running = make_record(2, status="in_progress")  # a job at the provider: watched
    assert common.is_running(running) and not common.is_running(stuck)


def test_the_table_shows_when_a_worker_last_advanced_each_batch(data_dir):
    import calendar

    advanced = calendar.timegm((2026, 5, 2, 14, 3, 0))
    store([make_record(1), make_record(2, advanced_at=advanced, advanced_by="worker-1")])
    at = open_page("batches")
    table = at.dataframe[0].value.set_index("id")
    assert table.loc["lb_test00002", "advanced"] == "May 02 14:03 · worker-1"
    assert table.loc["lb_test00001", "advanced"] == ""  # no worker: blank, never None
    # and in the details of the batch shown, the newest (the table's column may be off screen)
    assert "Last advanced by a worker (UTC): May 02 14:03 · worker-1" in texts(at, "text")


def test_the_page_lists_a_team_s_postgresql_store(data_dir, postgres_url, monkeypatch):
    monkeypatch.setenv("LANGBATCH_STORE", postgres_url)
    store([make_record(1, advanced_at=1.0e9, advanced_by="worker-2")])
    from langbatch_core.storage.postgres import PostgresBatchStorage

    assert [r.id for r in PostgresBatchStorage(postgres_url).list()] == ["lb_test00001"]
    at = open_page("batches")
    assert not at.exception
    assert list(at.dataframe[0].value["id"]) == ["lb_test00001"]
    assert at.dataframe[0].value["advanced"][0].endswith("· worker-2")
