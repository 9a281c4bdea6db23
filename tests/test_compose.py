"""compose.yaml runs the commands and settings this checkout has: each service's LangBatch command line parses
with the real CLI, and its store and files settings are the kinds default_storage() accepts."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from langbatch_core.cli import cli
from langbatch_core.storage.default import FILES_ENV, POSTGRES_SCHEMES, STORE_ENV

ROOT = Path(__file__).resolve().parents[1]


def compose():
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def langbatch_args(service):
    """The arguments after ``python -m langbatch_core.cli`` in the service's command."""
    words = shlex.split(shlex.split(service["command"])[2])
    return words[words.index("langbatch_core.cli") + 1 :]


def test_every_langbatch_service_command_parses_with_the_real_cli():
    services = compose()["services"]
    names = {}
    for service in ("dashboard", "worker"):
        args = langbatch_args(services[service])
        context = cli.make_context("langbatch", list(args))
        command = cli.get_command(context, args[0])
        command.make_context(args[0], args[1:])  # raises on an unknown option or a bad value
        names[service] = args[0]
    assert names == {"dashboard": "dashboard", "worker": "worker"}
    assert services["dashboard"]["deploy"]["replicas"] >= 2 and services["worker"]["deploy"]["replicas"] >= 2


def test_the_team_settings_name_postgresql_and_an_s3_bucket():
    services = compose()["services"]
    for service in ("dashboard", "worker"):
        env = services[service]["environment"]
        assert env[STORE_ENV].startswith(POSTGRES_SCHEMES) and env[FILES_ENV].startswith("s3://")
        assert env[STORE_ENV].split("@")[0].endswith("${POSTGRES_PASSWORD}")  # the password from .env only
    assert {"postgres", "s3"} <= set(services)
