"""Forwarding (RFC 9171 5.4), transmission results, retries and routing messages."""

from __future__ import annotations

import random

from dtncloud.bpv7 import BundleFlag, decode_bundle, read_admin_record
from dtncloud.engine import actions, inputs
from dtncloud.routing.base import ControlMessage, Decision, Forward, RoutingView, Wait, node_of
from dtncloud.store.base import BundleMeta, Retention
from tests.unit.engine.harness import T0, Harness, LinkToPeerRouter, bundle_bytes


def _receive(h: Harness, data: bytes) -> str:
    persist = h.feed(inputs.BundleReceived(data, "in", receipt="r"))[0]
    assert isinstance(persist, actions.Persist)
    h.execute(persist)  # into the store; the test feeds Persisted itself
    return persist.meta.bundle_id


def test_stored_bundle_waits_for_a_link_then_goes_and_is_deleted() -> None:
    h = Harness()
    bundle_id = _receive(h, bundle_bytes())
    assert h.feed(inputs.Persisted(bundle_id)) == [actions.Acknowledge("r", True, 0)]
    out = h.feed(inputs.LinkUp("lb", "dtn://b/", "tcpcl"))
    assert len(out) == 1
    transmit = out[0]
    assert isinstance(transmit, actions.Transmit)
    assert (transmit.link_id, transmit.bundle_id) == ("lb", bundle_id)
    done = h.feed(inputs.TransmissionSucceeded("lb", bundle_id, transmit.transmission))
    assert done == [actions.Remove(bundle_id)]
    assert ("forwarded", bundle_id, "lb") in h.listener.events
    assert h.listener.events[-1] == ("deleted", bundle_id, 0)


def test_forwarded_copy_carries_previous_node_and_a_grown_age() -> None:
    h = Harness()
    h.feed(inputs.LinkUp("lb", "dtn://b/"))
    h.settle(
        h.feed(
            inputs.BundleReceived(
                bundle_bytes(creation_time=0, bundle_age=1_000, hop_limit=5), "in"
            )
        )
    )
    ((_link, wire, _),) = h.sent
    sent = decode_bundle(wire[0])
    assert str(sent.previous_node) == "dtn://a/"
    assert sent.bundle_age == 1_000  # sent at the instant it arrived
    assert sent.hop_count is not None and sent.hop_count.count == 1


def test_age_grows_by_the_time_spent_here() -> None:
    h = Harness()
    bundle_id = _receive(h, bundle_bytes(creation_time=0, bundle_age=1_000))
    h.settle(h.feed(inputs.Persisted(bundle_id)))
    h.now += 2_500
    h.settle(h.feed(inputs.LinkUp("lb", "dtn://b/")))
    assert decode_bundle(h.sent[0][1][0]).bundle_age == 3_500


def test_link_smaller_than_the_bundle_gets_fragments() -> None:
    h = Harness()
    h.feed(inputs.LinkUp("lb", "dtn://b/", max_bundle_size=200))
    h.settle(h.feed(inputs.BundleReceived(bundle_bytes(payload=bytes(range(256)) * 2), "in")))
    wire = h.sent[0][1]
    assert len(wire) > 1 and all(len(piece) <= 200 for piece in wire)
    pieces = [decode_bundle(piece) for piece in wire]
    assert b"".join(p.payload for p in pieces) == bytes(range(256)) * 2
    assert h.metas == {}


def test_failed_transmission_is_retried_after_the_retry_delay() -> None:
    h = Harness(config={"retry_ms": 5_000})
    h.feed(inputs.LinkUp("lb", "dtn://b/"))
    seen = h.settle(h.feed(inputs.BundleReceived(bundle_bytes(), "in")), transmit_ok=False)
    bundle_id = next(a.bundle_id for a in seen if isinstance(a, actions.Transmit))
    assert h.router.failed == [bundle_id]
    assert h.agent.bundle(bundle_id) is not None
    assert h.agent.get_timer() == T0 + 5_000
    assert h.tick(T0 + 4_999) == []
    again = h.tick(T0 + 5_000)
    assert [type(a) for a in again] == [actions.Transmit]


def test_forwarding_report_and_copy_kept_when_the_router_says_so() -> None:
    h = Harness(keep_copy=True)
    h.feed(inputs.LinkUp("lb", "dtn://b/"))
    data = bundle_bytes(flags=BundleFlag.REPORT_FORWARDING, report_to="dtn://z/r")
    seen = h.settle(h.feed(inputs.BundleReceived(data, "in")))
    kept = [m for m in h.metas.values() if m.destination == "dtn://b/app"]
    assert len(kept) == 1 and kept[0].retention == Retention.FORWARD_PENDING
    reports = [
        a for a in seen if isinstance(a, actions.Persist) and a.meta.destination == "dtn://z/r"
    ]
    assert len(reports) == 1
    assert read_admin_record(decode_bundle(reports[0].data)).forwarded.asserted


def test_bundle_in_flight_is_not_sent_twice_on_the_same_link() -> None:
    h = Harness()
    h.feed(inputs.LinkUp("lb", "dtn://b/"))
    bundle_id = _receive(h, bundle_bytes())
    out = h.feed(inputs.Persisted(bundle_id))
    assert sum(isinstance(a, actions.Transmit) for a in out) == 1
    assert not any(
        isinstance(a, actions.Transmit) for a in h.feed(inputs.LinkUp("lb2", "dtn://b/"))
    )


def test_expiry_deletes_a_waiting_bundle_and_reports_it() -> None:
    h = Harness()
    data = bundle_bytes(
        lifetime=10_000, creation_time=T0, flags=BundleFlag.REPORT_DELETION, report_to="dtn://z/r"
    )
    bundle_id = _receive(h, data)
    h.settle(h.feed(inputs.Persisted(bundle_id)))
    assert h.agent.get_timer() == T0 + 10_000
    out = h.tick(T0 + 10_000)
    assert out[0] == actions.Remove(bundle_id)
    assert isinstance(out[1], actions.Persist)
    record = read_admin_record(decode_bundle(out[1].data))
    assert record.deleted.asserted and record.reason == 1
    assert ("deleted", bundle_id, 1) in h.listener.events


def test_routing_messages_go_on_the_link_and_come_back_to_the_router() -> None:
    a, b = Harness(), Harness(node_id="dtn://b/")
    a.router.link_up_messages = [ControlMessage("dtn://b/", "lb", b"summary")]
    out = a.feed(inputs.LinkUp("lb", "dtn://b/"))
    transmit = out[0]
    assert isinstance(transmit, actions.Transmit) and transmit.plan.inline is not None
    (wire,) = a.settle([transmit]) and a.sent[0][1]
    bundle = decode_bundle(wire)
    assert str(bundle.primary.destination) == "dtn://b/~routing"
    assert b.feed(inputs.BundleReceived(wire, "la", receipt="r")) == [
        actions.Acknowledge("r", True, 0)
    ]
    assert b.router.control == [("dtn://a/", b"summary")]
    assert b.metas == {}


def test_link_down_then_failure_keeps_the_bundle() -> None:
    h = Harness()
    h.feed(inputs.LinkUp("lb", "dtn://b/"))
    bundle_id = _receive(h, bundle_bytes())
    transmit = next(
        a for a in h.feed(inputs.Persisted(bundle_id)) if isinstance(a, actions.Transmit)
    )
    h.feed(inputs.LinkDown("lb", "peer went away"))
    h.feed(inputs.TransmissionFailed("lb", bundle_id, transmit.transmission))
    assert h.agent.bundle(bundle_id) is not None
    out = h.feed(inputs.LinkUp("lb2", "dtn://b/"))
    assert [type(a) for a in out] == [actions.Transmit]


class _Replicating(LinkToPeerRouter):
    """Copies to every neighbour, keeping one; the destination gets the last copy."""

    def route(self, meta: BundleMeta, view: RoutingView, now: int) -> Decision:
        direct = view.links_to(node_of(meta.destination))
        if direct:
            return Forward((direct[0].link_id,), keep_copy=False)
        links = tuple(link.link_id for link in view.links())
        return Forward(links, keep_copy=True) if links else Wait()


def test_destination_gets_its_copy_while_kept_copies_are_in_flight() -> None:
    h = Harness()
    h.agent.router = h.router = _Replicating("dtn://a/", random.Random(1))
    h.feed(inputs.LinkUp("lx", "dtn://x/"))
    bundle_id = _receive(h, bundle_bytes())
    to_x = next(a for a in h.feed(inputs.Persisted(bundle_id)) if isinstance(a, actions.Transmit))
    assert to_x.link_id == "lx"
    out = h.feed(inputs.LinkUp("lb", "dtn://b/"))
    to_b = next(a for a in out if isinstance(a, actions.Transmit))
    assert to_b.link_id == "lb"
    # the destination has it; the bundle is let go only when the copy to x has ended too
    assert h.feed(inputs.TransmissionSucceeded("lb", bundle_id, to_b.transmission)) == []
    assert h.agent.bundle(bundle_id) is not None
    assert h.feed(inputs.LinkUp("ly", "dtn://y/")) == []  # nothing more is sent meanwhile
    done = h.feed(inputs.TransmissionFailed("lx", bundle_id, to_x.transmission))
    assert done == [actions.Remove(bundle_id)]
