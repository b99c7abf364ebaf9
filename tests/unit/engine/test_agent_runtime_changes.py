"""Changes applications and operators make while the node runs: cancelling a bundle, and
routes or contacts that change under waiting bundles."""

from __future__ import annotations

import random

from dtncloud.bpv7 import BundleFlag, decode_bundle, read_admin_record
from dtncloud.engine import BundleProtocolAgent, EngineConfig, actions, inputs
from dtncloud.routing.cgr import CgrRouter
from dtncloud.routing.contact_plan import Contact
from dtncloud.routing.static import StaticRouter
from tests.unit.engine.harness import T0, Harness, bundle_bytes


def _stored(h: Harness, data: bytes) -> str:
    actions_seen = h.settle(h.feed(inputs.BundleReceived(data, "in", receipt="r")))
    persist = actions_seen[0]
    assert isinstance(persist, actions.Persist)
    return persist.meta.bundle_id


def test_cancel_removes_a_waiting_bundle_and_it_never_leaves() -> None:
    h = Harness()
    bundle_id = _stored(h, bundle_bytes())
    assert h.agent.bundle(bundle_id) is not None
    assert h.feed(inputs.ApplicationCancelled(bundle_id)) == [actions.Remove(bundle_id)]
    assert h.listener.events[-1] == ("deleted", bundle_id, 0)
    h.settle(h.feed(inputs.LinkUp("lb", "dtn://b/")))
    assert h.sent == []
    # cancelling again, or something never held, does nothing
    assert h.feed(inputs.ApplicationCancelled(bundle_id)) == []
    assert h.feed(inputs.ApplicationCancelled("dtn://x/-1-2")) == []


def test_cancelled_bundle_that_asked_for_deletion_reports_gets_one() -> None:
    h = Harness(config={"status_reports": True})
    flags = BundleFlag.REPORT_DELETION
    bundle_id = _stored(h, bundle_bytes(flags=flags, report_to="dtn://z/"))
    out = h.feed(inputs.ApplicationCancelled(bundle_id))
    assert out[0] == actions.Remove(bundle_id)
    report_persist = next(a for a in out if isinstance(a, actions.Persist))
    report = read_admin_record(decode_bundle(report_persist.data))
    assert report.deleted
    assert report.reason == 0
    assert str(report.subject_id) == bundle_id


def test_a_route_added_at_run_time_sends_what_was_waiting() -> None:
    router = StaticRouter("dtn://a/", random.Random(0), default="dtn://c/")
    agent = BundleProtocolAgent(EngineConfig("dtn://a/"), router)
    agent.restore([], {}, T0)
    list(agent.actions())
    agent.handle(inputs.LinkUp("lb", "dtn://b/"), T0)
    agent.handle(inputs.BundleReceived(bundle_bytes(destination="dtn://far/app"), "in"), T0)
    persist = next(a for a in agent.actions() if isinstance(a, actions.Persist))
    agent.handle(inputs.Persisted(persist.meta.bundle_id), T0)
    assert not any(isinstance(a, actions.Transmit) for a in agent.actions())  # waits for c
    router.add_route("dtn://far/*", "dtn://b/")
    agent.handle(inputs.RoutesChanged(), T0)
    (transmit,) = [a for a in agent.actions() if isinstance(a, actions.Transmit)]
    assert (transmit.link_id, transmit.bundle_id) == ("lb", persist.meta.bundle_id)


def test_static_routes_can_be_added_replaced_and_removed() -> None:
    router = StaticRouter("dtn://a/", random.Random(0), routes=[("*", "dtn://c/")])
    router.add_route("dtn://far/*", "dtn://b/")
    assert router.next_hop("dtn://far/x") == "dtn://b/"
    router.add_route("dtn://far/*", "dtn://d/")
    assert router.next_hop("dtn://far/x") == "dtn://d/"
    assert len(router.routes) == 2
    assert router.remove_route("dtn://far/*") is True
    assert router.remove_route("dtn://far/*") is False
    assert router.next_hop("dtn://far/x") == "dtn://c/"


def test_cgr_contacts_added_at_run_time_are_routed_over() -> None:
    router = CgrRouter("dtn://a/", random.Random(0))
    contact = Contact(T0, T0 + 60_000, "dtn://a/", "dtn://b/", 1_000_000.0)
    assert router.find_route("dtn://b/x", T0, 100) is None
    router.add_contact(contact)
    route = router.find_route("dtn://b/x", T0, 100)
    assert route is not None and route.next_hop == "dtn://b/"
    assert router.remove_contact(contact) is True
    assert router.remove_contact(contact) is False
    assert router.find_route("dtn://b/x", T0, 100) is None
