"""Where uploaded and generated files live, addressed by keys (never absolute paths) stored in the database."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_KEY_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class StorageError(Exception):
    """A key that is malformed or names no stored file."""


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
        except BaseException:
            tmp.unlink(missing_ok=True)
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
        return self._path(key).stat().st_size

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self._path(prefix), ignore_errors=True)

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageError(f"storage folder {self.root} is not writable")


def make_storage(config: dict) -> Storage:
    """The storage a deployment's config asks for (STORAGE_BACKEND; only 'local' ships today)."""
    backend = config.get("STORAGE_BACKEND", "local")
    if backend != "local":
        raise ValueError(f"unknown STORAGE_BACKEND {backend!r}: only 'local' is available")
    return LocalStorage(config["UPLOAD_FOLDER"])
