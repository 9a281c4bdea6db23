"""Run the local engine: ``python -m langbatch_core.local serve [--upstream URL] [--port 8765] ...``.

The same command as ``langbatch serve`` (``langbatch_core.local.command``); ``ensure_local_engine`` starts
the shared engine this way, detached.

Example:
    python -m langbatch_core.local serve --upstream http://127.0.0.1:11434/v1 --rpm 600
"""

from __future__ import annotations

import click

from langbatch_core.local.command import serve_command


@click.group()
def local() -> None:
    """The LangBatch local engine."""


local.add_command(serve_command)

if __name__ == "__main__":
    local(prog_name="python -m langbatch_core.local")
