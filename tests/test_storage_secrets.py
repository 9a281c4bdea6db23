"""A run with an API key set leaves no trace of it anywhere in the data directory, whatever the store."""

from __future__ import annotations

import duckdb
from batch_support import write_chat_file

from langbatch_core import DuckDBBatchStorage, FileBatchStorage, OpenAIChatCompletionBatch

SECRET = "sk-" + "test-DO-NOT-STORE-4f9a1c2b7e"  # built, so the file holds no key-like string


def test_no_key_in_files_or_duckdb(tmp_path, engine, monkeypatch, isolated_data_dir):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", engine.base_url)
    for storage in (FileBatchStorage(), DuckDBBatchStorage()):
        batch = OpenAIChatCompletionBatch(
            write_chat_file(tmp_path / "in.jsonl", ["a", "b [[400]]"]), storage=storage
        )
        batch.start()
        batch.wait(poll_interval=0.05)
        batch.get_results()
        batch.retry(include_client_errors=True)
        batch.wait(poll_interval=0.05)
        assert storage.load(batch.id).connection["api_key_env"] == "OPENAI_API_KEY"

    files = [p for p in isolated_data_dir.rglob("*") if p.is_file()]
    assert any(p.name == "langbatch.duckdb" for p in files) and any(p.name == "batch.json" for p in files)
    leaking = [p for p in files if SECRET.encode() in p.read_bytes()]
    assert leaking == []
    with duckdb.connect(str(isolated_data_dir / "langbatch.duckdb"), read_only=True) as con:
        hits = con.execute(
            "SELECT count(*) FROM batches WHERE record::VARCHAR LIKE ?", [f"%{SECRET}%"]
        ).fetchone()
    assert hits == (0,)
