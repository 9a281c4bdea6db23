"""`langbatch worker` on the real local engine: it finishes running batches with no one watching, retries by
policy, notifies (a real webhook server, a real SMTP server), shares work between workers on PostgreSQL,
refuses a second worker on the embedded store, and a worker killed with SIGKILL loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from batch_support import prompts_received, to_engine, write_chat_file
from click.testing import CliRunner

from langbatch_core import ConfigurationError, OpenAIChatCompletionBatch
from langbatch_core.cli import cli
from langbatch_core.notify import Notifier
from langbatch_core.storage import default_storage
from langbatch_core.storage.base import CATCH_UP_SECONDS
from langbatch_core.worker import RetryPolicy, Worker


def make_batches(tmp_path, engine, count, prompts=("q {i}.{j}",), storage=None):
    batches = []
    for i in range(count):
        lines = [p.format(i=i, j=j) for j, p in enumerate(prompts)]
        path = write_chat_file(tmp_path / f"in{i}.jsonl", lines)
        batch = OpenAIChatCompletionBatch(path, connection=to_engine(engine), storage=storage, name=f"b{i}")
        batch.start()
        batches.append(batch)
    return batches


def cycle_until_done(worker, ids, timeout=60):
    """Run worker cycles until none of ``ids`` runs; the cycles' reports."""
    deadline, reports = time.monotonic() + timeout, []
    while any(any(j.active for j in worker.storage.load(i).jobs) for i in ids):
        assert time.monotonic() < deadline, "the worker did not finish the batches"
        reports.append(worker.run_once())
        time.sleep(0.05)
    reports.append(worker.run_once())
    return reports


def test_a_worker_finishes_running_batches_with_no_one_watching(tmp_path, engine):
    batches = make_batches(tmp_path, engine, 3, prompts=("a {i}", "b {i}"))
    worker = Worker(name="worker-1", poll_interval=0.05)
    cycle_until_done(worker, [b.id for b in batches])
    for batch in batches:
        record = default_storage().load(batch.id)
        assert (record.status, record.succeeded, record.advanced_by) == ("completed", 2, "worker-1")
        assert time.time() - record.advanced_at < 60
        assert batch.results_path.is_file()  # results downloaded and merged by the worker


def test_auto_retry_follows_the_policy_up_to_max_attempts(tmp_path, engine, upstream):
    # the engine tries each request 3 times: [[500x3]] fails the first attempt, [[500x99]] every attempt
    (batch,) = make_batches(tmp_path, engine, 1, prompts=("ok", "flaky [[500x3]]", "broken [[500x99]]"))
    worker = Worker(name="w", poll_interval=0.05, retry=RetryPolicy(("server_error",), max_attempts=3))
    reports = cycle_until_done(worker, [batch.id])
    record = default_storage().load(batch.id)
    assert (record.succeeded, record.failed, record.attempts) == (2, 1, 3)
    assert sum(batch.id in r.retried for r in reports) == 2
    assert prompts_received(upstream)["broken [[500x99]]"] == 9  # 3 attempts, never a 4th


def test_without_a_matching_reason_a_worker_does_not_retry(tmp_path, engine):
    (batch,) = make_batches(tmp_path, engine, 1, prompts=("ok", "flaky [[500x3]]"))
    worker = Worker(name="w", poll_interval=0.05, retry=RetryPolicy(("expired",), max_attempts=3))
    cycle_until_done(worker, [batch.id])
    assert default_storage().load(batch.id).attempts == 1
    with pytest.raises(ConfigurationError, match="Unknown retry reason"):
        RetryPolicy(("sometimes",))


class Webhook(ThreadingHTTPServer):
    """A real HTTP server that keeps the JSON bodies POSTed to it."""

    def __init__(self):
        self.received: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                outer.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


@pytest.fixture
def webhook():
    server = Webhook()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def smtp_inbox():
    from aiosmtpd.controller import Controller
    from support.postgres import free_port

    class Inbox:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope)
            return "250 OK"

    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()


def test_a_finished_batch_and_a_failure_threshold_are_notified_once(tmp_path, engine, webhook, smtp_inbox):
    (batch,) = make_batches(tmp_path, engine, 1, prompts=("ok", "bad request [[400]]"))
    notifier = Notifier(
        webhook_url=webhook.url,
        email_to=["team@example.com"],
        smtp_host="127.0.0.1",
        smtp_port=smtp_inbox.port,
        failure_threshold=0.5,
    )
    worker = Worker(name="w", poll_interval=0.05, notifier=notifier)
    cycle_until_done(worker, [batch.id])
    worker.run_once()
    events = sorted(message["event"] for message in webhook.received)
    assert events == ["failures", "finished"]
    finished = next(m for m in webhook.received if m["event"] == "finished")
    assert (finished["batch_id"], finished["succeeded"], finished["failed"], finished["worker"]) == (
        batch.id, 1, 1, "w"
    )  # fmt: skip
    mails = smtp_inbox.handler.messages
    assert len(mails) == 2 and mails[0].rcpt_tos == ["team@example.com"]
    assert b"LangBatch: batch b0" in mails[0].content


def test_two_workers_on_postgres_share_the_batches(tmp_path, engine, postgres_url, monkeypatch):
    monkeypatch.setenv("LANGBATCH_STORE", postgres_url)
    batches = make_batches(tmp_path, engine, 6, prompts=("slow {i} [[slow:0.3]]",))
    workers = [Worker(name=f"w{n}", poll_interval=30, batch_limit=3) for n in (1, 2)]
    reports = [None, None]

    def cycle(n):
        reports[n] = workers[n].run_once()

    threads = [threading.Thread(target=cycle, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first, second = (set(r.advanced) | set(r.skipped) for r in reports)
    assert len(first) == len(second) == 3 and not first & second  # leased: no batch to both
    assert workers[0].run_once().advanced == []  # all leased for 30 s
    for worker in workers:
        worker.poll_interval = 0.05
    cycle_until_done(workers[0], [b.id for b in batches])
    assert {default_storage().load(b.id).status for b in batches} == {"completed"}


def test_one_worker_per_embedded_store(tmp_path):
    stop = threading.Event()
    first = threading.Thread(target=Worker(name="first", poll_interval=0.05).run, args=(stop,))
    first.start()
    try:
        deadline = time.monotonic() + 10
        while "first" not in _read(default_storage().data_dir / "worker.lock"):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with pytest.raises(ConfigurationError, match=r"Another worker \(first\).*PostgreSQL"):
            Worker(name="second").run(cycles=1)
    finally:
        stop.set()
        first.join()
    Worker(name="second").run(cycles=1)  # the first stopped: the lock is free


def _read(path):
    return path.read_text() if path.exists() else ""


def test_the_cli_worker_runs_one_cycle(tmp_path, engine):
    (batch,) = make_batches(tmp_path, engine, 1)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = CliRunner().invoke(
            cli, ["worker", "--once", "--name", "cli-worker", "--retry-on", "expired"]
        )
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert result.exit_code == 0, result.output
    assert "Worker cli-worker on" in result.output
    assert default_storage().load(batch.id).advanced_by == "cli-worker"
    help_text = CliRunner().invoke(cli, ["worker", "--help"]).output
    assert "Example:" in help_text and "langbatch worker" in help_text.split("Example:")[1]


def worker_process(name):
    command = [sys.executable, "-m", "langbatch_core.cli", "worker", "--name", name, "--interval", "0.1"]
    return subprocess.Popen(command, env=os.environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.parametrize("store", ["duckdb", "postgres"])
def test_a_worker_killed_mid_cycle_loses_nothing(
    tmp_path, make_engine, upstream, request, monkeypatch, store
):
    if store == "postgres":
        monkeypatch.setenv("LANGBATCH_STORE", request.getfixturevalue("postgres_url"))
    engine = make_engine(concurrency=2)  # 20 answers of 0.2 s: about 2 s of work to interrupt
    prompts = ("p {i}.{j} [[slow:0.2]]",) * 4
    batches = make_batches(tmp_path, engine, 5, prompts=prompts)
    killed = worker_process("worker-a")
    deadline = time.monotonic() + 60
    while not any(default_storage().load(b.id).advanced_by == "worker-a" for b in batches):
        assert killed.poll() is None, killed.stderr.read().decode()
        assert time.monotonic() < deadline, "the first worker never advanced a batch"
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)  # cycling every 0.1 s: killed in the middle of one
    killed.wait()
    running = {b.id for b in batches if default_storage().load(b.id).status != "completed"}
    assert running, "every batch finished before the kill: the test proves nothing"
    survivor = worker_process("worker-b")
    try:
        deadline = time.monotonic() + 90
        while {default_storage().load(b.id).status for b in batches} != {"completed"}:
            assert survivor.poll() is None, survivor.stderr.read().decode()
            assert time.monotonic() < deadline, "the second worker did not finish the batches"
            time.sleep(0.05)
    finally:
        survivor.terminate()
        survivor.wait(timeout=30)
    records = [default_storage().load(b.id) for b in batches]
    assert all(r.succeeded == 4 for r in records)
    assert {r.advanced_by for r in records if r.id in running} == {"worker-b"}
    assert all(b.results_path.is_file() for b in batches)
    received = prompts_received(upstream)
    assert set(received.values()) == {1}, "a request was sent twice"
    import openai

    client = openai.OpenAI(base_url=engine.base_url, api_key="test-key", max_retries=0)
    remote = {j.id for j in client.batches.list(limit=100) if j.metadata.get("langbatch_batch_id")}
    assert remote == {job.provider_job_id for r in records for job in r.jobs}, "a job lost or duplicated"


def test_a_cycle_makes_one_provider_per_connection_not_one_per_batch(tmp_path, engine):
    # a new HTTP client per batch costs more than the poll itself (its TLS setup)
    batches = make_batches(tmp_path, engine, 3)
    worker = Worker(name="w", poll_interval=0.05)
    worker.run_once()
    assert len(worker._providers) == 1
    cycle_until_done(worker, [b.id for b in batches])


def test_a_worker_loads_the_batch_code_before_its_first_cycle_not_while_a_batch_waits():
    # lazily, the first cycle that found a batch imported it: that batch waited 15 s more on a busy machine
    script = (
        "import sys\n"
        "from langbatch_core.worker import Worker\n"
        "Worker(name='w', poll_interval=0).run(cycles=1)\n"  # no batch in the store
        "print(all(m in sys.modules for m in ('langbatch_core.batch', 'openai')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ)
    assert done.stdout.strip() == "True", done.stderr


def test_a_batch_finished_by_a_dashboard_refresh_still_gets_the_worker_s_retry(tmp_path, engine):
    (batch,) = make_batches(tmp_path, engine, 1, prompts=("ok", "flaky [[500x3]]"))
    while any(job.active for job in batch.record.jobs):
        batch.get_status()  # someone watching the Batches page, which refreshes it until it finishes
        time.sleep(0.05)
    worker = Worker(name="w", poll_interval=0.05, retry=RetryPolicy(("server_error",), max_attempts=3))
    assert worker.run_once().retried == [batch.id]


def test_a_finished_batch_is_handed_to_a_worker_once_not_every_cycle_and_old_history_is_left(
    tmp_path, engine, webhook
):
    done, old = make_batches(tmp_path, engine, 2, prompts=("ok {i}",))
    for batch in (done, old):
        while any(job.active for job in batch.record.jobs):
            batch.get_status()  # finished by someone's refresh, not by a worker
            time.sleep(0.05)
    store = default_storage()
    stale = store.load(old.id)
    stale.updated_at -= 2 * CATCH_UP_SECONDS  # finished long before any worker ran on this store
    store.save(stale)
    worker = Worker(name="w", poll_interval=0.05, notifier=Notifier(webhook_url=webhook.url))
    assert worker.run_once().finished == [done.id]
    assert [(m["event"], m["batch_id"]) for m in webhook.received] == [("finished", done.id)]
    assert worker.run_once().advanced == []  # seen finished: not leased again


def test_a_worker_on_a_shared_store_advances_a_cycle_s_batches_side_by_side(
    tmp_path, engine, postgres_url, monkeypatch
):
    from support.fault_proxy import FaultProxy

    monkeypatch.setenv("LANGBATCH_STORE", postgres_url)
    with FaultProxy(engine.base_url, slow_seconds=0.5) as proxy:
        through_proxy = SimpleNamespace(base_url=proxy.base_url)  # every provider call goes through it
        batches = make_batches(tmp_path, through_proxy, 6, prompts=("slow {i} [[slow:30]]",))
        proxy.always = "slow_after"  # from here every answer takes 0.5 s: one by one, a cycle takes 3 s+
        report = Worker(name="w", poll_interval=30).run_once()
    assert sorted(report.advanced) == sorted(b.id for b in batches)
    assert report.seconds < 6 * 0.5, report.seconds


def test_a_lock_held_a_moment_by_a_refresh_is_waited_for_one_held_long_is_skipped(tmp_path, engine):
    brief, held = make_batches(tmp_path, engine, 2, prompts=("slow {i} [[slow:30]]",))
    store = default_storage()
    released = threading.Event()

    def hold(batch_id, seconds):
        with store.lock(batch_id):  # a dashboard's refresh of that batch
            released.wait(seconds)

    holders = [threading.Thread(target=hold, args=args) for args in ((brief.id, 0.3), (held.id, 30))]
    for holder in holders:
        holder.start()
    time.sleep(0.1)
    report = Worker(name="w", poll_interval=4).run_once()  # waits up to a second for a lock
    released.set()
    for holder in holders:
        holder.join()
    assert report.advanced == [brief.id] and report.skipped == [held.id]
