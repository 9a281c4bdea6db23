"""Notifications that a batch finished, or that too many of its requests failed: a webhook, and e-mail
through SMTP when configured. Sent by ``langbatch worker``.

    from langbatch_core.notify import Notifier
    notifier = Notifier(webhook_url="https://hooks.example.com/langbatch", email_to=["team@example.com"])
    notifier = Notifier.from_env()      # LANGBATCH_NOTIFY_WEBHOOK, LANGBATCH_NOTIFY_EMAIL, LANGBATCH_SMTP_*

The webhook gets a JSON POST: ``{"event": "finished" | "failures", "batch_id", "name", "status", "total",
"succeeded", "failed", "not_run", "pending", "attempts", "worker"}``. SMTP settings come from the
environment (``LANGBATCH_SMTP_HOST``, ``_PORT`` (25), ``_FROM``, ``_USER``, ``_STARTTLS=1``); the password
is read from ``LANGBATCH_SMTP_PASSWORD`` when sending, never kept or shown.
"""

from __future__ import annotations

import logging
import os
import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import httpx

from langbatch_core.errors import ConfigurationError

log = logging.getLogger("langbatch.notify")
SMTP_PASSWORD_ENV = "LANGBATCH_SMTP_PASSWORD"


@dataclass
class Notifier:
    """Where to say what happened to a batch. ``failure_threshold``: the share of requests failed or not
    run (0.1 = 10 %) from which a ``failures`` notification is sent; None: never."""

    webhook_url: str | None = None
    email_to: list[str] = field(default_factory=list)
    smtp_host: str | None = None
    smtp_port: int = 25
    email_from: str = "langbatch@localhost"
    smtp_user: str | None = None
    smtp_starttls: bool = False
    failure_threshold: float | None = 0.1
    timeout: float = 10.0

    @classmethod
    def from_env(cls, **overrides: Any) -> Notifier:
        """Settings from ``LANGBATCH_NOTIFY_*`` and ``LANGBATCH_SMTP_*``; ``overrides`` win when not None."""
        env = os.environ
        emails = [e.strip() for e in env.get("LANGBATCH_NOTIFY_EMAIL", "").split(",") if e.strip()]
        try:
            port = int(env.get("LANGBATCH_SMTP_PORT") or 25)
        except ValueError:
            raise ConfigurationError("LANGBATCH_SMTP_PORT must be a port number, like 25 or 587.") from None
        values: dict[str, Any] = {
            "webhook_url": env.get("LANGBATCH_NOTIFY_WEBHOOK") or None,
            "email_to": emails,
            "smtp_host": env.get("LANGBATCH_SMTP_HOST") or None,
            "smtp_port": port,
            "email_from": env.get("LANGBATCH_SMTP_FROM") or "langbatch@localhost",
            "smtp_user": env.get("LANGBATCH_SMTP_USER") or None,
            "smtp_starttls": env.get("LANGBATCH_SMTP_STARTTLS") == "1",
        }
        values |= {k: v for k, v in overrides.items() if v not in (None, [], ())}
        return cls(**values)

    def __post_init__(self) -> None:
        if self.email_to and not self.smtp_host:
            raise ConfigurationError(
                "E-mail notifications need an SMTP server: set LANGBATCH_SMTP_HOST (and "
                "LANGBATCH_SMTP_PORT).",
                field="smtp_host",
            )

    @property
    def configured(self) -> bool:
        return bool(self.webhook_url or self.email_to)

    def send(self, event: str, record: Any, worker: str = "") -> None:
        """Tell the webhook and the e-mail recipients; a failure is logged, never raised."""
        payload = message_of(event, record, worker)
        if self.webhook_url:
            try:
                httpx.post(self.webhook_url, json=payload, timeout=self.timeout).raise_for_status()
            except httpx.HTTPError as exc:
                log.warning("webhook for batch %s failed: %s", record.id, exc)
        if self.email_to:
            try:
                self._mail(payload)
            except (OSError, smtplib.SMTPException) as exc:
                log.warning("e-mail for batch %s failed: %s", record.id, exc)

    def _mail(self, payload: dict[str, Any]) -> None:
        message = EmailMessage()
        message["From"], message["To"] = self.email_from, ", ".join(self.email_to)
        message["Subject"] = payload["text"]
        message.set_content(
            payload["text"] + "\n\n" + "\n".join(f"{k}: {v}" for k, v in payload.items() if k != "text")
        )
        with smtplib.SMTP(self.smtp_host or "", self.smtp_port, timeout=self.timeout) as smtp:
            if self.smtp_starttls:
                smtp.starttls()
            if self.smtp_user:
                smtp.login(self.smtp_user, os.environ.get(SMTP_PASSWORD_ENV, ""))
            smtp.send_message(message)


def message_of(event: str, record: Any, worker: str) -> dict[str, Any]:
    """The notification's fields, and ``text``: one line a person reads."""
    label = record.name or record.id
    what = "finished" if event == "finished" else "has many failed requests"
    return {
        "event": event,
        "text": (
            f"LangBatch: batch {label} {what} ({record.status}): {record.succeeded} of "
            f"{record.request_count} succeeded, {record.failed} failed, {record.not_run} not run"
        ),
        "batch_id": record.id,
        "name": record.name or "",
        "status": record.status,
        "total": record.request_count,
        "succeeded": record.succeeded,
        "failed": record.failed,
        "not_run": record.not_run,
        "pending": record.pending,
        "attempts": record.attempts,
        "worker": worker,
    }
