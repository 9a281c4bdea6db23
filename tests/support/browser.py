"""Browser tests (marked ``browser``) need Debian's chromium: without it they are left out, and the run says
so in one line at its end; with ``LANGBATCH_REQUIRE_BROWSER=1`` (CI) a missing chromium is an error.

``LANGBATCH_TEST_CHROMIUM`` names another executable (``support.chromium``). The ``browser`` fixture is that
Chromium, launched headless for one test.
"""

from __future__ import annotations

import os

import pytest

from support.chromium import CHROMIUM, CHROMIUM_ARGS

REQUIRE_ENV = "LANGBATCH_REQUIRE_BROWSER"
MISSING = f"browser tests skipped: no {CHROMIUM}; install Debian's chromium (apt-get install chromium)"
_left_out = pytest.StashKey[int]()


@pytest.fixture
def browser():
    """Debian's Chromium, headless, closed when the test ends (tests that need several tabs or sign-ins)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    browser = [item for item in items if item.get_closest_marker("browser")]
    if not browser or CHROMIUM.exists():
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        raise pytest.UsageError(f"{REQUIRE_ENV}=1 but {CHROMIUM} is missing: apt-get install chromium")
    config.hook.pytest_deselected(items=browser)
    items[:] = [item for item in items if item not in browser]
    config.stash[_left_out] = len(browser)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    left_out = config.stash.get(_left_out, 0)
    if left_out:
        terminalreporter.write_line(f"{MISSING} ({left_out} tests not run)", yellow=True, bold=True)
