"""Signing in through Chromium against a real OpenID Connect provider (PyPI ``oidc-provider-mock``, run as a
server on 127.0.0.1): `streamlit run` with a secrets.toml whose ``[auth]`` points at it.

A signed-out visitor reaches nothing on any page, a person outside the allowlist is refused, a person sees
only their own batches (and their download is in the audit log), an admin sees everyone's and the audit log.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from support.chromium import SETTLED
from support.processes import stop, wait_until_up
from test_browser_dashboard import free_port

from langbatch_core import audit
from langbatch_core.storage import BatchRecord, DuckDBBatchStorage

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.browser


@pytest.fixture
def provider(tmp_path: Path):
    """The OpenID Connect provider, a separate process on a free 127.0.0.1 port; its base URL."""
    port = free_port()
    log = tmp_path / "oidc.log"
    command = [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/.well-known/openid-configuration", process, log)
        yield url
    finally:
        stop(process)


@pytest.fixture
def batches(isolated_data_dir: Path) -> dict[str, str]:
    """A batch of Ann's with results, and one of Bob's, in the default store: {owner: id}."""
    store = DuckDBBatchStorage()
    made = {}
    for n, owner in enumerate(["ann@example.com", "bob@example.com"]):
        record = BatchRecord(
            id=f"lb_{owner.split('@')[0]}{n:04d}",
            endpoint="/v1/chat/completions",
            name=f"{owner.split('@')[0]} batch",
            model="gpt-4o-mini",
            connection={"kind": "local", "name": "Local engine"},
            status="completed",
            request_count=1,
            succeeded=1,
            owner=owner,
        )
        folder = store.batch_dir(record.id)
        folder.mkdir(parents=True)
        (folder / "requests.jsonl").write_text('{"custom_id": "q1"}\n')
        (folder / "results.jsonl").write_text('{"id": "r1", "custom_id": "q1", "response": null}\n')
        store.save(record)
        made[owner] = record.id
    return made


@pytest.fixture
def dashboard(provider: str, isolated_data_dir: Path, tmp_path: Path, batches):
    """`streamlit run` with sign-in through ``provider``; admins boss@example.com, allowed example.com."""
    port = free_port()
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        'cookie_secret = "a-cookie-secret-for-the-sign-in-test-0123456789"\n'
        'client_id = "langbatch-test"\n'
        'client_secret = "langbatch-test-secret"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n'
        "[langbatch]\n"
        'admins = ["boss@example.com"]\n'
        'allowed = ["example.com"]\n'
    )
    env = {**os.environ, "LANGBATCH_DATA_DIR": str(isolated_data_dir)}
    log = tmp_path / "streamlit.log"
    command = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port", str(port)]
    command += ["--server.address", "127.0.0.1", "--server.headless", "true", "--secrets.files", str(secrets)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/_stcore/health", process, log)
        yield url
    finally:
        stop(process)


def new_tab(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1200}, accept_downloads=True)
    # the provider's page links a stylesheet on a CDN: nothing leaves the machine
    context.route(
        "**/*", lambda route: route.abort() if "127.0.0.1" not in route.request.url else route.continue_()
    )
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    return tab


def settle(tab) -> None:
    tab.wait_for_timeout(300)
    tab.wait_for_function(SETTLED, timeout=30_000)


def sign_in(tab, dashboard: str, email: str) -> None:
    """Through the real flow: the dashboard's Sign in → the provider's form → back, signed in."""
    tab.goto(dashboard)
    tab.get_by_role("button", name="Sign in").click()
    tab.locator("input[name=sub]").fill(email)  # the provider's login form (the subject is the e-mail)
    tab.get_by_role("button", name="Authorize").click()
    tab.wait_for_url(f"{dashboard}/**")
    settle(tab)


@pytest.mark.parametrize("path", ["", "new", "batches", "results", "settings", "audit"])
def test_a_signed_out_visitor_reaches_nothing(dashboard, batches, browser, path):
    tab = new_tab(browser)
    tab.goto(f"{dashboard}/{path}")
    tab.get_by_text("Sign in to see and run your batches.").wait_for()
    settle(tab)
    body = tab.locator("body").inner_text()
    assert not any(batch_id in body for batch_id in batches.values())
    assert tab.get_by_role("button").filter(has_text="Download").count() == 0
    assert tab.get_by_role("link", name="Batches").count() == 0


def test_a_person_signs_in_sees_only_their_batches_and_downloads_are_audited(dashboard, batches, browser):
    tab = new_tab(browser)
    sign_in(tab, dashboard, "ann@example.com")
    tab.get_by_text("ann@example.com").first.wait_for()
    tab.get_by_role("link", name="Batches").first.click()
    tab.get_by_text(f"Batch {batches['ann@example.com']}").wait_for()
    settle(tab)
    html = tab.content()  # the grid's cells sit in a hidden <table>
    assert "ann batch" in html and "bob batch" not in html and "bob@example.com" not in html
    assert tab.get_by_role("link", name="Audit log").count() == 0
    with tab.expect_download() as download:
        tab.get_by_role("button", name="Download results (JSONL)").click()
    assert download.value.suggested_filename == f"{batches['ann@example.com']}-results.jsonl"
    (event,) = audit.events(DuckDBBatchStorage(), action="downloaded")
    assert (event.actor, event.batch_id) == ("ann@example.com", batches["ann@example.com"])
    served = download.value.url
    assert httpx.get(served).status_code == 200  # Streamlit's media URL, while Ann's session lives

    tab.get_by_role("button", name="Sign out").click()
    tab.get_by_role("button", name="End session").click()  # the provider's own sign-out, then back
    tab.get_by_role("button", name="Sign in").wait_for()
    tab.goto(f"{dashboard}/batches")
    tab.get_by_text("Sign in to see and run your batches.").wait_for()
    assert "ann batch" not in tab.content()
    # the file handed out before signing out is gone with the session that drew its button
    assert httpx.get(served).status_code == 404


def test_a_person_outside_the_allowlist_is_refused(dashboard, batches, browser):
    tab = new_tab(browser)
    sign_in(tab, dashboard, "eve@elsewhere.org")
    tab.get_by_text("which may not use this LangBatch").wait_for()
    tab.goto(f"{dashboard}/batches")
    tab.get_by_text("which may not use this LangBatch").wait_for()
    settle(tab)
    body = tab.locator("body").inner_text()
    assert not any(batch_id in body for batch_id in batches.values())


def test_an_admin_sees_every_batch_and_the_audit_log(dashboard, batches, browser):
    tab = new_tab(browser)
    sign_in(tab, dashboard, "boss@example.com")
    tab.get_by_text("Signed in as (admin)").wait_for()
    tab.get_by_role("link", name="Audit log").first.click()
    tab.get_by_text("Nothing recorded yet").wait_for()
    tab.goto(f"{dashboard}/batches")
    tab.get_by_text("Details of").wait_for()
    settle(tab)
    html = tab.content()  # the grid's cells sit in a hidden <table>
    assert "ann batch" in html and "bob batch" in html
    assert "ann@example.com" in html and "bob@example.com" in html  # the owner column
