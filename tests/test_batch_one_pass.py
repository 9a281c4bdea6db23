"""The batch constructor checks its request file and keeps a copy of it in one read of the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.data_requests import chat_request, write_chat_file

from langbatch_core import InvalidRequestsError, OpenAIChatCompletionBatch, StorageError, jsonl
from langbatch_core.requests import validate_file
from langbatch_core.storage import default_storage

PROC_IO = Path("/proc/self/io")


def bytes_read() -> int:
    """Bytes this process has read through read()-like system calls so far (sendfile included)."""
    fields = dict(line.split(": ") for line in PROC_IO.read_text().splitlines())
    return int(fields["rchar"])


def messy_valid_file(path: Path) -> Path:
    """A valid file a copy could get wrong: BOM, CRLF and blank lines, non-ASCII text, no final LF, and a
    line longer than a reader block."""
    lines = [json.dumps(chat_request(f"r-{i}", f"prompt {i} " + "x" * 100)).encode() for i in range(40)]
    lines[3] += b"\r"
    lines[7] = json.dumps(chat_request("r-u", "Привет, 東京 — café"), ensure_ascii=False).encode()
    lines[9] = json.dumps(chat_request("r-long", "y" * 10_000)).encode()
    lines.insert(12, b"")
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines))
    return path


def test_copy_to_is_the_file_byte_for_byte(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonl, "BLOCK_SIZE", 2048)  # many blocks, and a line longer than one
    source = messy_valid_file(tmp_path / "in.jsonl")
    report = validate_file(source, copy_to=tmp_path / "copy.jsonl")
    assert report.ok and report.request_count == 40
    assert (tmp_path / "copy.jsonl").read_bytes() == source.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.jsonl", "in.jsonl"]  # no temporary left


def test_an_invalid_file_leaves_no_copy(tmp_path):
    source = messy_valid_file(tmp_path / "in.jsonl")
    source.write_bytes(source.read_bytes() + b"\n{not json\n")
    (tmp_path / "out").mkdir()
    report = validate_file(source, copy_to=tmp_path / "out" / "copy.jsonl")
    assert not report.ok
    assert list((tmp_path / "out").iterdir()) == []  # neither the copy nor a half-written temporary


def test_an_invalid_file_leaves_no_batch_behind(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(json.dumps(chat_request("a", "hi")).encode() + b"\n{not json\n")
    with pytest.raises(InvalidRequestsError, match="line 2"):
        OpenAIChatCompletionBatch(source)
    batches = default_storage().data_dir / "batches"
    assert not batches.exists() or list(batches.iterdir()) == []


@pytest.mark.skipif(not PROC_IO.exists(), reason="needs Linux's /proc/self/io to count bytes read")
def test_the_constructor_reads_the_file_once(tmp_path):
    source = write_chat_file(tmp_path / "in.jsonl", 3_000)  # ~5 MB: the rest of what is read is noise
    size = source.stat().st_size
    OpenAIChatCompletionBatch(tmp_path / "in.jsonl")  # a first batch: storage and imports are warm
    before = bytes_read()
    batch = OpenAIChatCompletionBatch(source)
    read = bytes_read() - before
    assert batch.requests_path.read_bytes() == source.read_bytes()
    assert size <= read < 1.3 * size, f"read {read:,} bytes of a {size:,}-byte file"


def test_a_copy_that_cannot_be_written_is_a_storage_error(tmp_path):
    source = messy_valid_file(tmp_path / "in.jsonl")
    with pytest.raises(StorageError, match=r"missing.*check that its folder exists"):
        validate_file(source, copy_to=tmp_path / "missing" / "copy.jsonl")


@pytest.fixture
def file_size_limit():
    """Files this process writes may not grow past the limit set (writes past it fail with EFBIG)."""
    resource = pytest.importorskip("resource")
    signal = pytest.importorskip("signal")
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error, not a killed process

    def limit(size: int) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, old_limit[1]))

    yield limit
    resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
    signal.signal(signal.SIGXFSZ, old_handler)


def test_a_copy_that_fails_midway_is_a_storage_error_and_leaves_nothing(tmp_path, file_size_limit):
    source = write_chat_file(tmp_path / "in.jsonl", 3_000)  # ~5 MB: several blocks
    (tmp_path / "out").mkdir()
    file_size_limit(1_000_000)
    with pytest.raises(StorageError, match=r"Cannot write the copy.*has room"):
        validate_file(source, copy_to=tmp_path / "out" / "copy.jsonl")
    assert list((tmp_path / "out").iterdir()) == []
