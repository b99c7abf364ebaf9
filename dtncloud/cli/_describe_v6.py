"""What ``dtncloud bundle inspect`` shows for a BPv6 (RFC 5050) bundle.

The JSON object has the same keys as the BPv7 one where the formats share a field. Times are
given in milliseconds there too (BPv6 counts whole seconds, so they end in 000), and
``crc_type`` is null because BPv6 blocks carry no CRC.
"""

from __future__ import annotations

import hashlib
from typing import Any

from dtncloud.bpv6 import BlockType, Bundle, decode_admin_record
from dtncloud.cli._describe import _plain, _record_lines, flag_names, payload_preview
from dtncloud.dtntime import format_dtn_time, format_duration_ms
from dtncloud.errors import DtnError


def _block_type_name(code: int) -> str:
    try:
        return BlockType(code).name.lower().replace("_", " ")
    except ValueError:
        return "unknown"


def _admin(bundle: Bundle) -> tuple[Any, str | None]:
    try:
        return decode_admin_record(bundle.payload), None
    except DtnError as exc:
        return None, str(exc)


def bundle_json_v6(bundle: Bundle, data: bytes) -> dict[str, Any]:
    """The JSON object ``inspect --json`` prints for a BPv6 bundle."""
    payload = bundle.payload
    result: dict[str, Any] = {
        "version": 6,
        "size": len(data),
        "flags": int(bundle.flags),
        "flag_names": flag_names(bundle.flags),
        "priority": bundle.priority.name.lower(),
        "crc_type": None,
        "destination": bundle.destination,
        "source": bundle.source,
        "report_to": bundle.report_to,
        "custodian": bundle.custodian,
        "creation_time": bundle.creation_time * 1000,
        "sequence": bundle.sequence,
        "lifetime": bundle.lifetime * 1000,
        "fragment_offset": bundle.fragment_offset,
        "total_adu_length": bundle.total_adu_length,
        "bundle_id": str(bundle.bundle_id),
        "cbhe": bundle.cbhe,
        "blocks": [
            {
                "type": block.block_type,
                "type_name": _block_type_name(block.block_type),
                # BPv6 blocks are not numbered; their position stands in for the number.
                "number": index,
                "flags": int(block.flags),
                "crc_type": None,
                "length": len(block.data),
                "eid_references": list(block.eid_references),
            }
            for index, block in enumerate(bundle.blocks, start=1)
        ],
        "payload_length": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }
    if bundle.is_admin_record and not bundle.is_fragment:
        record, problem = _admin(bundle)
        if record is None:
            result["admin_record"] = {"error": problem}
        else:
            result["admin_record"] = {"record": type(record).__name__, **_plain(record)}
    return result


def describe_bundle_v6(bundle: Bundle, data: bytes, name: str) -> list[str]:
    """A readable multi-line dump of a BPv6 bundle."""
    flags = flag_names(bundle.flags)
    created = bundle.creation_time
    created_text = f"{format_dtn_time(created * 1000)} ({created} s)" if created else "0"
    lines = [
        f"{name}: BPv6 bundle (RFC 5050), {len(data)} bytes, {len(bundle.blocks)} blocks"
        f"{', CBHE' if bundle.cbhe else ''}",
        "primary block: version 6",
        f"  flags        0x{int(bundle.flags):x} ({', '.join(flags) or 'none'}), "
        f"priority {bundle.priority.name.lower()}",
        f"  destination  {bundle.destination}",
        f"  source       {bundle.source}",
        f"  report-to    {bundle.report_to}",
        f"  custodian    {bundle.custodian}",
        f"  created      {created_text}, sequence {bundle.sequence}",
        f"  lifetime     {format_duration_ms(bundle.lifetime * 1000)} ({bundle.lifetime} s)",
    ]
    if bundle.fragment_offset is not None:
        lines.append(
            f"  fragment     offset {bundle.fragment_offset}, "
            f"total ADU length {bundle.total_adu_length}"
        )
    lines.append(f"  bundle ID    {bundle.bundle_id}")
    for index, block in enumerate(bundle.blocks, start=1):
        block_flags = flag_names(block.flags)
        lines.append(
            f"block #{index}: {_block_type_name(block.block_type)} (type {block.block_type}), "
            f"flags 0x{int(block.flags):x} ({', '.join(block_flags) or 'none'}), "
            f"{len(block.data)} bytes"
        )
        if block.eid_references:
            lines.append(f"  EID references {', '.join(block.eid_references)}")
        if block.block_type == BlockType.PAYLOAD:
            lines.append(f"  sha256 {hashlib.sha256(block.data).hexdigest()}")
        lines.append(
            f"  {'preview' if block.block_type == 1 else 'data'} {payload_preview(block.data)}"
        )
    if bundle.is_admin_record and not bundle.is_fragment:
        record, problem = _admin(bundle)
        if record is None:
            lines.append(f"administrative record: cannot decode: {problem}")
        else:
            lines.append(f"administrative record: {type(record).__name__}")
            lines.extend(_record_lines(record, "  "))
    return lines
