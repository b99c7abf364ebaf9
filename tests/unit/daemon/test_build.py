"""Building a node's parts from its configuration: router, engine settings, convergence
layers and store, and ``check_config``, which builds them all without starting anything."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from dtncloud.cla.tcpcl import TcpclConvergenceLayer
from dtncloud.cla.udp import UdpConvergenceLayer
from dtncloud.daemon.build import (
    build_clas,
    build_engine_config,
    build_router,
    build_store,
    peer_addresses,
)
from dtncloud.daemon.config import NodeConfig, parse_config
from dtncloud.daemon.runner import check_config
from dtncloud.errors import ConfigError
from dtncloud.routing.cgr import CgrRouter
from dtncloud.routing.spray_and_wait import SprayAndWaitRouter
from dtncloud.routing.static import StaticRoute, StaticRouter
from dtncloud.runtime.node import Node
from dtncloud.store.memory import MemoryStore

# 2024-05-01T12:00:00Z in DTN milliseconds (seconds since 2000-01-01, times 1000).
T_2024_05_01_NOON = 767_880_000_000


def config(tmp_path: Path, **sections: Any) -> NodeConfig:
    return parse_config({"node_id": "dtn://a/", **sections}, source=None, base_dir=tmp_path)


def node_for(cfg: NodeConfig) -> Node:
    """A node to hang convergence layers on; nothing is started."""
    return Node(build_engine_config(cfg), MemoryStore(), build_router(cfg, random.Random(1)))


# -- routers ----------------------------------------------------------------------------------


def test_static_router_gets_its_routes_and_default(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        routing={
            "router": "static",
            "default": "dtn://gateway/",
            "route": [
                {"destination": "dtn://cloud/*", "via": "dtn://relay/"},
                {"destination": "ipn:7.*", "via": "ipn:2.0"},
            ],
        },
    )
    router = build_router(cfg, random.Random(1))
    assert isinstance(router, StaticRouter)
    assert router.routes == (
        StaticRoute("dtn://cloud/*", "dtn://relay/"),
        StaticRoute("ipn:7.*", "ipn:2.0"),
    )
    assert router.default == "dtn://gateway/"
    assert router.next_hop("dtn://cloud/ingest") == "dtn://relay/"
    assert router.next_hop("dtn://elsewhere/x") == "dtn://gateway/"


def test_static_router_without_routes(tmp_path: Path) -> None:
    router = build_router(config(tmp_path), random.Random(1))
    assert isinstance(router, StaticRouter)
    assert router.routes == () and router.default is None


def test_cgr_router_reads_an_ion_contact_plan_file(tmp_path: Path) -> None:
    (tmp_path / "plan.txt").write_text(
        "# two passes\n"
        "@ 2024/05/01-12:00:00\n"
        "a contact +0 +3600 1 2 100000\n"
        "a contact +7200 +9000 2 3 50000\n"
    )
    cfg = parse_config(
        {"node_id": "ipn:1.0", "routing": {"router": "cgr", "contact_plan": "plan.txt"}},
        source=None,
        base_dir=tmp_path,
    )
    router = build_router(cfg, random.Random(1))
    assert isinstance(router, CgrRouter)
    contacts = router.plan.to_json()["contacts"]
    assert contacts == [
        {
            "from": "ipn:1.0",
            "to": "ipn:2.0",
            "start": T_2024_05_01_NOON,
            "end": T_2024_05_01_NOON + 3_600_000,
            "rate": 100000,
        },
        {
            "from": "ipn:2.0",
            "to": "ipn:3.0",
            "start": T_2024_05_01_NOON + 7_200_000,
            "end": T_2024_05_01_NOON + 9_000_000,
            "rate": 50000,
        },
    ]


def test_cgr_router_reads_a_json_contact_plan_and_its_settings(tmp_path: Path) -> None:
    (tmp_path / "plan.json").write_text(
        '{"contacts": [{"from": "dtn://a/", "to": "dtn://b/", "start": 1000, "end": 5000,'
        ' "rate": 2000, "owlt": 10}]}'
    )
    cfg = config(tmp_path, routing={"router": "cgr", "contact_plan": "plan.json", "max_routes": 5})
    router = build_router(cfg, random.Random(1))
    assert isinstance(router, CgrRouter)
    assert router.max_routes == 5
    assert router.plan.to_json() == {
        "contacts": [
            {"from": "dtn://a/", "to": "dtn://b/", "start": 1000, "end": 5000, "rate": 2000,
             "owlt": 10}
        ]
    }  # fmt: skip


def test_spray_and_wait_takes_its_parameters(tmp_path: Path) -> None:
    cfg = config(tmp_path, routing={"router": "spray_and_wait", "copies": 4, "binary": False})
    router = build_router(cfg, random.Random(1))
    assert isinstance(router, SprayAndWaitRouter)
    assert (router.copies, router.binary) == (4, False)


def test_a_contact_plan_that_went_bad_after_loading_is_a_one_line_routing_error(
    tmp_path: Path,
) -> None:
    plan = tmp_path / "plan.txt"
    plan.write_text("a contact 2024/05/01-12:00:00 2024/05/01-13:00:00 1 2 1\n")
    cfg = parse_config(
        {"node_id": "ipn:1.0", "routing": {"router": "cgr", "contact_plan": "plan.txt"}},
        source=None,
        base_dir=tmp_path,
    )
    plan.write_text("a contact +0 +3600 1 2 not-a-rate\n")  # changed between check and start
    with pytest.raises(ConfigError) as info:
        build_router(cfg, random.Random(1))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("[routing]: ") and "cgr" in message


# -- the engine -------------------------------------------------------------------------------


def test_engine_config_carries_the_engine_section(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        engine={
            "retry": "5s",
            "remember": 10,
            "custody": True,
            "status_reports": False,
            "clock_accurate": False,
            "max_bundle_size": "1MiB",
            "reactive_fragmentation": True,
        },
    )
    engine = build_engine_config(cfg)
    assert engine.node_id == "dtn://a/"
    assert engine.retry_ms == 5000
    assert engine.remember == 10
    assert engine.custody is True
    assert engine.status_reports is False
    assert engine.clock_accurate is False
    assert engine.max_bundle_size == 1 << 20
    assert engine.reactive_fragmentation is True


def test_engine_config_defaults(tmp_path: Path) -> None:
    engine = build_engine_config(config(tmp_path))
    assert engine.node_id == "dtn://a/"
    assert engine.retry_ms == 30_000 and engine.custody is False and engine.status_reports


# -- convergence layers -----------------------------------------------------------------------


def test_tcpclv3_and_udp_are_built_with_their_settings(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        cla=[
            {
                "type": "tcpclv3",
                "name": "old",
                "listen": "127.0.0.1:4600",
                "keepalive": "15s",
                "max_sessions": 3,
                "reconnect": "250ms",
                "reconnect_max": "4s",
            },
            {
                "type": "udp",
                "name": "radio",
                "listen": ":4601",
                "rate": "1MB/s",
                "max_bundle_size": "1200",
            },
        ],
        peer=[
            {"node_id": "dtn://b/", "cla": "old", "address": "192.0.2.1:4556"},
            {"node_id": "dtn://c/", "cla": "radio", "address": "192.0.2.2"},
        ],
    )
    clas = build_clas(node_for(cfg), cfg)
    assert list(clas) == ["old", "radio"]

    old = clas["old"]
    assert isinstance(old, TcpclConvergenceLayer)
    options = old.options
    assert options.version == 3
    assert (options.listen, options.port) == ("127.0.0.1", 4600)
    assert options.keepalive_s == 15
    assert options.max_sessions == 3
    assert (options.reconnect_initial_s, options.reconnect_max_s) == (0.25, 4.0)
    assert options.node_id == "dtn://a/"
    assert options.peers == ("192.0.2.1:4556",)  # only the peers reached through this CLA
    assert options.spool_dir == tmp_path / "spool"
    assert options.tls is None

    radio = clas["radio"]
    assert isinstance(radio, UdpConvergenceLayer)
    assert (radio.host, radio.port) == ("0.0.0.0", 4601)  # "" is every interface
    assert radio.max_bundle_size == 1200
    assert radio.bucket.rate_bytes_per_s == 1_000_000
    assert radio.node_id == "dtn://a/"
    assert peer_addresses(cfg, "radio") == ("192.0.2.2:4556",)


def test_a_udp_cla_that_does_not_listen_still_gets_a_socket_to_send_from(tmp_path: Path) -> None:
    cfg = config(tmp_path, cla=[{"type": "udp", "listen": False}])
    udp = build_clas(node_for(cfg), cfg)["udp"]
    assert isinstance(udp, UdpConvergenceLayer)
    assert (udp.host, udp.port) == ("0.0.0.0", 0)


def test_a_tcpcl_that_does_not_listen_connects_out_only(tmp_path: Path) -> None:
    cfg = config(tmp_path, cla=[{"type": "tcpcl", "listen": False}])
    tcpcl = build_clas(node_for(cfg), cfg)["tcpcl"]
    assert isinstance(tcpcl, TcpclConvergenceLayer)
    assert tcpcl.options.listen is None and tcpcl.options.version == 4


def test_cla_list_empty_builds_none(tmp_path: Path) -> None:
    cfg = config(tmp_path, cla=[])
    assert build_clas(node_for(cfg), cfg) == {}


def tls_config(tmp_path: Path) -> NodeConfig:
    (tmp_path / "node.crt").write_text("placeholder")
    (tmp_path / "node.key").write_text("placeholder")
    return config(
        tmp_path,
        cla=[
            {
                "type": "tcpcl",
                "name": "wan",
                "listen": "127.0.0.1:0",
                "tls": {"cert": "node.crt", "key": "node.key"},
            }
        ],
    )


def test_missing_tls_files_at_load_name_the_cla_and_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        config(
            tmp_path,
            cla=[{"type": "tcpcl", "name": "wan", "tls": {"cert": "gone.crt"}}],
        )
    message = str(info.value)
    assert "\n" not in message
    assert "[[cla]] 1" in message and "tls.cert" in message and "gone.crt" in message


def tls_error(tmp_path: Path, cfg: NodeConfig) -> str:
    with pytest.raises(ConfigError) as info:
        build_clas(node_for(cfg), cfg)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_tls_files_missing_when_built_are_a_one_line_error_naming_the_cla(tmp_path: Path) -> None:
    cfg = tls_config(tmp_path)
    (tmp_path / "node.crt").unlink()  # gone between loading and starting
    message = tls_error(tmp_path, cfg)
    assert message.startswith("[[cla]] wan: tls: ")
    assert message.count("[[cla]]") == 1
    assert "node.crt" in message and "no such file" in message


def test_tls_files_that_hold_no_certificate_are_a_one_line_error(tmp_path: Path) -> None:
    message = tls_error(tmp_path, tls_config(tmp_path))
    assert message.startswith("[[cla]] wan: tls: ")
    assert message.count("[[cla]]") == 1
    assert "node.crt" in message


# -- the store --------------------------------------------------------------------------------


def test_the_store_is_made_from_the_store_section_without_touching_the_disk(
    tmp_path: Path,
) -> None:
    cfg = config(
        tmp_path, store={"path": "db", "quota": "1MiB", "fsync": "off", "inline_threshold": 100}
    )
    store = build_store(cfg)
    assert store.directory == tmp_path / "db"
    assert (store.quota_bytes, store.inline_threshold, store.durable) == (1 << 20, 100, False)
    assert not (tmp_path / "db").exists()


# -- check_config -----------------------------------------------------------------------------


def test_check_config_accepts_a_whole_configuration_and_starts_nothing(tmp_path: Path) -> None:
    (tmp_path / "plan.txt").write_text("a contact 2024/05/01-12:00:00 2024/05/01-13:00:00 1 2 1\n")
    cfg = parse_config(
        {
            "node_id": "ipn:1.0",
            "data_dir": "data",
            "cla": [
                {"type": "tcpcl", "listen": "127.0.0.1:0"},
                {"type": "udp", "listen": "127.0.0.1:0"},
            ],
            "peer": [{"node_id": "ipn:2.0", "cla": "tcpcl", "address": "127.0.0.1:1"}],
            "metrics": {"listen": "127.0.0.1:0"},
            "routing": {"router": "cgr", "contact_plan": "plan.txt"},
        },
        source=None,
        base_dir=tmp_path,
    )
    check_config(cfg)
    # Nothing was created: no data directory, store or socket.
    assert not (tmp_path / "data").exists()


def test_check_config_reports_what_only_building_finds(tmp_path: Path) -> None:
    cfg = tls_config(tmp_path)
    with pytest.raises(ConfigError) as info:
        check_config(cfg)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("[[cla]] wan: tls: ")
