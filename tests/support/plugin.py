"""A third-party provider package written to a folder: a module and its ``.dist-info`` with an entry point
in the ``langbatch.providers`` group, found through ``sys.path`` (or ``PYTHONPATH``) like an installed one."""

from __future__ import annotations

import textwrap
from pathlib import Path

MODULE = textwrap.dedent(
    """
    from langbatch_core.providers import ConnectionKind, Provider


    class AcmeProvider(Provider):
        connection_kind = ConnectionKind("acme", "Acme Batch", default_key_env="ACME_API_KEY")

        def submit(self, input_path, endpoint, metadata):
            raise NotImplementedError

        poll = cancel = download = find = submit
    """
)


def write_plugin(folder: Path) -> Path:
    """``acme_langbatch`` (kind ``acme``, label "Acme Batch", key ``ACME_API_KEY``) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "acme_langbatch.py").write_text(MODULE)
    info = folder / "acme_langbatch-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-langbatch\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[langbatch.providers]\nacme = acme_langbatch:AcmeProvider\n")
    return folder
