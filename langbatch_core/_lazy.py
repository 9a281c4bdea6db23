"""Public names imported on first use: a package's ``__getattr__`` and ``__dir__`` from one map.

    _EXPORTS = {"load_results": ".table", "LocalEngine": "langbatch_core.local.engine"}
    __getattr__, __dir__ = lazy_names(__name__, _EXPORTS)

A module is named absolutely or relative to the package (a leading dot). A name is imported once, then
kept in the package's namespace, so later lookups do not come back here.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``(__getattr__, __dir__)`` of ``package``: each name of ``exports`` is imported when first used."""
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
