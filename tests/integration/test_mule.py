"""The USB data mule end to end: real nodes (engine, SQLite stores) with no network between
them, only a temporary directory standing in for the stick, carried from site to site by
running one sync after the other.

Each site has a static router, the mule convergence layer (its peers are the sites it
reaches through the stick) and an inbox application. Syncs end by themselves (the export
settles after ``SETTLE`` seconds without offers); nothing here sleeps for timing.
"""

from __future__ import annotations

import asyncio
import errno
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dtncloud.cla.mule import MuleConvergenceLayer, MuleOptions
from dtncloud.engine import EngineConfig
from dtncloud.mule.keys import NodeKey
from dtncloud.mule.manifest import Manifest, encode_manifest
from dtncloud.mule.plan import node_dir_name
from dtncloud.mule.report import SyncReport
from dtncloud.mule.stick import load_or_create_key, write_atomic
from dtncloud.routing import default_registry
from dtncloud.runtime import Delivery, Node, wall_clock_ms
from dtncloud.store.sqlite import SqliteStore

pytestmark = pytest.mark.timeout(120)

SETTLE = 0.3
#: Syncs that must carry custody signals back wait longer: a signal is made once the bundle
#: is stored (plus a 1 ms gathering delay), which a loaded machine may take a while to do.
CUSTODY_SETTLE = 0.8
TIMEOUT = 60.0
REPO = Path(__file__).resolve().parents[2]


def run(body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        await asyncio.wait_for(body(), TIMEOUT)

    asyncio.run(main())


@dataclass
class Site:
    name: str
    node: Node
    mule: MuleConvergenceLayer
    inbox: list[Delivery] = field(default_factory=list)

    @property
    def node_id(self) -> str:
        return f"dtn://{self.name}/"

    async def sync(self, stick: Path, **options: Any) -> SyncReport:
        report = await self.mule.sync(stick, **options)
        await self.node.idle()
        return report

    async def send(self, to: str, payload: bytes, **options: Any) -> str:
        return await self.node.send(f"{self.node_id}app", f"dtn://{to}/inbox", payload, **options)


class World:
    """Sites that trust one another's mule keys, and their stick."""

    def __init__(self, tmp: Path, names: tuple[str, ...]) -> None:
        self.tmp = tmp
        self.stick = tmp / "stick"
        self.stick.mkdir()
        self.keys = {
            f"dtn://{name}/": load_or_create_key(tmp / name / "mule.key", f"dtn://{name}/")
            for name in names
        }
        self.trusted = {node: key.public_hex for node, key in self.keys.items()}
        self.clock_offset = 0

    def site(
        self,
        name: str,
        *,
        peers: tuple[str, ...] = (),
        routes: list[dict[str, str]] | None = None,
        default: str | None = None,
        custody: bool = False,
        clock: Callable[[], int] | None = None,
        settle_s: float | None = None,
        **mule: Any,
    ) -> Site:
        node_id = f"dtn://{name}/"
        params: dict[str, Any] = {"routes": routes or []}
        if default is not None:
            params["default"] = default
        router = default_registry.create(
            "static", node_id=node_id, rng=random.Random(1), params=params
        )
        config = EngineConfig(node_id, custody=custody, custody_signal_delay_ms=1)
        node = Node(
            config,
            SqliteStore(self.tmp / name / "store"),
            router,
            clock=clock or wall_clock_ms,
        )
        options = MuleOptions(
            node_id=node_id,
            key_path=self.tmp / name / "mule.key",
            peers=tuple(f"dtn://{peer}/" for peer in peers),
            trusted_keys={n: k for n, k in self.trusted.items() if n != node_id},
            settle_s=settle_s or (CUSTODY_SETTLE if custody else SETTLE),
            **mule,
        )
        cla = node.add_cla(lambda n: MuleConvergenceLayer(n, options))
        assert isinstance(cla, MuleConvergenceLayer)
        site = Site(name, node, cla)

        async def inbox(delivery: Delivery) -> None:
            site.inbox.append(delivery)

        node.register(f"{node_id}inbox", inbox)
        return site

    def files(self) -> list[str]:
        """Bundle files on the stick, as ``<writer dir>/<name>``."""
        nodes = self.stick / "nodes"
        if not nodes.is_dir():
            return []
        return sorted(
            f"{d.name}/{f.name}"
            for d in nodes.iterdir()
            for f in d.iterdir()
            if f.name.endswith(".bundle")
        )

    def dir_of(self, name: str) -> Path:
        return self.stick / "nodes" / node_dir_name(f"dtn://{name}/")


def payloads(site: Site) -> list[bytes]:
    return sorted(d.payload for d in site.inbox)


# -- A -> stick -> B -------------------------------------------------------------------------


def test_bundles_cross_from_a_to_b_and_the_stick_is_cleaned(tmp_path: Path) -> None:
    async def body() -> None:
        world = World(tmp_path, ("a", "b"))
        a = world.site("a", peers=("b",), routes=[{"pattern": "dtn://b/*", "via": "dtn://b/"}])
        b = world.site("b", peers=("a",), routes=[{"pattern": "dtn://a/*", "via": "dtn://a/"}])
        async with a.node, b.node:
            for i in range(3):
                await a.send("b", f"reading {i}".encode())
            report = await a.sync(world.stick)
            assert report.phase == "done", report
            assert (report.exported, report.left, report.imported) == (3, 0, 0)
            assert len(world.files()) == 3
            assert a.node.stored() == []  # no custody: the stick's copy is the one now

            report = await b.sync(world.stick)
            assert report.phase == "done", report
            assert report.imported == 3 and not report.skipped
            assert payloads(b) == [b"reading 0", b"reading 1", b"reading 2"]
            # b is the destination: its delivered records retire a's copies at once
            assert report.pruned == 3 and world.files() == []

            again = await b.sync(world.stick)
            assert (again.imported, again.exported) == (0, 0)
            assert len(b.inbox) == 3

    run(body)


def test_with_custody_the_signals_ride_back_and_release_a(tmp_path: Path) -> None:
    async def body() -> None:
        world = World(tmp_path, ("a", "b"))
        a = world.site(
            "a", peers=("b",), routes=[{"pattern": "dtn://b/*", "via": "dtn://b/"}], custody=True
        )
        b = world.site(
            "b", peers=("a",), routes=[{"pattern": "dtn://a/*", "via": "dtn://a/"}], custody=True
        )
        async with a.node, b.node:
            for i in range(3):
                await a.send("b", f"reading {i}".encode())
            report = await a.sync(world.stick)
            assert report.exported == 3
            assert len(a.node.stored()) == 3  # a stays custodian until b's signal comes

            report = await b.sync(world.stick)
            assert report.imported == 3
            assert payloads(b) == [b"reading 0", b"reading 1", b"reading 2"]
            assert report.exported >= 1  # the custody signal(s) for a
            assert b.node.stored() == []

            report = await a.sync(world.stick)
            assert report.imported >= 1 and not report.skipped
            assert a.node.stored() == []  # released by b's custody signal
            assert world.files() == []  # a's BPDUs taken by b, b's signals delivered to a

    run(body)


def test_a_relay_carries_on_and_a_passing_site_does_not_take_the_copy_away(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        world = World(tmp_path, ("a", "r", "c", "v"))
        a = world.site("a", peers=("r",), routes=[{"pattern": "dtn://c/*", "via": "dtn://r/"}])
        r = world.site("r", peers=("a", "c"), routes=[{"pattern": "dtn://c/*", "via": "dtn://c/"}])
        c = world.site("c", peers=("r",))
        v = world.site("v")  # a site the stick passes by: no peers, no routes
        async with a.node, r.node, c.node, v.node:
            await a.send("c", b"for c")
            assert (await a.sync(world.stick)).exported == 1
            a_files = world.files()

            report = await v.sync(world.stick)
            assert report.imported == 1  # v's engine decides (it has no route: drops it)
            assert world.files() == a_files  # the copy still goes to r

            report = await r.sync(world.stick)
            assert (report.imported, report.exported, report.pruned) == (1, 1, 1)
            assert r.node.stored() == []
            assert [f.split("/")[0] for f in world.files()] == [node_dir_name("dtn://r/")]

            report = await c.sync(world.stick)
            assert report.imported == 1
            assert payloads(c) == [b"for c"]
            assert world.files() == []

    run(body)


def test_custody_hops_through_a_relay_and_each_custodian_is_released(tmp_path: Path) -> None:
    async def body() -> None:
        world = World(tmp_path, ("a", "r", "c"))
        routes = {
            "a": [{"pattern": "dtn://c/*", "via": "dtn://r/"}],
            "r": [
                {"pattern": "dtn://c/*", "via": "dtn://c/"},
                {"pattern": "dtn://a/*", "via": "dtn://a/"},
            ],
            "c": [{"pattern": "dtn://r/*", "via": "dtn://r/"}],
        }
        peers = {"a": ("r",), "r": ("a", "c"), "c": ("r",)}
        a, r, c = (
            world.site(n, peers=peers[n], routes=routes[n], custody=True) for n in ("a", "r", "c")
        )
        async with a.node, r.node, c.node:
            await a.send("c", b"for c")
            for site in (a, r, c):
                report = await site.sync(world.stick)
                assert report.phase == "done" and not report.skipped, report
            assert payloads(c) == [b"for c"]
            assert len(a.node.stored()) == 1  # r's signal is on the stick, not yet at a
            assert len(r.node.stored()) == 1  # c's signal likewise
            await a.sync(world.stick)
            await r.sync(world.stick)
            assert a.node.stored() == [] and r.node.stored() == []
            assert world.files() == []  # every copy was taken, every signal delivered

    run(body)


# -- integrity -------------------------------------------------------------------------------


def test_tampered_truncated_and_foreign_files_are_skipped_and_reported(tmp_path: Path) -> None:
    async def body() -> None:
        world = World(tmp_path, ("a", "b"))
        a = world.site("a", peers=("b",), default="dtn://b/")
        b = world.site("b", peers=("a",), routes=[{"pattern": "dtn://a/*", "via": "dtn://a/"}])
        async with a.node, b.node:
            for i in range(5):
                await a.send("b", f"reading {i}".encode(), lifetime=3_600_000)
            assert (await a.sync(world.stick)).exported == 5
            a_dir = world.dir_of("a")
            flipped, truncated, *_ = sorted(a_dir.glob("*.bundle"))
            data = bytearray(flipped.read_bytes())
            data[len(data) // 2] ^= 0x01
            flipped.write_bytes(bytes(data))
            truncated.write_bytes(truncated.read_bytes()[:-7])
            # a file slipped into a's directory, and a whole directory from a stranger
            shutil.copy(flipped, a_dir / ("0" * 32 + ".bundle"))
            stranger = world.stick / "nodes" / node_dir_name("dtn://x/")
            stranger.mkdir()
            key = NodeKey(bytes(range(32)))
            manifest = Manifest("dtn://x/", key.public_hex)
            (stranger / "manifest").write_bytes(encode_manifest(manifest, key))
            shutil.copy(truncated, stranger / ("1" * 32 + ".bundle"))
            (a_dir / ".tmp-cut-short").write_bytes(b"half a bund")

            report = await b.sync(world.stick)
            assert report.phase == "done"
            assert report.imported == 3
            assert len(b.inbox) == 3
            reasons = {path.rsplit("/", 1)[-1]: reason for path, reason in _skips(report)}
            assert "SHA-256" in reasons[flipped.name]
            assert "truncated" in reasons[truncated.name]
            assert "not listed" in reasons["0" * 32 + ".bundle"]
            assert "untrusted node" in reasons[node_dir_name("dtn://x/")]
            assert not any(".tmp-" in path for path, _ in _skips(report))

            # A manifest changed by one byte: none of a's files is believed.
            manifest_path = a_dir / "manifest"
            text = bytearray(manifest_path.read_bytes())
            text[40] ^= 0x04
            manifest_path.write_bytes(bytes(text))
            c_world_skips = _skips(await b.sync(world.stick, dry_run=True))
            assert any(
                path == f"nodes/{a_dir.name}" and ("signature" in why or "damaged" in why)
                for path, why in c_world_skips
            ), c_world_skips

    run(body)


def _skips(report: SyncReport) -> list[tuple[str, str]]:
    return [(s.path, s.reason) for s in report.skipped]


# -- interruptions ---------------------------------------------------------------------------


@pytest.mark.parametrize("breaks", ["the third bundle file", "the manifest"])
def test_a_sync_cut_short_loses_nothing_and_the_next_completes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, breaks: str
) -> None:
    written = 0

    def pulled_out(directory: Path, name: str, data: bytes, **kw: Any) -> None:
        # The stick goes away at a chosen write: an I/O error from then on.
        nonlocal written
        gone = OSError(errno.EIO, "Input/output error", str(directory / name))
        if breaks == "the manifest" and name == "manifest":
            raise gone
        if breaks != "the manifest" and name.endswith(".bundle"):
            if written == 2:
                raise gone
            written += 1
        write_atomic(directory, name, data, **kw)

    async def body() -> None:
        world = World(tmp_path, ("a", "b"))
        a = world.site("a", peers=("b",), default="dtn://b/")
        b = world.site("b", peers=("a",), routes=[{"pattern": "dtn://a/*", "via": "dtn://a/"}])
        async with a.node, b.node:
            for i in range(6):
                await a.send("b", f"reading {i}".encode())
            monkeypatch.setattr("dtncloud.cla.mule.write_atomic", pulled_out)
            report = await a.sync(world.stick)
            assert report.phase == "failed" and "Input/output error" in (report.error or "")
            assert report.exported == 0
            assert len(a.node.stored()) == 6  # nothing released: no manifest lists them
            # complete files, but no manifest lists them
            assert len(world.files()) == (6 if breaks == "the manifest" else 2)

            report = await b.sync(world.stick)
            assert report.imported == 0 and b.inbox == []
            assert [s.reason for s in report.skipped if "no manifest" in s.reason], report

            monkeypatch.setattr("dtncloud.cla.mule.write_atomic", write_atomic)
            report = await a.sync(world.stick)
            assert report.phase == "done" and report.exported == 6
            assert a.node.stored() == []
            assert len(world.files()) == 6

            for _ in range(2):  # the second time changes nothing
                await b.sync(world.stick)
                await a.sync(world.stick)
            assert payloads(b) == [f"reading {i}".encode() for i in range(6)]
            assert world.files() == []

    run(body)


def test_syncing_twice_writes_nothing_twice(tmp_path: Path) -> None:
    async def body() -> None:
        world = World(tmp_path, ("a", "b"))
        # under custody a keeps its copy; the next sync neither offers nor writes it again
        a = world.site("a", peers=("b",), default="dtn://b/", custody=True)
        async with a.node:
            await a.send("b", b"once")
            first = await a.sync(world.stick)
            files = world.files()
            assert first.exported == 1 and len(files) == 1
            second = await a.sync(world.stick)
            assert second.phase == "done"
            assert world.files() == files  # the custody copy is not offered again yet

    run(body)


# -- expiry and capacity ---------------------------------------------------------------------


def test_expired_bundles_are_pruned_from_the_stick(tmp_path: Path) -> None:
    async def body() -> None:
        world = World(tmp_path, ("a", "b"))
        later = 0

        def b_clock() -> int:
            return wall_clock_ms() + later

        a = world.site("a", peers=("b",), default="dtn://b/")
        b = world.site("b", peers=("a",), clock=b_clock)
        async with a.node, b.node:
            await a.send("b", b"short-lived", lifetime=60_000)
            await a.send("b", b"long-lived", lifetime=3_600_000)
            assert (await a.sync(world.stick)).exported == 2
            later = 10 * 60_000  # b's sync is ten minutes later
            report = await b.sync(world.stick)
            assert report.imported == 1
            assert payloads(b) == [b"long-lived"]
            assert report.pruned == 2  # one expired, one delivered
            assert world.files() == []

    run(body)


def test_what_does_not_fit_on_the_stick_stays_at_the_node(tmp_path: Path) -> None:
    async def body() -> None:
        world = World(tmp_path, ("a",))
        a = world.site("a", peers=("b",), default="dtn://b/")
        async with a.node:
            for i in range(5):
                await a.send("b", bytes([i]) * 1000)
            # each bundle file is a little over 1000 bytes: room for two, not three
            report = await a.sync(world.stick, capacity=2 * 1100 + 500)
            assert report.exported == 2, report
            assert report.left == 3 and report.left_bytes > 3000
            assert len(a.node.stored()) == 3
            assert len(world.files()) == 2

            report = await a.sync(world.stick)  # a bigger stick, say
            assert report.exported == 3
            assert a.node.stored() == []

    run(body)


def test_any_destination_offers_the_carrier_to_a_default_route(tmp_path: Path) -> None:
    async def body() -> None:
        world = World(tmp_path, ("a", "z"))
        a = world.site("a", default="dtn://mule/")
        z = world.site("z")
        async with a.node, z.node:
            await a.send("z", b"to anyone who can")
            assert (await a.sync(world.stick)).exported == 0
            assert len(a.node.stored()) == 1
            assert (await a.sync(world.stick, any_destination=True)).exported == 1
            assert a.node.stored() == []
            report = await z.sync(world.stick)
            assert report.imported == 1 and payloads(z) == [b"to anyone who can"]

    run(body)


# -- the command line against a daemon -------------------------------------------------------


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="dtnmule-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_cli_syncs_a_running_daemon_and_dry_run_changes_nothing(
    tmp_path: Path, sock_dir: Path
) -> None:
    from dtncloud.client import Client
    from dtncloud.daemon.config import parse_config
    from dtncloud.daemon.runner import Daemon

    stick = tmp_path / "stick"
    stick.mkdir()

    async def cli(*args: str) -> tuple[int, str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DTNCLOUD_API", "DTNCLOUD_TOKEN")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "dtncloud",
            *args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        out, err = await process.communicate()
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    async def body() -> None:
        config = parse_config(
            {
                "node_id": "dtn://a/",
                "data_dir": str(tmp_path / "a"),
                "api": {"socket": str(sock_dir / "a.sock")},
                "cla": [],
                "routing": {"router": "static", "default": "dtn://b/"},
            },
            source=None,
            base_dir=tmp_path,
        )
        daemon = Daemon(config)
        options = MuleOptions(
            node_id="dtn://a/",
            key_path=config.data_dir / "mule.key",
            peers=("dtn://b/",),
            settle_s=SETTLE,
        )
        daemon.clas["mule"] = daemon.node.add_cla(lambda n: MuleConvergenceLayer(n, options))
        async with daemon:
            api = str(config.api.socket)
            async with await Client.connect(api) as client:
                for i in range(2):
                    await client.send("dtn://b/inbox", f"reading {i}".encode())

            status, out, err = await cli("mule", "sync", str(stick), "--api", api, "--dry-run")
            assert status == 0, err
            assert "would export 2 bundles" in out
            assert list(stick.iterdir()) == []
            assert len(daemon.node.stored()) == 2

            status, out, err = await cli("mule", "sync", str(stick), "--api", api)
            assert status == 0, err
            assert "exported 2 bundles" in out
            assert len(list((stick / "nodes" / node_dir_name("dtn://a/")).glob("*.bundle"))) == 2
            assert daemon.node.stored() == []
            assert (
                (stick / "keys" / f"{node_dir_name('dtn://a/')}.pub")
                .read_text()
                .startswith("ed25519 ")
            )

            status, out, err = await cli("mule", "sync", str(tmp_path / "nowhere"), "--api", api)
            assert status == 1
            assert "is not there" in err

    run(body)
