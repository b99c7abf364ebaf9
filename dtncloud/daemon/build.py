"""Turning a :class:`~dtncloud.daemon.config.NodeConfig` into the parts of a running node.

Each function builds one part (store, router, engine configuration, convergence layers,
discovery) and raises :class:`~dtncloud.errors.ConfigError` with a one-line reason naming
the configuration key when the part cannot be made from what is configured.
"""

from __future__ import annotations

import random
from functools import partial
from typing import Any

from dtncloud.cla.base import ConvergenceLayer
from dtncloud.cla.discovery import DEFAULT_MULTICAST_V4, DEFAULT_MULTICAST_V6, DiscoveryService
from dtncloud.cla.opportunistic import OpportunisticLinker
from dtncloud.cla.tcpcl import TcpclConvergenceLayer, TcpclOptions
from dtncloud.cla.tls import TlsConfig
from dtncloud.cla.udp import UdpConvergenceLayer
from dtncloud.daemon.config import ClaConfig, NodeConfig
from dtncloud.discovery import DiscoveryConfig, Service
from dtncloud.engine import EngineConfig
from dtncloud.errors import ConfigError
from dtncloud.routing import default_registry
from dtncloud.routing.base import Router
from dtncloud.runtime.node import Node
from dtncloud.store.sqlite import SqliteStore

__all__ = [
    "build_clas",
    "build_discovery",
    "build_engine_config",
    "build_router",
    "build_store",
    "peer_addresses",
]


def build_engine_config(config: NodeConfig) -> EngineConfig:
    try:
        return config.engine.engine_config(config.node_id)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"[engine]: {exc}") from None


def build_store(config: NodeConfig) -> SqliteStore:
    store = config.store
    try:
        return SqliteStore(
            store.path,
            quota_bytes=store.quota_bytes,
            inline_threshold=store.inline_threshold,
            durable=store.durable,
        )
    except ValueError as exc:
        raise ConfigError(f"[store]: {exc}") from None


def build_router(config: NodeConfig, rng: random.Random) -> Router:
    """The configured router, with its static routes or its contact plan."""
    routing = config.routing
    try:
        return default_registry.create(
            routing.router, node_id=config.node_id, rng=rng, params=routing.router_params()
        )
    except ConfigError as exc:
        raise ConfigError(f"[routing]: {exc}") from None


def peer_addresses(config: NodeConfig, cla_name: str) -> tuple[str, ...]:
    """Addresses of the configured peers reached through the CLA named ``cla_name``."""
    return tuple(peer.address for peer in config.peers if peer.cla == cla_name and peer.address)


def _tls(cla: ClaConfig) -> TlsConfig | None:
    if cla.tls is None:
        return None
    try:
        return TlsConfig(
            certificate=cla.tls.cert,
            private_key=cla.tls.key,
            ca=cla.tls.ca,
            require=cla.tls.require,
        )
    except ConfigError as exc:
        raise ConfigError(f"[[cla]] {cla.name}: tls: {exc}") from None


def _tcpcl(node: Node, *, config: NodeConfig, cla: ClaConfig) -> TcpclConvergenceLayer:
    listen = cla.listen
    sizes: dict[str, Any] = {}
    if cla.segment_mru is not None:
        sizes["segment_mru"] = sizes["max_segment_size"] = cla.segment_mru
    if cla.transfer_mru is not None:
        sizes["transfer_mru"] = cla.transfer_mru
    tls = _tls(cla)  # outside the try below: its errors name the cla already
    try:
        options = TcpclOptions(
            node_id=config.node_id,
            listen=None if listen is None else listen[0],
            port=4556 if listen is None else listen[1],
            version=3 if cla.type == "tcpclv3" else 4,
            keepalive_s=cla.keepalive_s,
            tls=tls,
            peers=peer_addresses(config, cla.name),
            spool_dir=config.data_dir / "spool",
            max_sessions=cla.max_sessions,
            keep_partial=cla.keep_partial,
            reconnect_initial_s=cla.reconnect_ms / 1000,
            reconnect_max_s=cla.reconnect_max_ms / 1000,
            **sizes,
        )
    except (ConfigError, ValueError) as exc:
        raise ConfigError(f"[[cla]] {cla.name}: {exc}") from None
    return TcpclConvergenceLayer(node, options)


def _udp(node: Node, *, config: NodeConfig, cla: ClaConfig) -> UdpConvergenceLayer:
    # Not listening still needs a socket to send from: any free port.
    host, port = cla.listen if cla.listen is not None else ("0.0.0.0", 0)
    extra: dict[str, Any] = {}
    if cla.max_bundle_size is not None:
        extra["max_bundle_size"] = cla.max_bundle_size
    if cla.rate_bytes_per_s is not None:
        extra["rate_bytes_per_s"] = cla.rate_bytes_per_s
    try:
        return UdpConvergenceLayer(
            node, host=host or "0.0.0.0", port=port, node_id=config.node_id, **extra
        )
    except ConfigError as exc:
        raise ConfigError(f"[[cla]] {cla.name}: {exc}") from None


def _peer_of(config: NodeConfig, cla: ClaConfig) -> str | None:
    """The one neighbour a serial line or a modem reaches (its ``[[peer]]``), if any."""
    peers = [peer.node_id for peer in config.peers if peer.cla == cla.name]
    if len(peers) > 1:
        raise ConfigError(
            f"[[cla]] {cla.name}: a {cla.type} link reaches one neighbour; "
            f"{len(peers)} [[peer]] entries name it"
        )
    return peers[0] if peers else None


def _serial(node: Node, *, config: NodeConfig, cla: ClaConfig) -> ConvergenceLayer:
    from dtncloud.cla.serial import SerialConvergenceLayer, SerialOptions

    try:
        options = SerialOptions(**cla.options, peer_node_id=_peer_of(config, cla))
    except (ConfigError, TypeError, ValueError) as exc:
        raise ConfigError(f"[[cla]] {cla.name}: {exc}") from None
    return SerialConvergenceLayer(node, options)


def _sbd(node: Node, *, config: NodeConfig, cla: ClaConfig) -> ConvergenceLayer:
    from dtncloud.cla.sbd import SbdConvergenceLayer, SbdOptions

    try:
        options = SbdOptions(
            **cla.options, peer_node_id=_peer_of(config, cla), node_id=config.node_id
        )
    except (ConfigError, TypeError, ValueError) as exc:
        raise ConfigError(f"[[cla]] {cla.name}: {exc}") from None
    return SbdConvergenceLayer(node, options)


def _mule(node: Node, *, config: NodeConfig, cla: ClaConfig) -> ConvergenceLayer:
    from dtncloud.cla.mule import MuleConvergenceLayer, MuleOptions

    settings = dict(cla.options)
    settings.setdefault("key_path", config.data_dir / "mule.key")
    peers = tuple(peer.node_id for peer in config.peers if peer.cla == cla.name)
    try:
        options = MuleOptions(node_id=config.node_id, peers=peers, **settings)
    except (ConfigError, TypeError, ValueError) as exc:
        raise ConfigError(f"[[cla]] {cla.name}: {exc}") from None
    return MuleConvergenceLayer(node, options)


# The drivers of the disrupted links are imported only by nodes that have them: pyserial and
# the rest stay out of a plain TCPCL node's memory.
_BUILDERS = {
    "tcpcl": _tcpcl,
    "tcpclv3": _tcpcl,
    "udp": _udp,
    "serial": _serial,
    "sbd": _sbd,
    "mule": _mule,
}


def build_clas(node: Node, config: NodeConfig) -> dict[str, ConvergenceLayer]:
    """Every configured convergence layer, added to ``node``, by name."""
    clas: dict[str, ConvergenceLayer] = {}
    for cla in config.clas:
        builder = _BUILDERS.get(cla.type)
        if builder is None:
            known = ", ".join(sorted(_BUILDERS))
            raise ConfigError(f"[[cla]] {cla.name}: unknown type {cla.type!r}; known: {known}")
        clas[cla.name] = node.add_cla(partial(builder, config=config, cla=cla))
    return clas


def _announced(clas: dict[str, ConvergenceLayer]) -> tuple[Service, ...]:
    services = []
    for cla in clas.values():
        port = getattr(cla, "port", None)
        if isinstance(port, int) and port:
            services.append(Service(cla.name, port))
    return tuple(services)


def build_discovery(
    config: NodeConfig, clas: dict[str, ConvergenceLayer], rng: random.Random
) -> tuple[DiscoveryService, OpportunisticLinker] | None:
    """Beacons announcing the CLAs (call after the CLAs started: their ports are known)."""
    section = config.discovery
    if not section.enabled:
        return None
    linker = OpportunisticLinker({cla.name: cla for cla in clas.values()})
    host, port = section.listen
    destinations = list(section.destinations)
    if section.multicast:
        destinations.append(DEFAULT_MULTICAST_V6 if ":" in host else DEFAULT_MULTICAST_V4)
    try:
        service = DiscoveryService(
            DiscoveryConfig(
                node_id=config.node_id,
                services=_announced(clas),
                period_ms=section.period_ms,
                jitter_ms=section.period_ms // 10,
            ),
            host=host or "0.0.0.0",
            port=port,
            destinations=destinations,
            on_neighbour_found=linker.neighbour_found,
            on_neighbour_updated=linker.neighbour_updated,
            on_neighbour_lost=linker.neighbour_lost,
            rng=rng,
        )
    except (ConfigError, ValueError) as exc:
        raise ConfigError(f"[discovery]: {exc}") from None
    return service, linker
