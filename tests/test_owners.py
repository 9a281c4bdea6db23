"""Ownership in the core: where team settings restrict access (admins or an allowlist), a person acts on their
own batches only and admins on all, in Python and the CLI, on DuckDB and on PostgreSQL; without settings
(the single-user default) anyone acts on any batch, as before. Real stores, the real local engine."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from batch_support import to_engine, write_chat_file
from click.testing import CliRunner

from langbatch_core import Batch, NotOwnerError, OpenAIChatCompletionBatch, audit, team
from langbatch_core.storage import BatchRecord, default_storage

ANN, BOB, BOSS = "ann@example.com", "bob@example.com", "boss@example.com"


@pytest.fixture(params=["duckdb", "postgres"])
def store(request, monkeypatch):
    """The default store of Python and the CLI: DuckDB, or PostgreSQL through LANGBATCH_STORE."""
    if request.param == "postgres":
        monkeypatch.setenv("LANGBATCH_STORE", request.getfixturevalue("postgres_url"))
    return default_storage()


@pytest.fixture
def restricted(monkeypatch):
    """Team settings that restrict access: one admin (an allowlist would do the same)."""
    monkeypatch.setenv("LANGBATCH_ADMINS", BOSS)


def as_user(monkeypatch, user):
    monkeypatch.setenv("LANGBATCH_USER", user)


def anns_batches(tmp_path, engine, store, monkeypatch):
    """Ann's batch not started yet, and Ann's finished one with a failed request (so a retry has work)."""
    as_user(monkeypatch, ANN)
    path = write_chat_file(tmp_path / f"in-{time.monotonic_ns()}.jsonl", ["fine", "[[500]] broken"])
    fresh = OpenAIChatCompletionBatch(path, connection=to_engine(engine), storage=store, name="fresh")
    fresh.save()
    done = OpenAIChatCompletionBatch(path, connection=to_engine(engine), storage=store, name="done")
    done.start()
    done.wait(poll_interval=0.05, timeout=60)
    return fresh.id, done.id


ACTIONS = {  # what someone else may not do to a batch, and the verb the refusal names
    "start": ("fresh", lambda b, tmp: b.start(), "start"),
    "save": ("fresh", lambda b, tmp: b.save(), "save over"),
    "retry": ("done", lambda b, tmp: b.retry(), "retry"),
    "cancel": ("done", lambda b, tmp: b.cancel(), "cancel"),
    "delete": ("done", lambda b, tmp: b.delete(force=True), "delete"),
    "get_results": ("done", lambda b, tmp: b.get_results(), "read the results of"),
    "get_results_file": ("done", lambda b, tmp: b.get_results_file(), "read the results of"),
    "results_table": ("done", lambda b, tmp: b.results_table(), "read the results of"),
    "export_results": ("done", lambda b, tmp: b.export_results(tmp / "out.csv"), "export the results of"),
    "get_unsuccessful_requests": ("done", lambda b, _: b.get_unsuccessful_requests(), "read the results of"),
    "get_requests_by_custom_ids": (
        "done",
        lambda b, tmp: b.get_requests_by_custom_ids(["request-1"]),
        "read the requests of",
    ),
}


@pytest.mark.parametrize("action", list(ACTIONS))
def test_python_refuses_each_action_on_another_person_s_batch_and_audits_it(
    tmp_path, engine, store, restricted, monkeypatch, action
):
    fresh, done = anns_batches(tmp_path, engine, store, monkeypatch)
    which, act, verb = ACTIONS[action]
    batch_id = {"fresh": fresh, "done": done}[which]
    before = store.load(batch_id)
    as_user(monkeypatch, BOB)
    batch = Batch.load(batch_id, storage=store)
    with pytest.raises(NotOwnerError) as refused:
        act(batch, tmp_path)
    message = str(refused.value)
    assert f"{BOB} may not {verb} batch {batch_id} ({which})" in message
    assert f"it belongs to {ANN}" in message and f"Ask {ANN} or an admin" in message
    assert "You act as bob@example.com ($LANGBATCH_USER, else the operating system's user)" in message
    assert (refused.value.batch_id, refused.value.owner, refused.value.user) == (batch_id, ANN, BOB)
    after = store.load(batch_id)  # nothing changed, nothing written
    assert (after.version, len(after.jobs)) == (before.version, len(before.jobs))
    assert batch.requests_path.is_file() and not (tmp_path / "out.csv").exists()
    (event,) = audit.events(store, action="refused")
    assert (event.actor, event.batch_id, event.detail) == (BOB, batch_id, f"{verb}: owned by {ANN}")


def test_the_owner_and_an_admin_act_on_the_batch(tmp_path, engine, store, restricted, monkeypatch):
    fresh, done = anns_batches(tmp_path, engine, store, monkeypatch)
    as_user(monkeypatch, "Ann@Example.com")  # the same person in another case
    mine = Batch.load(done, storage=store)
    successful, unsuccessful = mine.get_results()
    assert len(successful) == 1 and len(unsuccessful) == 1
    assert mine.retry() == 1
    as_user(monkeypatch, BOSS)
    Batch.load(fresh, storage=store).start()
    admin = Batch.load(done, storage=store)
    admin.wait(poll_interval=0.05, timeout=60)
    assert admin.export_results(tmp_path / "answers.csv").is_file()
    admin.delete(force=True)
    assert [r.id for r in store.list()] == [fresh]
    assert store.load(fresh).jobs and audit.events(store, action="refused") == []


def test_reading_the_status_stays_open(tmp_path, engine, store, restricted, monkeypatch):
    _, done = anns_batches(tmp_path, engine, store, monkeypatch)
    as_user(monkeypatch, BOB)
    batch = Batch.load(done, storage=store)
    assert batch.get_status() == "completed" and batch.progress()["succeeded"] == 1
    assert batch.error_counts() == {"server_error": 1}


def test_without_team_settings_anyone_acts_on_any_batch(tmp_path, engine, store, monkeypatch):
    fresh, done = anns_batches(tmp_path, engine, store, monkeypatch)
    assert not team.settings().restricted
    as_user(monkeypatch, BOB)
    Batch.load(fresh, storage=store).start()
    other = Batch.load(done, storage=store)
    assert len(other.get_results()[0]) == 1 and other.retry() == 1
    other.delete(force=True)
    assert audit.events(store, action="refused") == []
    assert {r.id for r in store.list()} == {fresh}


def test_an_allowlist_restricts_as_admins_do_and_unowned_batches_are_the_admins(store, monkeypatch):
    monkeypatch.setenv("LANGBATCH_ALLOWED", "example.com")
    settings = team.settings()
    old = BatchRecord(id="lb_old", endpoint="/v1/chat/completions", owner=None)
    with pytest.raises(NotOwnerError, match=r"no recorded owner .* only an admin may\. Ask one"):
        settings.access(ANN).check(old, "delete")
    assert settings.access(ANN).owner_filter == ANN
    monkeypatch.setenv("LANGBATCH_ADMINS", BOSS)
    assert team.settings().access(BOSS).may_act(None) and team.settings().access(BOSS).owner_filter is None


def test_a_table_batch_s_rows_results_and_rest_are_the_owner_s(engine, store, restricted, monkeypatch):
    as_user(monkeypatch, ANN)
    frame = pd.DataFrame({"sku": ["A1", "B2", "C3"]})
    pilot = OpenAIChatCompletionBatch.from_table(
        frame, template="Say {{ sku }}", pilot=1, connection=to_engine(engine), storage=store
    )
    pilot.start()
    pilot.wait(poll_interval=0.05, timeout=60)
    as_user(monkeypatch, BOB)
    theirs = Batch.load(pilot.id, storage=store)
    for act, verb in [
        (theirs.get_results_table, "read the results of"),
        (theirs.source_table, "read the table of"),
        (theirs.rest, "make the rest of"),
    ]:
        with pytest.raises(NotOwnerError, match=f"may not {verb} batch {pilot.id}"):
            act()
    as_user(monkeypatch, ANN)
    assert Batch.load(pilot.id, storage=store).get_results_table()["sku"].tolist() == ["A1"]


def test_a_worker_advances_and_retries_every_owner_s_batch(tmp_path, engine, store, restricted, monkeypatch):
    from langbatch_core.worker import RetryPolicy, Worker

    as_user(monkeypatch, ANN)
    path = write_chat_file(tmp_path / "in.jsonl", ["fine", "flaky [[500x3]]"])
    batch = OpenAIChatCompletionBatch(path, connection=to_engine(engine), storage=store)
    batch.start()
    as_user(monkeypatch, "worker-account")  # not an admin, not the owner: the worker is the deployment's
    worker = Worker(storage=store, retry=RetryPolicy(("server_error",), 3), name="w1", poll_interval=0.05)
    retried, deadline = [], time.monotonic() + 60
    while any(job.active for job in store.load(batch.id).jobs) or not retried:
        assert time.monotonic() < deadline, "the worker did not retry the batch"
        report = worker.run_once()
        assert report.errors == {}
        retried += report.retried
        time.sleep(0.05)
    assert retried == [batch.id] and store.load(batch.id).succeeded == 2


# ---------------------------------------------------------------- the CLI


def cli(*args):
    from langbatch_core.cli import cli as group

    return CliRunner().invoke(group, [str(a) for a in args], catch_exceptions=False)


def test_the_cli_refuses_another_person_s_batch_and_lists_one_s_own(
    tmp_path, engine, store, restricted, monkeypatch
):
    fresh, done = anns_batches(tmp_path, engine, store, monkeypatch)
    as_user(monkeypatch, BOB)
    for args in (
        ["start", fresh],
        ["retry", done],
        ["cancel", done],
        ["delete", done, "--yes", "--force"],
        ["results", done, "-o", tmp_path / "theirs.csv"],
        ["results", done, "--show"],
    ):
        refused = cli(*args)
        assert refused.exit_code == 1, (args, refused.output)
        assert f"Error: {BOB} may not" in refused.output and f"it belongs to {ANN}" in refused.output
    assert not (tmp_path / "theirs.csv").exists()
    assert len(audit.events(store, actor=BOB, action="refused")) == 6
    shown = cli("audit", "--action", "refused").output
    assert f"{BOB}" in shown and f"{done}  retry: owned by {ANN}" in shown
    assert cli("status", done).exit_code == 0  # reading the status stays open
    empty = cli("list")
    assert fresh not in empty.output and f"No batches of yours ({BOB}) yet" in empty.output
    assert cli("list", "--json").output.strip() == "[]"
    as_user(monkeypatch, ANN)
    mine = cli("list")
    assert fresh in mine.output and done in mine.output
    assert cli("results", done, "-o", tmp_path / "mine.csv").exit_code == 0


def test_in_the_cli_an_admin_sees_and_acts_on_every_batch(tmp_path, engine, store, restricted, monkeypatch):
    fresh, done = anns_batches(tmp_path, engine, store, monkeypatch)
    as_user(monkeypatch, BOSS)
    listed = cli("list")
    assert fresh in listed.output and done in listed.output
    assert "Resubmitted 1 request(s)." in cli("retry", done).output
    assert cli("delete", fresh, "--yes").exit_code == 0
    assert [r.id for r in store.list()] == [done]


def test_in_the_cli_without_team_settings_everyone_sees_and_acts_as_before(
    tmp_path, engine, store, monkeypatch
):
    fresh, done = anns_batches(tmp_path, engine, store, monkeypatch)
    as_user(monkeypatch, BOB)
    listed = cli("list")
    assert fresh in listed.output and done in listed.output
    assert cli("results", done, "-o", tmp_path / "out.csv").exit_code == 0
    assert cli("delete", fresh, "--yes").exit_code == 0
    assert audit.events(store, action="refused") == []


def test_listing_by_owner_ignores_case(store):
    store.save(BatchRecord(id="lb_a", endpoint="/v1/chat/completions", owner="Ann@Example.com"))
    assert [r.id for r in store.list(owner=" ann@example.COM")] == ["lb_a"]
    assert [s.id for s in store.summaries(owner="ANN@example.com")] == ["lb_a"]
