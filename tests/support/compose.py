"""compose.yaml's settings for running its parts here as processes (``tests/test_team_deployment.py``).

    deployment = Compose(dotenv)                     # compose.yaml, its ${NAME}s read from ``dotenv``
    deployment.environment("worker")                 # the service's variables, as docker compose gives them
    deployment.langbatch_args("worker")              # ["worker", "--interval", "10", ...]
    deployment.config("signin")                      # a config's content
    localize(env, {"postgres:5432": "127.0.0.1:5999"}, {"/cache": "/tmp/a"})   # services' and paths' places

Interpolation follows docker compose: ``${NAME}``, ``${NAME:-default}`` (default when unset or empty),
``${NAME-default}`` (when unset) and ``$$`` for a literal ``$``. Where docker compose warns of a name missing
from the .env and makes it empty, this raises (unless ``strict=False``): the test gives every value a
deployment must give.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}")


def interpolate(text: str, dotenv: dict[str, str], strict: bool = True) -> str:
    def value(match: re.Match[str]) -> str:
        name, operator, default = match.groups()
        if name is None:
            return "$"
        given = dotenv.get(name)
        if (operator == ":-" and not given) or (operator == "-" and given is None):
            return default
        if given is None and not strict:
            return ""
        if given is None:
            raise KeyError(f"compose.yaml uses ${{{name}}} with no default: give it in the .env")
        return given

    return _VARIABLE.sub(value, text)


def _interpolated(node: Any, dotenv: dict[str, str], strict: bool) -> Any:
    if isinstance(node, str):
        return interpolate(node, dotenv, strict)
    if isinstance(node, dict):
        return {key: _interpolated(value, dotenv, strict) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolated(value, dotenv, strict) for value in node]
    return node


class Compose:
    """compose.yaml with ``dotenv``'s values in place (``strict=False``: a missing one is empty)."""

    def __init__(self, dotenv: dict[str, str], path: Path = COMPOSE_FILE, *, strict: bool = True) -> None:
        self.raw = yaml.safe_load(path.read_text())  # YAML merge keys (<<) resolved as compose does
        self.services: dict[str, Any] = _interpolated(self.raw["services"], dotenv, strict)
        self.configs: dict[str, Any] = _interpolated(self.raw.get("configs", {}), dotenv, strict)

    def environment(self, service: str) -> dict[str, str]:
        return {key: str(value) for key, value in self.services[service].get("environment", {}).items()}

    def langbatch_args(self, service: str) -> list[str]:
        """The arguments after ``python -m langbatch_core.cli`` in the service's ``sh -c "…"`` command."""
        words = shlex.split(shlex.split(self.services[service]["command"])[2])
        return words[words.index("langbatch_core.cli") + 1 :]

    def config(self, name: str) -> str:
        return str(self.configs[name]["content"])

    def config_targets(self, service: str) -> dict[str, str]:
        """{config name: the path the service reads it at}."""
        return {entry["source"]: entry["target"] for entry in self.services[service].get("configs", [])}


def localize(env: dict[str, str], addresses: dict[str, str], paths: dict[str, str]) -> dict[str, str]:
    """``env`` with the services' ``host:port`` replaced by where they run here, and container paths by
    local ones (a value that is such a path, or starts with one and a ``/``)."""
    local = {}
    for key, value in env.items():
        for service, address in addresses.items():
            value = value.replace(f"@{service}", f"@{address}").replace(f"//{service}", f"//{address}")
        for inside, outside in paths.items():
            if value == inside or value.startswith(inside + "/"):
                value = outside + value[len(inside) :]
        local[key] = value
    return local


def with_option(args: list[str], option: str, value: str) -> list[str]:
    """``args`` with ``option``'s value replaced (or the option added)."""
    if option in args:
        at = args.index(option)
        return [*args[: at + 1], value, *args[at + 2 :]]
    return [*args, option, value]
