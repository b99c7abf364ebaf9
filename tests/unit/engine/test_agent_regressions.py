"""Minimal examples of engine defects the agent state machine
(tests/property/test_agent_state_machine.py) found, each fixed: they keep them fixed."""

from __future__ import annotations

import random

import dtncloud.routing  # noqa: F401  (registers the routers)
from dtncloud.bpv7 import (
    BlockFlag,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    StatusReportReason,
    decode_bundle,
    encode_bundle,
    fragment_bundle,
    read_admin_record,
)
from dtncloud.engine import BundleProtocolAgent, EngineConfig, actions, inputs
from dtncloud.routing import default_registry
from dtncloud.routing.epidemic import encode_summary
from tests.property.agent_model import (
    NODE,
    T0,
    VolumeRouter,
    legacy_bundle,
)
from tests.unit.engine.harness import Harness, bundle_bytes


def test_duplicate_is_not_acknowledged_before_the_first_copy_is_stored() -> None:
    h = Harness()
    data = bundle_bytes()
    (persist,) = h.feed(inputs.BundleReceived(data, "l1", receipt="r1"))
    assert isinstance(persist, actions.Persist)
    early = h.feed(inputs.BundleReceived(data, "l2", receipt="r2"))
    # If the store now fails, r2's sender was told the node holds a bundle it never stored.
    late = h.feed(inputs.PersistFailed(persist.meta.bundle_id, full=True))
    acks = [a for a in early + late if isinstance(a, actions.Acknowledge) and a.receipt == "r2"]
    assert acks == [actions.Acknowledge("r2", False, StatusReportReason.DEPLETED_STORAGE)]


def test_fragment_is_kept_until_the_whole_bundle_is_stored() -> None:
    h = Harness()
    whole = Bundle.create(
        source="dtn://b/app", destination="dtn://a/app", payload=b"p" * 300, creation_time=T0
    )
    fragment = fragment_bundle(whole, 100)[0]
    (stored,) = h.feed(inputs.BundleReceived(encode_bundle(fragment), "l", receipt="f"))
    (pending,) = h.feed(inputs.BundleReceived(encode_bundle(whole), "l", receipt="w"))
    assert isinstance(stored, actions.Persist) and isinstance(pending, actions.Persist)
    h.settle([stored])
    h.feed(inputs.PersistFailed(pending.meta.bundle_id, full=True))
    assert h.agent.bundle(stored.meta.bundle_id) is not None


def test_restart_in_the_same_millisecond_reuses_a_timestamp() -> None:
    before = Harness()
    (first,) = before.feed(inputs.ApplicationSubmitted("dtn://a/app", "dtn://b/x", b"1"))
    assert isinstance(first, actions.Persist)
    before.settle([first])
    after = Harness(now=before.now)  # same millisecond: time did not go back
    after.agent.restore(before.metas.values(), before.state, after.now)
    out = after.feed(inputs.ApplicationSubmitted("dtn://a/app", "dtn://b/x", b"2"))
    (second,) = [a for a in out if isinstance(a, actions.Persist)]
    assert second.meta.bundle_id != first.meta.bundle_id


def test_anonymous_bundles_collide() -> None:
    def anonymous(destination: str, payload: bytes) -> bytes:
        bundle = Bundle.create(
            source="dtn:none",
            destination=destination,
            payload=payload,
            creation_time=0,
            bundle_age=0,
        )
        return encode_bundle(bundle)

    # Two clockless nodes each send one anonymous bundle: both are "dtn:none@0.0".
    h = Harness()
    h.settle(h.feed(inputs.BundleReceived(anonymous("dtn://b/x", b"one"), "l", receipt="r1")))
    out = h.feed(inputs.BundleReceived(anonymous("dtn://c/y", b"two"), "l", receipt="r2"))
    stored_second = any(isinstance(a, actions.Persist) for a in out)
    # A clockless node's own first anonymous bundle is dtn:none@0.0 as well: its Persist
    # replaces the pending one, whose receipt is then never answered.
    g = Harness(config={"clock_accurate": False})
    (persist,) = g.feed(inputs.BundleReceived(anonymous("dtn://b/x", b"one"), "l", receipt="r"))
    assert isinstance(persist, actions.Persist)
    g.feed(inputs.ApplicationSubmitted("dtn:none", "dtn://c/z", b"mine", submission="s"))
    answered = g.feed(inputs.Persisted(persist.meta.bundle_id))
    assert stored_second and actions.Acknowledge("r", True, 0) in answered


def test_handle_timer_leaves_no_timer_at_now() -> None:
    config = EngineConfig(NODE, custody=True, custody_retransmit_ms=5_000)
    router = default_registry.create(
        "epidemic", node_id=NODE, rng=random.Random(0), params={"vector_wait_ms": 2_000}
    )
    h = Harness(config={"custody": True, "custody_retransmit_ms": 5_000})
    h.router, h.agent = router, BundleProtocolAgent(config, router)  # type: ignore[assignment]
    h.settle(h.feed(inputs.LinkUp("lb", "dtn://b/")))
    vector = Bundle.create(
        source="dtn://b/~routing",
        destination=f"{NODE}~routing",
        payload=encode_summary([], 10),
        creation_time=T0,
    )
    h.settle(h.feed(inputs.BundleReceived(encode_bundle(vector), "lb")))  # b is heard
    # A bundle for d goes to b under custody; c comes up 3 s later and waits 2 s for a
    # vector, until just when the custody timer fires.
    h.settle(h.feed(inputs.BundleReceived(bundle_bytes(destination="dtn://d/x"), None)))
    h.now = T0 + 3_000
    h.settle(h.feed(inputs.LinkUp("lc", "dtn://c/")))
    assert h.agent.get_timer() == T0 + 5_000
    h.tick(T0 + 5_000)
    due = h.agent.get_timer()
    assert due is None or due > T0 + 5_000


def test_bundle_sent_on_a_contact_fits_its_volume() -> None:
    data = bundle_bytes(destination="dtn://b/app")
    h = Harness()
    h.router = VolumeRouter(NODE, random.Random(0), volume=len(data))
    h.agent = BundleProtocolAgent(EngineConfig(NODE), h.router)
    h.feed(inputs.LinkUp("lb", "dtn://b/"))
    h.settle(h.feed(inputs.BundleReceived(data, "in")))
    (_, wire, _) = h.sent[-1]
    assert sum(len(w) for w in wire) <= len(data)


def test_unfragmentable_bundle_waits_for_a_contact_with_room() -> None:
    data = bundle_bytes(destination="dtn://b/app", flags=BundleFlag.MUST_NOT_FRAGMENT)
    h = Harness()
    h.router = VolumeRouter(NODE, random.Random(0), volume=len(data) // 2)
    h.agent = BundleProtocolAgent(EngineConfig(NODE), h.router)
    h.feed(inputs.LinkUp("lb", "dtn://b/"))
    seen = h.settle(h.feed(inputs.BundleReceived(data, "in")))
    assert not any(isinstance(a, actions.Transmit) for a in seen)


def test_bundle_being_cut_is_not_cut_again() -> None:
    data = bundle_bytes(destination="dtn://b/app", payload=b"x" * 400)
    h = Harness()
    h.router = VolumeRouter(NODE, random.Random(0), volume=250)
    h.agent = BundleProtocolAgent(EngineConfig(NODE), h.router)
    h.settle(h.feed(inputs.BundleReceived(data, "in")))
    (cut,) = h.feed(inputs.LinkUp("lb", "dtn://b/"))
    answer = h.execute(cut)
    assert answer is not None
    pieces = h.feed(answer)  # Persist, Persist: not answered yet
    assert [type(a) for a in pieces] == [actions.Persist, actions.Persist]
    h.feed(inputs.LinkDown("lb"))
    again = h.feed(inputs.LinkUp("lb", "dtn://b/"))  # the contact comes back meanwhile
    assert not any(isinstance(a, actions.Refragment) for a in again)


def test_legacy_bundle_delivered_under_custody_is_let_go() -> None:
    h = Harness(config={"custody": True})
    h.feed(inputs.ApplicationRegistered("dtn://a/app"))
    data = legacy_bundle(
        source="dtn://b/app",
        destination="dtn://a/app",
        now=T0,
        ago_s=5,
        lifetime_s=86_400,
        custody=True,
    )
    seen = h.settle(h.feed(inputs.BundleReceived(data, "lb", receipt="r")))
    (deliver,) = [a for a in seen if isinstance(a, actions.Deliver)]
    assert h.agent.bundle(deliver.bundle_id) is None


def test_bundle_sent_on_a_link_fits_its_largest_bundle() -> None:
    data = bundle_bytes(destination="dtn://b/app")
    h = Harness()
    h.feed(inputs.LinkUp("lb", "dtn://b/", "tcpcl", max_bundle_size=len(data)))
    h.settle(h.feed(inputs.BundleReceived(data, "in")))
    (_, wire, _) = h.sent[-1]
    assert max(len(w) for w in wire) <= len(data)


# -- found in review ------------------------------------------------------------------------


def test_any_store_failure_refuses_the_transfer() -> None:
    h = Harness()
    (persist,) = h.feed(inputs.BundleReceived(bundle_bytes(), "l1", receipt="r"))
    assert isinstance(persist, actions.Persist)
    out = h.feed(inputs.PersistFailed(persist.meta.bundle_id, full=False, message="I/O error"))
    assert out == [actions.Acknowledge("r", False, StatusReportReason.DEPLETED_STORAGE)]


def test_reassembly_that_comes_back_after_the_whole_bundle_went_is_dropped() -> None:
    h = Harness()
    h.feed(inputs.ApplicationRegistered("dtn://a/app"))
    whole = Bundle.create(
        source="dtn://b/app", destination="dtn://a/app", payload=b"p" * 300, creation_time=T0
    )
    pieces = fragment_bundle(whole, 200)
    reassemble = []
    for piece in pieces:
        (persist,) = h.feed(inputs.BundleReceived(encode_bundle(piece), "l"))
        assert isinstance(persist, actions.Persist)
        h.execute(persist)
        out = h.feed(inputs.Persisted(persist.meta.bundle_id))
        reassemble += [a for a in out if isinstance(a, actions.Reassemble)]
    (job,) = reassemble
    h.settle(h.feed(inputs.BundleReceived(encode_bundle(whole), "l")))  # came whole, delivered
    answer = h.execute(job)
    assert answer is not None
    out = h.settle(h.feed(answer))
    assert not any(isinstance(a, actions.Deliver) for a in out)
    assert h.stored == {}


def test_bundles_for_an_endpoint_registered_before_start_are_delivered() -> None:
    before = Harness()
    before.settle(before.feed(inputs.BundleReceived(bundle_bytes(destination="dtn://a/in"), "l")))
    (stored,) = before.metas.values()
    after = Harness()
    after.feed(inputs.ApplicationRegistered("dtn://a/in"))
    after.agent.restore(before.metas.values(), before.state, after.now)
    assert actions.Deliver("dtn://a/in", stored.bundle_id) in list(after.agent.actions())


def test_expiry_heap_stays_in_proportion_to_what_is_held() -> None:
    h = Harness()
    h.feed(inputs.LinkUp("lb", "dtn://b/"))
    for sequence in range(3000):  # each forwarded and let go at once
        h.settle(h.feed(inputs.BundleReceived(bundle_bytes(sequence=sequence), "in")))
    assert len(h.agent) == 0
    assert len(h.agent._expiry) <= 1024 + 2


def test_unsupported_block_asking_for_a_report_and_deletion_gets_both_reports() -> None:
    h = Harness()
    bundle = decode_bundle(
        bundle_bytes(flags=BundleFlag.REPORT_DELETION, report_to="dtn://z/r")
    ).add_block(
        CanonicalBlock(
            200,
            7,
            b"\x01",
            BlockFlag.DELETE_BUNDLE_IF_UNPROCESSABLE | BlockFlag.REPORT_IF_UNPROCESSABLE,
        )
    )
    out = h.feed(inputs.BundleReceived(encode_bundle(bundle), "l1", receipt="r"))
    records = [
        read_admin_record(decode_bundle(a.data)) for a in out if isinstance(a, actions.Persist)
    ]
    assert [(r.received.asserted, r.deleted.asserted) for r in records] == [
        (True, False),
        (False, True),
    ]
    assert all(r.reason == StatusReportReason.BLOCK_UNSUPPORTED for r in records)


def test_bundle_the_store_could_not_take_is_reported_deleted() -> None:
    h = Harness()
    data = bundle_bytes(flags=BundleFlag.REPORT_DELETION, report_to="dtn://z/r")
    (persist,) = h.feed(inputs.BundleReceived(data, "l1", receipt="r"))
    assert isinstance(persist, actions.Persist)
    out = h.feed(inputs.PersistFailed(persist.meta.bundle_id, full=True))
    reports = [a for a in out if isinstance(a, actions.Persist)]
    assert len(reports) == 1
    record = read_admin_record(decode_bundle(reports[0].data))
    assert record.deleted.asserted and record.reason == StatusReportReason.DEPLETED_STORAGE


def test_a_routing_message_never_exceeds_its_links_size_limit() -> None:
    # A summary vector listing many bundles, on a link that takes 300-byte bundles: the
    # router lists fewer, and what still would not fit is not sent at all (never cut).
    for limit in (150, 300, 600):
        router = default_registry.create("epidemic", node_id=NODE, rng=random.Random(0))
        h = Harness()
        h.router, h.agent = router, BundleProtocolAgent(EngineConfig(NODE), router)  # type: ignore[assignment]
        for i in range(60):
            h.settle(h.feed(inputs.BundleReceived(bundle_bytes(sequence=i), None)))
        h.settle(h.feed(inputs.LinkUp("lb", "dtn://b/", max_bundle_size=limit)))
        assert h.sent, "nothing sent"
        for _, wire, _ in h.sent:
            assert all(len(piece) <= limit for piece in wire), (limit, [len(w) for w in wire])
