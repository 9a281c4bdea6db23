"""Where LangBatch keeps its data, and the settings read from the environment.

``LANGBATCH_DATA_DIR`` names the data directory; without it LangBatch uses ``~/.langbatch``.
Nothing here reads or stores a secret.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "LANGBATCH_DATA_DIR"
DEFAULT_DATA_DIR = Path.home() / ".langbatch"


def data_dir() -> Path:
    """The data directory (created if missing): ``$LANGBATCH_DATA_DIR`` or ``~/.langbatch``."""
    path = Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
