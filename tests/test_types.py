"""Type checking: mypy runs in `make lint`, strict for the public API (the batch lifecycle, requests and
results included), errors, providers and storage, and the lazily imported public names are visible to a
user's type checker."""

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import langbatch_core

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "langbatch_core"
STRICT_MODULES = {
    "langbatch_core",
    "langbatch_core.audit",
    "langbatch_core.budgets",
    "langbatch_core.team",
    "langbatch_core.batch",
    "langbatch_core.batch.*",
    "langbatch_core.chat",
    "langbatch_core.embeddings",
    "langbatch_core.errors",
    "langbatch_core.requests",
    "langbatch_core.requests.*",
    "langbatch_core.results",
    "langbatch_core.results.*",
    "langbatch_core.providers.*",
    "langbatch_core.storage.*",
}


def _mypy_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]


def _type_checking_imports(tree: ast.Module) -> dict[str, str]:
    """name -> module of the ``from module import name`` lines under a top-level ``if TYPE_CHECKING:``."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom):
                    found.update({alias.asname or alias.name: statement.module for alias in statement.names})
    return found


def _bound_names(statements: list[ast.stmt]) -> set[str]:
    """Names a type checker sees bound at the top of a module: ``if TYPE_CHECKING:`` and ``try:`` blocks
    included, what a function imports when called not."""
    names = set()
    for node in statements:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(target.id for target in targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.If | ast.Try):
            handlers = [h for handler in getattr(node, "handlers", []) for h in handler.body]
            names |= _bound_names(node.body + node.orelse + handlers)
    return names


def _all_node(tree: ast.Module) -> ast.expr | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
            return node.value
    return None


def test_the_type_checking_imports_name_exactly_the_lazy_public_names():
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    assert _type_checking_imports(tree) == langbatch_core._EXPORTS
    assert sorted(langbatch_core.__all__) == sorted(langbatch_core._EXPORTS)


def test_every_all_is_a_literal_list_of_names_a_type_checker_sees():
    """A computed ``__all__`` (``sorted(...)``) or a name only ``__getattr__`` makes is invisible to mypy
    --strict users: ``Module "langbatch_core" does not explicitly export attribute "Batch"``."""
    checked = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        value = _all_node(tree)
        if value is None:
            continue
        checked += 1
        where = path.relative_to(ROOT)
        assert isinstance(value, ast.List | ast.Tuple), f"{where}: __all__ must be a literal list"
        names = {element.value for element in value.elts if isinstance(element, ast.Constant)}
        assert len(names) == len(value.elts), f"{where}: __all__ must hold only string literals"
        missing = sorted(names - _bound_names(tree.body))
        assert not missing, f"{where}: import these under `if TYPE_CHECKING:` too: {missing}"
    assert checked >= 4


def test_a_strict_user_sees_the_public_names_with_their_types(tmp_path):
    user = tmp_path / "user.py"
    user.write_text(
        "from langbatch_core import Connection, OpenAIChatCompletionBatch, validate_file\n"
        "from langbatch_core.local import ensure_local_engine\n"
        "reveal_type(OpenAIChatCompletionBatch)\n"
        "reveal_type(validate_file)\n"
        "reveal_type(Connection.local())\n"
        "reveal_type(ensure_local_engine)\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--config-file", os.devnull,
         "--cache-dir", str(tmp_path / "cache"), str(user)],
        cwd=tmp_path, env={**os.environ, "MYPYPATH": str(ROOT)}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    revealed = [
        line.split("Revealed type is ", 1)[1] for line in run.stdout.splitlines() if "Revealed" in line
    ]
    assert "error" not in run.stdout, run.stdout
    expected = [
        "OpenAIChatCompletionBatch",
        "-> langbatch_core.",
        "providers.connection.Connection",
        ") -> str",
    ]
    assert len(revealed) == len(expected), run.stdout + run.stderr
    for shown, part in zip(revealed, expected, strict=True):
        assert part in shown and shown != '"Any"', run.stdout


def test_the_strict_modules_get_every_flag_of_mypy_strict():
    """``strict = true`` in an override would make every module strict (mypy applies it globally), so the
    override lists the flags: the same ones ``mypy --strict`` sets, whatever the pinned mypy's list is."""
    from mypy.main import define_options

    config = _mypy_config()
    assert not any("strict" in override for override in config["overrides"])
    strict = next(o for o in config["overrides"] if set(o["module"]) >= STRICT_MODULES)
    for flag, value in define_options()[2]:
        assert strict.get(flag, config.get(flag)) == value, f"[tool.mypy] strict override: {flag} = {value}"


def test_make_lint_runs_mypy_on_the_library_and_the_dashboard():
    dry = subprocess.run(["make", "-n", "lint"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert ".venv/bin/mypy" in dry
    assert set(_mypy_config()["files"]) == {"langbatch_core", "dashboard"}
