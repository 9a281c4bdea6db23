"""compose.yaml runs the commands and settings this checkout has: each service's LangBatch command line parses
with the real CLI, and its store and files settings are the kinds default_storage() accepts.
(tests/test_team_deployment.py runs every part it names as a process.)"""

from __future__ import annotations

import re

from support.compose import COMPOSE_FILE, Compose

from langbatch_core.cli import cli
from langbatch_core.storage.default import FILES_ENV, POSTGRES_SCHEMES, STORE_ENV

LANGBATCH_SERVICES = {"dashboard": "dashboard", "worker": "worker", "engine": "serve"}


def compose() -> Compose:
    return Compose({}, strict=False)


def test_every_langbatch_service_command_parses_with_the_real_cli():
    deployment = compose()
    names = {}
    for service in LANGBATCH_SERVICES:
        args = deployment.langbatch_args(service)
        context = cli.make_context("langbatch", list(args))
        command = cli.get_command(context, args[0])
        command.make_context(args[0], args[1:])  # raises on an unknown option or a bad value
        names[service] = args[0]
    assert names == LANGBATCH_SERVICES
    services = deployment.services
    assert services["dashboard"]["deploy"]["replicas"] >= 2 and services["worker"]["deploy"]["replicas"] >= 2


def test_the_team_settings_name_postgresql_an_s3_bucket_and_the_shared_engine():
    deployment = compose()
    for service in ("dashboard", "worker"):
        env = deployment.raw["services"][service]["environment"]
        assert env[STORE_ENV].startswith(POSTGRES_SCHEMES) and env[FILES_ENV].startswith("s3://")
        assert env[STORE_ENV].split("@")[0].endswith("${POSTGRES_PASSWORD}")  # the password from .env only
        assert env["LANGBATCH_ENGINE_URL"].startswith("http://engine:")
    assert {"postgres", "s3", "engine"} <= set(deployment.services)


def test_the_dashboards_read_the_sign_in_from_compose_yaml_and_its_secrets_from_the_env_file():
    deployment = compose()
    (target,) = deployment.config_targets("dashboard").values()
    assert deployment.environment("dashboard")["STREAMLIT_SECRETS_FILES"] == target
    signin = deployment.raw["configs"]["signin"]["content"]
    assert "[auth]" in signin and '"${COOKIE_SECRET}"' in signin and '"${OIDC_CLIENT_SECRET}"' in signin


def test_its_header_lists_every_value_the_env_file_must_give():
    text = COMPOSE_FILE.read_text()
    header = text.split("\n\n")[0]
    required = set(re.findall(r"\$\{([A-Z0-9_]+)\}", text))  # no default: docker compose needs it
    assert required and all(name in header for name in required), required
