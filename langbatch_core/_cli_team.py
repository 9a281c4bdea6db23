"""The CLI's view of a team deployment: ``langbatch audit`` (the audit log) and ``langbatch spend`` (this
month's spend against the caps), over ``langbatch_core.audit``, ``budgets`` and ``team``.

    langbatch audit --action deleted --csv deletions.csv
    langbatch spend
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from langbatch_core import audit as audit_log
from langbatch_core import budgets, team


def default_store() -> Any:
    from langbatch_core.storage import default_storage

    return default_storage()


@click.command(name="audit")
@click.option("--user", "actor", help="Only what this person did (an e-mail, or an OS user name).")
@click.option("--action", type=click.Choice(audit_log.ACTIONS), help="Only this kind of event.")
@click.option("--batch", "batch_id", help="Only events of this batch.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="Write CSV here.")
def audit(actor: str | None, action: str | None, batch_id: str | None, csv_path: Path | None) -> None:
    """Show who created, started, retried, cancelled, deleted or downloaded which batch, and who was
    refused acting on another's batch (--action refused), newest first.

    Example:

        \b
        langbatch audit --user ann@example.com --csv ann.csv
    """
    found = audit_log.events(default_store(), actor=actor, action=action, batch_id=batch_id)
    if csv_path is not None:
        csv_path.write_bytes(audit_log.to_csv(found))
        click.echo(f"Wrote {len(found):,} event(s) to {csv_path}")
        return
    if not found:
        click.echo("No audit events match.")
    for event in found:
        click.echo(
            f"{event.when}  {event.actor:<24} {event.action:<10} {event.batch_id or '—'}  {event.detail}"
        )


@click.command(name="spend")
@click.option("--user", help="Whose spend (default: $LANGBATCH_USER, else the OS user).")
def spend(user: str | None) -> None:
    """Show this month's spend against the monthly caps that apply to you (team settings).

    Example:

        \b
        langbatch spend --user ann@example.com
    """
    who = user or team.current_user()
    lines = budgets.standing(default_store(), who, team.settings())
    if not lines:
        click.echo(f"No monthly cap applies to {who}.")
    for line in lines:
        label = "you" if line.kind == "user" else f"team {line.who}"
        click.echo(
            f"{label}: ${line.spent:,.2f} of ${line.cap:,.2f} spent this month, ${line.left:,.2f} left"
        )
