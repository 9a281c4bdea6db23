"""The project's own files agree with each other: pins, Quick start, CI."""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(spec: str) -> str:
    return re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0].lower().replace("_", "-")


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            assert version, f"requirements.txt: {line!r} is not pinned with =="
            pins[_name(name)] = version
    return pins


def test_requirements_pin_every_runtime_dependency_of_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["model"]
    wanted += project["optional-dependencies"]["team"]
    pins = _pins()
    missing = sorted(_name(spec) for spec in wanted if _name(spec) not in pins)
    assert not missing, f"pin these in requirements.txt: {missing}"


def test_requirements_pins_satisfy_pyproject_lower_bounds():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins()
    for spec in project["dependencies"] + project["optional-dependencies"]["model"]:
        match = re.search(r">=([\d.]+)", spec)
        if match:
            low = tuple(int(p) for p in match.group(1).split("."))
            pinned = tuple(int(p) for p in re.findall(r"\d+", pins[_name(spec)])[: len(low)])
            assert pinned >= low, f"{spec}: requirements.txt pins {pins[_name(spec)]}"


def test_readme_quick_start_has_exactly_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", quick, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["make run", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_make_run_starts_the_dashboard_command_on_the_user_s_data_dir_and_tells_how_to_get_langbatch():
    makefile = (ROOT / "Makefile").read_text()
    assert "LANGBATCH_DATA_DIR" not in re.sub(r"#.*", "", makefile)  # batches stay where the CLI finds them
    dry = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert ".venv/bin/langbatch dashboard" in dry and "source .venv/bin/activate" in dry
    stop = subprocess.run(["make", "-n", "stop-engine"], cwd=ROOT, capture_output=True, text=True).stdout
    assert ".venv/bin/langbatch engine stop" in stop


def test_the_readme_cli_examples_run_as_written_after_activating_the_venv():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The CLI", 1)[1].split("\n## ", 1)[0]
    assert "source .venv/bin/activate" in section
    lines = [line.split("#")[0].split() for block in re.findall(r"```bash\n(.*?)```", section, re.S)
             for line in block.splitlines()]  # fmt: skip
    commands = [words for words in lines if words and words[0] == "langbatch"]
    assert len(commands) >= 5
    activated = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for words in commands:
        subcommand = [word for word in words[1:3] if not word.startswith("-") and "." not in word][:2]
        run = subprocess.run(
            ["langbatch", *subcommand, "--help"], env=activated, capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 0, (words, run.stderr)
