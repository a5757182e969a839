"""One-member zips written fast: the chunks of a CSV deflated on threads and joined into one stream (the sets)."""

import struct
import time
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from functools import cache
from pathlib import Path

_DEFLATE_LEVEL = 1  # the sets are written once per upload and downloaded a few times: speed over size


@cache
def _compressor():
    """ISA-L's deflate, the same format as zlib's written about 2.5x faster (the server installs it); zlib without
    it. Looked up when sets are first written: the srs client validates without writing any."""
    try:
        from isal import isal_zlib

        return isal_zlib
    except ImportError:
        return zlib


def _deflate(data) -> bytes:
    """Raw deflate of one chunk, ended on a byte boundary (sync flush) so chunks can be joined."""
    deflate = _compressor()
    compressor = deflate.compressobj(_DEFLATE_LEVEL, deflate.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(deflate.Z_SYNC_FLUSH)


def _format_and_deflate(make_chunk: Callable[[], bytes | memoryview]) -> tuple[bytes | memoryview, bytes]:
    text = make_chunk()
    return text, _deflate(text)


def _dos_datetime() -> tuple[int, int]:
    now = time.localtime()
    return (
        (now.tm_hour << 11) | (now.tm_min << 5) | (now.tm_sec // 2),
        ((max(now.tm_year, 1980) - 1980) << 9) | (now.tm_mon << 5) | now.tm_mday,
    )


def write_zips(files: Iterable[tuple[Path, str, Iterable[Callable[[], bytes | memoryview]]]], threads: int = 2) -> None:
    """Write several one-member zips (path, member, chunks) at once, their chunks made and compressed by one pool
    of threads: a small set's chunks fill the threads a large one leaves idle while it ends (write_zip, each)."""
    from concurrent.futures import ThreadPoolExecutor  # here: validation never writes a zip

    files = list(files)
    with ThreadPoolExecutor(max_workers=threads) as pool, ThreadPoolExecutor(max_workers=len(files)) as writers:
        done = [writers.submit(write_zip, path, member, chunks, threads, pool) for path, member, chunks in files]
        for future in done:
            future.result()


def write_zip(
    path: Path, member: str, chunks: Iterable[Callable[[], bytes | memoryview]], threads: int = 2, pool=None
) -> None:
    """Write a one-member deflated zip whose content is the chunks' bytes in order, made and compressed on threads
    (those of `pool`, an executor, when given).

    Each chunk (a callable returning bytes, run on a worker thread) is deflated on its own and ends on a byte
    boundary, so the chunks joined form one valid deflate stream (as pigz does). zipfile cannot take
    precompressed data, hence this small container: local header (patched at the end), data, central
    directory, end record; no zip64, which the input cap keeps out of reach (ValueError past 4 GiB).
    """
    name = member.encode()
    dos_time, dos_date = _dos_datetime()
    crc = size = compressed_size = 0

    def local_header() -> bytes:
        fields = (0x04034B50, 20, 0, zipfile.ZIP_DEFLATED, dos_time, dos_date, crc, compressed_size, size)
        return struct.pack("<IHHHHHIIIHH", *fields, len(name), 0) + name

    from concurrent.futures import ThreadPoolExecutor  # here: validation never writes a zip

    with (
        open(path, "wb") as out,
        ThreadPoolExecutor(max_workers=threads) if pool is None else nullcontext(pool) as pool,
    ):
        out.write(local_header())
        pending: deque = deque()

        def drain() -> None:
            nonlocal crc, size, compressed_size
            text, data = pending.popleft().result()
            crc = _compressor().crc32(text, crc)
            size += len(text)
            compressed_size += len(data)
            out.write(data)

        for make_chunk in chunks:
            pending.append(pool.submit(_format_and_deflate, make_chunk))
            if len(pending) > threads + 1:  # bound the chunks held in memory
                drain()
        while pending:
            drain()
        final_block = zlib.compressobj(_DEFLATE_LEVEL, zlib.DEFLATED, -15).flush()
        out.write(final_block)
        compressed_size += len(final_block)
        if max(size, compressed_size, out.tell()) >= 0xFFFFFFFF:
            raise ValueError(f"{path.name} would exceed 4 GiB, beyond a zip without zip64")
        directory_offset = out.tell()
        directory = (
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                (3 << 8) | 20,  # made by Unix, zip 2.0
                20,
                0,
                zipfile.ZIP_DEFLATED,
                dos_time,
                dos_date,
                crc,
                compressed_size,
                size,
                len(name),
                0,
                0,
                0,
                0,
                0o100644 << 16,
                0,
            )
            + name
        )
        out.write(directory)
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(directory), directory_offset, 0))
        out.seek(0)
        out.write(local_header())
