"""The mule convergence layer driven by hand: links while a sync runs, what a send writes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from dtncloud.bpv7 import Bundle, encode_bundle
from dtncloud.cla.base import Link, ReceivedBundle
from dtncloud.cla.mule import MuleBusy, MuleConvergenceLayer, MuleOptions
from dtncloud.errors import ConfigError, ConnectError, LinkDown, TransferRefused
from dtncloud.mule.plan import node_dir_name

NOW = 800_000_000_000


class Events:
    """A node stand-in that records links and accepts every bundle."""

    def __init__(self) -> None:
        self.up: list[Link] = []
        self.down: list[Link] = []
        self.came_up = asyncio.Event()
        self.received: list[bytes] = []

    def clock(self) -> int:
        return NOW

    def link_up(self, link: Link) -> None:
        self.up.append(link)
        if len(self.up) >= 2:
            self.came_up.set()

    def link_down(self, link: Link, reason: str) -> None:
        self.down.append(link)

    async def bundle_received(self, bundle: ReceivedBundle) -> None:
        self.received.append(bundle.read())

    async def receive(self, data: bytes) -> tuple[bool, int]:
        self.received.append(data)
        return True, 0


def bundle(n: int = 0) -> bytes:
    return encode_bundle(
        Bundle.create(
            source="dtn://a/app",
            destination="dtn://b/x",
            payload=b"p" * 50,
            creation_time=NOW,
            sequence=n,
        )
    )


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), 30))


def make(tmp: Path, **options: object) -> tuple[MuleConvergenceLayer, Events]:
    events = Events()
    settings: dict[str, object] = {"settle_s": 0.2, **options}
    cla = MuleConvergenceLayer(
        events,
        MuleOptions(
            node_id="dtn://a/",
            key_path=tmp / "key",
            peers=("dtn://b/", "dtn://c/"),
            **settings,  # type: ignore[arg-type]
        ),
    )
    return cla, events


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="order"):
        MuleOptions(node_id="dtn://a/", key_path=Path("k"), order="biggest")
    with pytest.raises(ConfigError, match="not a node ID"):
        MuleOptions(node_id="dtn://a/", key_path=Path("k"), peers=("dtn://b/inbox",))
    with pytest.raises(ConfigError, match="this node"):
        MuleOptions(node_id="dtn://a/", key_path=Path("k"), peers=("dtn://a/",))
    with pytest.raises(ConfigError, match="64 hex digits"):
        MuleOptions(node_id="dtn://a/", key_path=Path("k"), trusted_keys={"dtn://b/": "xy"})


def test_links_exist_while_a_sync_runs_and_sends_are_written_once(tmp_path: Path) -> None:
    async def body() -> None:
        cla, events = make(tmp_path)
        await cla.start()
        with pytest.raises(ConnectError):
            await cla.connect("anywhere")
        stick = tmp_path / "stick"
        stick.mkdir()
        job = cla.start_sync(stick)
        assert cla.start_sync(stick) is job  # asking again joins it
        other = tmp_path / "other"
        with pytest.raises(MuleBusy):
            cla.start_sync(other)
        await events.came_up.wait()
        to_b, to_c = events.up
        assert (to_b.peer_node_id, to_c.peer_node_id) == ("dtn://b/", "dtn://c/")
        await to_b.send(bundle(1))
        await to_b.send(bundle(1))  # the same bundle again: already there
        await to_c.send(bundle(1))  # for one more peer: only the manifest changes
        with pytest.raises(TransferRefused):
            await to_b.send(b"\x9f\x00not a bundle")
        await job.wait()
        assert job.report.phase == "done"
        assert (job.report.exported, job.report.already) == (3, 2)
        assert events.down == events.up and not cla.links
        with pytest.raises(LinkDown):
            await to_b.send(bundle(2))
        own = stick / "nodes" / node_dir_name("dtn://a/")
        assert len(list(own.glob("*.bundle"))) == 1
        assert '"peers":["dtn://b/","dtn://c/"]' in (own / "manifest").read_text()
        await cla.stop()

    run(body)


def test_a_dry_run_refuses_every_bundle_and_writes_nothing(tmp_path: Path) -> None:
    async def body() -> None:
        cla, events = make(tmp_path)
        await cla.start()
        stick = tmp_path / "stick"
        stick.mkdir()
        job = cla.start_sync(stick, dry_run=True)
        await events.came_up.wait()
        with pytest.raises(TransferRefused, match="dry run"):
            await events.up[0].send(bundle())
        await job.wait()
        assert job.report.exported == 1 and job.report.dry_run
        assert list(stick.iterdir()) == []
        await cla.stop()

    run(body)


def test_the_watched_directory_is_synced_when_it_appears(tmp_path: Path) -> None:
    async def body() -> None:
        stick = tmp_path / "usb" / "mule"
        cla, events = make(tmp_path, watch=stick, poll_s=0.05)
        await cla.start()
        assert cla.job(1) is None
        stick.mkdir(parents=True)
        await events.came_up.wait()  # the sync's links came up by themselves
        job = cla.job(1)
        assert job is not None
        await job.wait()
        assert job.report.phase == "done"
        assert (stick / "dtncloud-mule.txt").is_file()
        await cla.stop()

    run(body)


def test_stopping_during_a_sync_ends_it(tmp_path: Path) -> None:
    async def body() -> None:
        cla, events = make(tmp_path, settle_s=30.0)
        await cla.start()
        stick = tmp_path / "stick"
        stick.mkdir()
        job = cla.start_sync(stick)
        await events.came_up.wait()
        await cla.stop()
        assert job.done and job.report.phase == "failed"
        assert events.down == events.up

    run(body)
