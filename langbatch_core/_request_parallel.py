"""Validating a big request file with two processes (used by ``requests.validate_file``).

The file is cut at a block boundary of the serial reader near its middle, so both halves see exactly the
blocks a serial pass would. A forked child works out the facts of the second half's lines (step 1 of
``_request_scan``: pure computation, its issues numbered from line 1); meanwhile the parent scans the
first half. The parent then tallies the child's blocks in order (duplicates across the halves, models,
the job plan) and renumbers the child's issues, so the report is identical to a serial pass.

    with path.open("rb", buffering=0) as handle:
        scan_file(scan, handle)

Only a single-threaded process on a POSIX system forks (the engine and Streamlit run validation in
threads: they get the serial pass), and only for files of ``PARALLEL_MIN_BYTES`` or more.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pickle
import tempfile
import threading
from collections.abc import Callable
from itertools import repeat
from typing import Any, BinaryIO

import numpy as np

from langbatch_core import _request_reader
from langbatch_core._request_reader import BOM, LF, Block, BlockReader, is_utf8
from langbatch_core._request_scan import Scan, fact_columns

PARALLEL_MIN_BYTES = 16 * 1024 * 1024  # below this a fork costs more than it saves
_CHILD_SHARE = 0.45  # the parent also merges the child's half: it takes less
_TAIL = 64 * 1024  # bytes read back from a block's end to find its last line end


def scan_file(scan: Scan, handle: BinaryIO) -> None:
    """Scans the whole file behind ``handle`` into ``scan``, in two processes when worth it."""
    size = os.fstat(handle.fileno()).st_size
    cut = _cut(handle.fileno(), size, scan.max_line) if can_fork(size, PARALLEL_MIN_BYTES) else None
    if cut is None:
        scan.scan(BlockReader(handle, max_line=scan.max_line))
        return
    offset, block_size = cut
    reader = BlockReader(handle, stop=offset, max_line=scan.max_line)
    child, started = None, False
    try:
        for whole in reader:
            scan.scan_whole(whole)
            if not started and scan.endpoint is not None:
                child, started = _start_child(scan, handle.name, offset, block_size), True
    finally:
        result = join_call(child)  # after an error here too: the child always ends
    scan.bom = reader.bom
    if result is None:  # no child (endpoint still unknown), or it failed: the second half here
        handle.seek(offset)
        scan.scan(BlockReader(handle, block_size, first_line=reader.next_line, max_line=scan.max_line))
        return
    _merge(scan, handle.fileno(), result, reader.next_line - 1)
    scan.close()


def _cut(fd: int, size: int, max_line: int) -> tuple[int, int] | None:
    """(offset, block size) of the serial reader's first block boundary past the middle of the file, or
    None when there is none (the reader's buffer grows for a line longer than a block: simulated too), or
    when a line before it is longer than ``max_line`` (the reader skips it: a serial pass then)."""
    block_size, offset = min(_request_reader.BLOCK_SIZE, max_line + 1), 0
    start = len(BOM) if os.pread(fd, len(BOM), 0) == BOM else 0
    while offset < size * _CHILD_SHARE:
        end = offset + block_size
        if end >= size:
            return None
        tail = max(offset + start, end - _TAIL)
        found = os.pread(fd, end - tail, tail).rfind(b"\n")
        if found == -1 and tail > offset + start:
            tail = offset + start
            found = os.pread(fd, end - tail, tail).rfind(b"\n")
        if found == -1:
            if block_size > max_line:
                return None
            block_size = min(block_size * 2, max_line + 1)
            continue
        offset, start = tail + found + 1, 0
    return offset, block_size


# ---------------------------------------------------------------------------------------- the child


@dataclasses.dataclass
class _Half:
    """What the child found: per block (first line, offset, length, ends with LF, facts, sizes, errors,
    warnings, error count, warning count), and its CRLF lines (lines counted from 1)."""

    blocks: list[tuple[Any, ...]]
    crlf: int
    first_crlf: int


def _start_child(scan: Scan, name: str, offset: int, block_size: int) -> Child | None:
    return fork_call(_second_half, scan, name, offset, block_size)


def _second_half(scan: Scan, name: str, offset: int, block_size: int) -> _Half:
    scan.errors, scan.warnings = [], []
    scan.error_count = scan.warning_count = scan.crlf = scan.first_crlf = 0
    blocks = []
    with open(name, "rb", buffering=0) as handle:
        handle.seek(offset)
        for block in BlockReader(handle, block_size, max_line=scan.max_line):
            errors, warnings = len(scan.errors), len(scan.warnings)
            error_count, warning_count = scan.error_count, scan.warning_count
            facts, sizes = scan.block_facts(block)
            blocks.append(
                (
                    block.first_line,
                    offset,
                    len(block.data),
                    block.ends_with_lf,
                    facts if sizes is not None else fact_columns(facts),
                    sizes,
                    scan.errors[errors:],
                    scan.warnings[warnings:],
                    scan.error_count - error_count,
                    scan.warning_count - warning_count,
                )
            )
            offset += block.span
    return _Half(blocks, scan.crlf, scan.first_crlf)


def _rows(columns: tuple[Any, ...]) -> list[Any]:
    ids, models, units, extra, ceilings, inputs = columns
    models = repeat(models) if models is None or isinstance(models, str) else models
    return list(zip(ids, repeat(None), models, units, extra, ceilings, inputs))


# ---------------------------------------------------------------------------------------- forking

Child = tuple[int, Any]  # (pid, the temporary file it writes its result into)


def can_fork(size: int, min_bytes: int) -> bool:
    """Whether a job on ``size`` bytes should fork: big enough, POSIX, and no other thread (forking a
    threaded process, like the engine's server or Streamlit, risks a child stuck on a lock)."""
    return size >= min_bytes and hasattr(os, "fork") and threading.active_count() == 1


def fork_call(function: Callable[..., Any], *args: Any) -> Child | None:
    """Starts ``function(*args)`` in a forked child; ``join_call`` gives its (picklable) return value.

    The child only computes and writes its pickled result into an unnamed temporary file (no pipe to wait
    on), then ends with ``os._exit`` (no cleanup handlers of the parent run there). None: no fork was
    possible (process limits); the caller then does the work itself."""
    out = tempfile.TemporaryFile()  # noqa: SIM115 (closed by join_call)
    try:
        pid = os.fork()
    except OSError:
        out.close()
        return None
    if pid:
        return pid, out
    status = 1
    try:
        pickle.dump(function(*args), out, pickle.HIGHEST_PROTOCOL)
        out.flush()
        status = 0
    finally:
        os._exit(status)


def join_call(child: Child | None) -> Any | None:
    """Waits for the child; its result, or None when it failed (or never started)."""
    if child is None:
        return None
    pid, out = child
    with out:
        _, status = os.waitpid(pid, 0)
        if status != 0:
            return None
        out.seek(0)
        return pickle.load(out)


# ---------------------------------------------------------------------------------------- the merge


def _merge(scan: Scan, fd: int, half: _Half, shift: int) -> None:
    """Tallies the child's blocks as a serial pass would, its issues renumbered by ``shift`` lines."""
    for (
        first,
        offset,
        length,
        ends_with_lf,
        facts,
        sizes,
        errors,
        warnings,
        n_errors,
        n_warnings,
    ) in half.blocks:
        room = scan.max_issues - len(scan.errors)
        scan.errors += [_shifted(issue, shift) for issue in errors[: max(room, 0)]]
        room = scan.max_issues - len(scan.warnings)
        scan.warnings += [_shifted(issue, shift) for issue in warnings[: max(room, 0)]]
        scan.error_count += n_errors
        scan.warning_count += n_warnings

        def get_block(first: int = first + shift, offset: int = offset, length: int = length) -> Block:
            return _reread(fd, first, offset, length)

        if sizes is not None:
            scan.tally_block(first + shift, length, ends_with_lf, facts, sizes, get_block)
        else:
            rows = functools.partial(_rows, facts)
            scan.tally_block(first + shift, length, ends_with_lf, rows, None, get_block, facts)
    if half.crlf:
        scan.first_crlf = scan.first_crlf or half.first_crlf + shift
        scan.crlf += half.crlf


def _shifted(issue: Any, shift: int) -> Any:
    return issue if issue.line is None else dataclasses.replace(issue, line=issue.line + shift)


def _reread(fd: int, first_line: int, offset: int, length: int) -> Block:
    """A block of the child's half read again (to sample tokens or plan jobs line by line)."""
    data = os.pread(fd, length, offset)
    view, has_cr = memoryview(data), b"\r" in data
    if not data.endswith(b"\n"):  # the file's last line, without LF
        return Block(first_line, view, 1, has_cr, is_utf8(data, view))
    marks = np.frombuffer(data, np.uint8) == LF
    return Block(first_line, view, int(np.count_nonzero(marks)), has_cr, is_utf8(data, view), marks)
