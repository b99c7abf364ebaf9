"""DirectRouter: only ever to the destination's node."""

from __future__ import annotations

import random

from dtncloud.routing.base import Forward, Wait
from dtncloud.routing.direct import DirectRouter
from tests.unit.routing.fakes import FakeView, make_meta


def test_forwards_only_to_the_destination_node() -> None:
    router = DirectRouter("dtn://a/", random.Random(0))
    view = FakeView("dtn://a/")
    relay = view.add_link("to-r", "dtn://r/")
    meta = view.add_bundle(make_meta(destination="dtn://b/app"))
    assert router.route(meta, view, 0) == Wait()
    assert router.select(relay, view, 0) == []

    b = view.add_link("to-b", "dtn://b/")
    assert router.route(meta, view, 5) == Forward(("to-b",), keep_copy=False)
    assert router.select(b, view, 5) == [meta.bundle_id]
    assert router.select(relay, view, 5) == []


def test_ipn_destinations_use_the_node_number() -> None:
    router = DirectRouter("ipn:1.0", random.Random(0))
    view = FakeView("ipn:1.0")
    view.add_link("l7", "ipn:7.0")
    assert router.route(make_meta(destination="ipn:7.42"), view, 0) == Forward(("l7",))
    assert router.route(make_meta(destination="ipn:77.42"), view, 0) == Wait()
