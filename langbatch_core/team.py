"""Who is acting, and a team's settings: admins, who may sign in, monthly spend caps.

    from langbatch_core import team
    team.current_user()                  # $LANGBATCH_USER, else the operating system's user name
    settings = team.settings()           # $LANGBATCH_TEAM_FILE or <data dir>/team.toml, + the variables below
    settings.is_admin("ann@example.com"); settings.allows("bob@example.com")
    access = settings.access(team.current_user())   # who may act on which batch (the one rule)
    access.may_act(record.owner); access.check(record, "delete"); storage.summaries(owner=access.owner_filter)

The file (TOML; the dashboard also reads the same keys from the ``[langbatch]`` section of
``.streamlit/secrets.toml``)::

    admins = ["ann@example.com"]
    allowed = ["example.com", "bob@partner.org"]   # e-mails, or domains (example.com or @example.com)
    user_monthly_usd = 50                          # every person's monthly cap (absent: no cap)
    [users."ann@example.com"]
    monthly_usd = 200                              # this person's own cap
    [teams.research]
    members = ["ann@example.com", "bob@example.com"]
    monthly_usd = 500                              # what the members spend together

``LANGBATCH_ADMINS`` and ``LANGBATCH_ALLOWED`` (comma-separated) add to the lists;
``LANGBATCH_USER_MONTHLY_USD`` sets the per-person cap. With no admins and no allowlist, everyone is allowed
and no one is an admin: the single-user default.

Ownership: where settings restrict access (admins or an allowlist) — or a dashboard has sign-in — a person
acts on their own batches only (start, retry, cancel, delete, save over, read results), admins on all;
``Access`` is that rule, used by ``Batch``, the CLI and the dashboard. Reading a batch's status stays open.
This guards against mistakes between colleagues, not against someone who holds the store's credentials.
"""

from __future__ import annotations

import getpass
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langbatch_core import config
from langbatch_core.errors import ConfigurationError, NotOwnerError

USER_ENV = "LANGBATCH_USER"
TEAM_FILE_ENV = "LANGBATCH_TEAM_FILE"
ADMINS_ENV = "LANGBATCH_ADMINS"
ALLOWED_ENV = "LANGBATCH_ALLOWED"
USER_CAP_ENV = "LANGBATCH_USER_MONTHLY_USD"
TEAM_FILE = "team.toml"
NAMED_BY_ENV = f"${USER_ENV}, else the operating system's user"


def current_user() -> str:
    """The name recorded as owner and actor by Python and the CLI: ``$LANGBATCH_USER``, else the OS user."""
    name = os.environ.get(USER_ENV, "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"


@dataclass(frozen=True)
class Team:
    """A named group whose members' batches share one monthly cap."""

    name: str
    members: frozenset[str]
    monthly_usd: float | None = None


@dataclass(frozen=True)
class TeamSettings:
    """Admins, the sign-in allowlist and the spend caps (see the module docstring)."""

    admins: frozenset[str] = frozenset()
    allowed: frozenset[str] = frozenset()
    user_monthly_usd: float | None = None
    user_caps: Mapping[str, float] = field(default_factory=dict)
    teams: tuple[Team, ...] = ()
    source: str = "defaults"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "settings") -> TeamSettings:
        """Settings from a parsed TOML document (or the dashboard's ``[langbatch]`` secrets section)."""
        users = data.get("users") or {}
        teams = data.get("teams") or {}
        return cls(
            admins=_names(data.get("admins"), f"{source}: admins"),
            allowed=_names(data.get("allowed"), f"{source}: allowed"),
            user_monthly_usd=_money(data.get("user_monthly_usd"), f"{source}: user_monthly_usd"),
            user_caps={
                _norm(name): cap
                for name, entry in users.items()
                if (cap := _money(dict(entry).get("monthly_usd"), f"{source}: users.{name}.monthly_usd"))
                is not None
            },
            teams=tuple(
                Team(
                    name,
                    _names(dict(entry).get("members"), f"{source}: teams.{name}.members"),
                    _money(dict(entry).get("monthly_usd"), f"{source}: teams.{name}.monthly_usd"),
                )
                for name, entry in teams.items()
            ),
            source=source,
        )

    def with_environment(self) -> TeamSettings:
        """These settings plus the environment's admins, allowlist and per-person cap."""
        cap = os.environ.get(USER_CAP_ENV, "").strip()
        return TeamSettings(
            admins=self.admins | _names(os.environ.get(ADMINS_ENV, ""), ADMINS_ENV),
            allowed=self.allowed | _names(os.environ.get(ALLOWED_ENV, ""), ALLOWED_ENV),
            user_monthly_usd=_money(cap, USER_CAP_ENV) if cap else self.user_monthly_usd,
            user_caps=self.user_caps,
            teams=self.teams,
            source=self.source,
        )

    @property
    def restricted(self) -> bool:
        """Whether sign-in is limited to an allowlist (else anyone the identity provider signs in)."""
        return bool(self.allowed or self.admins)

    def is_admin(self, user: str | None) -> bool:
        return bool(user) and _norm(user or "") in self.admins

    def allows(self, user: str | None) -> bool:
        """Whether ``user`` (an e-mail) may use the dashboard: an admin, listed, or of a listed domain."""
        if not user:
            return False
        if not self.restricted or self.is_admin(user):
            return True
        email = _norm(user)
        if "@" not in email:  # a sign-in gives an e-mail; anything else matches no entry
            return False
        return email in self.allowed or email.rpartition("@")[2] in self.allowed

    def user_cap(self, user: str | None) -> float | None:
        """The monthly cap of ``user`` (their own, else every person's), None when there is none."""
        return self.user_caps.get(_norm(user or ""), self.user_monthly_usd)

    def access(self, user: str, named_by: str = NAMED_BY_ENV) -> Access:
        """The ownership rule for ``user``: restricted when these settings are (admins or an allowlist)."""
        return Access(user, self.is_admin(user), self.restricted, named_by)

    def teams_of(self, user: str | None) -> list[Team]:
        return [t for t in self.teams if _norm(user or "") in t.members]


@dataclass(frozen=True)
class Access:
    """Who acts (``user``) and on which batches: all of them unless ``restricted``; then their own, or
    every one if ``admin``. ``named_by`` says where ``user`` comes from, for messages."""

    user: str
    admin: bool = False
    restricted: bool = False
    named_by: str = NAMED_BY_ENV

    def may_act(self, owner: str | None) -> bool:
        """Whether ``user`` may act on a batch of ``owner`` (None: made before owners were recorded)."""
        return not self.restricted or self.admin or (bool(owner) and _norm(owner or "") == _norm(self.user))

    @property
    def owner_filter(self) -> str | None:
        """Whose batches a listing shows (``storage.summaries(owner=...)``): None for every batch."""
        return None if self.may_act(None) else self.user

    def check(self, record: Any, action: str) -> None:
        """NotOwnerError unless ``user`` may ``action`` (``"start"``, ``"delete"``, ``"read the results
        of"``, ...) the batch of ``record`` (a ``BatchRecord`` or ``BatchSummary``)."""
        if self.may_act(record.owner):
            return
        name = f" ({record.name})" if record.name else ""
        whose = (
            f"it belongs to {record.owner}, and only a batch's owner and the admins act on it here (team "
            f"settings). Ask {record.owner} or an admin"
            if record.owner
            else "it has no recorded owner (made before owners were recorded), so only an admin may. Ask one"
        )
        raise NotOwnerError(
            f"{self.user} may not {action} batch {record.id}{name}: {whose}. You act as {self.user} "
            f"({self.named_by}).",
            batch_id=record.id,
            owner=record.owner,
            user=self.user,
            action=action,
        )


def settings(data_dir: str | Path | None = None) -> TeamSettings:
    """The settings of ``$LANGBATCH_TEAM_FILE``, else ``<data dir>/team.toml`` if it exists, plus the
    environment's; defaults (no admins, no allowlist, no caps) without either."""
    named = os.environ.get(TEAM_FILE_ENV)
    root = Path(data_dir).expanduser() if data_dir is not None else config.data_dir_path()
    path = Path(named).expanduser() if named else root / TEAM_FILE
    if not path.is_file():
        if named:
            raise ConfigurationError(
                f"{TEAM_FILE_ENV} names {path}, which is not a file: create it or unset the variable.",
                field=TEAM_FILE_ENV,
            )
        return TeamSettings().with_environment()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"Cannot read the team settings {path}: {exc}. Fix the file.") from exc
    return TeamSettings.from_mapping(data, str(path)).with_environment()


def _norm(name: str) -> str:
    return name.strip().lower().removeprefix("@")


def _names(value: Any, where: str) -> frozenset[str]:
    if value is None or value == "":
        return frozenset()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple | frozenset | set):
        raise ConfigurationError(f"{where} must be a list of e-mails or domains, got {value!r}.", field=where)
    return frozenset(_norm(str(item)) for item in items if str(item).strip())


def _money(value: Any, where: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        amount = float(value)
    except (TypeError, ValueError):
        amount = -1.0
    if amount < 0 or amount != amount:
        raise ConfigurationError(f"{where} must be an amount of US dollars ≥ 0, got {value!r}.", field=where)
    return amount
