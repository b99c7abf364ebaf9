"""StaticRouter: table lookups, direct neighbours, waiting and dropping; settings checks."""

from __future__ import annotations

import random
from typing import Any

import pytest

from dtncloud.errors import ConfigError
from dtncloud.routing.base import NO_KNOWN_ROUTE, Drop, Forward, Wait, default_registry
from dtncloud.routing.static import StaticRouter
from tests.unit.routing.fakes import FakeView, make_link, make_meta


def static(**params: Any) -> StaticRouter:
    router = default_registry.create("static", node_id="dtn://a/", params=params)
    assert isinstance(router, StaticRouter)
    return router


ROUTES = [
    {"pattern": "dtn://b/*", "via": "dtn://r1/"},
    ("ipn:5.*", "ipn:7.0"),
    ("dtn://c/inbox", "dtn://r2/"),
    ["dtn://*", "dtn://r3/"],
]


@pytest.mark.parametrize(
    ("destination", "via"),
    [
        ("dtn://b/x", "dtn://r1/"),
        ("dtn://b/", "dtn://r1/"),
        ("ipn:5.1", "ipn:7.0"),
        ("ipn:55.1", None),  # "ipn:5." is not a prefix of "ipn:55.1"
        ("dtn://c/inbox", "dtn://r2/"),
        ("dtn://c/other", "dtn://r3/"),
        ("dtn://zz/q", "dtn://r3/"),
    ],
)
def test_first_matching_route_wins(destination: str, via: str | None) -> None:
    assert static(routes=ROUTES).next_hop(destination) == via


def test_forwards_to_next_hop_without_keeping_a_copy() -> None:
    router = static(routes=ROUTES)
    view = FakeView("dtn://a/")
    view.add_link("to-r3", "dtn://r3/")
    view.add_link("to-r1", "dtn://r1/")
    meta = make_meta(destination="dtn://b/app")
    assert router.route(meta, view, 0) == Forward(("to-r1",), keep_copy=False)
    assert router.select(view.links()[1], view, 0) == []  # nothing waiting in the view
    view.add_bundle(meta)
    assert router.select(view.links()[1], view, 0) == [meta.bundle_id]
    assert router.select(view.links()[0], view, 0) == []


def test_waits_for_an_absent_next_hop_and_drops_without_route() -> None:
    router = static(routes=[("dtn://b/*", "dtn://r1/")])
    view = FakeView("dtn://a/")
    view.add_link("to-r2", "dtn://r2/")
    assert router.route(make_meta(destination="dtn://b/app"), view, 0) == Wait()
    assert router.route(make_meta(destination="dtn://q/app"), view, 0) == Drop(NO_KNOWN_ROUTE)


def test_default_route() -> None:
    router = static(default="dtn://gw/")
    view = FakeView("dtn://a/")
    view.add_link("gw", "dtn://gw/")
    assert router.route(make_meta(destination="dtn://q/app"), view, 0) == Forward(("gw",))
    view.remove_link("gw")
    assert router.route(make_meta(destination="dtn://q/app"), view, 0) == Wait()


def test_connected_destination_goes_direct_even_against_the_table() -> None:
    router = static(routes=[("*", "dtn://r1/")])
    view = FakeView("dtn://a/")
    view.add_link("to-r1", "dtn://r1/")
    view.add_link("to-b", "dtn://b/")
    assert router.route(make_meta(destination="dtn://b/app"), view, 0) == Forward(("to-b",))
    assert static().route(make_meta(destination="dtn://b/app"), view, 0) == Forward(("to-b",))


def test_links_with_unknown_peers_are_never_next_hops() -> None:
    router = static(default="dtn://gw/")
    view = FakeView("dtn://a/")
    view.add_link("anon", None)
    assert router.route(make_meta(destination="dtn://q/app"), view, 0) == Wait()
    assert router.select(make_link("anon", None), view, 0) == []


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"routes": "dtn://b/*"}, "setting 'routes' must be a list"),
        ({"routes": [("dtn://b/*",)]}, "route 1 (('dtn://b/*',)): expected"),
        ({"routes": [("dtn://b/*", "dtn://r/"), ("dtn://*/x", "dtn://r/")]}, "route 2"),
        ({"routes": [("b*", "dtn://r/")]}, "must start with dtn: or ipn:"),
        ({"routes": [("dtn:/b", "dtn://r/")]}, "bad pattern"),
        ({"routes": [("", "dtn://r/")]}, "non-empty string"),
        ({"routes": [(5, "dtn://r/")]}, "non-empty string"),
        ({"routes": [("*", "dtn://r/app")]}, "route 1 ('*' via 'dtn://r/app'): next hop"),
        ({"routes": [("*", "dtn://r")]}, "bad next hop"),
        ({"routes": [("*", None)]}, "next hop must be a node ID string"),
        (
            {"routes": [{"pattern": "*"}]},
            "expected {'pattern': ..., 'via': ...} or a (pattern, via)",
        ),
        ({"default": "ipn:5.3"}, "default: next hop 'ipn:5.3' is not a node ID"),
        ({"default": "dtn:none"}, "is not a node ID"),
    ],
)
def test_bad_settings(params: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        static(**params)
    message = str(info.value)
    assert message.startswith("router 'static': ")
    assert fragment in message
    assert "\n" not in message


def test_constructed_directly() -> None:
    router = StaticRouter("dtn://a/", random.Random(0), routes=[("ipn:5.*", "ipn:5.0")])
    assert router.routes[0].pattern == "ipn:5.*"
    assert router.next_hop("ipn:5.9") == "ipn:5.0"
