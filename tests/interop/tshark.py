"""Second opinion from Wireshark: dissect bundles with tshark and report what it thinks of them.

Not a test module. Bundles are written as the packets of a pcap file with link type DLT_USER0
(147), that link type is mapped to a Wireshark dissector (``bpv7``, or ``bundle`` for BPv6), and
``tshark -T json`` output is turned into one :class:`TsharkResult` per bundle, in order.

tshark is lenient (see docs/standards.md section 10): a clean result proves little, but an
error or warning on a bundle we produced is a bug worth looking at. The warning "Unknown type
code" appears for every payload tshark has no dissector for and is harmless; it is in
:data:`HARMLESS_EXPERT_FIELDS`, which :meth:`TsharkResult.problems` leaves out by default.

Usage::

    pytestmark = [pytest.mark.interop, requires_tshark]

    (result,) = dissect_bpv7([encode_bundle(bundle)])
    assert result.clean, result.describe()
    assert result.key_fields["destination"] == "dtn://b/x"
    assert result.value("bpv7.primary.version") == "7"
"""

from __future__ import annotations

import functools
import json
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

DLT_USER0 = 147
# Wireshark refuses records longer than this for ordinary link types.
MAX_PACKET_SIZE = 262_144
TSHARK_TIMEOUT_S = 120

Severity = Literal["comment", "chat", "note", "warn", "error"]

# Expert-info encoding of epan/proto.h: severity and group share one 32-bit word.
_SEVERITIES: dict[int, Severity] = {
    0x0010_0000: "comment",
    0x0020_0000: "chat",
    0x0040_0000: "note",
    0x0060_0000: "warn",
    0x0080_0000: "error",
}
_SEVERITY_RANK: dict[str, int] = {"comment": 0, "chat": 1, "note": 2, "warn": 3, "error": 4}
_GROUPS = {
    0x01: "checksum",
    0x02: "sequence",
    0x03: "response-code",
    0x04: "request-code",
    0x05: "undecoded",
    0x06: "reassemble",
    0x07: "malformed",
    0x08: "debug",
    0x09: "protocol",
    0x0A: "security",
    0x0B: "comments",
    0x0C: "decryption",
    0x0D: "assumption",
    0x0E: "deprecated",
    0x0F: "receive",
    0x10: "interface",
    0x11: "dissector-bug",
}

# Expert-info fields that say nothing about the bundle's validity.
HARMLESS_EXPERT_FIELDS = frozenset(
    {
        "bpv7.sub_type_unknown",  # "Unknown type code": no dissector for this payload
    }
)


@dataclass(frozen=True)
class ExpertInfo:
    """One expert-info item tshark attached to a packet."""

    severity: Severity
    group: str  # "checksum", "malformed", "undecoded", ...
    message: str  # e.g. "Block failed CRC [should be 0x0903]"
    key: str  # the expert-info ID, e.g. "bpv7.block_failed_crc"

    @property
    def harmless(self) -> bool:
        return self.key in HARMLESS_EXPERT_FIELDS

    def at_least(self, severity: Severity) -> bool:
        return _SEVERITY_RANK[self.severity] >= _SEVERITY_RANK[severity]

    def __str__(self) -> str:
        return f"{self.severity}/{self.group}: {self.message} ({self.key})"


@dataclass(frozen=True)
class TsharkResult:
    """What tshark made of one bundle."""

    frame: int  # 1-based frame number in the capture, the bundle's index + 1
    protocols: tuple[str, ...]  # dissector chain, e.g. ("user_dlt", "bpv7", "bpv7", "data")
    expert: tuple[ExpertInfo, ...]  # every expert-info item, in tree order
    malformed: bool  # a _ws.malformed item: the dissector hit an exception
    fields: Mapping[str, tuple[str, ...]]  # every leaf field, flattened, values in tree order
    key_fields: Mapping[str, str | int | None]  # see _bpv7_key_fields; empty for BPv6

    def problems(
        self,
        min_severity: Severity = "warn",
        ignore: Iterable[str] = HARMLESS_EXPERT_FIELDS,
    ) -> tuple[ExpertInfo, ...]:
        """Expert items at ``min_severity`` or worse whose ID is not in ``ignore``."""
        ignored = frozenset(ignore)
        return tuple(
            item for item in self.expert if item.at_least(min_severity) and item.key not in ignored
        )

    @property
    def clean(self) -> bool:
        """Not malformed and no warning or error besides the harmless ones."""
        return not self.malformed and not self.problems()

    def value(self, name: str) -> str | None:
        """First value of field ``name`` (e.g. ``"bpv7.primary.dst_uri"``), or None."""
        values = self.fields.get(name)
        return values[0] if values else None

    def describe(self) -> str:
        """A few lines for an assertion message."""
        lines = [f"frame {self.frame}: {':'.join(self.protocols)}; malformed={self.malformed}"]
        lines += [f"  {item}" for item in self.expert]
        lines += [f"  {key} = {value!r}" for key, value in self.key_fields.items()]
        return "\n".join(lines)


# -- availability ---------------------------------------------------------------------------


@functools.cache
def _tshark_protocols() -> frozenset[str]:
    tshark = shutil.which("tshark")
    if tshark is None:
        return frozenset()
    try:
        listing = subprocess.run(
            [tshark, "-G", "protocols"],
            capture_output=True,
            text=True,
            timeout=TSHARK_TIMEOUT_S,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    # Lines are "Full name<TAB>Short name<TAB>filter name".
    return frozenset(line.split("\t")[2] for line in listing.splitlines() if line.count("\t") >= 2)


def tshark_available(dissector: str = "bpv7") -> bool:
    """True when tshark runs here and has ``dissector`` (Wireshark 4.0 or later for bpv7)."""
    return dissector in _tshark_protocols()


requires_tshark = pytest.mark.skipif(
    not tshark_available(),
    reason="tshark with the bpv7 dissector is not installed (scripts/ensure-tools installs it)",
)
"""Marker: skip the test unless tshark can dissect BPv7."""


def skip_unless_tshark(dissector: str = "bpv7") -> None:
    """Call inside a test or fixture: skip it when tshark lacks ``dissector``."""
    if not tshark_available(dissector):
        pytest.skip(f"tshark with the {dissector} dissector is not installed")


# -- pcap -----------------------------------------------------------------------------------


def pcap_bytes(packets: Sequence[bytes], linktype: int = DLT_USER0) -> bytes:
    """A classic little-endian pcap file holding ``packets``, one second apart."""
    parts = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, MAX_PACKET_SIZE, linktype)]
    for index, packet in enumerate(packets):
        if len(packet) > MAX_PACKET_SIZE:
            raise ValueError(
                f"packet {index} is {len(packet)} bytes; tshark takes at most {MAX_PACKET_SIZE}"
            )
        parts.append(struct.pack("<IIII", index, 0, len(packet), len(packet)))
        parts.append(bytes(packet))
    return b"".join(parts)


# -- dissection -----------------------------------------------------------------------------


def dissect(bundles: Sequence[bytes], dissector: str = "bpv7") -> list[TsharkResult]:
    """Run tshark over ``bundles`` with ``dissector`` on DLT_USER0; one result per bundle.

    All bundles go through one tshark run. The bpv7 dissector remembers bundle IDs across
    packets (fields ``bpv7.bundle.first_seen``); it reports no expert info for repeats.
    """
    if not bundles:
        return []
    tshark = shutil.which("tshark")
    if tshark is None:
        raise RuntimeError("tshark is not installed (scripts/ensure-tools installs it)")
    user_dlt = f'uat:user_dlts:"User 0 (DLT={DLT_USER0})","{dissector}","0","","0",""'
    with tempfile.TemporaryDirectory(prefix="dtncloud-tshark-") as tmp:
        capture = Path(tmp) / "bundles.pcap"
        capture.write_bytes(pcap_bytes(bundles))
        run = subprocess.run(
            [tshark, "-n", "-r", str(capture), "-o", user_dlt, "-T", "json", "--no-duplicate-keys"],
            capture_output=True,
            text=True,
            timeout=TSHARK_TIMEOUT_S,
            check=False,
        )
    if run.returncode != 0:
        raise RuntimeError(f"tshark failed with exit code {run.returncode}: {run.stderr.strip()}")
    packets = json.loads(run.stdout or "[]")
    if len(packets) != len(bundles):
        raise RuntimeError(f"tshark returned {len(packets)} packets for {len(bundles)} bundles")
    return [_result(packet["_source"]["layers"]) for packet in packets]


def dissect_bpv7(bundles: list[bytes]) -> list[TsharkResult]:
    """tshark's ``bpv7`` dissector (RFC 9171, with ``bpsec`` for security blocks)."""
    return dissect(bundles, "bpv7")


def dissect_bpv6(bundles: list[bytes]) -> list[TsharkResult]:
    """tshark's ``bundle`` dissector (RFC 5050)."""
    return dissect(bundles, "bundle")


def _result(layers: Mapping[str, Any]) -> TsharkResult:
    fields: dict[str, list[str]] = {}
    expert: list[ExpertInfo] = []
    _walk(layers, fields, expert)
    frame = layers.get("frame", {})
    protocols = tuple(str(frame.get("frame.protocols", "")).split(":"))
    return TsharkResult(
        frame=int(frame.get("frame.number", 0)),
        protocols=protocols,
        expert=tuple(expert),
        malformed="_ws.malformed" in fields,
        fields={key: tuple(values) for key, values in fields.items()},
        key_fields=_bpv7_key_fields(layers.get("bpv7")),
    )


def _walk(node: Any, fields: dict[str, list[str]], expert: list[ExpertInfo]) -> None:
    """Collect leaf fields and expert items of a tshark JSON tree, in document order."""
    if isinstance(node, list):
        for item in node:
            _walk(item, fields, expert)
        return
    if not isinstance(node, dict):
        return
    if "_ws.expert.message" in node:
        expert.append(_expert(node))
    for key, value in node.items():
        if isinstance(value, dict | list):
            if key == "_ws.malformed":  # the malformed marker can also be a subtree
                fields.setdefault(key, []).append("")
            _walk(value, fields, expert)
        else:
            fields.setdefault(key, []).append(str(value))


def _expert(node: Mapping[str, Any]) -> ExpertInfo:
    severity_word = int(node.get("_ws.expert.severity", 0))
    group_word = int(node.get("_ws.expert.group", 0))
    ids = [key for key in node if not key.startswith("_ws.expert")]
    return ExpertInfo(
        severity=_SEVERITIES.get(severity_word & 0x00F0_0000, "error"),
        group=_GROUPS.get(group_word >> 24, f"0x{group_word:08x}"),
        message=str(node.get("_ws.expert.message", "")),
        key=ids[0] if ids else "",
    )


def _blocks(bpv7_layer: Any) -> list[Mapping[str, Any]]:
    if not isinstance(bpv7_layer, dict):
        return []
    blocks = bpv7_layer.get("bpv7.block", [])
    if isinstance(blocks, dict):
        blocks = [blocks]
    return [block for block in blocks if isinstance(block, dict)]


def _first(node: Any, key: str) -> str | None:
    """First value of ``key`` anywhere under ``node``."""
    fields: dict[str, list[str]] = {}
    _walk(node, fields, [])
    values = fields.get(key)
    return values[0] if values else None


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text, 0) if text is not None else None
    except ValueError:
        return None


def _bpv7_key_fields(bpv7_layer: Any) -> dict[str, str | int | None]:
    """version, crc_type (primary block), destination/source/report_to as text, creation
    time (DTN ms), sequence number, lifetime (ms), payload_length, block_types."""
    blocks = _blocks(bpv7_layer)
    primary = next((b for b in blocks if "bpv7.primary.version" in b), None)
    canonical = [b for b in blocks if "bpv7.canonical.type_code" in b]
    payload = next((b for b in canonical if b.get("bpv7.canonical.type_code") == "1"), None)
    if primary is None:
        return {}
    return {
        "version": _int_or_none(primary.get("bpv7.primary.version")),
        "crc_type": _int_or_none(primary.get("bpv7.crc_type")),
        "destination": _first(primary, "bpv7.primary.dst_uri"),
        "source": _first(primary, "bpv7.primary.src_uri"),
        "report_to": _first(primary, "bpv7.primary.report_uri"),
        "creation_time": _int_or_none(_first(primary, "bpv7.time.dtntime")),
        "sequence_number": _int_or_none(_first(primary, "bpv7.create_ts.seqno")),
        "lifetime": _int_or_none(primary.get("bpv7.primary.lifetime")),
        "payload_length": _int_or_none(payload.get("bpv7.canonical.data")) if payload else None,
        "block_types": ",".join(str(b.get("bpv7.canonical.type_code")) for b in canonical),
    }
