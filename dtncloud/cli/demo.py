"""``dtncloud demo``: a small field deployment, live, on this one machine.

Three real nodes run in this process, each a :class:`~dtncloud.daemon.runner.Daemon` built
from its own configuration file, with its own SQLite store and application socket, talking
TCPCLv4 on loopback:

    sensor  --tcpcl-->  relay  --tcpcl over a link that comes and goes-->  cloud

A sensor application sends readings through the sensor node's API; the relay's link to the
cloud is a TCP relay this command opens and cuts on a schedule (as a satellite pass or a
flaky WAN would), so readings wait on the relay's disk while it is down and flow when it
comes back. A cloud application receives them through the cloud node's API. The demo prints
what happens as it happens, then each reading's journey (when it was sent, stored, forwarded
and delivered, and through which nodes), and stops every node cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dtncloud.cli._output import CliError
from dtncloud.engine import EngineListener
from dtncloud.routing.base import LinkInfo
from dtncloud.store.base import BundleMeta

if TYPE_CHECKING:  # imported when the demo runs: every other command starts faster
    from dtncloud.client import Client
    from dtncloud.daemon.runner import Daemon

__all__ = ["demo"]

NODES = ("sensor", "relay", "cloud")
INBOX = "dtn://cloud/readings"


@dataclass
class _Journey:
    """What happened to one reading, node by node (seconds since the demo started)."""

    seq: int
    sent: float
    steps: list[tuple[float, str, str]] = field(default_factory=list)
    delivered: float | None = None


class _Tracer(EngineListener):
    """Hears one node's engine and records each reading's steps for the summary."""

    def __init__(self, demo: _Demo, node: str) -> None:
        self.demo = demo
        self.node = node

    def _step(self, meta: BundleMeta, what: str) -> None:
        journey = self.demo.by_id.get(meta.bundle_id)
        if journey is not None:
            journey.steps.append((self.demo.elapsed(), self.node, what))

    def bundle_received(self, meta: BundleMeta, link_id: str | None, now: int) -> None:
        self._step(meta, "stored")

    def bundle_forwarded(self, meta: BundleMeta, link_id: str, now: int) -> None:
        self._step(meta, "forwarded")

    def bundle_delivered(self, meta: BundleMeta, endpoint: str, now: int) -> None:
        self._step(meta, "delivered")

    def link_up(self, link: LinkInfo, now: int) -> None:
        if self.node == "relay" and link.peer_node == "dtn://cloud/":
            self.demo.cloud_links.add(link.link_id)
            self.demo.say(f"relay: link to the cloud is up ({link.cla})")

    def link_down(self, link_id: str, reason: str, now: int) -> None:
        if self.node == "relay" and link_id in self.demo.cloud_links and not self.demo.over:
            self.demo.cloud_links.discard(link_id)
            self.demo.say("relay: link to the cloud is down; readings wait on the relay's disk")


class _FlakyLink:
    """A TCP relay in front of the cloud's TCPCL port that is cut and restored on demand:
    while down it closes every connection and refuses new ones, as a lost WAN would."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.up = False
        self.server: asyncio.Server | None = None
        self.connections: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self.connections.update((writer, up_writer))
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        self.connections.difference_update((writer, up_writer))

    def cut(self) -> None:
        self.up = False
        for writer in list(self.connections):
            writer.transport.abort()

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _write_configs(base: Path, ports: dict[str, int], flaky_port: int) -> dict[str, Path]:
    """One configuration file per node, as an operator would write them."""
    routes = {
        "sensor": ("relay", ports["relay"], 'destination = "*"\nvia = "dtn://relay/"'),
        "relay": ("cloud", flaky_port, 'destination = "dtn://cloud/*"\nvia = "dtn://cloud/"'),
        "cloud": None,
    }
    paths = {}
    for name in NODES:
        directory = base / name
        directory.mkdir(mode=0o700)
        text = (
            f'node_id = "dtn://{name}/"\n'
            f'data_dir = "."\n\n'
            f'[log]\nlevel = "warning"\n\n'
            f'[[cla]]\ntype = "tcpcl"\nlisten = "127.0.0.1:{ports[name]}"\n'
            f'keepalive = "2s"\nreconnect = "200ms"\nreconnect_max = "1s"\n\n'
        )
        route = routes[name]
        if route is not None:
            peer, port, rule = route
            text += (
                f'[[peer]]\nnode_id = "dtn://{peer}/"\ncla = "tcpcl"\n'
                f'address = "127.0.0.1:{port}"\n\n'
                f'[routing]\nrouter = "static"\n\n[[routing.route]]\n{rule}\n'
            )
        path = directory / "dtncloud.toml"
        path.write_text(text, encoding="utf-8")
        paths[name] = path
    return paths


class _Demo:
    def __init__(self, readings: int, interval: float, up_s: float, down_s: float) -> None:
        self.readings = readings
        self.interval = interval
        self.up_s = up_s
        self.down_s = down_s
        self.started = time.monotonic()
        self.journeys: list[_Journey] = []
        self.by_id: dict[str, _Journey] = {}
        self.daemons: dict[str, Daemon] = {}
        #: the relay's links to the cloud that are up
        self.cloud_links: set[str] = set()
        self.over = False  # every reading arrived: links going down now are the shutdown

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, line: str) -> None:
        click.echo(f"[{self.elapsed():5.1f}s] {line}")

    async def run(self, base: Path) -> None:
        from dtncloud.daemon.config import load_config
        from dtncloud.daemon.runner import Daemon

        ports = {name: _free_port() for name in NODES}
        flaky = _FlakyLink(ports["cloud"])
        paths = _write_configs(base, ports, await flaky.start())
        click.echo(f"Nodes' configurations, stores and sockets are in {base}")
        try:
            for name in NODES:
                config = load_config(paths[name])
                daemon = Daemon(config, listeners=[_Tracer(self, name)])
                await daemon.start()
                self.daemons[name] = daemon
                self.say(f"{name}: node {config.node_id} up, TCPCLv4 on 127.0.0.1:{ports[name]}")
            await self._exchange(flaky)
        finally:
            await flaky.stop()
            for name in reversed(NODES):
                if name in self.daemons:
                    await self.daemons[name].stop()
            self.say("every node stopped cleanly")

    async def _exchange(self, flaky: _FlakyLink) -> None:
        from dtncloud.client import Client

        sensor_api = self.daemons["sensor"].config.api.socket
        cloud_api = self.daemons["cloud"].config.api.socket
        async with (
            await Client.connect(str(cloud_api)) as cloud,
            await Client.connect(str(sensor_api)) as sensor,
        ):
            inbox = await cloud.register(INBOX)
            receiving = asyncio.create_task(self._receive(cloud, inbox))
            scheduling = asyncio.create_task(self._schedule(flaky))
            try:
                for seq in range(1, self.readings + 1):
                    payload = json.dumps(
                        {"sensor": "soil-1", "seq": seq, "moisture": round(0.31 - 0.01 * seq, 3)}
                    ).encode()
                    journey = _Journey(seq, self.elapsed())
                    bundle_id = await sensor.send(INBOX, payload, source="dtn://sensor/soil")
                    journey.steps.append((self.elapsed(), "sensor", "stored"))
                    self.journeys.append(journey)
                    self.by_id[bundle_id] = journey
                    self.say(f"sensor: reading {seq}/{self.readings} sent as {bundle_id}")
                    await asyncio.sleep(self.interval)  # the sensor's sampling period
                await asyncio.wait_for(receiving, timeout=60)
                self.over = True
            except TimeoutError:
                raise CliError(
                    "demo: not every reading reached the cloud within a minute"
                ) from None
            finally:
                scheduling.cancel()
                receiving.cancel()
                await asyncio.gather(scheduling, receiving, return_exceptions=True)
        self._summary()

    async def _receive(self, cloud: Client, inbox: str) -> None:
        got = 0
        async for bundle in cloud.bundles(inbox):
            reading = json.loads(bundle.payload)
            journey = self.by_id.get(bundle.bundle_id)
            if journey is not None:
                journey.delivered = self.elapsed()
            self.say(
                f"cloud: reading {reading['seq']} arrived from {bundle.source}"
                f" (moisture {reading['moisture']})"
            )
            await bundle.ack()
            got += 1
            if got == self.readings:
                return

    async def _schedule(self, flaky: _FlakyLink) -> None:
        """The relay's link to the cloud: down first, then up and down in turn."""
        while True:
            await asyncio.sleep(self.down_s)
            flaky.up = True
            self.say("(the WAN between relay and cloud comes back)")
            await asyncio.sleep(self.up_s)
            flaky.cut()
            self.say("(the WAN between relay and cloud fails)")

    def _summary(self) -> None:
        click.echo("")
        click.echo(
            "reading  sent    arrived  latency  journey (stored at each node; time held there)"
        )
        for journey in self.journeys:
            if journey.delivered is None:
                click.echo(f"{journey.seq:>7}  {journey.sent:5.1f}s  (not arrived)")
                continue
            latency = journey.delivered - journey.sent
            click.echo(
                f"{journey.seq:>7}  {journey.sent:5.1f}s  {journey.delivered:6.1f}s"
                f"  {latency:6.1f}s  {_hops(journey)}"
            )
        click.echo("")


def _hops(journey: _Journey) -> str:
    """``sensor 0.1s (0.0s) -> relay 0.2s (2.6s) -> cloud 2.8s``: where the reading was
    stored, when, and how long it stayed before it was forwarded."""
    stored: dict[str, float] = {}
    left: dict[str, float] = {}
    for at, node, what in journey.steps:
        if what == "stored":
            stored.setdefault(node, at)
        elif what == "forwarded":
            left.setdefault(node, at)
    parts = []
    for node in sorted(stored, key=stored.__getitem__):
        part = f"{node} {stored[node]:.1f}s"
        if node in left:
            part += f" (held {left[node] - stored[node]:.1f}s)"
        parts.append(part)
    return " -> ".join(parts)


@click.command(short_help="Run a sensor, a relay and a cloud node and watch readings travel.")
@click.option("--readings", type=click.IntRange(1, 1000), default=12, show_default=True)
@click.option(
    "--interval",
    type=click.FloatRange(0, 60),
    default=0.5,
    show_default=True,
    help="Seconds between readings.",
)
@click.option(
    "--link-up",
    "up_s",
    type=click.FloatRange(0.1, 600),
    default=2.0,
    show_default=True,
    help="Seconds the relay-cloud link stays up.",
)
@click.option(
    "--link-down",
    "down_s",
    type=click.FloatRange(0, 600),
    default=2.5,
    show_default=True,
    help="Seconds it stays down.",
)
@click.option(
    "--keep",
    "keep_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the nodes' files here instead of a temporary directory.",
)
def demo(readings: int, interval: float, up_s: float, down_s: float, keep_dir: Path | None) -> None:
    """Start three dtncloud nodes on this machine (sensor, relay, cloud), each with its own
    SQLite store, talking TCPCLv4 on loopback; send sensor readings through the relay while
    its link to the cloud comes and goes; print what arrived, when and through which nodes;
    stop them all cleanly. No arguments needed."""
    base = keep_dir or Path(tempfile.mkdtemp(prefix="dtncloud-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    if any(base.iterdir()):
        raise CliError(f"demo: {base} is not empty")
    click.echo(
        f"dtncloud demo: {readings} readings from a field sensor, through a relay whose link"
        f" to the cloud is up {up_s:g}s and down {down_s:g}s in turn."
    )
    try:
        asyncio.run(_Demo(readings, interval, up_s, down_s).run(base))
    finally:
        if keep_dir is None:
            shutil.rmtree(base, ignore_errors=True)
