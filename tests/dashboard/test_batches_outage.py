"""The Batches page's auto-refresh, with the provider down: a calm "unreachable, retrying" line within
seconds, never a frozen page or an error box."""

from __future__ import annotations

import time

from batch_support import write_chat_file
from support.fault_proxy import FaultProxy

from langbatch_core import Connection, DuckDBBatchStorage, OpenAIChatCompletionBatch

from .conftest import open_page, texts


def test_a_provider_down_during_auto_refresh_says_retrying_within_seconds(data_dir, tmp_path, engine):
    with FaultProxy(engine.base_url) as proxy:
        batch = OpenAIChatCompletionBatch(
            write_chat_file(tmp_path / "in.jsonl", ["wait [[slow:30]]"]),
            connection=Connection.compatible(proxy.base_url),
            storage=DuckDBBatchStorage(),
        )
        batch.start()  # runs at the engine for 30 s
        proxy.always = "503"
        began = time.monotonic()
        at = open_page("batches", timeout=20)
        took = time.monotonic() - began

    assert not at.exception and not at.error
    warning = texts(at, "warning")
    assert f"Batch {batch.id}: provider unreachable, retrying every 2 s" in warning.replace("\\", "")
    assert proxy.faults["503"] >= 2  # it did retry, briefly
    assert took < 12  # the short budget, not the library's minutes
