"""Zip archives read: inspect an upload, find the one CSV in a zip, read it with caps (zip_writer writes them)."""

import csv
import io
import os
import struct
import zipfile
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from .errors import ValidationError

# An upload holds one CSV (plus, at most, folders and an archiver's metadata): a hundred entries is plenty,
# and refusing more before zipfile parses the central directory keeps a crafted archive cheap to turn down.
MAX_ZIP_ENTRIES = 100
# Bytes of central directory allowed per entry: the 46-byte fixed part plus a generous name and extras.
_DIRECTORY_BYTES_PER_ENTRY = 1024
_END_RECORD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")

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


def _end_record_position(tail: bytes) -> int | None:
    """Where the end-of-central-directory record starts in the file's tail, found as zipfile finds it: the last
    22 bytes when the archive has no comment, else the last signature whose record and comment end the file
    exactly. A signature elsewhere (inside another record's fields, or in a comment) does not count."""
    end = len(tail) - _END_RECORD.size
    if end >= 0 and tail[end : end + 4] == b"PK\x05\x06" and tail[-2:] == b"\x00\x00":
        return end
    position = tail.rfind(b"PK\x05\x06")
    while position >= 0:
        if len(tail) - position >= _END_RECORD.size:
            comment_length = _END_RECORD.unpack_from(tail, position)[-1]
            if position + _END_RECORD.size + comment_length == len(tail):
                return position
        position = tail.rfind(b"PK\x05\x06", 0, position)
    return None


def _declared_entries(path: Path) -> tuple[int, int] | None:
    """(entries, central directory bytes) declared by the end record, read without parsing the directory.

    None when no readable end record is found: the file is then not a zip.
    """
    with open(path, "rb") as stream:
        size = stream.seek(0, os.SEEK_END)
        tail_size = min(size, _END_RECORD.size + 0xFFFF + _ZIP64_LOCATOR.size)
        stream.seek(size - tail_size)
        tail = stream.read(tail_size)
        position = _end_record_position(tail)
        if position is None:
            return None
        _, _, _, _, entries, directory_size, _, _ = _END_RECORD.unpack_from(tail, position)
        locator = position - _ZIP64_LOCATOR.size
        if locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
            _, _, record_offset, _ = _ZIP64_LOCATOR.unpack_from(tail, locator)
            stream.seek(record_offset)
            record = stream.read(_ZIP64_END_RECORD.size)
            if len(record) == _ZIP64_END_RECORD.size and record[:4] == b"PK\x06\x06":
                fields = _ZIP64_END_RECORD.unpack(record)
                entries, directory_size = fields[7], fields[8]
    return entries, directory_size


def single_csv(infos: list[zipfile.ZipInfo], fix: str) -> zipfile.ZipInfo:
    """The one CSV file of a zip, from its entries: folders and archivers' metadata (__MACOSX, dot files) aside,
    it must hold that file and nothing else. Otherwise ValidationError says what it holds, then `fix`."""
    files = [info for info in infos if not info.is_dir() and not _is_ignored(info.filename)]
    csvs = [info for info in files if info.filename.lower().endswith(".csv")]
    if not csvs:
        found = ", ".join(repr(info.filename) for info in files[:5]) or "nothing"
        raise ValidationError(f"The zip archive holds no .csv file (found {found}): {fix}")
    if len(files) > 1:
        listed = ", ".join(repr(info.filename) for info in files[:5])
        more = f" and {len(files) - 5} more" if len(files) > 5 else ""
        raise ValidationError(f"The zip archive holds {len(files)} files ({listed}{more}): {fix}")
    return csvs[0]


def read_single_csv(path: Path, fix: str) -> bytes:
    """The bytes of the one CSV file in the zip at path (single_csv's rule), read whole: for the sets the platform
    wrote, not for uploads (open_capped reads those)."""
    with zipfile.ZipFile(path) as archive:
        return archive.read(single_csv(archive.infolist(), fix))


def inspect_upload(path: Path, *, max_member_bytes: int) -> str:
    """Check an uploaded zip holds exactly one safe, unencrypted, small-enough CSV; return its name.

    The number of entries is capped (MAX_ZIP_ENTRIES) from the end record, before the central directory is
    parsed, and every other check is linear in the number of entries.
    """
    not_a_zip = "The file is not a zip archive: upload a .zip holding one .csv file."
    declared = _declared_entries(path)
    if declared is None:
        raise ValidationError(not_a_zip)
    entries, directory_size = declared
    if entries > MAX_ZIP_ENTRIES or directory_size > MAX_ZIP_ENTRIES * _DIRECTORY_BYTES_PER_ENTRY:
        shown = f"{entries} entries" if entries > MAX_ZIP_ENTRIES else f"a {directory_size}-byte file list"
        raise ValidationError(
            f"The zip archive holds {shown}, more than the {MAX_ZIP_ENTRIES} entries an upload may have: "
            "upload a .zip holding one .csv file."
        )
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValidationError(not_a_zip) from exc
    with archive:
        infos = archive.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:  # the parsed list too, whatever the end record declared
        raise ValidationError(
            f"The zip archive holds {len(infos)} entries, more than the {MAX_ZIP_ENTRIES} an upload may have: "
            "upload a .zip holding one .csv file."
        )
    names = [info.filename for info in infos]
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
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
    member = single_csv(infos, "upload a .zip holding only one .csv file.")
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


class _Inflater:
    """A deflated zip member inflated by ISA-L (the server installs it), about twice as fast as zipfile's zlib,
    with zipfile's own checks: the local header's signature, then the declared size and CRC-32 at the end.
    zipfile.open has already checked the local header; this reads the same bytes from where its data begin."""

    _LOCAL_HEADER = struct.Struct("<4s22xHH")

    def __init__(self, handle: BinaryIO, info: zipfile.ZipInfo, inflate) -> None:
        self._handle, self._info = handle, info
        self._left = info.compress_size
        self._inflate = inflate.decompressobj(-15)
        self._crc32, self._crc, self._size = inflate.crc32, 0, 0
        self._tail = b""

    @classmethod
    def of(cls, path: Path, info: zipfile.ZipInfo) -> "_Inflater | None":
        """The member's inflater, or None without ISA-L (zipfile's reader is used then)."""
        try:
            from isal import isal_zlib
        except ImportError:
            return None
        handle = open(path, "rb")  # noqa: SIM115 (closed by close())
        try:
            handle.seek(info.header_offset)
            signature, name_length, extra_length = cls._LOCAL_HEADER.unpack(handle.read(cls._LOCAL_HEADER.size))
            if signature != b"PK\x03\x04":
                raise zipfile.BadZipFile("bad local file header")
            handle.seek(name_length + extra_length, os.SEEK_CUR)
        except BaseException:
            handle.close()
            raise
        return cls(handle, info, isal_zlib)

    def read(self, size: int) -> bytes:
        """Up to size inflated bytes (b"" at the end, once the size and CRC-32 were found right)."""
        data = b""
        while not data and not self._inflate.eof:
            if not self._tail and self._left > 0:
                self._tail = self._handle.read(min(self._left, 1 << 20))
                if not self._tail:
                    raise EOFError("the file ends inside the member")
                self._left -= len(self._tail)
            all_given = not self._tail  # then only what the inflater still holds can come out
            data = self._inflate.decompress(self._tail, size)
            self._tail = self._inflate.unconsumed_tail
            if all_given and not data and not self._inflate.eof:
                raise EOFError("compressed data ended before the end of the stream")
        self._size += len(data)
        self._crc = self._crc32(data, self._crc)
        if self._size > self._info.file_size:
            raise zipfile.BadZipFile("the member is longer than declared")
        if not data and (self._size != self._info.file_size or self._crc != self._info.CRC):
            raise zipfile.BadZipFile(f"Bad CRC-32 or size for file {self._info.filename!r}")
        return data

    def close(self) -> None:
        self._handle.close()


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
            info = self._archive.getinfo(member)
            if info.compress_type == zipfile.ZIP_DEFLATED and not info.flag_bits & 0x1:
                inflater = _Inflater.of(path, info)
                if inflater is not None:
                    self._stream.close()
                    self._stream = inflater
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


def read_header(path: Path, member: str, max_bytes: int, max_fields: int) -> list[str]:
    """Fields of the first line of a CSV member, refused past `max_fields` before they are parsed.

    The first line is read up to 1 MiB; a longer one is cut there (its fields are then wrong, and say so).
    """
    with open_capped(path, member, max_bytes) as stream:
        head = b""
        while b"\n" not in head and len(head) < (1 << 20):
            chunk = stream.read(1 << 16)
            if not chunk:
                break
            head += chunk
    line = head.split(b"\n", 1)[0].rstrip(b"\r")
    nb_fields = line.count(b",") + 1  # an upper bound (quoted commas): enough to refuse a flood cheaply
    if nb_fields > max_fields:
        raise ValidationError(
            f"The first line of {member!r} has {nb_fields} fields, more than the {max_fields} a header may have "
            "here: the first line must name the columns, once each."
        )
    return next(csv.reader([line.decode("utf-8-sig", errors="replace")]), [])
