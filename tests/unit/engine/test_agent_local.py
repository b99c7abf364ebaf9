"""Local applications (RFC 9171 5.2, 5.7), reassembly (5.9), timestamps and restart."""

from __future__ import annotations

from dtncloud.bpv7 import Bundle, BundleFlag, decode_bundle, encode_bundle, fragment_bundle
from dtncloud.engine import actions, inputs
from dtncloud.store.base import Retention
from tests.unit.engine.harness import T0, Harness, bundle_bytes


def test_submission_is_stored_then_accepted_then_routed() -> None:
    h = Harness()
    h.feed(inputs.LinkUp("lb", "dtn://b/"))
    out = h.feed(
        inputs.ApplicationSubmitted(
            "dtn://a/app", "dtn://b/in", b"hello", lifetime=60_000, submission="s1"
        )
    )
    persist = out[0]
    assert isinstance(persist, actions.Persist) and len(out) == 1
    bundle = decode_bundle(persist.data)
    assert bundle.payload == b"hello"
    assert (bundle.primary.creation_time, bundle.primary.sequence) == (T0, 0)
    assert persist.meta.expires_at == T0 + 60_000
    after = h.feed(inputs.Persisted(persist.meta.bundle_id))
    assert after[0] == actions.SubmissionAccepted("s1", persist.meta.bundle_id)
    assert isinstance(after[1], actions.Transmit)


def test_creation_timestamps_are_unique_even_across_a_restart_in_the_same_millisecond() -> None:
    h = Harness()
    stamps = []
    for _ in range(3):
        (persist,) = h.feed(inputs.ApplicationSubmitted("dtn://a/app", "dtn://b/in", b"x"))
        assert isinstance(persist, actions.Persist)
        stamps.append((persist.meta.creation_time, persist.meta.sequence))
        h.execute(persist)
    assert [t for t, _ in stamps] == [T0] * 3 and len(set(stamps)) == 3
    # a restart within the same millisecond continues after the stored reservation
    again = Harness(now=h.now)
    again.agent.restore(h.metas.values(), h.state, again.now)
    list(again.agent.actions())
    (persist,) = again.feed(inputs.ApplicationSubmitted("dtn://a/app", "dtn://b/in", b"y"))
    assert isinstance(persist, actions.Persist)
    assert (persist.meta.creation_time, persist.meta.sequence) not in stamps


def test_node_without_a_clock_reserves_sequence_numbers_before_use() -> None:
    h = Harness(config={"clock_accurate": False})
    reserved = int.from_bytes(h.state["engine.sequence"], "big")
    assert reserved > 0  # stored when the node started, before any number was used
    (persist,) = h.feed(inputs.ApplicationSubmitted("dtn://a/app", "dtn://b/in", b"x"))
    assert isinstance(persist, actions.Persist)
    bundle = decode_bundle(persist.data)
    assert bundle.primary.creation_time == 0 and bundle.bundle_age == 0
    # a restarted node continues after the reservation
    h2 = Harness(config={"clock_accurate": False})
    h2.agent.restore([], h.state, h2.now)
    list(h2.agent.actions())
    p2 = h2.feed(inputs.ApplicationSubmitted("dtn://a/app", "dtn://b/in", b"x"))
    sequences = [a.meta.sequence for a in p2 if isinstance(a, actions.Persist)]
    assert sequences == [reserved]


def test_submission_from_a_foreign_source_is_refused() -> None:
    h = Harness()
    out = h.feed(inputs.ApplicationSubmitted("dtn://x/app", "dtn://b/in", b"x", submission=9))
    assert len(out) == 1 and isinstance(out[0], actions.SubmissionRefused)
    assert "dtn://x/app" in out[0].reason


def test_submission_with_a_bad_destination_is_refused() -> None:
    h = Harness()
    out = h.feed(inputs.ApplicationSubmitted("dtn://a/app", "not an eid", b"x", submission=9))
    assert len(out) == 1 and isinstance(out[0], actions.SubmissionRefused)


def test_bundle_for_an_absent_application_waits_for_it() -> None:
    h = Harness()
    data = bundle_bytes(
        destination="dtn://a/inbox", flags=BundleFlag.REPORT_DELIVERY, report_to="dtn://z/r"
    )
    seen = h.settle(h.feed(inputs.BundleReceived(data, "l1", receipt="r")))
    assert not any(isinstance(a, actions.Deliver) for a in seen)
    (meta,) = h.metas.values()
    assert meta.retention == Retention.DISPATCH_PENDING
    out = h.feed(inputs.ApplicationRegistered("dtn://a/inbox"))
    assert out == [actions.Deliver("dtn://a/inbox", meta.bundle_id)]
    done = h.settle(out)
    assert actions.Remove(meta.bundle_id) in done
    reports = [a for a in done if isinstance(a, actions.Persist)]
    assert len(reports) == 1 and reports[0].meta.destination == "dtn://z/r"
    assert ("delivered", meta.bundle_id, "dtn://a/inbox") in h.listener.events


def test_failed_delivery_keeps_the_bundle_until_the_application_returns() -> None:
    h = Harness()
    h.feed(inputs.ApplicationRegistered("dtn://a/inbox"))
    seen = h.settle(
        h.feed(inputs.BundleReceived(bundle_bytes(destination="dtn://a/inbox"), "l1")),
        deliver=False,
    )
    assert sum(isinstance(a, actions.Deliver) for a in seen) == 1
    assert len(h.metas) == 1
    # the application is taken to be away: the next bundle waits without a delivery attempt
    seen = h.settle(
        h.feed(inputs.BundleReceived(bundle_bytes(destination="dtn://a/inbox", sequence=1), "l1"))
    )
    assert not any(isinstance(a, actions.Deliver) for a in seen)
    assert len(h.metas) == 2
    out = h.feed(inputs.ApplicationRegistered("dtn://a/inbox"))
    assert sorted(a.bundle_id for a in out if isinstance(a, actions.Deliver)) == sorted(h.metas)
    h.settle(out)
    assert h.metas == {}


def test_fragments_for_this_node_are_reassembled_then_delivered() -> None:
    h = Harness()
    h.feed(inputs.ApplicationRegistered("dtn://a/inbox"))
    whole = Bundle.create(
        source="dtn://z/app",
        destination="dtn://a/inbox",
        payload=bytes(range(200)) * 3,
        creation_time=T0 - 10,
    )
    pieces = fragment_bundle(whole, 250)
    assert len(pieces) >= 3
    seen: list[actions.Action] = []
    for piece in reversed(pieces):
        seen += h.settle(h.feed(inputs.BundleReceived(encode_bundle(piece), "l1")))
    reassemble = [a for a in seen if isinstance(a, actions.Reassemble)]
    assert len(reassemble) == 1 and reassemble[0].bundle_id == str(whole.id)
    delivers = [a for a in seen if isinstance(a, actions.Deliver)]
    assert [d.bundle_id for d in delivers] == [str(whole.id)]
    assert h.metas == {}  # fragments and the whole bundle are gone after delivery


def test_restart_rebuilds_the_index_and_drops_what_expired() -> None:
    h = Harness()
    h.settle(h.feed(inputs.BundleReceived(bundle_bytes(), "l1")))
    h.settle(
        h.feed(
            inputs.BundleReceived(
                bundle_bytes(creation_time=T0, lifetime=1_000, payload=b"short"), "l1"
            )
        )
    )
    assert len(h.metas) == 2
    later = Harness(now=T0 + 5_000)
    later.stored, later.metas = dict(h.stored), dict(h.metas)
    later.agent.restore(later.metas.values(), {}, later.now)
    removed = [a for a in later.agent.actions() if not isinstance(a, actions.SaveState)]
    assert len(removed) == 1 and isinstance(removed[0], actions.Remove)
    assert len(later.agent) == 1
    out = later.feed(inputs.LinkUp("lb", "dtn://b/"))
    assert [type(a) for a in out] == [actions.Transmit]
