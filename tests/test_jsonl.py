"""The JSON Lines block reader read ahead on a thread: same blocks, errors raised where they happened, the
thread stopped when the consumer stops."""

from __future__ import annotations

import io
import os
import sys
import threading

import pytest

from langbatch_core import jsonl
from langbatch_core.jsonl import BlockReader


def lines_file(path, count: int = 5_000):
    path.write_bytes(b"".join(b'{"n": %d, "text": "%s"}\n' % (i, b"x" * (i % 300)) for i in range(count)))
    return path


def read_lines(reader: BlockReader) -> list[bytes]:
    found = []
    for block in reader:
        data, start = block.data, 0
        for end in block.ends:
            found.append(bytes(data[start:end]))
            start = end + 1
    return found


def reader_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "langbatch-read-ahead"]


class FailingFile(io.FileIO):
    """A real file whose reads fail once ``limit`` bytes were read (a disk error mid-file)."""

    limit = 100_000

    def readinto(self, buffer):  # type: ignore[no-untyped-def, override]
        if self.tell() >= self.limit:
            raise OSError(5, "Input/output error")
        return super().readinto(memoryview(buffer)[: self.limit - self.tell()])


def test_reading_ahead_gives_the_same_lines_and_copy(tmp_path):
    source = lines_file(tmp_path / "in.jsonl")
    with source.open("rb", buffering=0) as handle:
        expected = read_lines(BlockReader(handle, 4096))
    fd = os.open(tmp_path / "copy.jsonl", os.O_WRONLY | os.O_CREAT)
    try:
        with source.open("rb", buffering=0) as handle:
            found = read_lines(BlockReader(handle, 4096, copy=fd, ahead=2))
    finally:
        os.close(fd)
    assert found == expected == source.read_bytes().splitlines()
    assert (tmp_path / "copy.jsonl").read_bytes() == source.read_bytes()
    assert reader_threads() == []


def test_an_error_while_reading_ahead_is_raised_after_the_blocks_before_it(tmp_path):
    source = lines_file(tmp_path / "in.jsonl")
    lines = []
    with FailingFile(source, "rb") as handle, pytest.raises(OSError, match="Input/output error"):
        for block in BlockReader(handle, 4096, ahead=2):
            lines.append(block.count)
    assert 0 < sum(lines) < 5_000  # the blocks read before the error came first
    assert reader_threads() == []


def test_a_copy_that_cannot_be_written_stops_the_reading(tmp_path):
    source = lines_file(tmp_path / "in.jsonl")
    fd = os.open("/dev/full", os.O_WRONLY)  # every write: no space left on device
    try:
        with source.open("rb", buffering=0) as handle, pytest.raises(OSError, match="No space left"):
            read_lines(BlockReader(handle, 4096, copy=fd, ahead=2))
    finally:
        os.close(fd)
    assert reader_threads() == []


def test_a_consumer_that_stops_early_stops_the_thread(tmp_path):
    source = lines_file(tmp_path / "in.jsonl")
    with source.open("rb", buffering=0) as handle:
        blocks = iter(BlockReader(handle, 4096, ahead=2))
        next(blocks)
        assert len(reader_threads()) == 1
        blocks.close()
    assert reader_threads() == []


def test_the_switch_interval_is_lowered_while_reading_ahead_and_restored(tmp_path):
    """The reading thread would wait up to 5 ms for the GIL after each read while its caller decodes."""
    source = lines_file(tmp_path / "in.jsonl")
    before = sys.getswitchinterval()
    seen = []
    with source.open("rb", buffering=0) as one, source.open("rb", buffering=0) as two:
        outer = iter(BlockReader(one, 4096, ahead=2))
        next(outer)
        for _ in BlockReader(two, 4096, ahead=2):  # a second reader at once (another thread's, say)
            seen.append(sys.getswitchinterval())
        seen.append(sys.getswitchinterval())  # the first is still reading
        outer.close()
    assert seen and all(value == pytest.approx(jsonl.SWITCH_INTERVAL) for value in seen)
    assert sys.getswitchinterval() == before
