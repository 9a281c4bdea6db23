"""compose.yaml's team deployment, every part a process of its own with the settings compose.yaml gives it:
PostgreSQL (a real server), the S3-compatible store (moto in server mode), the local engine (`langbatch
serve`, on the test upstream instead of the bundled model), two dashboard replicas (`langbatch dashboard`,
with the `signin` config as Streamlit's secrets), two `langbatch worker`s, and an OpenID Connect provider
(`oidc-provider-mock`) for the sign-in. Service names resolve to the local ports, container paths to temp
folders (each process its own working copy: only the bucket and the store are shared); the workers cycle
every second instead of 10, the one setting changed for speed.

In Chromium: Ann signs in on replica A, creates and starts a batch and closes the browser; the workers finish
it with no one watching; on replica B she sees it completed and advanced by a worker, opens its results and
downloads them; Bob sees none of it. Then nothing in the store, the bucket or the engine is missing or twice.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from support.compose import Compose, localize, with_option
from support.postgres import free_port
from support.processes import ROOT, running, wait_until_up
from test_browser_signin import new_tab, sign_in

from langbatch_core import audit
from langbatch_core.storage.postgres import ACTIVE_STATUSES, PostgresBatchStorage

pytestmark = pytest.mark.browser  # and PostgreSQL: LANGBATCH_REQUIRE_BROWSER / _POSTGRES make it mandatory

PYTHON = sys.executable
LANGBATCH = [PYTHON, "-m", "langbatch_core.cli"]
PROMPTS = ["Name a red fruit. [[slow:2]]", "Name a blue flower. [[slow:2]]", "Name a green stone. [[slow:2]]"]

# what a site's .env gives (compose.yaml's header lists these); the addresses are set per process below
DOTENV = {
    "POSTGRES_PASSWORD": "team-db-password",
    "S3_ACCESS_KEY": "team-access-key",
    "S3_SECRET_KEY": "team-secret-key",
    "COOKIE_SECRET": "a-cookie-secret-for-the-team-deployment-test-0123456789",
    "OIDC_CLIENT_ID": "langbatch-team",
    "OIDC_CLIENT_SECRET": "langbatch-team-secret",
    "LANGBATCH_ADMINS": "boss@example.com",
    "LANGBATCH_ALLOWED": "example.com",
}


def listening(args: list[str], url: str) -> list[str]:
    """``args`` with ``--host`` and ``--port`` set to ``url``'s."""
    parts = urlsplit(url)
    return with_option(with_option(args, "--host", str(parts.hostname)), "--port", str(parts.port))


class Deployment:
    """compose.yaml's parts as processes; ``addresses`` maps its service names to where they listen here."""

    def __init__(self, stack: ExitStack, folder: Path, upstream_url: str, postgres) -> None:
        self.stack, self.folder, self.addresses = stack, folder, {}
        self.compose = Compose({**DOTENV, "LANGBATCH_URL": "", "OIDC_METADATA_URL": ""})
        self.oidc = f"http://127.0.0.1:{free_port()}"
        self.waiting: list[tuple[str, subprocess.Popen, str]] = []
        self.processes: list[subprocess.Popen] = []
        self._postgres(postgres)
        self._s3()
        self._engine(upstream_url)
        oidc = listening([PYTHON, "-m", "oidc_provider_mock"], self.oidc)
        self._run("oidc", oidc, None, f"{self.oidc}/.well-known/openid-configuration")
        self.dashboards = [self._dashboard(name) for name in ("a", "b")]
        self.workers = [self._worker(name) for name in ("1", "2")]
        stack.callback(lambda: [process.terminate() for process in self.processes])  # all at once, first
        for name, process, ready in self.waiting:  # started side by side, then waited for
            wait_until_up(ready, process, self.log(name), timeout=90)
        store_url = self.env("worker", "observer")["LANGBATCH_STORE"]
        self.store = PostgresBatchStorage(store_url, data_dir=folder / "observer")

    def log(self, name: str) -> Path:
        (self.folder / "logs").mkdir(exist_ok=True)
        return self.folder / "logs" / f"{name}.log"

    def _run(self, name: str, command: list[str], env: dict[str, str] | None, ready: str | None):
        process = self.stack.enter_context(running(command, self.log(name), env=env))
        self.processes.append(process)
        if ready:
            self.waiting.append((name, process, ready))
        return process

    def env(self, service: str, machine: str, compose: Compose | None = None) -> dict[str, str]:
        """The service's variables from compose.yaml for ``machine``: its services' addresses here, its own
        working copy for /cache, its configs written where the service reads them."""
        compose = compose or self.compose
        paths = {"/app": str(ROOT), "/cache": str(self.folder / machine)}
        for config, target in compose.config_targets(service).items():
            paths[target] = str(self.folder / f"{machine}-{config}.toml")
            Path(paths[target]).write_text(compose.config(config))
        return localize(compose.environment(service), self.addresses, paths)

    def _postgres(self, server) -> None:
        """What the postgres image does with its POSTGRES_* settings: the role and its database."""
        import psycopg
        from psycopg import sql

        settings = self.compose.environment("postgres")
        user, database = (sql.Identifier(settings[f"POSTGRES_{key}"]) for key in ("USER", "DB"))
        password = sql.Literal(settings["POSTGRES_PASSWORD"])
        with psycopg.connect(server.url, autocommit=True) as con:
            con.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(database))
            con.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(user))
            con.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(user, password))
            con.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, user))
        self.addresses["postgres:5432"] = f"127.0.0.1:{server.port}"

    def _s3(self) -> None:
        """moto's server as the s3 service, and the bucket the `bucket` service makes."""
        import boto3

        port = free_port()
        process = self._run(
            "s3", [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], None, None
        )
        wait_until_up(f"http://127.0.0.1:{port}/moto-api/", process, self.log("s3"))
        self.addresses["s3:9000"] = f"127.0.0.1:{port}"
        self.bucket = urlsplit(self.compose.environment("worker")["LANGBATCH_FILES"]).hostname
        assert f"s3/{self.bucket}" in self.compose.services["bucket"]["entrypoint"]
        env = self.env("worker", "observer")
        self.s3 = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        self.s3.create_bucket(Bucket=self.bucket)

    def _engine(self, upstream_url: str) -> None:
        """`langbatch serve` as compose.yaml runs it, on the test upstream instead of the bundled model."""
        named = urlsplit(self.compose.environment("worker")["LANGBATCH_ENGINE_URL"])
        here = f"http://127.0.0.1:{free_port()}"
        self.addresses[named.netloc] = here.removeprefix("http://")
        args = listening(self.compose.langbatch_args("engine"), here)
        args = with_option(args, "--data-dir", str(self.folder / "engine"))
        env = {**os.environ, **self.env("engine", "engine")}
        self.engine_url = here + named.path
        self._run("engine", [*LANGBATCH, *args, "--upstream", upstream_url], env, f"{self.engine_url}/health")

    def _dashboard(self, name: str) -> str:
        url = f"http://127.0.0.1:{free_port()}"
        # the address people use (behind a proxy in production; here, each replica's own) and the provider
        site = {"LANGBATCH_URL": url, "OIDC_METADATA_URL": f"{self.oidc}/.well-known/openid-configuration"}
        compose = Compose({**DOTENV, **site})
        env = {**os.environ, **self.env("dashboard", f"dashboard-{name}", compose)}
        args = listening(compose.langbatch_args("dashboard"), url)
        self._run(f"dashboard-{name}", [*LANGBATCH, *args], env, f"{url}/_stcore/health")
        return url

    def _worker(self, name: str) -> str:
        args = with_option(self.compose.langbatch_args("worker"), "--interval", "1")
        env = {**os.environ, **self.env("worker", f"worker-{name}")}
        process = self._run(f"worker-{name}", [*LANGBATCH, *args], env, None)
        return f"{socket.gethostname()}:{process.pid}"  # a worker's default name


@pytest.fixture
def deployment(tmp_path, postgres_server, upstream):
    with ExitStack() as stack:
        yield Deployment(stack, tmp_path, upstream.base_url, postgres_server)


def request_file(folder: Path) -> Path:
    lines = [
        {"custom_id": f"q{i}", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]}}
        for i, prompt in enumerate(PROMPTS, 1)
    ]  # fmt: skip
    path = folder / "team-questions.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def create_and_start(browser, dashboard: str, email: str, path: Path) -> str:
    tab = new_tab(browser)
    sign_in(tab, dashboard, email)
    tab.get_by_text("Upload a .jsonl request file").wait_for()
    tab.locator("input[type=file]").set_input_files(str(path))
    tab.get_by_text(f"Valid: {len(PROMPTS)} requests ready to run.").wait_for()
    tab.get_by_role("button", name="Create and start").click()
    started = tab.get_by_text(re.compile(r"Batch lb_\w+ started\."))
    started.wait_for(timeout=60_000)
    batch_id = re.search(r"lb_\w+", started.inner_text()).group()
    tab.context.close()  # nobody watches from here on
    return batch_id


def wait_for_workers(store, batch_id: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while (record := store.load(batch_id)).status in ACTIVE_STATUSES:
        assert time.monotonic() < deadline, f"the workers did not finish {batch_id}: {record.status}"
        time.sleep(0.2)
    return record


def test_a_team_deployment_runs_a_batch_end_to_end(deployment, browser, upstream, tmp_path):
    batch_id = create_and_start(browser, deployment.dashboards[0], "ann@example.com", request_file(tmp_path))
    # the browser left before the answers came: only the workers can finish it
    assert deployment.store.load(batch_id).status in ACTIVE_STATUSES
    record = wait_for_workers(deployment.store, batch_id)
    assert (record.status, record.succeeded, record.owner) == ("completed", 3, "ann@example.com")
    assert record.advanced_by in deployment.workers

    tab = new_tab(browser)  # another day, the other replica
    sign_in(tab, deployment.dashboards[1], "ann@example.com")
    tab.goto(f"{deployment.dashboards[1]}/batches")
    tab.get_by_text(f"Batch {batch_id}").wait_for()
    details = tab.get_by_text("Status: completed")
    details.wait_for()
    shown = re.search(r"Last advanced by a worker \(UTC\): \w+ \d+ [\d:]+ · (\S+)", details.inner_text())
    assert shown and shown.group(1) in deployment.workers  # either: one may pass over it once more
    with tab.expect_download() as download:
        tab.get_by_role("button", name="Download results (JSONL)").click()
    answers = [json.loads(line) for line in Path(download.value.path()).read_text().splitlines()]
    assert sorted(a["custom_id"] for a in answers) == ["q1", "q2", "q3"]
    assert all(a["response"]["status_code"] == 200 for a in answers)
    tab.get_by_role("button", name="Explore results").click()
    tab.get_by_text("3 of 3 rows").wait_for()
    tab.context.close()

    tab = new_tab(browser)
    sign_in(tab, deployment.dashboards[0], "bob@example.com")
    tab.goto(f"{deployment.dashboards[0]}/batches")
    tab.get_by_text("No batches yet").wait_for()
    assert batch_id not in tab.content()
    tab.context.close()

    assert_nothing_missing_or_twice(deployment, batch_id, upstream)
    for worker in ("1", "2"):  # a line per cycle, not one per HTTP request or S3 call
        lines = deployment.log(f"worker-{worker}").read_text().splitlines()
        assert any(" advanced, " in line for line in lines) and not any("HTTP Request" in x for x in lines)


def assert_nothing_missing_or_twice(deployment, batch_id: str, upstream) -> None:
    import openai

    (stored,) = deployment.store.list()
    assert stored.id == batch_id and stored.request_count == 3
    client = openai.OpenAI(base_url=deployment.engine_url, api_key="team", max_retries=0)
    at_engine = [job for job in client.batches.list(limit=100) if job.metadata.get("langbatch_batch_id")]
    assert sorted(job.id for job in at_engine) == sorted(job.provider_job_id for job in stored.jobs)
    asked = Counter(item["body"]["messages"][-1]["content"] for item in upstream.received)
    assert asked == Counter(PROMPTS), "a request was lost or sent twice"

    prefix = urlsplit(deployment.compose.environment("worker")["LANGBATCH_FILES"]).path.strip("/")
    listing = deployment.s3.list_objects_v2(Bucket=deployment.bucket, Prefix=f"{prefix}/")
    keys = sorted(o["Key"].removeprefix(f"{prefix}/batches/{batch_id}/") for o in listing.get("Contents", []))
    job_files = {f"jobs/{job.key}/input.jsonl" for job in stored.jobs}
    assert {"requests.jsonl", "results.jsonl", *job_files} <= set(keys), keys
    assert all(not key.startswith((prefix, ".")) and "/." not in key for key in keys), keys  # one batch only

    actions = Counter((e.actor, e.action) for e in audit.events(deployment.store, batch_id=batch_id))
    assert actions[("ann@example.com", "created")] == actions[("ann@example.com", "downloaded")] == 1
