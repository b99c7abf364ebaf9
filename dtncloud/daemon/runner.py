"""The daemon: one node with its store, convergence layers, application API and metrics.

:class:`Daemon` builds everything a :class:`~dtncloud.daemon.config.NodeConfig` describes,
starts it in order (store and engine first, then links, then the doors applications and
monitoring come in by) and stops it in the reverse order, so that nothing is accepted that
the node could not store, and every session ends with SESS_TERM. ``dtnd`` runs one until
SIGTERM or SIGINT; ``dtncloud demo`` and embedded applications run several in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from dtncloud.cla.base import ConvergenceLayer
from dtncloud.cla.discovery import DiscoveryService
from dtncloud.cla.mule import MuleConvergenceLayer, mule_of
from dtncloud.client import Client
from dtncloud.daemon.build import (
    build_clas,
    build_discovery,
    build_engine_config,
    build_router,
    build_store,
)
from dtncloud.daemon.config import NodeConfig, default_config, load_config
from dtncloud.daemon.inventory import DaemonInventory
from dtncloud.daemon.link_metrics import DeviceLinkCollector, device_link_status
from dtncloud.engine import EngineListener
from dtncloud.engine.listener import Listeners
from dtncloud.errors import ConfigError, DtnError
from dtncloud.runtime.api_server import ApiServer
from dtncloud.runtime.apps import ApiService
from dtncloud.runtime.echo import EchoService
from dtncloud.runtime.http import MetricsServer
from dtncloud.runtime.metrics import NodeMetrics
from dtncloud.runtime.node import Node, wall_clock_ms

__all__ = ["Daemon", "embedded"]

log = logging.getLogger("dtncloud.daemon")


class Daemon:
    """A node as ``dtnd`` runs it. ``async with Daemon(config) as daemon`` or
    :meth:`start` and :meth:`stop`; :meth:`run` serves until a signal. ``listeners`` hear
    the engine beside the metrics (the demo traces bundles with one)."""

    def __init__(
        self,
        config: NodeConfig,
        *,
        clock: Callable[[], int] = wall_clock_ms,
        rng: random.Random | None = None,
        listeners: Sequence[EngineListener] = (),
    ) -> None:
        self.config = config
        self.rng = rng or random.Random()
        self.started_at = time.time()
        self.metrics = NodeMetrics(node_id=config.node_id)
        self.router = build_router(config, self.rng)
        self.node = Node(
            build_engine_config(config),
            build_store(config),
            self.router,
            listener=Listeners([self.metrics, *listeners]) if listeners else self.metrics,
            clock=clock,
            rng=self.rng,
            security=config.bpsec,
        )
        self.clas: dict[str, ConvergenceLayer] = build_clas(self.node, config)
        self.echo = EchoService(self.node)
        self.inventory = DaemonInventory(self)
        self.api = ApiService(
            self.node,
            self.inventory,
            default_lifetime_ms=config.engine.default_lifetime_ms,
            max_payload=config.api.max_payload,
            token=config.api.token,
        )
        self.api_server = ApiServer(self.api, socket_path=config.api.socket, tcp=config.api.tcp)
        self.metrics_server: MetricsServer | None = None
        self.discovery: DiscoveryService | None = None
        self._stopping = False
        self._started = False

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store, start the engine and the links, then the API and metrics."""
        self.config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.metrics.attach(self.node)
        self.metrics.registry.register(DeviceLinkCollector(lambda: self.clas))
        await self.node.start()
        self._started = True
        try:
            self.echo.start()
            found = build_discovery(self.config, self.clas, self.rng)
            if found is not None:
                self.discovery, _linker = found
                await self.discovery.start()
            await self.api_server.start()
            if self.config.metrics.listen is not None:
                host, port = self.config.metrics.listen
                self.metrics_server = MetricsServer(host, port, self.metrics)
                await self.metrics_server.start()
        except BaseException:
            await self.stop()
            raise
        log.info(
            "dtnd %s up: data in %s, %s",
            self.config.node_id,
            self.config.data_dir,
            ", ".join(self._describe_clas()) or "no convergence layers",
        )

    async def stop(self) -> None:
        """Stop taking requests, end every session with SESS_TERM, close the store."""
        if self._stopping:
            return
        self._stopping = True
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        # The API first: its waiting deliveries fail, so the node's stop is not held up.
        await self.api_server.stop()
        self.api.close()
        if self.discovery is not None:
            await self.discovery.stop()
        if self._started:
            await self.node.stop()
            log.info("dtnd %s stopped", self.config.node_id)

    async def __aenter__(self) -> Daemon:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Start, serve until SIGTERM or SIGINT (or ``stop`` is set), then stop cleanly."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        installed = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, _on_signal, stop, signum)
                installed.append(signum)
        try:
            await self.start()
            await stop.wait()
        finally:
            await self.stop()
            for signum in installed:
                loop.remove_signal_handler(signum)

    async def client(self) -> Client:
        """A :class:`~dtncloud.client.Client` connected to this node in-process, over a
        socket pair (embedded mode: the application runs its node itself). Close it before
        the daemon stops."""
        ours, theirs = socket.socketpair()
        await self.api_server.serve_socket(theirs)
        return await Client.from_socket(ours)

    @property
    def mule(self) -> MuleConvergenceLayer | None:
        """The node's mule convergence layer, if it has one (for the API's ``mule_sync``)."""
        return mule_of(self.clas)

    # -- what status displays show -------------------------------------------------------

    def _describe_clas(self) -> list[str]:
        described = []
        for name, cla in self.clas.items():
            port = getattr(cla, "port", None)
            described.append(f"{name} on port {port}" if port else name)
        return described

    async def status(self) -> dict[str, Any]:
        """The JSON status document (what ``dtncloud status`` shows)."""
        document = self.metrics.status_document(await self.metrics.snapshot())
        document.update(
            {
                "node_id": self.config.node_id,
                "pid": os.getpid(),
                "data_dir": str(self.config.data_dir),
                "router": self.config.routing.router,
                "convergence_layers": self._describe_clas(),
                "link_figures": device_link_status(self.clas),
                "api_socket": None
                if self.config.api.socket is None
                else str(self.config.api.socket),
            }
        )
        return document


def _on_signal(stop: asyncio.Event, signum: int) -> None:
    log.info("%s received: shutting down", signal.Signals(signum).name)
    stop.set()


def check_config(config: NodeConfig) -> None:
    """Build everything a daemon would, without starting it: configuration errors that only
    show when parts are made (a contact plan, TLS files, router parameters) surface here."""
    try:
        Daemon(config)
    except DtnError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc)) from None


@contextlib.asynccontextmanager
async def embedded(
    where: NodeConfig | str | os.PathLike[str], *, node_id: str | None = None
) -> AsyncIterator[Daemon]:
    """Run a node inside this process for the ``async with`` block: ``where`` is a
    configuration, a configuration file, or a data directory for the embedded defaults
    (with ``node_id``, default ``dtn://<hostname>/``). ``await daemon.client()`` talks to
    it as an application would talk to ``dtnd``.

    Example::

        async with embedded("/var/lib/myapp/dtn", node_id="dtn://pump-3/") as node:
            async with await node.client() as client:
                await client.send("dtn://cloud/telemetry", b"...")
    """
    if isinstance(where, NodeConfig):
        config = where
    else:
        path = Path(where)
        config = load_config(path) if path.is_file() else default_config(path.resolve(), node_id)
    async with Daemon(config) as daemon:
        yield daemon
