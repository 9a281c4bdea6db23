"""A clone with nothing beside it tests itself: no test, Makefile rule or CI step reaches outside the repo."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("tests/", "Makefile", ".ci/", "pyproject.toml")
OUTSIDE = [
    (re.compile(r"\.\.[/\\]+shared\b"), "a folder beside the repository"),
    (
        re.compile(r"""/\s*["']shared["']|["']shared[/\\]|[/\\]shared[/\\]"""),
        "a path segment named like the folder beside the repository",
    ),
    (re.compile(r"(?<![\w.])/work/"), "an absolute /work/ path"),
]
PARENTS = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?(?P<chain>(?:\.parent\b|\.parents\[\d+\])+)")


def repo_files() -> list[str]:
    """Tracked and new (not ignored) files of the checkout, relative to the root."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return [name for name in listed if (ROOT / name).is_file()]


def levels_up(chain: str) -> int:
    """How many steps ``.parent.parents[2]``-style chains climb from the file (``.parent``: its folder)."""
    steps = re.findall(r"\.parent\b|\.parents\[(\d+)\]", chain)
    return sum(1 if index == "" else int(index) + 1 for index in steps)


def outside_references(name: str, text: str) -> list[str]:
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for pattern, what in OUTSIDE:
            if pattern.search(line):
                found.append(f"{name}:{number}: {what}: {line.strip()}")
        for match in PARENTS.finditer(line):
            if levels_up(match["chain"]) > name.count("/") + 1:  # the file, its folders, the root
                found.append(f"{name}:{number}: a folder above the repository: {line.strip()}")
    return found


def test_levels_up_counts_parent_steps():
    assert levels_up(".parent") == 1 and levels_up(".parents[1]") == 2
    assert levels_up(".parent.parents[2]") == 4


def test_the_scan_sees_each_way_out_of_the_repo():
    sibling = "sha" + "red"  # spelled at run time, so that this file itself names no such path
    bad = [
        f'SPEC = Path(__file__).resolve().parents[2] / "{sibling}" / "spec.yaml"',
        f"cat ../{sibling}/openai/examples/input_chat.jsonl",
        "DATA = '/work/data/x.jsonl'",
        "UP = Path(__file__).parent.parent.parent",
    ]
    for line in bad:
        assert outside_references("tests/test_x.py", line), line
    fine = f'ROOT = Path(__file__).resolve().parents[1]\nrun("status", "../../etc")\nx = "{sibling}"'
    assert outside_references("tests/test_x.py", fine) == []


def test_tests_makefile_and_ci_refer_to_nothing_outside_the_repo():
    this = Path(__file__).relative_to(ROOT).as_posix()
    problems = []
    for name in repo_files():
        if name.startswith(SCANNED) and name != this:
            text = (ROOT / name).read_text(errors="replace")
            problems += outside_references(name, text)
    assert not problems, "the repository must carry what its tests need:\n" + "\n".join(problems)


def test_tests_that_read_fixtures_pass_in_a_copy_with_nothing_beside_it(tmp_path):
    copy = tmp_path / "alone" / "repo"
    for name in repo_files():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, copy / name)
    tests = [
        "tests/test_seed.py::test_the_snippets_here_are_the_seed_s_own",
        "tests/test_requests.py::test_official_examples_are_valid",
        "tests/test_results.py::test_official_files_with_requests_account_for_every_request",
        "tests/test_engine.py::test_official_example_files_run_and_every_line_reaches_the_upstream",
    ]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *tests],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "6 passed" in run.stdout and "skipped" not in run.stdout, run.stdout[-2000:]
