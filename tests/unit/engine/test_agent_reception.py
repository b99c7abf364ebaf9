"""Reception (RFC 9171 5.6): what the agent does with bytes from a neighbour."""

from __future__ import annotations

from dtncloud.bpv7 import (
    BlockFlag,
    BundleFlag,
    CanonicalBlock,
    StatusReportReason,
    decode_bundle,
    encode_bundle,
    hop_count_block,
    read_admin_record,
)
from dtncloud.engine import actions, inputs
from dtncloud.store.base import Retention
from tests.unit.engine.harness import T0, Harness, bundle_bytes

R = StatusReportReason


def test_acknowledges_only_after_the_store_holds_it() -> None:
    h = Harness()
    data = bundle_bytes()
    first = h.feed(inputs.BundleReceived(data, "l1", receipt="r1"))
    assert [type(a) for a in first] == [actions.Persist]
    persist = first[0]
    assert isinstance(persist, actions.Persist)
    assert persist.data == data  # unchanged bytes are stored as they came
    assert persist.meta.retention == Retention.FORWARD_PENDING
    assert persist.meta.destination == "dtn://b/app"
    assert persist.meta.expires_at == T0 - 1000 + 86_400_000
    then = h.feed(inputs.Persisted(persist.meta.bundle_id))
    assert then[0] == actions.Acknowledge("r1", True, 0)
    assert h.listener.kinds() == ["received"]


def test_store_failure_refuses_with_depleted_storage() -> None:
    h = Harness()
    persist = h.feed(inputs.BundleReceived(bundle_bytes(), "l1", receipt="r1"))[0]
    assert isinstance(persist, actions.Persist)
    out = h.feed(inputs.PersistFailed(persist.meta.bundle_id, full=True))
    assert out == [actions.Acknowledge("r1", False, R.DEPLETED_STORAGE)]
    assert h.agent.bundle(persist.meta.bundle_id) is None


def test_duplicates_are_acknowledged_and_not_stored_twice() -> None:
    h = Harness()
    data = bundle_bytes()
    h.settle(h.feed(inputs.BundleReceived(data, "l1", receipt="r1")))
    again = h.feed(inputs.BundleReceived(data, "l2", receipt="r2"))
    assert again == [actions.Acknowledge("r2", True, 0)]
    assert h.listener.kinds()[-1] == "duplicate"


def test_duplicate_while_the_first_copy_is_being_stored_waits_for_it() -> None:
    h = Harness()
    data = bundle_bytes()
    (persist,) = h.feed(inputs.BundleReceived(data, "l1", receipt="r1"))
    assert isinstance(persist, actions.Persist)
    # not acknowledged before the first copy is stored (rule 4), and not stored twice
    assert h.feed(inputs.BundleReceived(data, "l2", receipt="r2")) == []
    out = h.feed(inputs.Persisted(persist.meta.bundle_id))
    assert out[:2] == [actions.Acknowledge("r1", True, 0), actions.Acknowledge("r2", True, 0)]


def test_duplicate_shares_the_refusal_when_the_first_copy_cannot_be_stored() -> None:
    h = Harness()
    data = bundle_bytes()
    (persist,) = h.feed(inputs.BundleReceived(data, "l1", receipt="r1"))
    assert isinstance(persist, actions.Persist)
    h.feed(inputs.BundleReceived(data, "l2", receipt="r2"))
    out = h.feed(inputs.PersistFailed(persist.meta.bundle_id, full=True))
    assert out == [
        actions.Acknowledge("r1", False, R.DEPLETED_STORAGE),
        actions.Acknowledge("r2", False, R.DEPLETED_STORAGE),
    ]


def test_duplicate_of_a_bundle_already_forwarded_is_recognised() -> None:
    h = Harness()
    h.feed(inputs.LinkUp("lb", "dtn://b/"))
    data = bundle_bytes()
    h.settle(h.feed(inputs.BundleReceived(data, "l1", receipt="r1")))
    assert h.metas == {}  # forwarded and let go
    assert h.feed(inputs.BundleReceived(data, "l1", receipt="r2")) == [
        actions.Acknowledge("r2", True, 0)
    ]


def test_garbage_is_refused_with_the_decoders_reason() -> None:
    h = Harness()
    out = h.feed(inputs.BundleReceived(b"\x9f\x01\x02", "l1", receipt="r"))
    assert out == [actions.Acknowledge("r", False, R.BLOCK_UNINTELLIGIBLE)]
    assert h.listener.events == [("refused", None, R.BLOCK_UNINTELLIGIBLE)]


def test_bundle_over_the_size_limit_is_refused_for_storage() -> None:
    h = Harness(config={"max_bundle_size": 200})
    out = h.feed(inputs.BundleReceived(bundle_bytes(payload=b"y" * 500), "l1", receipt="r"))
    assert out == [actions.Acknowledge("r", False, R.DEPLETED_STORAGE)]


def test_expired_bundle_is_refused_and_deletion_reported() -> None:
    h = Harness()
    data = bundle_bytes(lifetime=500, flags=BundleFlag.REPORT_DELETION, report_to="dtn://z/reports")
    out = h.feed(inputs.BundleReceived(data, "l1", receipt="r"))
    assert out[0] == actions.Acknowledge("r", False, R.LIFETIME_EXPIRED)
    report = out[1]
    assert isinstance(report, actions.Persist)
    assert report.meta.destination == "dtn://z/reports"
    record = read_admin_record(decode_bundle(report.data))
    assert record.deleted.asserted and record.reason == R.LIFETIME_EXPIRED
    assert str(record.subject_source) == "dtn://z/app"


def test_age_block_sets_expiry_of_a_bundle_without_clock() -> None:
    h = Harness()
    data = bundle_bytes(creation_time=0, bundle_age=5_000, lifetime=60_000)
    persist = h.feed(inputs.BundleReceived(data, "l1", receipt="r"))[0]
    assert isinstance(persist, actions.Persist)
    assert persist.meta.expires_at == h.now - 5_000 + 60_000


def test_hop_limit_exceeded_is_refused() -> None:
    h = Harness()
    data = encode_bundle(decode_bundle(bundle_bytes()).add_block(hop_count_block(2, 3, 5)))
    out = h.feed(inputs.BundleReceived(data, "l1", receipt="r"))
    assert out == [actions.Acknowledge("r", False, R.HOP_LIMIT_EXCEEDED)]


def _with_unknown_block(block_flags: BlockFlag, **kwargs: object) -> bytes:
    bundle = decode_bundle(bundle_bytes(**kwargs))
    return encode_bundle(bundle.add_block(CanonicalBlock(200, 7, b"\x01", block_flags)))


def test_unknown_block_flagged_discard_is_removed_before_storing() -> None:
    h = Harness()
    out = h.feed(
        inputs.BundleReceived(
            _with_unknown_block(BlockFlag.DISCARD_IF_UNPROCESSABLE), "l1", receipt="r"
        )
    )
    persist = out[0]
    assert isinstance(persist, actions.Persist)
    assert decode_bundle(persist.data).first_block_of_type(200) is None


def test_unknown_block_without_flags_is_kept() -> None:
    h = Harness()
    persist = h.feed(inputs.BundleReceived(_with_unknown_block(BlockFlag.NONE), "l1"))[0]
    assert isinstance(persist, actions.Persist)
    assert decode_bundle(persist.data).first_block_of_type(200) is not None


def test_unknown_block_flagged_delete_deletes_the_bundle_with_a_report() -> None:
    h = Harness()
    data = _with_unknown_block(
        BlockFlag.DELETE_BUNDLE_IF_UNPROCESSABLE,
        flags=BundleFlag.REPORT_DELETION,
        report_to="dtn://z/r",
    )
    out = h.feed(inputs.BundleReceived(data, "l1", receipt="r"))
    assert out[0] == actions.Acknowledge("r", False, R.BLOCK_UNSUPPORTED)
    assert isinstance(out[1], actions.Persist)
    assert read_admin_record(decode_bundle(out[1].data)).reason == R.BLOCK_UNSUPPORTED


def test_unknown_block_flagged_report_sends_a_reception_report() -> None:
    h = Harness()
    data = _with_unknown_block(BlockFlag.REPORT_IF_UNPROCESSABLE, report_to="dtn://z/r")
    seen = h.settle(h.feed(inputs.BundleReceived(data, "l1", receipt="r")))
    reports = [
        a for a in seen if isinstance(a, actions.Persist) and a.meta.destination == "dtn://z/r"
    ]
    assert len(reports) == 1
    record = read_admin_record(decode_bundle(reports[0].data))
    assert record.received.asserted and record.reason == R.BLOCK_UNSUPPORTED


def test_reception_report_follows_storage() -> None:
    h = Harness()
    data = bundle_bytes(
        flags=BundleFlag.REPORT_RECEPTION | BundleFlag.STATUS_TIME_REQUESTED, report_to="dtn://z/r"
    )
    first = h.feed(inputs.BundleReceived(data, "l1", receipt="r"))
    assert len(first) == 1
    assert isinstance(first[0], actions.Persist)
    after = h.feed(inputs.Persisted(first[0].meta.bundle_id))
    assert after[0] == actions.Acknowledge("r", True, 0)
    report = after[1]
    assert isinstance(report, actions.Persist)
    record = read_admin_record(decode_bundle(report.data))
    assert record.received.asserted and record.received.time == h.now


def test_status_report_to_this_node_goes_to_the_listener() -> None:
    h = Harness()
    sender = Harness(node_id="dtn://b/")
    data = bundle_bytes(
        destination="dtn://b/app", flags=BundleFlag.REPORT_DELIVERY, report_to="dtn://a/"
    )
    sender.feed(inputs.ApplicationRegistered("dtn://b/app"))
    seen = sender.settle(sender.feed(inputs.BundleReceived(data, "l1")))
    report = next(
        a for a in seen if isinstance(a, actions.Persist) and a.meta.destination == "dtn://a/"
    )
    out = h.feed(inputs.BundleReceived(report.data, "l1", receipt="r"))
    assert out == [actions.Acknowledge("r", True, 0)]
    assert h.listener.events[0][0] == "report"
    assert h.listener.events[0][1].delivered.asserted
