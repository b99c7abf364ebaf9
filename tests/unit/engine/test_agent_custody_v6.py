"""RFC 5050 custody transfer through the agent: taking custody of a BPv6 bundle, signalling
the previous custodian, keeping the bundle until the next custodian signals."""

from __future__ import annotations

from dtncloud import bpv6
from dtncloud.engine import actions, inputs
from dtncloud.engine.custody_v6 import custody_signal_bundle_v6
from dtncloud.store.base import Retention
from tests.unit.engine.harness import T0, Harness

NOW_S = T0 // 1000
CUSTODY = {"custody": True, "custody_retransmit_ms": 10_000}


def v6_with_custody(**kwargs: object) -> bpv6.Bundle:
    fields: dict[str, object] = {
        "source": "ipn:9.1",
        "destination": "ipn:3.1",
        "payload": b"legacy",
        "creation_time": NOW_S - 10,
        "custodian": "ipn:9.0",
        "flags": bpv6.BundleFlag.SINGLETON_DESTINATION | bpv6.BundleFlag.CUSTODY_REQUESTED,
    }
    fields.update(kwargs)
    return bpv6.Bundle.create(**fields)  # type: ignore[arg-type]


def signals_in(seen: list[actions.Action]) -> list[tuple[bpv6.Bundle, bpv6.CustodySignal]]:
    out = []
    for action in seen:
        if isinstance(action, actions.Persist) and action.meta.protocol == 6:
            bundle = bpv6.decode_bundle(action.data)
            if bundle.is_admin_record:
                record = bpv6.decode_admin_record(bundle.payload)
                assert isinstance(record, bpv6.CustodySignal)
                out.append((bundle, record))
    return out


def test_taking_custody_signals_the_previous_custodian_and_keeps_the_bundle() -> None:
    h = Harness(node_id="ipn:1.0", config=CUSTODY)
    h.feed(inputs.LinkUp("l9", "ipn:9.0"))
    h.feed(inputs.LinkUp("l3", "ipn:3.0"))
    original = v6_with_custody()
    seen = h.settle(h.feed(inputs.BundleReceived(bpv6.encode_bundle(original), "l9", "r")))
    stored = next(a for a in seen if isinstance(a, actions.Persist) and a.meta.size)
    assert bpv6.decode_bundle(stored.data).custodian == "ipn:1.0"
    ((signal_bundle, signal),) = signals_in(seen)
    assert signal_bundle.destination == "ipn:9.0" and signal.succeeded
    assert str(signal.subject) == str(original.bundle_id)
    # forwarded to ipn:3, but kept until its custodian signals
    bundle_id = str(original.bundle_id)
    assert h.metas[bundle_id].retention == Retention.CUSTODY_ACCEPTED
    downstream = custody_signal_bundle_v6(
        bpv6.decode_bundle(stored.data),
        succeeded=True,
        local_node="ipn:3.0",
        now_dtn_ms=h.now,
    )
    out = h.feed(inputs.BundleReceived(bpv6.encode_bundle(downstream), "l3", "s"))
    assert actions.Remove(bundle_id) in out
    assert actions.Acknowledge("s", True, 0) in out


def test_no_signal_means_the_custodian_sends_again() -> None:
    h = Harness(node_id="ipn:1.0", config=CUSTODY)
    h.feed(inputs.LinkUp("l3", "ipn:3.0"))
    h.settle(h.feed(inputs.BundleReceived(bpv6.encode_bundle(v6_with_custody()), "l9")))
    sent_before = len(h.sent)
    h.settle(h.tick(T0 + 10_000))
    assert len(h.sent) == sent_before + 1


def test_duplicate_under_custody_is_refused_as_redundant() -> None:
    h = Harness(node_id="ipn:1.0", config=CUSTODY)
    data = bpv6.encode_bundle(v6_with_custody())
    h.settle(h.feed(inputs.BundleReceived(data, "l9")))
    seen = h.settle(h.feed(inputs.BundleReceived(data, "l9")))
    ((_, signal),) = signals_in(seen)
    assert not signal.succeeded and signal.reason == bpv6.CustodySignalReason.REDUNDANT_RECEPTION


def test_without_custody_enabled_the_custodian_is_left_alone() -> None:
    h = Harness(node_id="ipn:1.0")
    data = bpv6.encode_bundle(v6_with_custody())
    seen = h.settle(h.feed(inputs.BundleReceived(data, "l9")))
    assert signals_in(seen) == []
    stored = next(a for a in seen if isinstance(a, actions.Persist))
    assert stored.data == data
