"""Where uploaded and generated files live, addressed by keys (never absolute paths) stored in the database."""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from flask import current_app

SCRATCH_PREFIX = "srs-"  # scratch folders and files; the sweeper removes old ones left by a hard kill
_KEY_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class StorageError(Exception):
    """A key that is malformed or names no stored file."""


class StorageFull(StorageError):
    """The file system holding the files (or the scratch folder) has no space left: nothing was kept."""


# What the operating system answers when a file system or a quota is full.
NO_SPACE = {errno.ENOSPC, errno.EDQUOT}


def validate_key(key: str) -> str:
    """Check that key is 'part/part/...' made of safe names, so no key can leave the storage root.

    Raises StorageError for empty parts, '..', absolute paths, backslashes or unusual characters.
    """
    parts = key.split("/")
    if not key or any(not _KEY_PART.match(p) or p in {".", ".."} for p in parts):
        raise StorageError(f"invalid storage key: {key!r}")
    return key


class Storage(ABC):
    """Interface of a file store: save, open, local path, delete, by key."""

    @abstractmethod
    def save(self, key: str, source: Path, *, move: bool = False) -> int:
        """Store the file at source under key, atomically (readers never see half a file).

        Returns its size in bytes. With move=True the source may be moved instead of copied.
        """

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """Open the stored file for binary reading; StorageError if there is none."""

    @abstractmethod
    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        """Yield a local path holding the file's bytes for the duration of the block."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether a file is stored under key."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the file if it exists."""

    @abstractmethod
    def size(self, key: str) -> int:
        """Size of the stored file in bytes."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> None:
        """Remove every file whose key starts with `prefix/`."""

    @abstractmethod
    def check(self) -> None:
        """Raise if the store cannot be used now (for the health check); cheap."""

    def free_bytes(self) -> int | None:
        """Space left for new files, in bytes; None when the store has no such limit (S3)."""
        return None


class LocalStorage(Storage):
    """Files under one local folder; writes go to a temporary file renamed into place."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def save(self, key: str, source: Path, *, move: bool = False) -> int:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            if move:
                shutil.move(str(source), tmp)
            else:
                shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError) and exc.errno in NO_SPACE:
                raise StorageFull(f"no space left in {self.root} to store {key!r}") from exc
            raise
        return target.stat().st_size

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError as exc:
            raise StorageError(f"no stored file under {key!r}") from exc

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        if not path.is_file():
            raise StorageError(f"no stored file under {key!r}")
        yield path

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as exc:
            raise StorageError(f"no stored file under {key!r}") from exc

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self._path(prefix), ignore_errors=True)

    def free_bytes(self) -> int | None:
        self.root.mkdir(parents=True, exist_ok=True)
        return shutil.disk_usage(self.root).free

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageError(f"storage folder {self.root} is not writable")


class S3Storage(Storage):
    """Files as objects in an S3-compatible bucket under a key prefix, streamed through a local scratch folder.

    Endpoint, region and credentials come from boto3's usual sources (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, ~/.aws, instance roles). Transfers go through boto3's managed
    upload and download (multipart, chunked), so no file is ever held whole in memory.
    """

    def __init__(self, bucket: str, prefix: str, scratch: str | Path) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.scratch = Path(scratch)
        self._client = None
        self._client_pid = 0

    @property
    def client(self):
        # boto3 clients must not cross a fork (Celery's prefork pool): one per process, made on first use.
        if self._client is None or self._client_pid != os.getpid():
            import boto3
            from botocore.config import Config as BotoConfig

            config = BotoConfig(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"})
            self._client = boto3.client("s3", config=config)
            self._client_pid = os.getpid()
        return self._client

    def _object(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _missing(self, exc: Exception) -> bool:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        return code in {"404", "NoSuchKey", "NotFound"}

    def _scratch_file(self):
        self.scratch.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryFile(dir=self.scratch, prefix=SCRATCH_PREFIX + "s3-")

    def save(self, key: str, source: Path, *, move: bool = False) -> int:
        name = self._object(key)
        size = Path(source).stat().st_size
        self.client.upload_file(str(source), self.bucket, name)  # one PUT or a multipart upload: atomic either way
        if move:
            Path(source).unlink(missing_ok=True)
        return size

    def open(self, key: str) -> BinaryIO:
        name = self._object(key)
        spool = self._scratch_file()
        try:
            self.client.download_fileobj(self.bucket, name, spool)
        except Exception as exc:
            spool.close()
            if self._missing(exc):
                raise StorageError(f"no stored file under {key!r}") from exc
            raise
        spool.seek(0)
        return spool

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        name = self._object(key)
        self.scratch.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(dir=self.scratch, prefix=SCRATCH_PREFIX + "s3-"))
        path = folder / key.rsplit("/", 1)[-1]
        try:
            try:
                self.client.download_file(self.bucket, name, str(path))
            except Exception as exc:
                if self._missing(exc):
                    raise StorageError(f"no stored file under {key!r}") from exc
                raise
            yield path
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _head(self, key: str) -> dict | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._object(key))
        except Exception as exc:
            if self._missing(exc):
                return None
            raise

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._object(key))

    def size(self, key: str) -> int:
        head = self._head(key)
        if head is None:
            raise StorageError(f"no stored file under {key!r}")
        return int(head["ContentLength"])

    def delete_prefix(self, prefix: str) -> None:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._object(prefix) + "/"
        )
        for page in pages:
            objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if objects:  # a page holds at most 1000 keys, the most one delete_objects call takes
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)


def make_storage(config: dict) -> Storage:
    """The storage a deployment's config asks for: STORAGE_URL s3://bucket/prefix, else the local UPLOAD_FOLDER."""
    url = config.get("STORAGE_URL") or ""
    if not url:
        return LocalStorage(config["UPLOAD_FOLDER"])
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"STORAGE_URL {url!r} is not understood: use s3://bucket/prefix, or leave it empty")
    return S3Storage(parts.netloc, parts.path, config["TEMPORARY_UPLOAD_FOLDER"])


def get_storage() -> Storage:
    """The current app's storage (set up by create_app)."""
    return current_app.extensions["storage"]


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A fresh local folder under TEMPORARY_UPLOAD_FOLDER for the block, removed afterwards.

    Folders a hard-killed process left behind are removed by the sweeper (see lifecycle.clean_scratch).
    """
    root = Path(current_app.config["TEMPORARY_UPLOAD_FOLDER"])
    root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(dir=root, prefix=SCRATCH_PREFIX + prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
