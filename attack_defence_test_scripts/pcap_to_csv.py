#!/usr/bin/env python3
"""Turn a folder of tcpdump captures into a defence CSV for Secret Race Strolling.

Usage::

    python3 pcap_to_csv.py CAPTURE_DIR -o defence.csv.zip   # ready to upload
    python3 pcap_to_csv.py CAPTURE_DIR -o defence.csv       # plain CSV

Captures must be named ``trace_DD_MM_HHh_grid_N.pcap`` (what ``capture.sh``
writes): ``N`` is the queried cell (``cell_id``) and ``rep = DD*10000 + MM*100 + HH``
identifies the capture session, e.g. ``trace_01_04_08h_grid_17.pcap`` gives cell 17,
rep 10408. Other files are skipped with a warning.

Each IPv4 packet becomes one row ``cell_id,rep,direction_size,timestamp``:

* ``direction_size`` is the IP total length (from the header, so a small snap
  length such as ``tcpdump -s 64`` does not matter), positive when the packet's
  source address is private (the client, talking to the Tor network) and negative
  otherwise. ``--client`` sets the client address(es) explicitly when both ends
  are private, e.g. a local test network.
* ``timestamp`` is the time since the capture's first IPv4 packet, in seconds with
  microsecond precision (first row of each capture is ``0.000000``).

All IPv4 packets are kept, whatever the transport; choose what you record with
the tcpdump filter (``capture.sh`` records TCP only), or pass ``--tcp-only``.
Non-IPv4 frames (ARP, IPv6, ...) are skipped. Rows are ordered by cell_id, rep,
then packet order. Link types: Ethernet, Linux cooked capture (SLL and SLL2)
and raw IP; pcap and pcapng files are both read.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import ipaddress
import os
import re
import sys
import time
import zipfile
from collections.abc import Iterator

import dpkt

NAME_PATTERN = re.compile(r"trace_(\d{2})_(\d{2})_(\d{2})h_grid_(\d+)\.pcap(ng)?")
HEADER = "cell_id,rep,direction_size,timestamp\n"

# pcap link-layer types (see https://www.tcpdump.org/linktypes.html).
DLT_EN10MB = 1
DLT_RAW = {12, 14, 101}  # "raw IP" has had several numbers across platforms
DLT_LINUX_SLL = 113
DLT_LINUX_SLL2 = 276


class CaptureError(Exception):
    """A capture file that cannot be read."""


def parse_name(filename: str) -> tuple[int, int] | None:
    """(cell_id, rep) from a capture's file name, or None if it does not match."""
    match = NAME_PATTERN.fullmatch(filename)
    if not match:
        return None
    day, month, hour, cell = (int(part) for part in match.groups()[:4])
    return cell, day * 10000 + month * 100 + hour


def open_reader(handle):
    """A dpkt reader for a pcap or pcapng file."""
    try:
        return dpkt.pcap.UniversalReader(handle)
    except ValueError as error:
        raise CaptureError("not a pcap or pcapng file") from error


def ipv4_of(link_type: int, frame: bytes) -> dpkt.ip.IP | None:
    """The IPv4 packet carried in ``frame``, or None for anything else."""
    try:
        if link_type == DLT_EN10MB:
            packet = dpkt.ethernet.Ethernet(frame).data
        elif link_type == DLT_LINUX_SLL:
            packet = dpkt.sll.SLL(frame).data
        elif link_type == DLT_LINUX_SLL2:
            packet = dpkt.sll2.SLL2(frame).data
        elif link_type in DLT_RAW:
            packet = dpkt.ip.IP(frame) if frame[:1] and frame[0] >> 4 == 4 else None
        else:
            raise CaptureError(f"unsupported link type {link_type}")
    except (dpkt.UnpackError, IndexError):
        # A frame too short to parse (snap length, corruption): not a usable packet.
        return None
    return packet if isinstance(packet, dpkt.ip.IP) else None


def direction_rule(clients: list[ipaddress.IPv4Network]):
    """A function telling whether a packet sent from a (packed) address goes client → server."""
    cache: dict[bytes, bool] = {}  # a capture has few distinct addresses; parse each once

    def is_client(address: bytes) -> bool:
        if address not in cache:
            ip = ipaddress.IPv4Address(address)
            cache[address] = any(ip in net for net in clients) if clients else ip.is_private
        return cache[address]

    return is_client


def capture_rows(path: str, is_client, tcp_only: bool) -> Iterator[tuple[int, int]]:
    """(direction_size, microseconds since the first packet) for each IPv4 packet of a capture."""
    with open(path, "rb") as handle:
        reader = open_reader(handle)
        link_type = reader.datalink()
        first = None
        for timestamp, frame in reader:
            packet = ipv4_of(link_type, frame)
            if packet is None or (tcp_only and packet.p != dpkt.ip.IP_PROTO_TCP):
                continue
            # Work in integer microseconds: the float timestamps dpkt returns are
            # ~1.7e9 s, where subtracting floats can be off by one microsecond.
            micros = round(timestamp * 1_000_000)
            if first is None:
                first = micros
            sign = 1 if is_client(packet.src) else -1
            yield sign * packet.len, micros - first


def format_row(cell: int, rep: int, size: int, micros: int) -> str:
    """One CSV line in the sample's style, e.g. ``1,10408,-576,0.523642``."""
    seconds, fraction = divmod(micros, 1_000_000)
    return f"{cell},{rep},{size},{seconds}.{fraction:06d}\n"


def find_captures(folder: str) -> list[tuple[int, int, str]]:
    """(cell_id, rep, path) of each well-named capture, sorted; warns about the others."""
    captures = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            continue
        parsed = parse_name(name)
        if parsed is None:
            print(f"warning: skipping {name}: not named trace_DD_MM_HHh_grid_N.pcap", file=sys.stderr)
            continue
        captures.append((*parsed, path))
    return sorted(captures)


def convert(folder: str, out: io.TextIOBase, is_client, tcp_only: bool) -> tuple[int, int]:
    """Write the CSV of every capture in ``folder`` to ``out``; return (captures, rows) written."""
    out.write(HEADER)
    n_captures = n_rows = 0
    seen: dict[tuple[int, int], str] = {}
    for cell, rep, path in find_captures(folder):
        if (cell, rep) in seen:
            # Two files for one (cell, rep) would merge into one capture.
            print(f"warning: skipping {path}: same cell and rep as {seen[cell, rep]}", file=sys.stderr)
            continue
        seen[cell, rep] = path
        try:
            lines = [format_row(cell, rep, size, t) for size, t in capture_rows(path, is_client, tcp_only)]
        except dpkt.NeedData:
            print(f"warning: skipping {path}: empty or truncated capture file", file=sys.stderr)
            continue
        except (CaptureError, ValueError) as error:
            print(f"warning: skipping {path}: {error}", file=sys.stderr)
            continue
        if not lines:
            print(f"warning: skipping {path}: no IPv4 packet", file=sys.stderr)
            continue
        out.writelines(lines)
        n_captures += 1
        n_rows += len(lines)
    return n_captures, n_rows


def zip_entry(name: str) -> zipfile.ZipInfo:
    """A compressed zip member dated now (a bare name would be dated 1980)."""
    entry = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    entry.compress_type = zipfile.ZIP_DEFLATED
    return entry


@contextlib.contextmanager
def open_output(path: str):
    """A text stream writing to ``path``: a plain CSV, or a zip holding one CSV if it ends in .zip."""
    if not path.endswith(".zip"):
        with open(path, "w", newline="") as handle:
            yield handle
        return
    member = os.path.basename(path)[: -len(".zip")]
    if not member.endswith(".csv"):
        member += ".csv"
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open(zip_entry(member), "w", force_zip64=True) as raw,
        io.TextIOWrapper(raw, encoding="ascii", newline="") as handle,
    ):
        yield handle


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Convert trace_DD_MM_HHh_grid_N.pcap captures into a defence CSV "
        "(cell_id,rep,direction_size,timestamp).",
    )
    parser.add_argument("capture_dir", help="folder holding the .pcap files")
    parser.add_argument(
        "-o",
        "--output",
        default="defence.csv.zip",
        help="output file; a name ending in .zip gives a zip ready to upload (default: %(default)s)",
    )
    parser.add_argument(
        "--client",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="client address or network (repeatable); default: any private address is the client",
    )
    parser.add_argument("--tcp-only", action="store_true", help="keep TCP packets only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not os.path.isdir(args.capture_dir):
        print(f"error: {args.capture_dir} is not a folder", file=sys.stderr)
        return 2
    try:
        clients = [ipaddress.IPv4Network(value, strict=False) for value in args.client]
    except ValueError as error:
        print(f"error: --client: {error}", file=sys.stderr)
        return 2

    try:
        with open_output(args.output) as out:
            n_captures, n_rows = convert(args.capture_dir, out, direction_rule(clients), args.tcp_only)
    except OSError as error:
        print(f"error: cannot write {args.output}: {error}", file=sys.stderr)
        return 1
    if n_captures == 0:
        os.remove(args.output)
        print(
            f"error: no usable capture in {args.capture_dir}: expected files named "
            "trace_DD_MM_HHh_grid_N.pcap holding IPv4 packets",
            file=sys.stderr,
        )
        return 1
    print(f"wrote {args.output}: {n_captures} captures, {n_rows} packets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
