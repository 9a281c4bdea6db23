"""Where LangBatch keeps its data, and the settings read from the environment.

``LANGBATCH_DATA_DIR`` names the data directory; without it LangBatch uses ``~/.langbatch``.
``LANGBATCH_ENGINE_URL`` names a running local engine for ``Connection.local()`` (instead of starting one).
Nothing here reads or stores a secret.

    from langbatch_core import config
    config.data_dir()            # Path, created if missing
"""

from __future__ import annotations

import os
from pathlib import Path

from langbatch_core.errors import ConfigurationError

DATA_DIR_ENV = "LANGBATCH_DATA_DIR"
ENGINE_URL_ENV = "LANGBATCH_ENGINE_URL"  # a running local engine to use instead of finding or starting one
DEFAULT_DATA_DIR = Path.home() / ".langbatch"


def data_dir() -> Path:
    """The data directory (created if missing): ``$LANGBATCH_DATA_DIR`` or ``~/.langbatch``."""
    source = f"from {DATA_DIR_ENV}" if os.environ.get(DATA_DIR_ENV) else "the default"
    return ensure_data_dir(data_dir_path(), source)


def data_dir_path() -> Path:
    """Where the data directory is (``$LANGBATCH_DATA_DIR`` or ``~/.langbatch``), without creating it."""
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).expanduser()


def ensure_data_dir(path: Path, source: str = "given") -> Path:
    """Create ``path`` if needed; ConfigurationError saying which folder and what to do if that fails."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot use the data directory {path} ({source}): {exc.strerror or exc}. Point {DATA_DIR_ENV} "
            "(or --data-dir) at a folder you can write to."
        ) from exc
    return path
