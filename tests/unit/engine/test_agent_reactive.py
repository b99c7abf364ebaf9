"""Reactive fragmentation (RFC 9171 5.8) in the agent: the sender keeps only what the peer did
not acknowledge, the receiver keeps the prefix it got as a fragment."""

from __future__ import annotations

from dtncloud.bpv7 import decode_bundle, encode_bundle, split_at
from dtncloud.bpv7.reactive import acknowledged_payload
from dtncloud.engine import actions, inputs
from dtncloud.store.base import Retention
from tests.unit.engine.harness import Harness, bundle_bytes

PAYLOAD = bytes(range(256)) * 4


def test_sender_keeps_only_the_unacknowledged_rest() -> None:
    h = Harness(config={"reactive_fragmentation": True})
    h.feed(inputs.LinkUp("lb", "dtn://b/"))
    seen = h.settle(
        h.feed(inputs.BundleReceived(bundle_bytes(payload=PAYLOAD), "in")), transmit_ok=None
    )
    transmit = next(a for a in seen if isinstance(a, actions.Transmit))
    (wire,) = h.sent[-1][1]
    kept = acknowledged_payload(wire, 600)
    assert 0 < kept < len(PAYLOAD)
    out = h.feed(
        inputs.TransmissionFailed(
            "lb",
            transmit.bundle_id,
            transmit.transmission,
            acknowledged=600,
            payload_acknowledged=kept,
        )
    )
    assert out == [actions.Refragment(transmit.bundle_id, kept)]
    original = decode_bundle(h.stored[transmit.bundle_id])
    rest = encode_bundle(split_at(original, kept)[1])
    out = h.feed(inputs.Refragmented(transmit.bundle_id, rest))
    persist = out[0]
    assert isinstance(persist, actions.Persist)
    assert persist.meta.fragment_offset == kept
    assert persist.meta.retention == Retention.FORWARD_PENDING
    h.execute(persist)
    after = h.feed(inputs.Persisted(persist.meta.bundle_id))
    assert after[0] == actions.Remove(transmit.bundle_id)  # the original is let go ...
    resent = next(a for a in after if isinstance(a, actions.Transmit))
    assert resent.bundle_id == persist.meta.bundle_id  # ... and the rest goes on


def test_without_reactive_fragmentation_the_whole_bundle_is_retried() -> None:
    h = Harness()
    h.feed(inputs.LinkUp("lb", "dtn://b/"))
    seen = h.settle(
        h.feed(inputs.BundleReceived(bundle_bytes(payload=PAYLOAD), "in")), transmit_ok=None
    )
    transmit = next(a for a in seen if isinstance(a, actions.Transmit))
    out = h.feed(
        inputs.TransmissionFailed(
            "lb",
            transmit.bundle_id,
            transmit.transmission,
            acknowledged=600,
            payload_acknowledged=500,
        )
    )
    assert out == []
    assert h.agent.get_timer() is not None


def test_receiver_keeps_a_prefix_as_a_fragment() -> None:
    h = Harness()
    wire = bundle_bytes(payload=PAYLOAD)
    out = h.feed(inputs.BundleReceived(wire[:700], "in", partial=True))
    persist = out[0]
    assert isinstance(persist, actions.Persist)
    fragment = decode_bundle(persist.data)
    assert fragment.primary.fragment_offset == 0
    assert fragment.primary.total_adu_length == len(PAYLOAD)
    assert PAYLOAD.startswith(fragment.payload)
    assert len(fragment.payload) == acknowledged_payload(wire, 700)


def test_a_prefix_that_stops_before_the_payload_is_dropped() -> None:
    h = Harness()
    out = h.feed(
        inputs.BundleReceived(bundle_bytes(payload=PAYLOAD)[:30], "in", receipt=1, partial=True)
    )
    assert out == [actions.Acknowledge(1, False, 0)]
    assert h.stored == {}


def test_fragment_of_a_bundle_already_delivered_is_let_go() -> None:
    h = Harness()
    h.feed(inputs.ApplicationRegistered("dtn://a/in"))
    wire = bundle_bytes(payload=PAYLOAD, destination="dtn://a/in")
    h.settle(h.feed(inputs.BundleReceived(wire, "in")))
    assert h.stored == {}
    h.settle(h.feed(inputs.BundleReceived(wire[:700], "in", partial=True)))
    assert h.stored == {}
