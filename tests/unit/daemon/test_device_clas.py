"""The disrupted links in a node's configuration: serial radios, Iridium modems and data
mules are read from [[cla]] tables and built into their drivers with their peers."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from dtncloud.cla.mule import MuleConvergenceLayer
from dtncloud.cla.sbd import SbdConvergenceLayer
from dtncloud.cla.serial import SerialConvergenceLayer
from dtncloud.daemon.build import build_clas, build_engine_config, build_router
from dtncloud.daemon.config import NodeConfig, parse_config
from dtncloud.errors import ConfigError
from dtncloud.runtime.node import Node
from dtncloud.store.memory import MemoryStore


def _config(tmp_path: Path, clas: list[dict[str, Any]], peers: list[dict[str, Any]]) -> NodeConfig:
    return parse_config(
        {"node_id": "dtn://field/", "data_dir": str(tmp_path), "cla": clas, "peer": peers},
        source=None,
        base_dir=tmp_path,
    )


def _built(cfg: NodeConfig) -> dict[str, Any]:
    node = Node(build_engine_config(cfg), MemoryStore(), build_router(cfg, random.Random(1)))
    return build_clas(node, cfg)


def test_each_device_link_gets_its_settings_and_its_one_peer(tmp_path: Path) -> None:
    cfg = _config(
        tmp_path,
        [
            {"type": "serial", "name": "radio", "device": "/dev/ttyACM0", "framing": "slip",
             "rate": "9600bit/s", "max_frame_size": "200"},
            {"type": "sbd", "device": "/dev/ttyUSB1", "daily_budget": 150, "retry": "2m"},
            {"type": "mule", "capacity": "1GiB", "watch": "stick", "order": "smallest"},
        ],
        [
            {"node_id": "dtn://village/", "cla": "radio"},
            {"node_id": "dtn://cloud/", "cla": "sbd"},
            {"node_id": "dtn://town/", "cla": "mule"},
            {"node_id": "dtn://farm/", "cla": "mule"},
        ],
    )  # fmt: skip
    clas = _built(cfg)
    radio = clas["radio"]
    assert isinstance(radio, SerialConvergenceLayer)
    assert radio.options.device == "/dev/ttyACM0" and radio.options.framing == "slip"
    assert radio.options.rate_bytes_per_s == 1200 and radio.options.max_frame_size == 200
    assert radio.options.peer_node_id == "dtn://village/"
    modem = clas["sbd"]
    assert isinstance(modem, SbdConvergenceLayer)
    assert modem.options.daily_credit_budget == 150 and modem.options.retry_delay_ms == 120_000
    assert modem.options.peer_node_id == "dtn://cloud/"
    mule = clas["mule"]
    assert isinstance(mule, MuleConvergenceLayer)
    assert set(mule.options.peers) == {"dtn://town/", "dtn://farm/"}
    assert mule.options.capacity == 1 << 30 and mule.options.order == "smallest"
    assert mule.options.watch == tmp_path / "stick"
    assert mule.options.key_path == tmp_path / "mule.key"  # in the data directory


def test_device_peers_need_no_address_but_a_radio_reaches_only_one(tmp_path: Path) -> None:
    cfg = _config(
        tmp_path,
        [{"type": "serial", "device": "/dev/ttyACM0"}],
        [{"node_id": "dtn://a/", "cla": "serial"}, {"node_id": "dtn://b/", "cla": "serial"}],
    )
    assert all(peer.address == "" for peer in cfg.peers)
    with pytest.raises(ConfigError, match="reaches one neighbour; 2 \\[\\[peer\\]\\] entries"):
        _built(cfg)


@pytest.mark.parametrize(
    ("cla", "expected"),
    [
        ({"type": "serial"}, "device: missing"),
        ({"type": "serial", "device": "/dev/x", "framing": "hdlc"}, "framing"),
        ({"type": "sbd", "device": "/dev/x", "window": 3}, "unknown key 'window'"),
        ({"type": "sbd", "device": "/dev/x", "framing": "slip"}, "not a setting of cla type 'sbd'"),
        ({"type": "mule", "trusted_keys": {"dtn://a/": "abc"}}, "64 hex digits"),
        ({"type": "mule", "order": "random"}, "order"),
    ],
)
def test_bad_device_settings_are_one_line(
    tmp_path: Path, cla: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected) as info:
        _built(_config(tmp_path, [cla], []))
    assert "\n" not in str(info.value)


class _FakeSbd:
    name = "sbd"

    class stats:  # stands in for an SbdStats
        @staticmethod
        def as_dict() -> dict[str, Any]:
            return {"credits": 12, "bytes_sent": 600, "sessions_ok": 3, "sessions_failed": 1,
                    "queued_bundles": 2, "credits_left_today": None, "signal": 4,
                    "bytes_received": 0}  # fmt: skip


def test_sbd_figures_reach_the_metrics_and_the_status() -> None:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from dtncloud.daemon.link_metrics import DeviceLinkCollector, device_link_status

    registry = CollectorRegistry()
    registry.register(DeviceLinkCollector(lambda: {"sat": _FakeSbd()}))
    samples = {
        (sample.name, sample.labels.get("cla")): sample.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
    }
    assert samples[("dtncloud_sbd_credits_total", "sat")] == 12
    assert samples[("dtncloud_sbd_sessions_failed_total", "sat")] == 1
    assert samples[("dtncloud_sbd_signal", "sat")] == 4
    assert ("dtncloud_sbd_credits_left_today", "sat") not in samples  # no budget set
    assert device_link_status({"sat": _FakeSbd()})["sat"]["credits"] == 12
    empty = CollectorRegistry()
    empty.register(DeviceLinkCollector(dict))
    assert b"dtncloud_sbd" not in generate_latest(empty)
