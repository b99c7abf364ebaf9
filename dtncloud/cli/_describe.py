"""What ``dtncloud bundle inspect`` shows: readable dumps and JSON objects of decoded bundles.

Used by the inspect command and by the demo. Nothing here does I/O; every function returns
text lines or JSON-ready dicts.
"""

from __future__ import annotations

import codecs
import dataclasses
import enum
import hashlib
from typing import Any

from dtncloud.bpv7 import (
    BlockFlag,
    BlockType,
    Bundle,
    CanonicalBlock,
    CrcType,
    read_bundle_age,
    read_hop_count,
    read_previous_node,
)
from dtncloud.dtntime import format_dtn_time, format_duration_ms
from dtncloud.eid import EID
from dtncloud.errors import DtnError

PREVIEW_BYTES = 48

BLOCK_NAMES = {
    BlockType.PAYLOAD: "payload",
    BlockType.PREVIOUS_NODE: "previous node",
    BlockType.BUNDLE_AGE: "bundle age",
    BlockType.HOP_COUNT: "hop count",
    BlockType.BLOCK_INTEGRITY: "block integrity",
    BlockType.BLOCK_CONFIDENTIALITY: "block confidentiality",
}
_ABBREVIATIONS = {BlockType.BLOCK_INTEGRITY: "BIB", BlockType.BLOCK_CONFIDENTIALITY: "BCB"}
CRC_NAMES = {CrcType.NONE: "no CRC", CrcType.CRC16: "CRC-16", CrcType.CRC32C: "CRC-32C"}

# RFC 9173 security contexts, with names for their parameters and results by context ID.
CONTEXTS = {1: "BIB-HMAC-SHA2", 2: "BCB-AES-GCM", 3: "COSE"}
_PARAMETER_NAMES = {
    1: {1: "sha_variant", 2: "wrapped_key", 3: "scope"},
    2: {1: "iv", 2: "aes_variant", 3: "wrapped_key", 4: "scope"},
}
_RESULT_NAMES = {1: {1: "expected_hmac"}, 2: {1: "authentication_tag"}}
_VARIANTS = {
    "sha_variant": {5: "HMAC 256/256", 6: "HMAC 384/384", 7: "HMAC 512/512"},
    "aes_variant": {1: "A128GCM", 3: "A256GCM"},
}
_SCOPE_NAMES = ((0x1, "primary"), (0x2, "target-header"), (0x4, "security-header"))


def flag_names(flags: enum.IntFlag) -> list[str]:
    """Names of the set bits, lower case with dashes; unknown bits as ``0x...``."""
    names = [m.name.lower().replace("_", "-") for m in type(flags) if m & flags and m.name]
    known = 0
    for member in type(flags):
        known |= member.value
    if int(flags) & ~known:
        names.append(f"0x{int(flags) & ~known:x}")
    return names


def _flags_text(flags: enum.IntFlag) -> str:
    names = flag_names(flags)
    return f"0x{int(flags):x} ({', '.join(names)})" if names else "0x0 (none)"


def block_name(type_code: int) -> str:
    try:
        return BLOCK_NAMES[BlockType(type_code)]
    except (KeyError, ValueError):
        return "unknown"


def block_label(bundle: Bundle, number: int) -> str:
    """``block 1 (payload)``; block 0 is the primary block."""
    if number == 0:
        return "block 0 (primary)"
    try:
        return f"block {number} ({block_name(bundle.block(number).type_code)})"
    except KeyError:
        return f"block {number}"


def _duration_text(ms: int) -> str:
    return f"{ms} ms" if ms < 1000 else f"{format_duration_ms(ms)} ({ms} ms)"


def _size_text(size: int) -> str:
    return "1 byte" if size == 1 else f"{size} bytes"


def _time_text(dtn_ms: int) -> str:
    return f"{format_dtn_time(dtn_ms)} ({dtn_ms} ms)" if dtn_ms else "0 (no clock: unknown)"


def payload_preview(data: bytes) -> str:
    """Quoted text when the payload starts as printable UTF-8, hex otherwise."""
    head = data[:PREVIEW_BYTES]
    more = "..." if len(data) > PREVIEW_BYTES else ""
    text: str | None
    try:
        # Not final when there is more: a character cut by the preview is still text.
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=not more)
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\n\t" for c in text):
        return repr(text) + more
    return head.hex(" ") + more


# -- abstract security blocks -------------------------------------------------------------


def parse_asb(data: bytes) -> dict[str, Any] | None:
    """The abstract security block of a BIB or BCB as a JSON-ready dict; None if malformed
    (or if :mod:`dtncloud.bpsec` is not installed).

    Parameters and results are named for the RFC 9173 contexts; byte strings become hex.
    """
    try:
        from dtncloud.bpsec import AbstractSecurityBlock
    except ImportError:
        return None
    try:
        asb = AbstractSecurityBlock.decode(data)
    except DtnError:
        return None
    names = _PARAMETER_NAMES.get(asb.context_id, {})
    result_names = _RESULT_NAMES.get(asb.context_id, {})
    return {
        "targets": list(asb.targets),
        "context_id": asb.context_id,
        "context": CONTEXTS.get(asb.context_id, "unknown"),
        "source": str(asb.source),
        "parameters": {names.get(pid, str(pid)): _plain(v) for pid, v in asb.parameters or ()},
        "results": [
            {"target": target, **{result_names.get(rid, str(rid)): _plain(v) for rid, v in pairs}}
            for target, pairs in zip(asb.targets, asb.results, strict=True)
        ],
    }


def _asb_lines(asb: dict[str, Any]) -> list[str]:
    lines = [
        f"  context {asb['context']} ({asb['context_id']}), security source {asb['source']}",
        f"  targets {', '.join(map(str, asb['targets']))}",
    ]
    for name, value in asb["parameters"].items():
        if name in _VARIANTS:
            value = f"{value} ({_VARIANTS[name].get(value, 'unknown')})"
        elif name == "scope" and isinstance(value, int):
            scope = [label for bit, label in _SCOPE_NAMES if value & bit]
            value = f"0x{value:x} ({', '.join(scope) or 'none'})"
        elif isinstance(value, str) and name in ("iv", "wrapped_key"):
            value = f"{len(value) // 2} bytes {value}"
        lines.append(f"  parameter {name.replace('_', ' ')}: {value}")
    for result in asb["results"]:
        parts = [
            f"{name.replace('_', ' ').replace('hmac', 'HMAC')} ({len(v) // 2} bytes)"
            if isinstance(v, str)
            else name
            for name, v in result.items()
            if name != "target"
        ]
        lines.append(f"  result for block {result['target']}: {', '.join(parts)}")
    return lines


# -- administrative records -----------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A JSON-ready form of a decoded value (EIDs as text, bytes as hex, enums as ints)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, EID):
        return str(value)
    if isinstance(value, enum.Enum):
        return int(value.value) if isinstance(value.value, int) else str(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _record_lines(value: Any, indent: str) -> list[str]:
    """Readable lines for a decoded admin record whose class this module has no layout for:
    one per field, nested records indented."""
    lines: list[str] = []
    if not (dataclasses.is_dataclass(value) and not isinstance(value, type)):
        return [f"{indent}{value}"]
    for item in dataclasses.fields(value):
        field = getattr(value, item.name)
        label = item.name.replace("_", " ")
        if isinstance(field, enum.Enum):
            text = f"{_enum_text(field)}"
        elif isinstance(field, bytes):
            text = f"{len(field)} bytes"
        elif dataclasses.is_dataclass(field) and not isinstance(field, type):
            lines.append(f"{indent}{label}:")
            lines.extend(_record_lines(field, indent + "  "))
            continue
        else:
            text = str(field)
        lines.append(f"{indent}{label}: {text}")
    return lines


def _enum_text(value: Any) -> str:
    if isinstance(value, enum.Enum) and value.name:
        return f"{value.value} ({value.name.lower().replace('_', ' ')})"
    return str(value)


def _admin_lines(record: Any) -> list[str]:
    """Readable lines for a BPv7 administrative record (``dtncloud.bpv7.admin``)."""
    kind = type(record).__name__
    if kind == "StatusReport":
        lines = ["administrative record: bundle status report", f"  subject    {record.subject_id}"]
        for name in ("received", "forwarded", "delivered", "deleted"):
            item = getattr(record, name)
            when = f", at {_time_text(item.time)}" if item.time is not None else ""
            lines.append(f"  {name:<10} {'yes' if item.asserted else 'no'}{when}")
        lines.append(f"  reason     {_enum_text(record.reason)}")
        return lines
    if kind == "BibePdu":
        custody = "custody requested" if record.transmission_id else "no custody"
        lines = [
            "administrative record: BIBE PDU (bundle-in-bundle encapsulation)",
            f"  transmission ID {record.transmission_id} ({custody}), retransmission time "
            f"{_time_text(record.retransmission_time)}",
            f"  encapsulated bundle: {len(record.bundle_bytes)} bytes",
        ]
        try:
            inner = record.bundle()
            lines.append(
                f"  inner bundle {inner.id} from {inner.primary.source} "
                f"to {inner.primary.destination}, {len(inner.payload)}-byte payload"
            )
        except DtnError as exc:
            lines.append(f"  inner bundle does not decode: {exc}")
        return lines
    if kind == "CustodySignal":
        runs = ", ".join(
            str(first) if count == 1 else f"{first}-{first + count - 1}"
            for first, count in record.scope
        )
        return [
            "administrative record: BIBE custody signal",
            f"  disposition {_enum_text(record.disposition)}",
            f"  transmission IDs {runs or 'none'}",
        ]
    if kind == "UnknownAdminRecord":
        return [
            f"administrative record: unknown type {record.record_type}, "
            f"{len(record.content)} bytes of content"
        ]
    return [f"administrative record: {kind}", *_record_lines(record, "  ")]


def _admin_json(record: Any) -> dict[str, Any]:
    plain = _plain(record)
    if not isinstance(plain, dict):
        plain = {"value": plain}
    if "bundle_bytes" in plain:
        # The encapsulated bundle can be large; say how large instead of dumping it.
        plain["bundle_bytes"] = len(record.bundle_bytes)
    if "subject_source" in plain:
        plain["subject_id"] = str(record.subject_id)
    return {"record": type(record).__name__, **plain}


def decode_admin(payload: bytes) -> tuple[Any, str | None]:
    """The decoded admin record, or ``(None, why not)``."""
    try:
        from dtncloud.bpv7 import admin  # written alongside the CLI; may be missing
    except ImportError:
        return None, "dtncloud.bpv7.admin is not available"
    try:
        return admin.decode_admin_record(payload), None
    except DtnError as exc:
        return None, str(exc)


# -- BPv7 -------------------------------------------------------------------------------------


def _encrypted_blocks(bundle: Bundle) -> dict[int, int]:
    """Block number -> number of the BCB that encrypts it."""
    owners: dict[int, int] = {}
    for bcb in bundle.blocks_of_type(BlockType.BLOCK_CONFIDENTIALITY):
        asb = parse_asb(bcb.data)
        for target in asb["targets"] if asb else ():
            owners[target] = bcb.number
    return owners


def _extension_contents(block: CanonicalBlock, lenient: bool) -> dict[str, Any]:
    try:
        if block.type_code == BlockType.PREVIOUS_NODE:
            # The bundle decoded leniently reads its previous node leniently too (uD3TN).
            return {"previous_node": str(read_previous_node(block, lenient=lenient))}
        if block.type_code == BlockType.BUNDLE_AGE:
            return {"bundle_age": read_bundle_age(block)}
        if block.type_code == BlockType.HOP_COUNT:
            hops = read_hop_count(block)
            return {"hop_limit": hops.limit, "hop_count": hops.count}
        if block.type_code in (BlockType.BLOCK_INTEGRITY, BlockType.BLOCK_CONFIDENTIALITY):
            asb = parse_asb(block.data)
            return {"security": asb} if asb else {"error": "malformed security block"}
    except DtnError as exc:
        return {"error": str(exc)}
    return {}


def bundle_json(bundle: Bundle, data: bytes, *, lenient: bool = False) -> dict[str, Any]:
    """The JSON object ``inspect --json`` prints for a BPv7 bundle (``data``: its encoding).

    ``lenient``: read extension blocks in the pre-RFC forms that lenient decoding accepts.
    """
    p = bundle.primary
    encrypted = _encrypted_blocks(bundle)
    blocks = []
    for block in bundle.blocks:
        entry: dict[str, Any] = {
            "type": block.type_code,
            "type_name": block_name(block.type_code),
            "number": block.number,
            "flags": int(block.flags),
            "crc_type": int(block.crc_type),
            "length": len(block.data),
        }
        if block.number in encrypted:
            entry["encrypted_by"] = encrypted[block.number]
        else:
            entry.update(_extension_contents(block, lenient))
        blocks.append(entry)
    payload = bundle.payload
    result: dict[str, Any] = {
        "version": 7,
        "size": len(data),
        "flags": int(p.flags),
        "flag_names": flag_names(p.flags),
        "crc_type": int(p.crc_type),
        "destination": str(p.destination),
        "source": str(p.source),
        "report_to": str(p.report_to),
        "creation_time": p.creation_time,
        "sequence": p.sequence,
        "lifetime": p.lifetime,
        "fragment_offset": p.fragment_offset,
        "total_adu_length": p.total_adu_length,
        "bundle_id": str(bundle.id),
        "blocks": blocks,
        "payload_length": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }
    if p.is_admin_record and 1 not in encrypted and not p.is_fragment:
        record, problem = decode_admin(payload)
        if record is not None:
            result["admin_record"] = _admin_json(record)
        else:
            result["admin_record"] = {"error": problem}
    return result


def describe_bundle(bundle: Bundle, data: bytes, name: str, *, lenient: bool = False) -> list[str]:
    """A readable multi-line dump of a BPv7 bundle (``lenient`` as for :func:`bundle_json`)."""
    p = bundle.primary
    encrypted = _encrypted_blocks(bundle)
    lines = [
        f"{name}: BPv7 bundle, {len(data)} bytes, {len(bundle.blocks) + 1} blocks",
        f"primary block: version 7, {CRC_NAMES[p.crc_type]}",
        f"  flags        {_flags_text(p.flags)}",
        f"  destination  {p.destination}",
        f"  source       {p.source}",
        f"  report-to    {p.report_to}",
        f"  created      {_time_text(p.creation_time)}, sequence {p.sequence}",
    ]
    expires = f", expires {format_dtn_time(p.expires_at)}" if p.expires_at else ""
    lines.append(f"  lifetime     {_duration_text(p.lifetime)}{expires}")
    if p.fragment_offset is not None:
        end = p.fragment_offset + len(bundle.payload)
        lines.append(
            f"  fragment     bytes {p.fragment_offset}..{end} of {p.total_adu_length} "
            f"(offset {p.fragment_offset}, total ADU length {p.total_adu_length})"
        )
    lines.append(f"  bundle ID    {bundle.id}")
    for block in bundle.blocks:
        code = block.type_code
        abbreviation = _ABBREVIATIONS.get(code)  # type: ignore[call-overload]
        kind = (
            f"{abbreviation} ({block_name(code)}, type {code})"
            if abbreviation
            else f"{block_name(code)} (type {code})"
        )
        lines.append(
            f"block {block.number}: {kind}, flags {_flags_text(BlockFlag(block.flags))}, "
            f"{CRC_NAMES[block.crc_type]}, {_size_text(len(block.data))}"
        )
        if block.number in encrypted:
            lines.append(f"  encrypted by block {encrypted[block.number]} (BCB)")
            continue
        lines.extend(_block_lines(block, lenient))
    if p.is_admin_record and 1 not in encrypted and not p.is_fragment:
        record, problem = decode_admin(bundle.payload)
        if record is None:
            lines.append(f"administrative record: cannot decode: {problem}")
        else:
            lines.extend(_admin_lines(record))
    return lines


def _block_lines(block: CanonicalBlock, lenient: bool) -> list[str]:
    if block.type_code == BlockType.PAYLOAD:
        return [
            f"  sha256 {hashlib.sha256(block.data).hexdigest()}",
            f"  preview {payload_preview(block.data)}",
        ]
    contents = _extension_contents(block, lenient)
    if "error" in contents:
        return [f"  cannot read: {contents['error']}"]
    if "previous_node" in contents:
        return [f"  previous node {contents['previous_node']}"]
    if "bundle_age" in contents:
        age = contents["bundle_age"]
        return [f"  age {_duration_text(age)}"]
    if "hop_limit" in contents:
        return [f"  hop limit {contents['hop_limit']}, hop count {contents['hop_count']}"]
    if "security" in contents:
        return _asb_lines(contents["security"])
    return [f"  data {payload_preview(block.data)}"]
