"""Legacy BPv6 (RFC 5050) bundles through the agent: forwarded unchanged, delivered here."""

from __future__ import annotations

from dtncloud import bpv6
from dtncloud.bpv7 import StatusReportReason
from dtncloud.engine import actions, inputs
from dtncloud.runtime.node import delivery_of
from dtncloud.store.base import Retention
from tests.unit.engine.harness import T0, Harness

NOW_S = T0 // 1000


def v6(destination: str, **kwargs: object) -> bytes:
    fields: dict[str, object] = {
        "source": "ipn:9.1",
        "destination": destination,
        "payload": b"legacy",
        "creation_time": NOW_S - 10,
    }
    fields.update(kwargs)
    return bpv6.encode_bundle(bpv6.Bundle.create(**fields))  # type: ignore[arg-type]


def test_v6_bundle_is_forwarded_unchanged() -> None:
    h = Harness(node_id="ipn:1.0")
    h.feed(inputs.LinkUp("l2", "ipn:2.0"))
    data = v6("ipn:2.7")
    seen = h.settle(h.feed(inputs.BundleReceived(data, "l9", receipt="r")))
    persist = next(a for a in seen if isinstance(a, actions.Persist))
    assert persist.meta.protocol == 6
    assert persist.meta.expires_at == (NOW_S - 10 + 86_400) * 1000
    assert h.sent[0][1] == [data]
    assert actions.Acknowledge("r", True, 0) in seen
    assert h.metas == {}


def test_v6_bundle_for_this_node_is_delivered() -> None:
    h = Harness(node_id="ipn:1.0")
    h.feed(inputs.ApplicationRegistered("ipn:1.5"))
    data = v6("ipn:1.5")
    seen = h.settle(h.feed(inputs.BundleReceived(data, "l9")))
    deliver = next(a for a in seen if isinstance(a, actions.Deliver))
    delivery = delivery_of(deliver.bundle_id, data)
    assert (delivery.source, delivery.payload) == ("ipn:9.1", b"legacy")
    assert h.metas == {}


def test_v6_duplicate_and_expired_and_garbage() -> None:
    h = Harness(node_id="ipn:1.0")
    data = v6("ipn:3.1")
    h.settle(h.feed(inputs.BundleReceived(data, "l9")))
    (meta,) = h.metas.values()
    assert meta.retention == Retention.FORWARD_PENDING
    assert h.feed(inputs.BundleReceived(data, "l9", receipt=1)) == [actions.Acknowledge(1, True, 0)]
    old = v6("ipn:3.1", creation_time=NOW_S - 100, lifetime=50)
    assert h.feed(inputs.BundleReceived(old, "l9", receipt=2)) == [
        actions.Acknowledge(2, False, StatusReportReason.LIFETIME_EXPIRED)
    ]
    out = h.feed(inputs.BundleReceived(b"\x06\xff\xff", "l9", receipt=3))
    assert len(out) == 1 and isinstance(out[0], actions.Acknowledge) and not out[0].accepted
