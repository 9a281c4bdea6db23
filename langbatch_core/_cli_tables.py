"""``langbatch create --table …`` and ``langbatch results ID --table``: the table front door in the terminal.

langbatch create --table reviews.csv --template 'Sentiment of: {{ review }}' --schema fields.json
langbatch create --table june.csv --like lb_3f2a...     # that batch's template, schema, model… again
langbatch results lb_3f2a... --table -o answers.xlsx
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

TABLE_OPTIONS = (
    "table", "template", "system", "schema", "id_column", "text_column", "sheet", "encoding", "model",
    "temperature", "max_tokens", "pilot", "like",
)  # fmt: skip


def table_options(command: Any) -> Any:
    """The options that make a batch from a table instead of a request file."""
    options = [
        click.option(
            "--table",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="A CSV/TSV/XLSX/Parquet/JSONL table: one request per row (instead of FILE).",
        ),
        click.option("--template", help="Prompt over the columns, e.g. 'Sentiment of: {{ review }}'."),
        click.option("--system", help="System prompt sent with every row."),
        click.option(
            "--schema",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="JSON file: answer fields [{name, type, ...}] or a JSON Schema (structured answers).",
        ),
        click.option("--id-column", help="Column whose values become custom_ids (default: row numbers)."),
        click.option("--text-column", help="Embed this column's text (an embeddings batch)."),
        click.option("--sheet", help="Excel sheet (default: the first)."),
        click.option("--encoding", help="Text encoding of a CSV that is not UTF-8, e.g. latin-1."),
        click.option("--model", help="Model of every request (default: the connection's, else gpt-4o-mini)."),
        click.option("--temperature", type=float, help="Sampling temperature of every request."),
        click.option("--max-tokens", type=click.IntRange(min=1), help="Answer length limit."),
        click.option("--pilot", type=click.IntRange(min=1), help="Make a batch of the first N rows only."),
        click.option(
            "--like",
            metavar="BATCH_ID",
            help="Run again on another file: that table batch's template, system prompt, schema, id column, "
            "model, parameters and connection (options given here win).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def split_table_options(options: dict[str, Any]) -> dict[str, Any]:
    """Takes the table options out of ``options`` (what is left are the connection options)."""
    return {name: options.pop(name, None) for name in TABLE_OPTIONS}


def create_from_table(storage: Any, connection: Any, name: str | None, table: dict[str, Any]) -> Any:
    """The batch of ``table``'s rows (not started), with what was found about the table printed.
    ``connection`` None: the ``--like`` batch's."""
    from langbatch_core import Batch, OpenAIChatCompletionBatch, OpenAIEmbeddingBatch

    kwargs = {k: table[k] for k in ("temperature", "max_tokens") if table[k] is not None}
    like = Batch.load(table["like"], storage) if table["like"] else None
    common = {
        "id_column": table["id_column"],
        "model": table["model"],
        "request_kwargs": kwargs or None,
        "sheet": table["sheet"],
        "encoding": table["encoding"],
        "pilot": table["pilot"],
        "like": like,
        "storage": storage,
        "name": name,
        **({"connection": connection} if connection is not None else {}),
    }
    like_spec = getattr(like, "table_spec", None)
    if table["text_column"] or (like_spec is not None and like_spec.kind == "embeddings"):
        batch = OpenAIEmbeddingBatch.from_table(table["table"], text_column=table["text_column"], **common)
    else:
        if not table["template"] and like is None:
            raise click.ClickException(
                "--table needs --template (e.g. --template 'Sentiment of: {{ review }}'), --text-column "
                "for embeddings, or --like BATCH_ID to run a table batch's again."
            )
        batch = OpenAIChatCompletionBatch.from_table(
            table["table"],
            template=table["template"],
            system=table["system"],
            schema=table["schema"],
            **common,
        )
    for issue in batch.table_issues:
        click.echo(f"{issue.severity}: {issue.message}")
    return batch


def echo_pilot_hint(batch: Any) -> None:
    spec = batch.table_spec
    if spec is not None and spec.rows[0] == 0 and spec.rows[1] < batch.table_rows():
        click.echo(f"This is a pilot of {spec.rows[1]:,} rows: `langbatch rest {batch.id}` makes the rest.")


def write_results_table(batch: Any, output: Path | None, limit: int) -> None:
    """Writes the joined table (``-o``: .csv, .xlsx, .parquet, .jsonl) or prints its first rows."""
    from langbatch_core.tables import export_table

    joined = batch.get_results_table()
    if output is not None:
        click.echo(f"Wrote {export_table(joined, output)} ({len(joined):,} rows)")
        return
    shown = joined.head(limit).astype(object).where(joined.head(limit).notna(), "")
    click.echo(shown.to_string(index=False, max_colwidth=60))
    if len(joined) > limit:
        click.echo(f"… {len(joined) - limit:,} more rows: -o answers.xlsx writes them all.")
