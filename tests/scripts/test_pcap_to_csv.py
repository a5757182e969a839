"""pcap_to_csv.py turns students' tcpdump captures into the defence CSV the platform expects."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import dpkt
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "attack_defence_test_scripts" / "pcap_to_csv.py"
# The real sample upload: our output must look exactly like it.
SAMPLES = [
    ROOT / "attack_defence_test_scripts" / "test_defence.csv.zip",
    Path("/work/shared/data/secretstroll_traces.csv.zip"),
]
ROW_FORMAT = re.compile(r"-?\d+,\d+,-?\d+,\d+\.\d{6}")

CLIENT = "172.17.0.2"
SERVER = "185.220.101.7"
T0 = 1711958400.25  # 1 April 2024, 08:00:00.25 UTC


def ipv4(src: str, dst: str, payload: int, proto: str = "tcp") -> dpkt.ip.IP:
    """An IPv4 packet whose total length is 40 + ``payload`` (TCP) or 28 + ``payload`` (UDP)."""
    if proto == "tcp":
        inner = dpkt.tcp.TCP(sport=44321, dport=443, data=b"x" * payload)
        number = dpkt.ip.IP_PROTO_TCP
    else:
        inner = dpkt.udp.UDP(sport=5353, dport=53, data=b"x" * payload)
        inner.ulen = len(inner)
        number = dpkt.ip.IP_PROTO_UDP
    packet = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=number, data=inner)
    packet.len = len(packet)
    return packet


def ethernet(data, kind: int = dpkt.ethernet.ETH_TYPE_IP) -> bytes:
    frame = dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, type=kind, data=data)
    # tcpdump -s 64 keeps only the first 64 bytes: sizes must come from the IP header.
    return bytes(frame)[:64]


def write_pcap(path: Path, linktype: int, frames: list[tuple[float, bytes]]) -> None:
    with path.open("wb") as handle:
        writer = dpkt.pcap.Writer(handle, snaplen=64, linktype=linktype)
        for timestamp, frame in frames:
            writer.writepkt(frame, ts=timestamp)


@pytest.fixture
def captures(tmp_path: Path) -> Path:
    """A capture folder: an Ethernet and a Linux cooked capture, plus files to skip."""
    folder = tmp_path / "captures"
    folder.mkdir()
    arp = dpkt.arp.ARP()
    write_pcap(
        folder / "trace_01_04_08h_grid_17.pcap",
        dpkt.pcap.DLT_EN10MB,
        [
            (T0, ethernet(ipv4(CLIENT, SERVER, 536))),  # 576 bytes out
            (T0 + 0.1, ethernet(arp, dpkt.ethernet.ETH_TYPE_ARP)),  # not IP: skipped
            (T0 + 0.523642, ethernet(ipv4(SERVER, CLIENT, 1460))),  # 1500 bytes in
            (T0 + 0.525716, ethernet(ipv4(CLIENT, SERVER, 72, "udp"))),  # 100 bytes out
            (T0 + 12.000001, ethernet(ipv4(SERVER, CLIENT, 700))),  # 740 bytes in
        ],
    )
    sll = dpkt.sll.SLL(type=4, hdr=b"\x02" * 6 + b"\x00\x00", data=ipv4("10.0.0.8", SERVER, 1000))
    sll_in = dpkt.sll.SLL(type=0, hdr=b"\x04" * 6 + b"\x00\x00", data=ipv4(SERVER, "10.0.0.8", 10))
    write_pcap(
        folder / "trace_02_04_13h_grid_3.pcap",
        dpkt.pcap.DLT_LINUX_SLL,
        [(T0 + 3600, bytes(sll)[:64]), (T0 + 3600.000005, bytes(sll_in)[:64])],
    )
    write_pcap(folder / "capture_17.pcap", dpkt.pcap.DLT_EN10MB, [(T0, ethernet(ipv4(CLIENT, SERVER, 10)))])
    return folder


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def test_converts_captures_to_the_defence_rows(captures: Path, tmp_path: Path) -> None:
    output = tmp_path / "defence.csv"
    result = run(str(captures), "-o", str(output))

    assert result.returncode == 0, result.stderr
    # Cell 3 comes before cell 17; rep = DD*10000 + MM*100 + HH; + for the private source.
    assert output.read_text() == (
        "cell_id,rep,direction_size,timestamp\n"
        "3,20413,1040,0.000000\n"
        "3,20413,-50,0.000005\n"
        "17,10408,576,0.000000\n"
        "17,10408,-1500,0.523642\n"
        "17,10408,100,0.525716\n"
        "17,10408,-740,12.000001\n"
    )
    assert "capture_17.pcap" in result.stderr  # the badly named file is reported, not used


def test_zip_output_holds_one_csv_ready_to_upload(captures: Path, tmp_path: Path) -> None:
    plain, zipped = tmp_path / "defence.csv", tmp_path / "defence.csv.zip"
    assert run(str(captures), "-o", str(plain)).returncode == 0
    assert run(str(captures), "-o", str(zipped)).returncode == 0

    with zipfile.ZipFile(zipped) as archive:
        assert archive.namelist() == ["defence.csv"]
        assert archive.read("defence.csv").decode() == plain.read_text()


def test_tcp_only_drops_other_transports(captures: Path, tmp_path: Path) -> None:
    output = tmp_path / "defence.csv"
    assert run(str(captures), "-o", str(output), "--tcp-only").returncode == 0
    assert "17,10408,100," not in output.read_text()


def test_client_option_sets_the_direction(captures: Path, tmp_path: Path) -> None:
    output = tmp_path / "defence.csv"
    assert run(str(captures), "-o", str(output), "--client", SERVER).returncode == 0
    assert "17,10408,-576,0.000000\n17,10408,1500,0.523642\n" in output.read_text()


def test_output_format_matches_the_sample_upload(captures: Path, tmp_path: Path) -> None:
    sample = next((path for path in SAMPLES if path.exists()), None)
    if sample is None:
        pytest.skip("no sample upload to compare with")
    with zipfile.ZipFile(sample) as archive, archive.open(archive.namelist()[0]) as handle:
        sample_lines = [handle.readline().decode() for _ in range(50)]
    output = tmp_path / "defence.csv"
    assert run(str(captures), "-o", str(output)).returncode == 0
    lines = output.read_text().splitlines(keepends=True)

    assert lines[0] == sample_lines[0]
    assert sample_lines[1].split(",")[3] == "0.000000\n"  # a capture starts at 0.000000, as ours
    for line in sample_lines[1:] + lines[1:]:
        assert ROW_FORMAT.fullmatch(line.rstrip("\n")), line


def test_nothing_usable_fails_with_a_message(tmp_path: Path) -> None:
    folder = tmp_path / "captures"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a capture")
    (folder / "trace_01_04_08h_grid_1.pcap").write_bytes(b"garbage, not a pcap")
    output = tmp_path / "defence.csv.zip"

    result = run(str(folder), "-o", str(output))

    assert result.returncode != 0
    assert "no usable capture" in result.stderr
    assert "Traceback" not in result.stderr
    assert not output.exists()
