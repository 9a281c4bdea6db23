"""Start the dashboard with its one-off work done before the server says it is ready.

    python dashboard/launch.py --server.port 8501 ...    # what `langbatch dashboard` runs

Takes the flags of ``streamlit run`` and runs ``streamlit run dashboard/app.py`` with them, in this process,
after importing what the pages need: pandas, pyarrow, DuckDB, Altair, ``langbatch_core``'s results, tables and
store modules and the dashboard's own modules. A bare ``streamlit run`` imports them while the first visitor
waits (about a second of their first page); here the server answers its health check only once they are
loaded, so that nobody waits for them. What they leave in memory lives as long as the process: it is frozen
out of the garbage collector's sight, so the full collection Streamlit runs after every page run
(``runner.postScriptGC``) walks only what the pages made.
"""

from __future__ import annotations

import gc
import importlib
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

HERE = Path(__file__).resolve().parent
APP = HERE / "app.py"

# What the pages import on their first run. tests/dashboard/test_launch.py runs every page after warm() and
# checks that they import nothing heavy that is not loaded by then.
LIBRARIES = (
    "pandas",
    "pyarrow",
    "pyarrow.compute",
    "pyarrow.parquet",
    "pyarrow.dataset",  # a table batch's source rows (Parquet)
    "pyarrow.pandas_compat",  # these three: Arrow tables to pandas (a regex compiled at import: 0.03 s)
    "pyarrow.vendored.version",
    "pandas.core.arrays.arrow._arrow_utils",
    "pandas.core.arrays.arrow.extension_types",  # these two: a chart's data sent to the browser
    "narwhals._interchange.series",
    "duckdb",
    "altair",
    "langbatch_core.estimates",  # modules functions import when called (not public names)
    "langbatch_core.local.control",
    "langbatch_core.tables._vectors",
    "langbatch_core.tables._cache",  # a table batch's joined table, kept on disk
    "langbatch_core.results.kept",  # a batch's results table, kept on disk
    "pyarrow.ipc",
)
# Every public name of these: their lazy loaders would import it on a page's first use.
PACKAGES = ("langbatch_core", "langbatch_core.results", "langbatch_core.tables", "langbatch_core.local")
# Streamlit's own, imported by the first page that shows an emoji or a material icon (the emoji table: 0.07 s)
STREAMLIT = ("streamlit.emojis", "streamlit.material_icon_names")
PAGE_MODULES = (
    "common",
    "explore",
    "tables",
    "table_support",
    "table_results",
    "signin",
    "connections",
)


def warm() -> None:
    """Import the libraries, ``langbatch_core`` and the dashboard's modules (found next to this file), and
    draw a first chart."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import streamlit  # noqa: F401  (its loggers first: the quiet spell below outlasts their set-up)

    with _cache_checks_quiet():
        for name in (*LIBRARIES, *STREAMLIT, *PAGE_MODULES):
            importlib.import_module(name)
    for name in PACKAGES:
        package = importlib.import_module(name)
        for public in package.__all__:
            # a name behind an extra that is not installed (the team store's psycopg, not in `make run`) is
            # left to the code that needs it
            with suppress(ImportError):
                getattr(package, public)
    _first_chart()


def _first_chart() -> None:
    """Altair's first chart costs 0.03-0.07 s more than the next (its pandas support through narwhals is
    imported, its shorthand regexes compiled): pay it here, not on the Charts tab."""
    import altair as alt
    import pandas as pd

    counts = pd.DataFrame({"status": pd.array(["ok"], "string[pyarrow]"), "requests": pd.array([1], "Int64")})
    alt.Chart(counts).mark_bar().encode(x="requests:Q", y="status:N").to_dict()  # typed as results tables are


@contextmanager
def _cache_checks_quiet() -> Iterator[None]:
    """``st.cache_data`` checks its settings where a module defines a cached function; before the server
    runs it warns that it checks them against an in-memory store. The server's store is the one used when the
    function is called, so the warning says nothing about this dashboard: keep it out of the terminal."""
    logger = logging.getLogger("streamlit.runtime.caching.cache_data_api")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def main(flags: Sequence[str] | None = None) -> None:
    """Warm this process, then ``streamlit run dashboard/app.py`` with ``flags`` (default: sys.argv)."""
    warm()
    gc.freeze()  # the modules' objects: a full collection would walk them all (0.05-0.1 s) after every run
    from streamlit.web import cli

    cli.main(["run", str(APP), *(sys.argv[1:] if flags is None else flags)], prog_name="streamlit")


if __name__ == "__main__":
    main()
