"""BIBE custody transfer between two agents: BPDUs out, custody signals back, retransmission
when no signal comes, and the books across a restart."""

from __future__ import annotations

from dtncloud.bpv7 import (
    BibePdu,
    CustodyDisposition,
    CustodySignal,
    decode_bundle,
    read_admin_record,
)
from dtncloud.engine import actions, inputs
from dtncloud.store.base import Retention
from tests.unit.engine.harness import T0, Harness, bundle_bytes

CUSTODY = {"custody": True, "custody_retransmit_ms": 10_000, "custody_signal_delay_ms": 500}


def a_and_b() -> tuple[Harness, Harness]:
    a = Harness(node_id="dtn://a/", config=CUSTODY, via=["dtn://b/"])
    b = Harness(node_id="dtn://b/", config=CUSTODY, via=["dtn://a/"])
    a.feed(inputs.LinkUp("to-b", "dtn://b/"))
    return a, b


def send_one(a: Harness) -> tuple[str, bytes]:
    """A takes a bundle for dtn://c/ and sends it to B under custody; returns its ID and the
    wire bundle."""
    seen = a.settle(a.feed(inputs.BundleReceived(bundle_bytes(destination="dtn://c/x"), "in")))
    transmit = next(x for x in seen if isinstance(x, actions.Transmit))
    assert transmit.plan.bibe is not None and transmit.plan.bibe.destination == "dtn://b/"
    (wire,) = a.sent[-1][1]
    return transmit.bundle_id, wire


def test_custodian_keeps_the_bundle_until_the_signal_comes() -> None:
    a, b = a_and_b()
    bundle_id, wire = send_one(a)
    outer = decode_bundle(wire)
    assert str(outer.primary.destination) == "dtn://b/"
    pdu = read_admin_record(outer)
    assert isinstance(pdu, BibePdu) and pdu.transmission_id == 1
    assert pdu.retransmission_time == T0 + 10_000
    # sent and acknowledged by the link, but kept in custody
    meta = a.metas[bundle_id]
    assert meta.retention == Retention.CUSTODY_ACCEPTED and meta.custody
    # B stores the inner bundle, acknowledges, and signals after the delay
    out = b.feed(inputs.BundleReceived(wire, "from-a", receipt="r"))
    assert [type(x) for x in out] == [actions.Persist]
    assert decode_bundle(out[0].data).id == decode_bundle(bundle_bytes(destination="dtn://c/x")).id
    after = b.settle(out)
    assert actions.Acknowledge("r", True, 0) in after
    assert b.agent.get_timer() == T0 + 500
    signal_persist = next(x for x in b.tick(T0 + 500) if isinstance(x, actions.Persist))
    signal_bundle = decode_bundle(signal_persist.data)
    assert str(signal_bundle.primary.destination) == "dtn://a/"
    signal = read_admin_record(signal_bundle)
    assert signal == CustodySignal(CustodyDisposition.ACCEPTED, ((1, 1),))
    # A releases custody and lets the bundle go
    a.now = T0 + 600
    out = a.feed(inputs.BundleReceived(signal_persist.data, "to-b", receipt="s"))
    assert sorted(out, key=repr) == [actions.Acknowledge("s", True, 0), actions.Remove(bundle_id)]


def test_no_signal_in_time_sends_again_with_a_new_transmission_id() -> None:
    a, _ = a_and_b()
    bundle_id, _ = send_one(a)
    assert a.agent.get_timer() == T0 + 10_000
    a.settle(a.tick(T0 + 10_000))
    (wire,) = a.sent[-1][1]
    pdu = read_admin_record(decode_bundle(wire))
    assert isinstance(pdu, BibePdu) and pdu.transmission_id == 2
    assert pdu.retransmission_time == T0 + 10_000 + 20_000  # backoff doubled
    assert a.metas[bundle_id].retention & Retention.CUSTODY_ACCEPTED


def test_refusal_downstream_routes_the_bundle_again_later() -> None:
    a, _ = a_and_b()
    bundle_id, _ = send_one(a)
    refusal = CustodySignal(CustodyDisposition.DEPLETED_STORAGE, ((1, 1),))
    a.agent._on_custody_signal("dtn://b/", refusal, a.now)
    assert a.agent.bundle(bundle_id).retention == Retention.FORWARD_PENDING  # type: ignore[union-attr]
    retry = a.agent.config.retry_ms
    out = a.tick(T0 + retry)
    assert any(isinstance(x, actions.Transmit) for x in out)


def test_redundant_reception_is_signalled_for_a_duplicate() -> None:
    a, b = a_and_b()
    _, wire = send_one(a)
    b.settle(b.feed(inputs.BundleReceived(wire, "from-a")))
    b.feed(inputs.BundleReceived(wire, "from-a"))
    signals = [
        read_admin_record(decode_bundle(x.data))
        for x in b.tick(T0 + 500)
        if isinstance(x, actions.Persist)
    ]
    assert CustodySignal(CustodyDisposition.ACCEPTED, ((1, 1),)) in signals
    assert CustodySignal(CustodyDisposition.REDUNDANT_RECEPTION, ((1, 1),)) in signals


def test_store_full_is_signalled_as_depleted_storage() -> None:
    a, b = a_and_b()
    _, wire = send_one(a)
    persist = b.feed(inputs.BundleReceived(wire, "from-a", receipt="r"))[0]
    assert isinstance(persist, actions.Persist)
    b.feed(inputs.PersistFailed(persist.meta.bundle_id, full=True))
    (signal_persist,) = [x for x in b.tick(T0 + 500) if isinstance(x, actions.Persist)]
    assert read_admin_record(decode_bundle(signal_persist.data)) == CustodySignal(
        CustodyDisposition.DEPLETED_STORAGE, ((1, 1),)
    )


def test_custody_books_and_counter_survive_a_restart() -> None:
    a, _ = a_and_b()
    bundle_id, _ = send_one(a)
    assert a.state  # the transmission ID reservation was stored before the BPDU went out
    later = Harness(node_id="dtn://a/", config=CUSTODY, via=["dtn://b/"], now=T0 + 1_000)
    later.stored, later.metas = dict(a.stored), dict(a.metas)
    later.agent.restore(later.metas.values(), a.state, later.now)
    assert later.agent.get_timer() == T0 + 10_000
    later.feed(inputs.LinkUp("to-b", "dtn://b/"))
    later.settle(later.tick(T0 + 10_000))
    pdu = read_admin_record(decode_bundle(later.sent[-1][1][0]))
    assert isinstance(pdu, BibePdu) and pdu.transmission_id > 1
    # a signal for the first transmission ID no longer releases anything
    later.agent._on_custody_signal("dtn://b/", CustodySignal(0, ((1, 1),)), later.now)
    assert bundle_id in later.agent.bundle_ids()
