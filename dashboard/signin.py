"""Sign-in: Streamlit's OpenID Connect (``st.login``) guards every page once ``.streamlit/secrets.toml``
has an ``[auth]`` section; without one the dashboard is the single-user tool it always was (no sign-in).

    viewer = signin.gate()          # in app.py, before any page is drawn: stops the run unless allowed
    viewer.user, viewer.admin       # the signed-in e-mail (else the OS user), and whether they see all
    viewer.access                   # the core's ownership rule for them (``team.Access``): may_act, check
    signin.viewer()                 # the same, anywhere later in the run (pages, fragments)

Who may sign in, who is an admin and the spend caps come from the ``[langbatch]`` section of secrets.toml
(the keys of ``langbatch_core.team``), else from the team file. The rules live in ``langbatch_core.team``;
this module only asks Streamlit who is there. With sign-in, each person acts on their own batches (admins on
all); without it the dashboard acts as the OS user under the team settings' rule, as the CLI does: the
single-user default (no settings) sees and does everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from langbatch_core import team
from langbatch_core.team import Access, TeamSettings

SECRETS_SECTION = "langbatch"


@dataclass(frozen=True)
class Viewer:
    """Who is looking: ``user`` (their e-mail when signed in, else ``team.current_user()``), ``signed_in``
    (the dashboard has sign-in), ``access`` (which batches they see and act on: the core's rule).
    ``admin``: sees and acts on every batch, reads the audit log, changes connections and the engine (the
    single user of a dashboard without sign-in or team settings is one)."""

    user: str
    signed_in: bool
    access: Access

    @property
    def admin(self) -> bool:
        return self.access.may_act(None)

    def may_see(self, record: Any) -> bool:
        """Whether this viewer sees (and acts on) the batch of ``record`` (``team.Access.may_act``)."""
        return self.access.may_act(record.owner)


def _secrets_section(name: str) -> dict[str, Any] | None:
    try:
        section = st.secrets.get(name)
    except Exception:  # no secrets.toml at all, or an unreadable one: no sign-in
        return None
    return _plain(section) if section else None


def _plain(value: Any) -> Any:
    """A secrets section as plain dicts and lists (``st.secrets`` gives read-only mappings)."""
    if hasattr(value, "items"):
        return {key: _plain(item) for key, item in value.items()}
    return list(value) if isinstance(value, list | tuple) else value


def auth_configured() -> bool:
    """Whether secrets.toml has Streamlit's ``[auth]`` section: then every page needs a sign-in."""
    return bool(_secrets_section("auth"))


def team_settings() -> TeamSettings:
    """Admins, allowlist and caps: secrets.toml's ``[langbatch]`` (+ the environment), else the team file."""
    section = _secrets_section(SECRETS_SECTION)
    if section is None:
        from common import data_dir

        return team.settings(data_dir())
    return TeamSettings.from_mapping(section, "secrets.toml [langbatch]").with_environment()


def viewer() -> Viewer:
    """Who is looking now (see ``Viewer``); call ``gate()`` first, at the top of the run."""
    if not auth_configured():
        user = team.current_user()
        return Viewer(user, signed_in=False, access=team_settings().access(user))
    email = str(st.user.get("email") or "").strip().lower() if st.user.is_logged_in else ""
    access = Access(email, team_settings().is_admin(email), restricted=True, named_by="your sign-in")
    return Viewer(email, signed_in=True, access=access)


def gate() -> Viewer:
    """Let the visitor through, or draw the sign-in (or refusal) and stop the run: nothing of a page, no
    download, is drawn for someone signed out or not allowed."""
    if not auth_configured():
        return viewer()
    if not st.user.is_logged_in:
        st.title("LangBatch")
        st.info("Sign in to see and run your batches.", icon=":material/lock:")
        if st.button("Sign in", key="signin_login", type="primary"):
            st.login()
        st.stop()
    who = viewer()
    if not who.user or not team_settings().allows(who.user):
        refuse(who.user)
    with st.sidebar:
        st.caption("Signed in as" + (" (admin)" if who.admin else ""))
        st.text(who.user)
        if st.button("Sign out", key="signin_logout"):
            st.logout()
    return who


def refuse(email: str) -> None:
    """The page a signed-in person outside the allowlist sees: why, and what to do; then stop."""
    from common import md_escape

    st.title("LangBatch")
    if email:
        st.error(
            f"You are signed in as {md_escape(email)}, which may not use this LangBatch. Ask one of its "
            "admins to add your e-mail or domain to the allowlist, or sign out and sign in with another "
            "account.",
            icon=":material/block:",
        )
    else:
        st.error(
            "Your identity provider did not give an e-mail address, so LangBatch cannot tell who you are. "
            "Ask an admin to add the email scope to the sign-in settings, or sign in with another account.",
            icon=":material/block:",
        )
    if st.button("Sign out", key="signin_logout_refused"):
        st.logout()
    st.stop()
