"""Wireshark's TCPCL and BPv7 dissectors read a live capture of a dtncloud session.

A session between two dtncloud drivers on loopback is captured with ``tshark -i lo``, then
dissected with ``-d tcp.port==PORT,tcpcl`` (two-pass, so acknowledgements are matched to
segments). Every TCPCLv4 message type we send must be recognised, every bundle must come out
as BPv7, and nothing may be flagged beyond the harmless "Unknown type code" for payloads
tshark has no dissector for.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from dtncloud.bpv7 import Bundle, encode_bundle
from dtncloud.cla.tcpcl import TcpclConvergenceLayer, TcpclOptions
from tests.conformance.clas import Recorder
from tests.interop.tshark import HARMLESS_EXPERT_FIELDS, tshark_available

pytestmark = [
    pytest.mark.interop,
    pytest.mark.timeout(180),
    pytest.mark.skipif(not tshark_available("tcpcl"), reason="tshark with a tcpcl dissector is not installed"),
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_capture(port: int, pcap: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        ["tshark", "-i", "lo", "-f", f"tcp port {port}", "-w", str(pcap)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    seen = []
    # "Capturing on ..." comes before the capture really runs; "Capture started" after.
    for line in process.stderr:
        seen.append(line)
        if "Capture started" in line:
            return process
    process.wait()
    pytest.skip(f"cannot capture on loopback here: {''.join(seen).strip()[-200:]}")


async def _session(port: int, bundles: list[bytes], version: int = 4) -> list[bytes]:
    rx_events = Recorder()
    rx = TcpclConvergenceLayer(
        rx_events, TcpclOptions(node_id="ipn:2.0", listen="127.0.0.1", port=port, segment_mru=4000)
    )
    tx = TcpclConvergenceLayer(
        Recorder(),
        TcpclOptions(node_id="ipn:1.0", keepalive_s=30, max_segment_size=4000, version=version),
    )
    await rx.start()
    await tx.start()
    try:
        link = await tx.connect(f"127.0.0.1:{port}")
        for data in bundles:
            await link.send(data)
        await link.close()
        return [await rx_events.received.get() for _ in bundles]
    finally:
        await tx.stop()
        await rx.stop()


def _wait_until_captured(pcap: Path, port: int, end: str, deadline_s: float = 30) -> None:
    """Wait until the capture file shows the end of the session (``end``: the SESS_TERM
    reply, or a TCPCLv3 SHUTDOWN).

    dumpcap hands packets over in blocks (about once a second on a quiet interface) and
    drops what it has not handed over when interrupted, so stopping it as soon as the
    session ends would lose the end of the session.
    """
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        listing = subprocess.run(
            ["tshark", "-r", str(pcap), "-d", f"tcp.port=={port},tcpcl", "-Y", "tcpcl"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if listing.stdout.count(end) >= (2 if end == "SESS_TERM" else 1):
            return
        time.sleep(0.2)  # polling an external process's progress, not timing our code
    pytest.fail(f"the capture did not show the end of the session within {deadline_s} s")


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as the list of its key/value pairs, duplicates included."""

    def get(self, key: str, default: Any = None) -> Any:
        return next((value for name, value in self if name == key), default)


def _walk(node: Any, found: list[tuple[str, str]]) -> None:
    if isinstance(node, _Pairs):
        for key, value in node:
            if isinstance(value, (str, int)):
                found.append((key, str(value)))
            _walk(value, found)
    elif isinstance(node, list):
        for item in node:
            _walk(item, found)


# tshark 4.0's TCPCLv3 dissector names LENGTH messages (RFC 7242 section 5.6) but does not
# decode them, and says so at error level; every other TCPCLv3 message it decodes.
_V3_UNDECODED_LENGTH = "tcpcl.unknown_message_type"


@pytest.mark.parametrize("version", [4, 3])
def test_tshark_decodes_a_dtncloud_session(tmp_path: Path, version: int) -> None:
    port = _free_port()
    pcap = tmp_path / "session.pcapng"
    bundles = [
        encode_bundle(Bundle.create(source="ipn:1.1", destination="ipn:2.1",
                                    payload=os.urandom(size), creation_time=9, sequence=i))
        for i, size in enumerate([200, 10_000, 1_500])
    ]  # fmt: skip
    capture = _start_capture(port, pcap)
    try:
        received = asyncio.run(asyncio.wait_for(_session(port, bundles, version), 60))
        _wait_until_captured(pcap, port, "SESS_TERM" if version == 4 else "SHUTDOWN")
    finally:
        capture.send_signal(signal.SIGINT)
        capture.wait(timeout=30)
    assert received == bundles

    tshark = shutil.which("tshark")
    assert tshark is not None
    result = subprocess.run(
        [tshark, "-r", str(pcap), "-2", "-d", f"tcp.port=={port},tcpcl", "-T", "json"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    # tshark's JSON repeats keys (one "bpv7.block" per block): keep every pair.
    packets = json.loads(result.stdout, object_pairs_hook=_Pairs)
    fields: list[tuple[str, str]] = []
    _walk(packets, fields)
    names = {name for name, _ in fields}
    values = fields

    # TCPCL recognised, in the version we spoke, with each message type we sent.
    assert any(n.startswith("tcpcl") for n in names), sorted(names)[:50]
    versions = [v for n, v in values if n == "tcpcl.contact_hdr.version"]
    assert versions and set(versions) == {str(version)}, versions
    if version == 4:
        types = {v for n, v in values if n == "tcpcl.v4.mhdr.type"}
        for code in (
            "0x07",
            "0x01",
            "0x02",
            "0x05",
        ):  # SESS_INIT, XFER_SEGMENT, XFER_ACK, SESS_TERM
            assert any(t == code or t == str(int(code, 16)) for t in types), (code, types)
    else:
        assert {"tcpcl.data.length", "tcpcl.ack.length", "tcpcl.shutdown.flags"} <= names
    # Each bundle dissected as BPv7 (reassembled from its segments).
    primaries = [v for n, v in values if n == "bpv7.primary.version"]
    assert len(primaries) == len(bundles), primaries
    # Nothing malformed, and no expert info at warning level or above but the harmless one.
    assert "_ws.malformed" not in names
    problems = []
    undecoded_lengths = 0
    for packet in packets:
        for name, value in _experts(packet):
            if version == 3 and name == _V3_UNDECODED_LENGTH:
                undecoded_lengths += 1  # one LENGTH message goes before each bundle
                continue
            if name in HARMLESS_EXPERT_FIELDS:
                continue
            problems.append(f"{name}: {value}")
    assert not problems, problems
    assert undecoded_lengths <= len(bundles)


def _experts(node: Any) -> list[tuple[str, str]]:
    """Expert-info entries at warning or error severity: (field name, message)."""
    found: list[tuple[str, str]] = []
    if isinstance(node, _Pairs):
        for key, value in node:
            if key == "_ws.expert" and isinstance(value, _Pairs):
                severity = int(str(value.get("_ws.expert.severity", "0")), 0)
                if severity >= 0x0060_0000:
                    names = [k for k, _ in value if not k.startswith("_ws.expert")]
                    found.append((names[0] if names else "?", str(value.get("_ws.expert.message"))))
            found.extend(_experts(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_experts(item))
    return found
