"""The engine's figure for what sending a stored bundle puts on a link, against what
rendering the transmission really produces: never less, and exact for bundles made here."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dtncloud.bpv7.blocks import BlockType, hop_count_block, previous_node_block
from dtncloud.bpv7.bundle import Bundle
from dtncloud.bpv7.encode import encode_block, encode_bundle
from dtncloud.eid import parse_eid
from dtncloud.engine.sizes import wire_size
from dtncloud.engine.transmit import TransmitPlan, render
from dtncloud.store.base import BundleMeta

T0 = 800_000_000_000
SENDERS = ["dtn://a/", "dtn://a-much-longer-node-name/", "ipn:977.0"]
PAYLOADS = [0, 1, 23, 24, 1_000, 70_000]


def stored(data: bytes, previous_node: str | None, creation_time: int = T0) -> BundleMeta:
    return BundleMeta(
        bundle_id="x",
        source="dtn://z/app",
        destination="dtn://b/app",
        creation_time=creation_time,
        sequence=0,
        expires_at=T0 + 3_600_000,
        size=len(data),
        received_at=T0,
        previous_node=previous_node,
    )


def sent_size(data: bytes, sender: str, dwell_ms: int = 5_000) -> int:
    (sent,) = render(data, TransmitPlan(node_id=sender, received_at=T0), T0 + dwell_ms)
    return len(sent)


def new_bundle(payload: int, **fields: object) -> Bundle:
    return Bundle.create(
        source="dtn://z/app",
        destination="dtn://b/app",
        payload=b"p" * payload,
        **{"creation_time": T0, **fields},  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("payload", PAYLOADS)
def test_exact_for_a_bundle_made_here(sender: str, payload: int) -> None:
    data = encode_bundle(new_bundle(payload, hop_limit=30))
    assert wire_size(stored(data, None), sender) == sent_size(data, sender)


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("came_from", ["dtn://q/", "dtn://another-rather-long-name/", "ipn:12.0"])
@pytest.mark.parametrize("with_block", [True, False])
@pytest.mark.parametrize("hops", [0, 23, 254])
def test_never_less_for_a_received_bundle(
    sender: str, came_from: str, with_block: bool, hops: int
) -> None:
    bundle = new_bundle(1_000, hop_limit=255)
    hop = bundle.first_block_of_type(BlockType.HOP_COUNT)
    assert hop is not None
    bundle = bundle.replace_block(hop_count_block(255, hops, hop.number))
    replaced = 0
    if with_block:  # a neighbour need not send a previous node block
        block = previous_node_block(parse_eid(came_from), bundle.next_block_number())
        bundle = bundle.add_block(block)
        replaced = len(encode_block(block))
    data = encode_bundle(bundle)
    estimate = wire_size(stored(data, came_from), sender)
    sent = sent_size(data, sender)
    assert sent <= estimate <= sent + replaced + 2  # 2: the hop count's room to grow


@pytest.mark.parametrize("dwell_ms", [0, 1, 10**6, 10**12])
def test_never_less_for_a_bundle_without_creation_time(dwell_ms: int) -> None:
    data = encode_bundle(new_bundle(100, creation_time=0, bundle_age=0))
    assert wire_size(stored(data, None, 0), "dtn://a/") >= sent_size(data, "dtn://a/", dwell_ms)


def test_bpv6_bundles_go_as_stored() -> None:
    meta = replace(stored(b"v6" * 50, "dtn://q/"), protocol=6)
    assert wire_size(meta, "dtn://a-long-name/") == 100
