"""What every dashboard page shares: the data directory, the batch store, error display, uploads, caches.

    import common
    common.sidebar()
    with common.shown_errors("Starting the batch"):
        batch.start()

Pages stay short scripts; anything they would repeat lives here. Nothing here talks SQL or HTTP: it calls
``langbatch_core``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import signin
import streamlit as st

from langbatch_core import config
from langbatch_core.errors import (
    BatchNotFoundError,
    InvalidRequestsError,
    LangBatchError,
    MissingAPIKeyError,
    ProviderUnavailableError,
)
from langbatch_core.providers.retry import Retrying
from langbatch_core.results.index import find_line, line_index
from langbatch_core.storage.base import BatchSummary
from langbatch_core.storage.base import start_interrupted as storage_start_interrupted
from langbatch_core.storage.files import write_atomic

log = logging.getLogger("langbatch.dashboard")

MAX_UPLOAD_BYTES = 200 * 1024 * 1024  # OpenAI's limit for one batch input file
ACTIVE_STATUSES = frozenset({"submitting", "validating", "in_progress", "finalizing", "cancelling"})
FAILED_HELP = "The API answered these requests with an error (see Errors by code)."
NOT_RUN_HELP = "Never answered: expired, cancelled or lost. Retry failed resubmits them."
EMPTY = "—"  # what an empty value looks like on every page
REFRESH_SECONDS = 2  # how often the Batches page polls while a batch runs
# the auto-refresh rides out provider trouble for seconds, not minutes: the page must not freeze
REFRESH_RETRY = Retrying(deadline=2.0, base_delay=0.2, max_delay=1.0, attempt_timeout=3.0)
SAMPLES = {
    "Chat completions: short questions": "chat.jsonl",
    "Embeddings: short sentences": "embeddings.jsonl",
}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]()<>!:$~|#])")  # links, images, html, emoji, latex
_AUTOLINK = re.compile(r"(?i):(?=//)|\bwww(?=\.)|@(?=\w)")  # where a bare URL, www. or e-mail starts
_WORD_JOINER = "\u2060"
# one create or action at a time: a double click, or a rerun during the first, must not do it twice
_ACTION_LOCK = threading.Lock()


# ---------------------------------------------------------------- data directory and store


def data_dir() -> Path:
    """The data directory (``LANGBATCH_DATA_DIR`` or ``~/.langbatch``), created if missing."""
    return config.data_dir()


@st.cache_resource(show_spinner=False)
def _storage_for(path: str, store: str, files: str) -> Any:
    from langbatch_core.storage import default_storage

    return default_storage(Path(path))  # store and files: the settings it reads, in the cache key


def storage() -> Any:
    """The default batch store of the data directory (``<data>/langbatch.duckdb``, shared with Python and
    the CLI; a team's ``LANGBATCH_STORE`` / ``LANGBATCH_FILES`` when set)."""
    env = os.environ
    return _storage_for(str(data_dir()), env.get("LANGBATCH_STORE", ""), env.get("LANGBATCH_FILES", ""))


# ---------------------------------------------------------------- errors and untrusted text


def md_escape(text: object) -> str:
    """``text`` escaped for the markdown of ``st.error``/``st.info``: no links, images, emoji or colours.

    Use it for any string that came from a file, a provider or an exception; better still, show such
    strings with ``st.text``, ``st.code`` or ``st.dataframe``, which never interpret them.
    """
    # markdown turns bare URLs into links even when escaped; an invisible word joiner stops it
    unlinked = _AUTOLINK.sub(lambda m: m.group(0) + _WORD_JOINER, str(text))
    return _MARKDOWN_SPECIALS.sub(r"\\\1", unlinked)


def error_message(exc: BaseException, action: str) -> str:
    """The sentence a user sees for ``exc``: what failed and what to do, never a stack trace."""
    text = md_escape(exc)
    if isinstance(exc, MissingAPIKeyError):
        return f"{action} failed: {text} See the Settings page."
    if isinstance(exc, ProviderUnavailableError):
        return f"{action} failed: {text} The Settings page shows the local engine and connections."
    if isinstance(exc, LangBatchError):
        return f"{action} failed: {text}"
    if isinstance(exc, OSError):
        where = f" ({md_escape(exc.filename)})" if exc.filename else ""
        reason = md_escape(exc.strerror or exc)
        return f"{action} failed: {reason}{where}. Check the disk and the data directory."
    return (
        f"{action} failed unexpectedly: {type(exc).__name__}: {text}. "
        "The details are in the terminal that runs the dashboard."
    )


@contextmanager
def shown_errors(action: str, where: Any = None) -> Iterator[None]:
    """Run a block; an error becomes an ``st.error`` box (in ``where`` if given) instead of a traceback.

    Streamlit's own control flow (``st.rerun``, ``st.stop``) derives from ``BaseException`` and passes.
    """
    try:
        yield
    except Exception as exc:
        if not isinstance(exc, LangBatchError):
            log.exception("%s failed", action)
        (where or st).error(error_message(exc, action), icon=":material/warning:")


# ---------------------------------------------------------------- uploads and samples


def safe_file_name(name: str) -> str:
    """``name`` reduced to a harmless base name: no directories, no leading dots, ``.jsonl`` kept."""
    base = _SAFE_NAME.sub("_", Path(name.replace("\\", "/")).name).strip("._") or "upload"
    stem = base[: -len(".jsonl")] if base.lower().endswith(".jsonl") else base
    return (stem[:80].strip("._") or "upload") + ".jsonl"


def check_upload(name: str, data: bytes) -> None:
    """Refuse what cannot be a request file, before anything is stored (``InvalidRequestsError``)."""
    if not name.lower().endswith(".jsonl"):
        raise InvalidRequestsError(
            f"{name!r} is not a .jsonl file. Upload a JSONL file: one JSON request per line, "
            "in OpenAI's batch format."
        )
    if len(data) > MAX_UPLOAD_BYTES:
        raise InvalidRequestsError(
            f"{name!r} is {len(data) / 1e6:.0f} MB; a batch input file may be at most "
            f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB. Split it into several files."
        )
    head = data[:65536]
    if b"\x00" in head:
        raise InvalidRequestsError(f"{name!r} is a binary file, not JSONL text. Upload a .jsonl file.")
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if first and first != b"{":
        raise InvalidRequestsError(
            f"{name!r} does not look like JSONL: each line must be a JSON object starting with '{{'. "
            "Upload the request file in OpenAI's batch format."
        )


def save_upload(name: str, data: bytes) -> Path:
    """Store an uploaded request file under ``<data>/uploads/`` and return its path.

    The name is reduced to a safe base name and the file lands in a folder named by its content hash, so
    it can never write outside the data directory; it is written to a temp file and renamed, so a failed
    upload leaves nothing behind.
    """
    check_upload(name, data)
    uploads = (data_dir() / "uploads").resolve()
    folder = uploads / hashlib.sha256(data).hexdigest()[:16]
    target = (folder / safe_file_name(name)).resolve()
    if not target.is_relative_to(uploads):  # defence in depth; safe_file_name already prevents it
        raise InvalidRequestsError(f"{name!r} is not an acceptable file name.")
    if target.exists() and target.stat().st_size == len(data):
        return target
    write_atomic(target, data)
    return target


def sample_path(label: str) -> Path:
    """The bundled sample file shown as ``label`` in the New batch page."""
    import langbatch_core

    return Path(langbatch_core.__file__).parent / "samples" / SAMPLES[label]


# ---------------------------------------------------------------- cached work


def file_key(path: Path | str) -> tuple[str, int, int]:
    """A cache key that changes when the file does: (path, mtime in ns, size)."""
    stat = Path(path).stat()
    return (str(path), stat.st_mtime_ns, stat.st_size)


@st.cache_data(show_spinner="Validating the file…", max_entries=16)
def _validate(key: tuple[str, int, int]) -> Any:
    from langbatch_core.requests import validate_file

    return validate_file(key[0])


def validate(path: Path) -> Any:
    """The ``ValidationReport`` of ``path``, cached until the file changes."""
    return _validate(file_key(path))


@st.cache_data(show_spinner="Checking the requests against the connection…", max_entries=16)
def _refusals(key: tuple[str, int, int], name: str, _capabilities: Any) -> list[Any]:
    from langbatch_core.requests import validate_file

    report = validate_file(key[0], capabilities=_capabilities)
    return [issue for issue in report.issues if issue.code == "unsupported_parameter"]


def refusals(path: Path, conn: Any) -> list[Any]:
    """The issues of ``path`` that the model behind ``conn`` refuses (the provider's ``capabilities``), by
    line; cached until the file changes."""
    import connections

    from langbatch_core.providers import provider_for

    capabilities = provider_for(connections.to_core(conn), data_dir=data_dir()).capabilities
    return [] if capabilities is None else _refusals(file_key(path), capabilities.name, capabilities)


# ---------------------------------------------------------------- validation report tables


def issues_table(issues: list[Any]) -> pd.DataFrame:
    """The report's issues as rows: line, severity, code, field, message."""
    rows = [
        {"line": i.line, "severity": i.severity, "code": i.code, "field": i.param or "", "message": i.message}
        for i in issues
    ]
    return pd.DataFrame(rows, columns=["line", "severity", "code", "field", "message"]).astype(
        {"line": "Int64"}
    )


def issue_summary(issues: list[Any]) -> pd.DataFrame:
    """The issues grouped by code, most frequent first: severity, code, count, lines (first ten), example."""
    groups: dict[tuple[str, str], list[Any]] = {}
    for issue in issues:
        groups.setdefault((issue.severity, issue.code), []).append(issue)
    rows = []
    for (severity, code), found in groups.items():
        lines = sorted({i.line for i in found if i.line is not None})
        shown = ", ".join(f"{n:,}" for n in lines[:10]) + (
            f" … (+{len(lines) - 10:,})" if len(lines) > 10 else ""
        )
        rows.append(
            {
                "severity": severity,
                "code": code,
                "count": len(found),
                "lines": shown,
                "example": found[0].message,
            }
        )
    table = pd.DataFrame(rows, columns=["severity", "code", "count", "lines", "example"])
    return table.sort_values(["severity", "count"], ascending=[True, False], ignore_index=True)


def plan_table(jobs: list[Any]) -> pd.DataFrame:
    """The split plan as rows: job, first and last line, requests, size, input tokens."""
    rows = [
        {
            "job": n,
            "lines": f"{j.first_line:,}–{j.last_line:,}",
            "requests": j.request_count,
            "MB": round(j.bytes / 1e6, 2),
            "input tokens": j.input_tokens,
        }
        for n, j in enumerate(jobs, start=1)
    ]
    return pd.DataFrame(rows, columns=["job", "lines", "requests", "MB", "input tokens"])


def models_text(report: Any) -> str:
    """The model(s) a report found, as plain text."""
    models = list(getattr(report, "models", None) or ([report.model] if report.model else []))
    if not models:
        return "—"
    more = f" (+{len(models) - 3} more)" if len(models) > 3 else ""
    return ", ".join(models[:3]) + more


# ---------------------------------------------------------------- batches


def default_batch_name(path: Path) -> str:
    """A name suggested for a batch made from ``path``: the file's stem."""
    return path.stem[:100]


def clean_batch_name(name: str) -> str:
    """``name`` without control characters, trimmed to 100 characters (it is a label, never a path)."""
    return "".join(ch for ch in name if ch.isprintable()).strip()[:100]


def create_batch(
    path: Path, endpoint: str | None, conn: Any, name: str, max_cost_usd: float | None = None
) -> Any:
    """Create and save a batch of the right kind for ``endpoint`` in the dashboard's store, owned by the
    viewer (``max_cost_usd``: its own spend cap)."""
    import connections

    from langbatch_core import Batch, OpenAIChatCompletionBatch, OpenAIEmbeddingBatch

    kinds = {"/v1/chat/completions": OpenAIChatCompletionBatch, "/v1/embeddings": OpenAIEmbeddingBatch}
    kind = kinds.get(endpoint or "", Batch)
    batch = kind(
        str(path),
        connection=connections.to_core(conn),
        storage=storage(),
        name=clean_batch_name(name) or None,
        owner=signin.viewer().user,
        max_cost_usd=max_cost_usd,
    )
    batch.team_settings, batch.access = signin.team_settings(), signin.viewer().access
    batch.save()
    return batch


def form_token(*content: Any) -> str:
    """A token for what the New batch form shows (file, connection, name): the same while it stays the same.

    ``create_once`` makes at most one batch per token, so a second press of Create, a double click or a
    rerun while the first create runs finds the batch already made instead of making another.
    """
    form = st.session_state.get("nb_form")
    if form is None or form[0] != content:
        form = (content, uuid.uuid4().hex)
        st.session_state["nb_form"] = form
    return form[1]


def made_from(token: str) -> str | None:
    """The id of the batch already created from the form content of ``token``, if any."""
    return st.session_state.get("nb_made", {}).get(token)


def create_once(token: str, make: Any) -> tuple[Any, bool]:
    """(batch, True) when ``make()`` made it now; (the batch made earlier from ``token``, False) if any."""
    with _ACTION_LOCK:
        made = st.session_state.setdefault("nb_made", {})
        if token in made:
            try:
                return load_batch(made[token]), False
            except BatchNotFoundError:
                del made[token]  # deleted since: this press makes a new one
        batch = make()
        made[token] = batch.id  # no Streamlit call in between: a rerun cannot come between make and record
        return batch, True


def list_batches() -> list[Any]:
    """The batch records the viewer sees, newest first: every one for an admin (and without sign-in),
    else their own."""
    return storage().list(owner=signin.viewer().access.owner_filter)


def list_summaries() -> list[Any]:
    """``list_batches()`` as ``BatchSummary``s (what a listing shows, read without the whole records)."""
    return storage().summaries(owner=signin.viewer().access.owner_filter)


def load_record(batch_id: str) -> Any:
    """The stored record of ``batch_id`` if the viewer may see it; BatchNotFoundError otherwise (another
    person's batch is not shown to exist)."""
    record = storage().load(batch_id)
    if not signin.viewer().may_see(record):
        raise BatchNotFoundError(f"No batch {batch_id} of yours: it may belong to someone else.")
    return record


def load_batch(batch_id: str) -> Any:
    """The ``Batch`` of ``batch_id`` from the dashboard's store, acting as the viewer (audit log, caps);
    BatchNotFoundError if the viewer may not see it."""
    from langbatch_core import Batch

    load_record(batch_id)
    viewer = signin.viewer()
    batch = Batch.load(batch_id, storage=storage(), actor=viewer.user)
    batch.team_settings, batch.access = signin.team_settings(), viewer.access
    return batch


def spend_lines() -> list[str]:
    """This month's spend against each cap that applies to the viewer, as sentences (none: no caps)."""
    from langbatch_core import budgets

    lines = []
    for line in budgets.standing(storage(), signin.viewer().user, signin.team_settings()):
        whose = "Your" if line.kind == "user" else f"Team {line.who}'s"
        lines.append(
            f"{whose} spend this month: {money(line.spent)} of {money(line.cap)} ({money(line.left)} left)."
        )
    return lines


def audited(read: Any, record: Any, what: str) -> Any:
    """``read`` (a download button's data callable) that first records who downloaded ``what`` of the
    batch: it runs when the file is asked for, not when the button is drawn (outside the script run, where
    ``st.user`` is empty: who it is drawn for is taken now)."""
    who, store = signin.viewer().user, storage()

    def data() -> Any:
        from langbatch_core import audit

        audit.record(store, who, "downloaded", record.id, what)
        return read()

    return data


def start_interrupted(record: Any) -> bool:
    """Its jobs were never handed to the provider (a start that failed or stopped): nothing runs anywhere.
    ``record``: a ``BatchRecord`` or a ``BatchSummary`` (which says it)."""
    if isinstance(record, BatchSummary):
        return record.start_interrupted
    return storage_start_interrupted(record.jobs)


def is_running(record: Any) -> bool:
    """Work is under way at the provider: worth polling and refreshing the page for."""
    return record.status in ACTIVE_STATUSES and not start_interrupted(record)


def poll_active(records: list[Any]) -> list[str]:
    """Ask the provider about every running batch (the store is updated); messages for those that failed.

    Each poll has a short retry budget (``REFRESH_RETRY``); a provider still unreachable after it is said
    so, calmly: the page polls again in ``REFRESH_SECONDS``."""
    messages = []
    for record in records:
        if is_running(record):
            try:
                batch = load_batch(record.id)
                batch.provider.retrying = REFRESH_RETRY
                batch.get_status()
            except ProviderUnavailableError:
                messages.append(
                    f"Batch {record.id}: provider unreachable, retrying every {REFRESH_SECONDS} s. Nothing "
                    "is lost: the figures below are from the last refresh that reached it."
                )
            except Exception as exc:
                messages.append(error_message(exc, f"Refreshing batch {record.id}"))
    return messages


def start_once(batch_id: str) -> bool:
    """Start the stored batch unless it is started already (by an earlier press whose run was cut short);
    True if this call started it."""
    with _ACTION_LOCK:
        batch = load_batch(batch_id)
        if not can_start(batch.record):
            return False
        batch.start()
        return True


def can_start(record: Any) -> bool:
    """Not started yet, or a start that was interrupted (jobs recorded but never submitted)."""
    return record.status == "not_started" or any(job.status == "submitting" for job in record.jobs)


def batch_action(batch_id: str, action: str) -> str:
    """Run ``action`` (start, refresh, retry, cancel, delete) on a stored batch; say what happened."""
    batch = load_batch(batch_id)
    if action == "start":
        batch.start()
        return f"Batch {batch_id} started."
    if action == "refresh":
        batch.get_status()
        return f"Batch {batch_id} refreshed."  # its status is shown below: a message never goes stale
    if action == "retry":
        count = batch.retry()
        if count:
            return f"Resubmitted {count:,} request(s)."
        return (
            "Nothing to retry: no request failed for a reason worth retrying. Requests the API rejected as "
            "invalid stay failed: see Errors by code, fix them and create a new batch."
        )
    if action == "cancel":
        batch.cancel()
        return f"Cancel sent for batch {batch_id}: requests already answered keep their results."
    if action == "delete":
        if any(job.active for job in batch.record.jobs):
            batch.cancel()
        batch.delete(force=True)
        return f"Batch {batch_id} deleted."
    raise ValueError(f"unknown action {action!r}")


def action_stamp(record: Any) -> str:
    """The state a Batches page button was drawn for: attempts and jobs. Start, Retry and Cancel change it,
    so a second press of a button drawn before the first press took effect is seen as stale."""
    return f"{record.attempts}.{len(record.jobs)}"


def request_action(batch_id: str, action: str, stamp: str) -> None:
    """A button's ``on_click``: remember the action with the state it was drawn for (run by the page)."""
    st.session_state["bt_request"] = (batch_id, action, stamp)


def _stale(record: Any, action: str, stamp: str) -> str | None:
    """Why ``action`` pressed on a page drawn for ``stamp`` is not run now; None when it should run."""
    if action == "start" and not can_start(record):
        return f"Batch {record.id} is already started ({record.status}): nothing to do."
    if action == "cancel" and not any(job.active for job in record.jobs):
        return f"Batch {record.id} is already {record.status}: nothing to cancel."
    if action == "retry" and stamp != action_stamp(record):
        return f"Batch {record.id} was already retried (attempt {record.attempts}): nothing resubmitted."
    if action == "retry" and record.status in ACTIVE_STATUSES:
        return f"Batch {record.id} is still {record.status}: retry it once it has finished."
    return None


def run_requested_action() -> tuple[str, str] | None:
    """Run the action a button asked for, once: ("success" | "info", what happened); None if none asked.

    An action whose batch moved on since its button was drawn (a double click, a second press) is not run
    again: the answer is a quiet note saying so.
    """
    request = st.session_state.pop("bt_request", None)
    if request is None:
        return None
    batch_id, action, stamp = request
    with _ACTION_LOCK:
        try:
            record = load_record(batch_id)
        except BatchNotFoundError:
            return "info", f"Batch {batch_id} is already deleted."
        stale = _stale(record, action, stamp)
        if stale:
            return "info", stale
        message = batch_action(batch_id, action)
    return ("info" if message.startswith("Nothing to retry") else "success"), message


def pick_batch(records: list[Any], label: str, key: str, describe: Any = None) -> Any:
    """A select box of ``records`` (by id, the first chosen until the user picks); the chosen record."""
    by_id = {r.id: r for r in records}
    if st.session_state.get(key) not in by_id:
        st.session_state[key] = records[0].id
    describe = describe or (lambda r: "")
    chosen = st.selectbox(
        label,
        list(by_id),
        format_func=lambda i: f"{by_id[i].name or 'unnamed'} · {i}{describe(by_id[i])}",
        key=key,
    )
    return by_id[chosen]


def requests_file(batch_id: str) -> Path:
    """The batch's request file, ``<data>/batches/<id>/requests.jsonl``."""
    return storage().batch_dir(batch_id) / "requests.jsonl"


def results_file(record: Any) -> Path | None:
    """The batch's merged result JSONL, ``<data>/batches/<id>/results.jsonl`` (``None`` until it exists).

    Read from disk without asking the provider: the Batches page's refresh keeps it current.
    """
    path = storage().batch_dir(record.id) / "results.jsonl"
    return path if path.exists() else None


# cache_resource, not cache_data: a cache_data hit unpickles a copy (~0.25 s for 50,000 rows) on every rerun.
# The table is shared read-only: the pages filter into new frames and never change it.
@st.cache_resource(show_spinner="Loading the results…", max_entries=2)  # a 50,000-row table: ~100 MB
def _load_table(results: tuple[str, int, int], requests: tuple[str, int, int] | None) -> pd.DataFrame:
    from langbatch_core.results.kept import results_table

    # in the request file's order (a result file lists failures last); kept beside the results on disk
    return results_table(Path(results[0]), Path(requests[0]) if requests else None)


def results_table(record: Any) -> pd.DataFrame | None:
    """The flat results table of a batch (one row per request), cached until its files change."""
    path = results_file(record)
    if path is None:
        return None
    requests = requests_file(record.id)
    return _load_table(file_key(path), file_key(requests) if requests.exists() else None)


def errors_by_code(record: Any) -> pd.DataFrame:
    """Failed requests and failed jobs grouped by error code: code, count, an example message."""
    from langbatch_core.results.summary import errors_by_code as summary

    return summary(record.jobs, results_table(record), running=is_running(record))


RESULT_GRID_ROWS, RESULT_GRID_HEIGHT = 16, 600  # a longer view scrolls in a 600 px grid (16 rows at once)
RESULT_COLUMN_CONFIG = {
    "custom_id": st.column_config.TextColumn("custom_id", pinned=True),
    "error_code": st.column_config.TextColumn("error code", width="medium"),
    "error_message": st.column_config.TextColumn("error message", width="medium"),
    "answer": st.column_config.TextColumn("answer", width="large", help="Click a row to read it whole."),
    "prompt": st.column_config.TextColumn("prompt", width="medium"),
    "finish_reason": st.column_config.TextColumn("finish reason", width="small"),
    "total_tokens": st.column_config.NumberColumn("total tokens", width="small"),
    "prompt_tokens": st.column_config.NumberColumn("prompt tokens", width="small"),
    "completion_tokens": st.column_config.NumberColumn("completion tokens", width="small"),
    "status_code": st.column_config.NumberColumn("HTTP status", width="small"),
}


@st.cache_resource(show_spinner="Indexing the file…", max_entries=8)
def _line_index(key: tuple[str, int, int]) -> dict[str, int]:
    return line_index(key[0])


def _find_line(path: Path, custom_id: str) -> Any:
    return find_line(path, custom_id, _line_index(file_key(path))) if path.exists() else None


def row_detail(record: Any, custom_id: str) -> tuple[Any, Any]:
    """(request line, result line) of ``custom_id`` in the batch's files; ``None`` for what is missing."""
    results = results_file(record)
    result = _find_line(results, custom_id) if results else None
    return _find_line(requests_file(record.id), custom_id), result


def pretty(value: Any) -> str:
    """``value`` as indented JSON text (shown with ``st.code``: never interpreted)."""
    import orjson

    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


# ---------------------------------------------------------------- the local engine


def engine_status() -> dict[str, Any]:
    """``{"running": bool, "base_url": ..., "backend", "model", "running_batches", ...}`` of the local engine.

    The engine named by ``LANGBATCH_ENGINE_URL`` if set, else the one serving the data directory.
    """
    import connections

    from langbatch_core.local.engine import health, running_engine

    url = os.environ.get(connections.ENGINE_URL_ENV)
    if not url:
        info = running_engine(data_dir())
        url = info["base_url"] if info else None
    answer = health(url) if url else None
    return {**(answer or {}), "running": answer is not None, "base_url": url}


def start_engine() -> str:
    """Start (or find) the engine serving the data directory; its base URL."""
    from langbatch_core.local import ensure_local_engine

    return ensure_local_engine(data_dir())


# ---------------------------------------------------------------- layout


def sidebar() -> None:
    """The sidebar every page shows: where the data lives."""
    with st.sidebar:
        st.caption("Data directory")
        st.code(str(data_dir()), language=None, wrap_lines=True)


def table(data: Any, **kwargs: Any) -> Any:
    """``st.dataframe`` without its index, empty cells shown as "—" (never "None" or "nan")."""
    return st.dataframe(data, hide_index=True, placeholder=EMPTY, **kwargs)


def money(value: float | None) -> str:
    """``$0.0123`` or ``—`` when unknown."""
    if value is None:
        return "—"
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def chart(figure: Any) -> None:
    """Draw an Altair chart across the page at the height it asks for (plus room for title and axis).

    Streamlit's default "content" height squashes charts whose y axis is a list of names.
    """
    st.altair_chart(figure, width="stretch", height=int(figure.height) + 70)


def size(num_bytes: int) -> str:
    """``812 B``, ``2.5 KB``, ``79.1 MB``."""
    if num_bytes < 1000:
        return f"{num_bytes} B"
    return f"{num_bytes / 1e3:,.1f} KB" if num_bytes < 1e6 else f"{num_bytes / 1e6:,.1f} MB"


def count(value: int | None) -> str:
    """``12,345`` or ``—``."""
    return "—" if value is None else f"{value:,}"
