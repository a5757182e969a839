"""Inspect uploaded zip archives and read their single CSV member with a cap on decompressed bytes."""

import io
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from app.evaluation.errors import ValidationError

_SUPPORTED_COMPRESSION = {
    zipfile.ZIP_STORED,
    zipfile.ZIP_DEFLATED,
    zipfile.ZIP_BZIP2,
    zipfile.ZIP_LZMA,
}


def format_bytes(nb_bytes: int) -> str:
    """Human size in MB (10**6 bytes), precise enough for small caps used in tests."""
    return f"{nb_bytes / 1_000_000:g} MB"


def _is_ignored(name: str) -> bool:
    """Metadata that archivers add on their own (macOS resource forks, dot files)."""
    parts = PurePosixPath(name).parts
    return bool(parts) and (parts[0] == "__MACOSX" or parts[-1].startswith("."))


def _unsafe_reason(name: str) -> str | None:
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/"):
        return "is an absolute path"
    if len(name) >= 2 and name[1] == ":":
        return "starts with a drive letter"
    if ".." in PurePosixPath(name).parts:
        return "contains '..'"
    if "\x00" in name:
        return "contains a NUL character"
    return None


def inspect_upload(path: Path, *, max_member_bytes: int) -> str:
    """Check an uploaded zip holds exactly one safe, unencrypted, small-enough CSV; return its name."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValidationError("The file is not a zip archive: upload a .zip holding one .csv file.") from exc
    with archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValidationError(
            f"The zip archive holds several members named {', '.join(map(repr, duplicates))}: "
            "rebuild it with one .csv file."
        )
    for name in names:
        reason = _unsafe_reason(name)
        if reason:
            raise ValidationError(
                f"The zip member name {name!r} {reason}: rebuild the archive with the .csv at its top level."
            )
    files = [info for info in infos if not info.is_dir() and not _is_ignored(info.filename)]
    csvs = [info for info in files if info.filename.lower().endswith(".csv")]
    if not csvs:
        found = ", ".join(repr(info.filename) for info in files[:5]) or "nothing"
        raise ValidationError(
            f"The zip archive holds no .csv file (found {found}): upload a .zip holding one .csv file."
        )
    if len(files) > 1:
        listed = ", ".join(repr(info.filename) for info in files[:5])
        more = f" and {len(files) - 5} more" if len(files) > 5 else ""
        raise ValidationError(
            f"The zip archive holds {len(files)} files ({listed}{more}): upload a .zip holding only one .csv file."
        )
    member = csvs[0]
    if member.flag_bits & 0x1:
        raise ValidationError(f"The zip member {member.filename!r} is encrypted: upload an archive without a password.")
    if member.compress_type not in _SUPPORTED_COMPRESSION:
        raise ValidationError(
            f"The zip member {member.filename!r} uses an unsupported compression method "
            f"({member.compress_type}): compress it with the standard 'deflate' method."
        )
    if member.file_size > max_member_bytes:
        raise ValidationError(
            f"The zip member {member.filename!r} decompresses to {format_bytes(member.file_size)}, "
            f"more than the {format_bytes(max_member_bytes)} allowed: upload a smaller trace."
        )
    return member.filename


class _CappedReader(io.RawIOBase):
    """Decompress a zip member, failing once more than `max_bytes` have come out."""

    def __init__(self, path: Path, member: str, max_bytes: int):
        super().__init__()
        self._max_bytes = max_bytes
        self._nb_read = 0
        self._member = member
        self._archive = zipfile.ZipFile(path)
        try:
            self._stream = self._archive.open(member)
        except Exception:
            self._archive.close()
            raise

    def readable(self) -> bool:
        return True

    def _check(self, nb_new: int) -> None:
        self._nb_read += nb_new
        if self._nb_read > self._max_bytes:
            raise ValidationError(
                f"The zip member {self._member!r} decompresses to more than "
                f"{format_bytes(self._max_bytes)}: upload a smaller trace."
            )

    def _read_member(self, size: int) -> bytes:
        try:
            return self._stream.read(size)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            # zipfile stops at the declared size and then fails the CRC: a lying or damaged archive.
            raise ValidationError(
                f"The zip member {self._member!r} is corrupt ({exc}): rebuild the archive and upload it again."
            ) from exc

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            chunks = []
            while chunk := self.read(1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        # Never ask for more than one byte past the cap so a bomb cannot inflate a huge buffer.
        data = self._read_member(min(size, self._max_bytes - self._nb_read + 1))
        self._check(len(data))
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            try:
                self._stream.close()
            finally:
                self._archive.close()
        super().close()


def open_capped(path: Path, member: str, max_bytes: int) -> BinaryIO:
    """Open `member` of the zip at `path` for reading; raise ValidationError past `max_bytes` decompressed."""
    return _CappedReader(path, member, max_bytes)  # type: ignore[return-value]
