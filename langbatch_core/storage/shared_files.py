"""Batch files on a shared object store (S3 or S3-compatible), for machines that share a batch store.

    LANGBATCH_FILES=s3://team-bucket/langbatch      # default_storage() then wraps its store in this

``SharedFilesStorage(store, "s3://bucket/prefix")`` is a store that keeps records in ``store`` (PostgreSQL,
for a team) and mirrors each batch's folder to ``s3://bucket/prefix/batches/<id>/``. The local data
directory stays the working copy, so every reader of a batch's files is unchanged:

- ``save`` uploads the files that changed since the last upload, *then* saves the record (a record never
  names a file the object store lacks);
- ``load`` downloads the files that are missing here or changed there (by ETag), so a batch loaded on
  another machine has its requests, its jobs' files and its latest merged results;
- ``delete`` removes the objects too.

Hidden files (``.lock``, temp files) stay local. What was uploaded or downloaded is remembered in
``<batch dir>/.shared-files.json``. Credentials and the endpoint come from the environment as boto3 reads
them (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL`` for MinIO, moto, ...), never
from a stored setting.
"""

from __future__ import annotations

import builtins
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from langbatch_core.errors import ConfigurationError, StorageError
from langbatch_core.storage.base import BatchRecord, BatchStorage, check_batch_id
from langbatch_core.storage.files import write_atomic

FILES_ENV = "LANGBATCH_FILES"
MANIFEST = ".shared-files.json"


class SharedFilesStorage(BatchStorage):
    """``store``'s records, with each batch's files mirrored to the object store at ``url``."""

    def __init__(self, store: BatchStorage, url: str) -> None:
        super().__init__(store.data_dir)
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ConfigurationError(
                f"{FILES_ENV} must name a bucket, like s3://bucket/prefix (got {url!r}); leave it unset to "
                "keep the batches' files in the local data directory.",
                field="files",
            )
        self.store, self.url = store, url.rstrip("/")
        self.bucket, self.prefix = parts.netloc, parts.path.strip("/")
        self.shared_by_workers = store.shared_by_workers
        self._client: Any = None

    # -- records: the inner store's, with the files around them ------------------------------------------

    def save(self, record: BatchRecord) -> None:
        self.push(record.id)
        self.store.save(record)

    def load(self, batch_id: str) -> BatchRecord:
        record = self.store.load(batch_id)
        self.pull(batch_id)
        return record

    def list(self, owner: str | None = None) -> builtins.list[BatchRecord]:
        return self.store.list(owner)

    def append_audit(self, event: dict[str, Any]) -> None:
        self.store.append_audit(event)

    def read_audit(self) -> builtins.list[dict[str, Any]]:
        return self.store.read_audit()

    def delete(self, batch_id: str) -> None:
        self.store.delete(batch_id)
        keys = list(self._remote(batch_id))
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": self._key(batch_id, path)} for path in keys[start : start + 1000]]
            self._call("delete", batch_id, lambda c=chunk: self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": c}))  # fmt: skip

    @contextlib.contextmanager
    def lock(self, batch_id: str, wait: bool = True) -> Iterator[bool]:
        with self.store.lock(batch_id, wait) as held:
            yield held

    def active_batch_ids(self, worker: str, limit: int, lease_seconds: float) -> builtins.list[str]:
        return self.store.active_batch_ids(worker, limit, lease_seconds)

    def __repr__(self) -> str:
        return f"SharedFilesStorage({self.store!r}, {self.url!r})"

    # -- files ----------------------------------------------------------------------------------------

    def push(self, batch_id: str) -> builtins.list[str]:
        """Upload the batch's files that changed since they were last uploaded or downloaded; their paths."""
        folder, manifest = self.batch_dir(batch_id), self._manifest(batch_id)
        sent = []
        for path, stat in _local_files(folder):
            known = manifest.get(path, {})
            if [known.get("size"), known.get("mtime_ns")] == [stat.st_size, stat.st_mtime_ns]:
                continue
            self._call("upload", batch_id, lambda p=path: self.client.upload_file(
                str(folder / p), self.bucket, self._key(batch_id, p)))  # fmt: skip
            sent.append(path)
        if sent:
            remote = self._remote(batch_id)
            for path in sent:
                stat = (folder / path).stat()
                manifest[path] = {
                    "etag": remote.get(path),
                    "size": stat.st_size,
                    "mtime_ns": stat.st_mtime_ns,
                }
            self._write_manifest(batch_id, manifest)
        return sent

    def pull(self, batch_id: str) -> builtins.list[str]:
        """Download the batch's files missing here or changed at the object store; their paths."""
        folder, manifest = self.batch_dir(batch_id), self._manifest(batch_id)
        taken = []
        for path, etag in self._remote(batch_id).items():
            target = folder / path
            if manifest.get(path, {}).get("etag") == etag and target.is_file():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.download")
            self._call("download", batch_id, lambda p=path, t=partial: self.client.download_file(
                self.bucket, self._key(batch_id, p), str(t)))  # fmt: skip
            os.replace(partial, target)
            stat = target.stat()
            manifest[path] = {"etag": etag, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
            taken.append(path)
        if taken:
            self._write_manifest(batch_id, manifest)
        return taken

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    def _key(self, batch_id: str, path: str) -> str:
        return "/".join(part for part in (self.prefix, "batches", check_batch_id(batch_id), path) if part)

    def _remote(self, batch_id: str) -> dict[str, str]:
        """{path in the batch folder: ETag} of the batch's objects."""
        start = self._key(batch_id, "") + "/"  # the slash: lb_1 is not lb_10
        found: dict[str, str] = {}
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start)
        for page in self._call("list", batch_id, lambda: list(pages)):
            for item in page.get("Contents", []):
                found[item["Key"][len(start) :]] = item["ETag"]
        return found

    def _call(self, what: str, batch_id: str, action: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return action()
        except (BotoCoreError, ClientError, OSError) as exc:
            raise StorageError(
                f"Cannot {what} the files of batch {batch_id} at {self.url} ({exc}). Check {FILES_ENV}, the "
                "bucket, and the AWS_* credentials and AWS_ENDPOINT_URL of this machine."
            ) from None

    def _manifest(self, batch_id: str) -> dict[str, dict[str, Any]]:
        path = self.batch_dir(batch_id) / MANIFEST
        try:
            manifest: dict[str, dict[str, Any]] = orjson.loads(path.read_bytes())
            return manifest
        except (OSError, orjson.JSONDecodeError):
            return {}  # nothing synced yet (or a damaged note): compare everything again

    def _write_manifest(self, batch_id: str, manifest: dict[str, dict[str, Any]]) -> None:
        write_atomic(self.batch_dir(batch_id) / MANIFEST, orjson.dumps(manifest))


def _local_files(folder: Path) -> Iterator[tuple[str, os.stat_result]]:
    """(path relative to ``folder``, stat) of the files to share: not hidden ones (locks, temp files)."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            yield relative.as_posix(), path.stat()
