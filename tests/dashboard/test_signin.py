"""The sign-in gate and ownership in the dashboard: AppTest sets what ``st.user`` reports and the secrets.

AppTest cannot run the OpenID Connect flow itself: tests/test_browser_signin.py signs in through Chromium
against a real provider. Here: what each kind of visitor sees once Streamlit says who they are.
"""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from langbatch_core import audit

from .conftest import APP, make_record, store, stored_batch_with_results, texts

AUTH = {
    "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
    "cookie_secret": "a-test-cookie-secret-of-some-length",
    "client_id": "langbatch",
    "client_secret": "not-a-real-secret",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}
TEAM = {"admins": ["boss@example.com"], "allowed": ["example.com"]}
PAGES = ["new_batch", "batches", "results", "settings", "audit"]


def signed(page: str, user: dict | None, team: dict | None = None) -> AppTest:
    """The app on ``page`` with sign-in configured and ``st.user`` reporting ``user`` (None: signed out)."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = AUTH
    at.secrets["langbatch"] = TEAM if team is None else team
    at.user = {"is_logged_in": False} if user is None else {"is_logged_in": True, **user}
    at.run()
    if page != "new_batch":
        at.switch_page(f"views/{page}.py").run()
    return at


def everything(at) -> str:
    return json.dumps([str(e) for e in at.main]) + json.dumps([str(e) for e in at.sidebar])


@pytest.fixture
def two_owners(data_dir):
    """Ann's batch with results (lb_test00001), Bob's (lb_test00002) and an unowned old one."""
    stored_batch_with_results(20, owner="ann@example.com")
    store([make_record(2, owner="bob@example.com"), make_record(3)])


@pytest.mark.parametrize("page", PAGES)
def test_a_signed_out_visitor_sees_only_the_sign_in_on_every_page(two_owners, page):
    at = signed(page, None)
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in"]
    assert "Sign in to see and run your batches." in texts(at, "info")
    assert at.get("download_button") == [] and at.dataframe == [] and at.metric == []
    assert "lb_test" not in everything(at)


@pytest.mark.parametrize("page", ["new_batch", "batches", "results"])
def test_a_signed_in_person_outside_the_allowlist_is_refused(two_owners, page):
    at = signed(page, {"email": "eve@elsewhere.org", "name": "Eve"})
    assert not at.exception
    refusal = texts(at, "error").replace("\u2060", "")  # md_escape keeps e-mails from becoming links
    assert "You are signed in as eve@elsewhere.org, which may not use this LangBatch" in refusal
    assert [b.label for b in at.button] == ["Sign out"]
    assert "lb_test" not in everything(at) and at.get("download_button") == []


def test_an_identity_without_an_e_mail_is_refused(two_owners):
    at = signed("batches", {"name": "No Mail"})
    assert "did not give an e-mail address" in texts(at, "error")


def test_a_person_sees_and_acts_on_only_their_own_batches(two_owners):
    at = signed("batches", {"email": "Ann@Example.com"})
    assert not at.exception
    assert list(at.dataframe[0].value["id"]) == ["lb_test00001"]
    assert "ann@example.com" in texts(at, "text")  # the sidebar says who is signed in
    results = signed("results", {"email": "ann@example.com"})
    assert [o for o in results.selectbox(key="results_batch").options] == [
        "batch 1 · lb_test00001 · 20 results"
    ]
    import common

    # a press drawn for another's batch (a forged request) is not run, and does not tell it exists
    at.session_state["bt_request"] = ("lb_test00002", "delete", "1.1")
    at.run()
    assert "already deleted" in texts(at, "info")
    assert common.storage().load("lb_test00002").owner == "bob@example.com"


def test_a_person_s_batch_records_them_as_owner_and_the_audit_names_them(data_dir):
    at = signed("new_batch", {"email": "ann@example.com"})
    at.radio(key="nb_source").set_value("Try a sample").run()
    next(b for b in at.button if b.label == "Create").click().run()
    assert not at.exception, at.exception
    import common

    (record,) = common.storage().list()
    assert record.owner == "ann@example.com"
    (event,) = audit.events(common.storage())
    assert (event.actor, event.action, event.batch_id) == ("ann@example.com", "created", record.id)


def test_an_admin_sees_every_batch_with_its_owner_and_the_audit_log(two_owners):
    import common

    audit.record(common.storage(), "ann@example.com", "downloaded", "lb_test00001", "results (csv)")
    audit.record(common.storage(), "bob@example.com", "started", "lb_test00002")
    at = signed("batches", {"email": "boss@example.com"})
    assert not at.exception
    table = at.dataframe[0].value
    assert set(table["id"]) == {"lb_test00001", "lb_test00002", "lb_test00003"}
    assert set(table["owner"]) == {"ann@example.com", "bob@example.com", ""}
    log = signed("audit", {"email": "boss@example.com"})
    assert not log.exception
    assert list(log.dataframe[0].value["actor"]) == ["bob@example.com", "ann@example.com"]
    log.multiselect(key="au_action").set_value(["downloaded"]).run()
    assert list(log.dataframe[0].value["batch_id"]) == ["lb_test00001"]
    assert "1 of 2 events" in texts(log, "caption")
    assert [b.label for b in log.get("download_button")] == ["Download CSV"]


def test_the_audit_page_is_for_admins_only(two_owners):
    at = signed("batches", {"email": "ann@example.com"})
    with pytest.raises(ValueError, match="Could not find a navigation page"):  # not in a person's app
        at.switch_page("views/audit.py")


def test_non_admins_pick_connections_but_never_change_them_or_see_a_key(data_dir, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value-987")
    at = signed("settings", {"email": "ann@example.com"})
    assert not at.exception
    assert "sk-secret-value-987" not in everything(at)
    assert at.get("form") == [] and not [b for b in at.button if "engine" in b.label.lower()]
    assert "an admin adds or removes them" in texts(at, "caption")
    admin = signed("settings", {"email": "boss@example.com"})
    assert len(admin.get("form")) == 1 and "sk-secret-value-987" not in everything(admin)


def test_a_start_over_the_monthly_cap_is_refused_on_the_page_with_the_figures(data_dir, engine, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # the OpenAI kind, priced, pointed at the test engine
    monkeypatch.setenv("OPENAI_BASE_URL", engine.base_url)
    at = signed("new_batch", {"email": "ann@example.com"}, {**TEAM, "user_monthly_usd": 0.0001})
    at.radio(key="nb_source").set_value("Try a sample").run()
    picker = at.selectbox(key="nb_conn")
    picker.select_index(picker.options.index("OpenAI")).run()
    assert "Your spend this month: $0.0000 of $0.0001 ($0.0001 left)." in texts(at, "caption")
    next(b for b in at.button if b.label == "Create and start").click().run()
    assert not at.exception
    refusal = texts(at, "error").replace("\u2060", "").replace("\\", "")
    assert "Starting the batch failed" in refusal and "ann@example.com's monthly cap is $0.0001" in refusal
    assert "would cost about $" in refusal and "left" in refusal
    import common

    (record,) = common.storage().list()
    assert record.status == "not_started" and not record.jobs


def test_without_auth_the_dashboard_has_no_sign_in_and_one_user_sees_everything(two_owners):
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/batches.py").run()
    assert "Sign in" not in [b.label for b in at.button]
    assert len(at.dataframe[0].value) == 3


def test_without_auth_but_with_team_settings_the_dashboard_acts_as_the_os_user_like_the_cli(
    two_owners, monkeypatch
):
    monkeypatch.setenv("LANGBATCH_ADMINS", "boss@example.com")
    monkeypatch.setenv("LANGBATCH_USER", "ann@example.com")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/batches.py").run()
    assert not at.exception
    assert list(at.dataframe[0].value["id"]) == ["lb_test00001"]
    with pytest.raises(ValueError, match="Could not find a navigation page"):  # not an admin
        at.switch_page("views/audit.py")
    monkeypatch.setenv("LANGBATCH_USER", "boss@example.com")
    admin = AppTest.from_file(APP, default_timeout=60)
    admin.run()
    admin.switch_page("views/batches.py").run()
    assert len(admin.dataframe[0].value) == 3
