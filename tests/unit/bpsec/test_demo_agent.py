"""dtn-demo-agent's BPSec bundles use the COSE context (ID 3), which dtncloud does not implement.

They must still parse at the ASB level (and re-encode unchanged), and processing them must
fail with reason 13, unknown security operation, rather than crash or pass.
"""

from __future__ import annotations

from typing import Any

import pytest

from dtncloud.bpsec import (
    AbstractSecurityBlock,
    UnknownSecurityContext,
    accept_integrity,
    check_security,
    decrypt,
    verify,
)
from dtncloud.bpv7 import Bundle, decode_bundle
from tests.vectors import load_vectors

KEY = bytes(32)


def cases() -> list[Any]:
    return [pytest.param(v, id=v["name"]) for v in load_vectors("bpv7_dtn_demo_agent")["vectors"]]


def bundle_of(case: dict[str, Any]) -> Bundle:
    # exampleA.1 has no primary CRC and no BIB over the primary block: lenient.
    return decode_bundle(bytes.fromhex(case["bundle_hex"]), lenient=True)


@pytest.mark.parametrize("case", cases())
def test_security_blocks_parse_and_re_encode(case: dict[str, Any]) -> None:
    bundle = bundle_of(case)
    expected = {b["number"]: b for b in case["expected"]["blocks"] if b["type"] in (11, 12)}
    for block in bundle.blocks:
        if block.type_code not in (11, 12):
            continue
        asb = AbstractSecurityBlock.decode(block.data)
        decoded = expected[block.number]["btsd_decoded"]
        assert list(asb.targets) == decoded[0]
        assert asb.context_id == 3 == decoded[1]
        assert asb.context_flags == decoded[2]
        assert [[r[0] for r in results] for results in asb.results] == [
            [r[0] for r in target] for target in decoded[5]
        ]
        assert asb.encode() == block.data
    check_security(bundle)


@pytest.mark.parametrize("case", cases())
def test_processing_gives_unknown_security_operation(case: dict[str, Any]) -> None:
    bundle = bundle_of(case)
    types = {b.type_code for b in bundle.blocks}
    if 11 in types:
        with pytest.raises(UnknownSecurityContext, match="context 3") as info:
            verify(bundle, KEY)
        assert info.value.reason == 13
        assert verify(bundle, KEY, partial=True) == []
        assert accept_integrity(bundle, KEY, partial=True) == bundle
    else:
        assert verify(bundle, KEY) == []
    if 12 in types:
        with pytest.raises(UnknownSecurityContext, match="context 3") as info:
            decrypt(bundle, KEY)
        assert info.value.reason == 13
        assert decrypt(bundle, KEY, partial=True) == bundle
    else:
        assert decrypt(bundle, KEY) == bundle
