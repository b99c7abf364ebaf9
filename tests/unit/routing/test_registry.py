"""The default registry holds every router, and bad names or settings give one-line errors."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

import dtncloud.routing  # noqa: F401  (registers the routers)
from dtncloud.errors import ConfigError
from dtncloud.routing._common import decode_peer_cbor
from dtncloud.routing.base import Router, default_registry

ROUTERS = ["direct", "epidemic", "first_contact", "prophet", "spray_and_wait", "static"]


def test_every_router_is_registered() -> None:
    assert set(ROUTERS) <= set(default_registry.names())


@pytest.mark.parametrize("name", ROUTERS)
def test_create_with_defaults(name: str) -> None:
    router = default_registry.create(name, node_id="dtn://a/", rng=random.Random(1))
    assert isinstance(router, Router)
    assert router.name == name
    assert router.get_timer() is None


def test_unknown_router_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        default_registry.create("flooding", node_id="dtn://a/")
    message = str(info.value)
    assert "'flooding'" in message
    for name in ROUTERS:
        assert name in message
    assert "\n" not in message


@pytest.mark.parametrize("name", ROUTERS)
def test_unknown_setting_is_named(name: str) -> None:
    with pytest.raises(ConfigError, match=rf"router '{name}': unknown setting\(s\): colour"):
        default_registry.create(name, node_id="dtn://a/", params={"colour": "red"})


@pytest.mark.parametrize(
    ("name", "params", "key"),
    [
        ("spray_and_wait", {"copies": 0}, "copies"),
        ("spray_and_wait", {"copies": True}, "copies"),
        ("spray_and_wait", {"copies": "8"}, "copies"),
        ("spray_and_wait", {"copies": 1 << 20}, "copies"),
        ("spray_and_wait", {"binary": 1}, "binary"),
        ("prophet", {"beta": 1.5}, "beta"),
        ("prophet", {"gamma": 0}, "gamma"),
        ("prophet", {"delta": 1}, "delta"),
        ("prophet", {"p_encounter_max": float("nan")}, "p_encounter_max"),
        ("prophet", {"p_first_threshold": 0.6}, "p_first_threshold"),
        ("prophet", {"time_unit_ms": 0}, "time_unit_ms"),
        ("prophet", {"i_typ_ms": 1.5}, "i_typ_ms"),
        ("prophet", {"max_table": 0}, "max_table"),
        ("epidemic", {"vector_wait_ms": -1}, "vector_wait_ms"),
        ("epidemic", {"max_known": "many"}, "max_known"),
    ],
)
def test_bad_setting_names_router_and_key(name: str, params: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        default_registry.create(name, node_id="dtn://a/", params=params)
    message = str(info.value)
    assert message.startswith(f"router '{name}': setting '{key}' must be ")
    assert "\n" not in message


@given(st.binary(max_size=64))
def test_peer_cbor_never_raises(data: bytes) -> None:
    decode_peer_cbor(data, max_items=8)


def test_peer_cbor_rejects_trailing_bytes_and_budget() -> None:
    assert decode_peer_cbor(b"\x01", max_items=1) == 1
    assert decode_peer_cbor(b"\x01\x02", max_items=1) is None
    assert decode_peer_cbor(b"\x83\x01\x02\x03", max_items=3) is None
    assert decode_peer_cbor(b"\x83\x01\x02\x03", max_items=4) == [1, 2, 3]
