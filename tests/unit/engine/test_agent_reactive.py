"""Reactive fragmentation (RFC 9171 5.8) in the agent: the sender keeps only what the peer did
not acknowledge, the receiver keeps the prefix it got as a fragment."""

from __future__ import annotations

import random

from dtncloud.bpv7 import BundleFlag, decode_bundle, encode_bundle, split_at
from dtncloud.bpv7.reactive import acknowledged_payload
from dtncloud.engine import actions, inputs
from dtncloud.routing.base import Decision, Forward, RoutingView, Wait
from dtncloud.store.base import BundleMeta, Retention
from tests.unit.engine.harness import Harness, LinkToPeerRouter, bundle_bytes

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
    out = h.feed(inputs.Refragmented(transmit.bundle_id, (rest,)))
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


class _VolumeRouter(LinkToPeerRouter):
    """A contact to the destination that can carry only ``volume`` more bytes; what fits is
    booked, as a contact-plan router would."""

    volume = 500

    def route(self, meta: BundleMeta, view: RoutingView, now: int) -> Decision:
        decision = super().route(meta, view, now)
        if not isinstance(decision, Forward):
            return decision
        if self.volume <= 0:
            return Wait()
        if meta.size <= self.volume:
            self.volume -= meta.size
            return Forward(decision.links)
        return Forward(decision.links, volume=self.volume)


def test_contact_volume_cuts_a_first_fragment_and_keeps_the_rest() -> None:
    h = Harness()
    h.agent.router = h.router = _VolumeRouter("dtn://a/", random.Random(1))
    h.feed(inputs.LinkUp("lb", "dtn://b/"))
    wire = bundle_bytes(payload=PAYLOAD)
    seen = h.settle(h.feed(inputs.BundleReceived(wire, "in")), transmit_ok=None)
    cut = next(a for a in seen if isinstance(a, actions.Refragment))
    assert cut.first_size is not None and cut.first_size < 500
    sent = [a for a in seen if isinstance(a, actions.Transmit)]
    assert len(sent) == 1  # the first fragment, which fits the contact
    (piece,) = h.sent[-1][1]
    assert len(piece) <= 500
    first = decode_bundle(piece)
    assert first.primary.fragment_offset == 0 and PAYLOAD.startswith(first.payload)
    # the original is gone, the rest waits as a fragment of its own
    assert cut.bundle_id not in h.stored
    rest = [decode_bundle(d) for d in h.stored.values() if decode_bundle(d).primary.fragment_offset]
    assert len(rest) == 1 and rest[0].payload == PAYLOAD[len(first.payload) :]


def test_must_not_fragment_bundles_wait_for_a_contact_with_room() -> None:
    h = Harness()
    h.agent.router = h.router = _VolumeRouter("dtn://a/", random.Random(1))
    h.feed(inputs.LinkUp("lb", "dtn://b/"))
    wire = bundle_bytes(payload=PAYLOAD, flags=BundleFlag.MUST_NOT_FRAGMENT)
    seen = h.settle(h.feed(inputs.BundleReceived(wire, "in")), transmit_ok=None)
    assert not any(isinstance(a, actions.Refragment | actions.Transmit) for a in seen)
    assert h.agent.get_timer() is not None  # it is asked about again later
