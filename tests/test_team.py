"""Owners, team settings, spend caps and the audit log, on real stores and the real local engine."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest
from batch_support import to_engine, write_chat_file

from langbatch_core import OpenAIChatCompletionBatch, audit, budgets, team
from langbatch_core.errors import BudgetExceededError, ConfigurationError
from langbatch_core.requests import pricing
from langbatch_core.storage import BatchRecord, DuckDBBatchStorage, FileBatchStorage
from langbatch_core.team import TeamSettings


@pytest.fixture(params=["duckdb", "files", "postgres"])
def storage(request):
    if request.param == "postgres":  # a team's store: owners and the audit log in its own tables
        from langbatch_core.storage.postgres import PostgresBatchStorage

        return PostgresBatchStorage(request.getfixturevalue("postgres_url"))
    return {"duckdb": DuckDBBatchStorage, "files": FileBatchStorage}[request.param]()


def make_batch(tmp_path, engine, storage, prompts=("a", "b"), **kw):
    path = write_chat_file(tmp_path / f"in-{time.monotonic_ns()}.jsonl", list(prompts))
    return OpenAIChatCompletionBatch(path, connection=to_engine(engine), storage=storage, **kw)


# ---------------------------------------------------------------- owners


def test_python_records_langbatch_user_or_the_os_user_as_owner(tmp_path, engine, storage, monkeypatch):
    monkeypatch.setenv("LANGBATCH_USER", "ann@example.com")
    ann = make_batch(tmp_path, engine, storage)
    ann.save()
    monkeypatch.delenv("LANGBATCH_USER")
    mine = make_batch(tmp_path, engine, storage)
    mine.save()
    import getpass

    assert storage.load(ann.id).owner == "ann@example.com"
    assert storage.load(mine.id).owner == getpass.getuser() == team.current_user()
    assert [r.id for r in storage.list(owner="ann@example.com")] == [ann.id]
    assert {r.id for r in storage.list()} == {ann.id, mine.id}


def test_duckdb_owner_is_a_column_added_by_a_named_migration(tmp_path):
    store = DuckDBBatchStorage(tmp_path / "lb.duckdb")
    store.save(BatchRecord(id="lb_x", endpoint="/v1/chat/completions", owner="bob@example.com"))
    assert store.applied_migrations()[-2:] == ["m004_owner", "m005_audit"]
    assert store.list(owner="bob@example.com")[0].id == "lb_x"
    assert store.list(owner="ann@example.com") == []


# ---------------------------------------------------------------- the audit log


def test_every_lifecycle_step_is_audited_with_its_actor(tmp_path, engine, storage, monkeypatch):
    monkeypatch.setenv("LANGBATCH_USER", "ann@example.com")
    batch = make_batch(tmp_path, engine, storage, prompts=["fine", "[[500]] broken"])
    batch.start()
    batch.wait(poll_interval=0.05)
    batch.retry()
    batch.cancel()
    again = OpenAIChatCompletionBatch.load(batch.id, storage=storage, actor="admin@example.com")
    again.delete(force=True)
    found = audit.events(storage, batch_id=batch.id)
    assert [e.action for e in reversed(found)] == [
        "created",
        "started",
        "retried",
        "cancelled",
        "deleted",
    ]
    assert {e.actor for e in found if e.action != "deleted"} == {"ann@example.com"}
    assert found[0].actor == "admin@example.com"
    assert audit.events(storage, actor="admin@example.com", action="deleted")[0].batch_id == batch.id


def test_the_audit_log_filters_by_time_and_exports_csv_without_formulas(storage):
    audit.record(storage, "ann@example.com", "downloaded", "lb_1", "=HYPERLINK(1)")
    later = time.time() + 1
    audit.record(storage, "bob@example.com", "created", "lb_2")
    assert audit.events(storage, until=later)[-1].actor == "ann@example.com"
    assert audit.events(storage, since=later) == []
    rows = list(csv.DictReader(io.StringIO(audit.to_csv(audit.events(storage)).decode())))
    assert [r["actor"] for r in rows] == ["bob@example.com", "ann@example.com"]
    assert rows[1]["detail"] == "'=HYPERLINK(1)" and rows[1]["action"] == "downloaded"
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record(storage, "ann", "frobbed")


# ---------------------------------------------------------------- spend caps


def test_a_start_over_the_batch_s_own_cap_is_refused_with_the_figures(tmp_path, engine, storage, upstream):
    batch = make_batch(tmp_path, engine, storage, max_cost_usd=0.0)
    assert batch.record.estimated_cost_usd > 0
    with pytest.raises(BudgetExceededError, match=r"would cost about \$0\.0000\d+ .* own cap of \$0") as exc:
        batch.start()
    assert exc.value.cap == "batch"
    assert not batch.record.jobs and upstream.received == []
    batch.start(max_cost_usd=1.0)  # a higher cap at start lets it run
    assert batch.wait(poll_interval=0.05) == "completed"


def test_a_start_that_would_pass_the_monthly_user_cap_is_refused(tmp_path, engine, storage, monkeypatch):
    monkeypatch.setenv("LANGBATCH_USER", "ann@example.com")
    first = make_batch(tmp_path, engine, storage)
    cap = first.record.estimated_cost_usd * 1.5  # room for one such batch, not two
    monkeypatch.setenv("LANGBATCH_USER_MONTHLY_USD", str(cap))
    first.start()
    first.wait(poll_interval=0.05)
    assert storage.load(first.id).cost_usd > 0  # the actual cost, from the results' usage
    second = make_batch(tmp_path, engine, storage)
    with pytest.raises(BudgetExceededError, match=r"ann@example\.com's monthly cap is") as exc:
        second.start()
    assert "already spent in" in str(exc.value) and "left" in str(exc.value)
    assert exc.value.cap == "user"
    monkeypatch.setenv("LANGBATCH_USER", "bob@example.com")  # someone else's month is their own
    make_batch(tmp_path, engine, storage).start()


def test_a_team_cap_counts_every_member_s_batches(tmp_path, engine, storage):
    first = make_batch(tmp_path, engine, storage, owner="ann@example.com")
    settings = TeamSettings.from_mapping(
        {
            "teams": {
                "research": {
                    "members": ["ann@example.com", "bob@example.com"],
                    "monthly_usd": first.record.estimated_cost_usd * 1.5,
                }
            }
        }
    )
    first.team_settings = settings
    first.start()
    second = make_batch(tmp_path, engine, storage, owner="bob@example.com")
    second.team_settings = settings
    with pytest.raises(BudgetExceededError, match="team research's monthly cap"):
        second.start()
    lines = budgets.standing(storage, "bob@example.com", settings)
    assert [(s.kind, s.who) for s in lines] == [("team", "research")]
    assert lines[0].spent == pytest.approx(first.record.estimated_cost_usd)


def test_a_retry_over_the_cap_is_refused(tmp_path, engine, storage):
    batch = make_batch(tmp_path, engine, storage, prompts=["ok", "[[400]] rejected", "[[500]] broken"])
    batch.start()
    batch.wait(poll_interval=0.05)
    spent = budgets.spent_this_month(storage, frozenset({batch.record.owner}))
    assert spent == pytest.approx(batch.record.cost_usd) and spent > 0
    batch.team_settings = TeamSettings(user_monthly_usd=spent + budgets.share(batch.record, 1) / 2)
    with pytest.raises(BudgetExceededError, match="Retrying 1 request"):
        batch.retry()
    batch.team_settings = TeamSettings(user_monthly_usd=spent + budgets.share(batch.record, 1) * 2)
    assert batch.retry() == 1


def test_a_model_without_a_price_cannot_start_under_a_cap(tmp_path, engine, storage):
    path = tmp_path / "odd.jsonl"
    path.write_text(
        '{"custom_id":"a","method":"POST","url":"/v1/chat/completions",'
        '"body":{"model":"my-own-model","messages":[{"role":"user","content":"hi"}]}}\n'
    )
    batch = OpenAIChatCompletionBatch(path, connection=to_engine(engine), storage=storage, max_cost_usd=5)
    with pytest.raises(BudgetExceededError, match="'my-own-model' is not in the price table"):
        batch.start()


# ---------------------------------------------------------------- settings


def test_settings_allow_listed_e_mails_and_domains_and_name_admins(tmp_path, monkeypatch):
    (tmp_path / "team.toml").write_text(
        'admins = ["Boss@Example.com"]\nallowed = ["@example.com", "guest@partner.org"]\n'
        'user_monthly_usd = 50\n[users."big@example.com"]\nmonthly_usd = 500\n'
    )
    monkeypatch.setenv("LANGBATCH_ALLOWED", "friend@other.org")
    settings = team.settings(tmp_path)
    assert settings.is_admin("boss@example.com") and not settings.is_admin("ann@example.com")
    assert settings.allows("ann@example.com") and settings.allows("guest@partner.org")
    assert settings.allows("friend@other.org")
    assert not settings.allows("eve@partner.org") and not settings.allows("example.com")
    assert not settings.allows("eve@notexample.com") and not settings.allows(None)
    assert settings.user_cap("big@example.com") == 500 and settings.user_cap("ann@example.com") == 50
    assert not TeamSettings().restricted and TeamSettings().allows("anyone@anywhere.org")


def test_wrong_settings_say_which_field(tmp_path, monkeypatch):
    (tmp_path / "team.toml").write_text('user_monthly_usd = "lots"\n')
    with pytest.raises(ConfigurationError, match="user_monthly_usd must be an amount"):
        team.settings(tmp_path)
    monkeypatch.setenv("LANGBATCH_TEAM_FILE", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigurationError, match="LANGBATCH_TEAM_FILE names"):
        team.settings(tmp_path)


# ---------------------------------------------------------------- the CLI


def cli(*args):
    from click.testing import CliRunner

    from langbatch_core.cli import cli as group

    return CliRunner().invoke(group, [str(a) for a in args], catch_exceptions=False)


def test_the_cli_refuses_a_start_over_its_cap_keeps_nothing_and_audits_downloads(
    tmp_path, engine, monkeypatch
):
    monkeypatch.setenv("LANGBATCH_USER", "carl")
    path = write_chat_file(tmp_path / "in.jsonl", ["a", "b"])
    connection = ["--connection", "compatible", "--base-url", engine.base_url]
    refused = cli("create", path, "--start", "--max-cost-usd", "0", *connection)
    assert refused.exit_code == 1
    assert "would cost about $0.0000" in refused.output and "own cap of $0.00" in refused.output
    assert "Nothing was kept" in refused.output
    assert DuckDBBatchStorage().list() == []
    made = cli("create", path, "--start", "--max-cost-usd", "1", *connection)
    assert made.exit_code == 0, made.output
    (record,) = DuckDBBatchStorage().list(owner="carl")
    assert cli("wait", record.id, "--poll-interval", "0.05").exit_code == 0
    assert cli("results", record.id, "-o", tmp_path / "out.csv").exit_code == 0
    shown = cli("audit", "--user", "carl").output
    assert "downloaded" in shown and "results as out.csv" in shown and "started" in shown
    assert cli("audit", "--csv", tmp_path / "audit.csv").exit_code == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "audit.csv").read_text())))
    # the refused start's batch was made and dropped again; the second one ran and was downloaded
    assert [r["action"] for r in reversed(rows)] == ["created", "deleted", "created", "started", "downloaded"]
    assert {r["actor"] for r in rows} == {"carl"}


def test_the_cli_shows_this_month_s_spend(monkeypatch):
    monkeypatch.setenv("LANGBATCH_USER_MONTHLY_USD", "25")
    assert "you: $0.00 of $25.00 spent this month, $25.00 left" in cli("spend", "--user", "ann").output


def test_the_readme_s_team_settings_parse_as_written():
    import re
    import tomllib
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Sign-in, owners, budgets, audit", 1)[1]
    block = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    settings = TeamSettings.from_mapping(tomllib.loads(block)["langbatch"])
    assert settings.is_admin("ann@example.com") and settings.allows("carl@example.com")
    assert settings.user_cap("ann@example.com") == 200 and settings.user_cap("bob@example.com") == 50
    assert [(t.name, t.monthly_usd) for t in settings.teams_of("bob@example.com")] == [("research", 500)]


def test_the_actual_cost_comes_from_the_answers_usage_at_batch_prices(tmp_path):
    def line(model, prompt, completion):
        body = {"model": model, "usage": {"prompt_tokens": prompt, "completion_tokens": completion}}
        return {"custom_id": "x", "response": {"status_code": 200, "body": body}, "error": None}

    path = tmp_path / "results.jsonl"
    expired = {"custom_id": "y", "response": None, "error": {"code": "batch_expired"}}
    lines = [line("gpt-4o-mini-2024-07-18", 1_000_000, 0), expired, line(None, 0, 1_000_000)]
    path.write_text("\n".join(map(json.dumps, lines)) + "\n{garbled\n")
    record = BatchRecord(id="lb_c", endpoint="/v1/chat/completions", model="gpt-4o-mini")
    price = pricing.price_for("gpt-4o-mini")
    assert budgets.actual_cost(record, path) == pytest.approx(price.input + price.output)
    record.connection = {"kind": "local"}
    assert budgets.actual_cost(record, path) == 0.0
    record.connection, record.model = {"kind": "openai"}, "my-own-model"
    path.write_text(json.dumps(line(None, 10, 10)) + "\n")
    assert budgets.actual_cost(record, path) is None
    assert budgets.actual_cost(record, tmp_path / "none.jsonl") is None
