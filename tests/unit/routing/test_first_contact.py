"""FirstContactRouter: one copy, handed to any neighbour but the one it came from."""

from __future__ import annotations

import random

from dtncloud.routing.base import Forward, Wait
from dtncloud.routing.first_contact import FirstContactRouter
from tests.unit.routing.fakes import FakeView, make_meta


def router(seed: int = 0) -> FirstContactRouter:
    return FirstContactRouter("dtn://a/", random.Random(seed))


def test_waits_without_links_and_never_sends_back() -> None:
    view = FakeView("dtn://a/")
    meta = view.add_bundle(make_meta(destination="dtn://d/x", previous_node="dtn://p/"))
    assert router().route(meta, view, 0) == Wait()
    back = view.add_link("to-p", "dtn://p/")
    assert router().route(meta, view, 0) == Wait()
    assert router().select(back, view, 0) == []
    onward = view.add_link("to-q", "dtn://q/")
    assert router().route(meta, view, 0) == Forward(("to-q",), keep_copy=False)
    assert router().select(onward, view, 0) == [meta.bundle_id]


def test_destination_is_preferred() -> None:
    view = FakeView("dtn://a/")
    for peer in "pqrs":
        view.add_link(f"to-{peer}", f"dtn://{peer}/")
    view.add_link("to-d", "dtn://d/")
    meta = view.add_bundle(make_meta(destination="dtn://d/x"))
    for seed in range(10):
        assert router(seed).route(meta, view, 0) == Forward(("to-d",), keep_copy=False)
    assert router().select(view.links()[0], view, 0) == []  # it goes to d instead


def test_choice_comes_from_the_injected_rng() -> None:
    view = FakeView("dtn://a/")
    for peer in "pqrstu":
        view.add_link(f"to-{peer}", f"dtn://{peer}/")
    meta = make_meta(destination="dtn://d/x")
    picks = {router(seed).route(meta, view, 0) for seed in range(40)}
    assert len(picks) > 1
    assert router(7).route(meta, view, 0) == router(7).route(meta, view, 0)


def test_select_leaves_bundles_that_another_link_can_take() -> None:
    view = FakeView("dtn://a/")
    view.add_link("to-p", "dtn://p/")
    view.add_bundle(make_meta(destination="dtn://d/x"))
    new = view.add_link("to-q", "dtn://q/")
    # It was routed to p when it arrived; the new link must not take a second copy.
    assert router().select(new, view, 0) == []
