"""The values a node's configuration is read into: one frozen dataclass per section.

:mod:`dtncloud.daemon.config` reads and checks TOML into these; everything else (the runner,
``dtncloud init``'s template, tests) only uses them. Every path in them is absolute.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from dtncloud.bpsec.node_policy import BundleSecurity
from dtncloud.bpv7 import DEFAULT_MAX_BUNDLE_SIZE
from dtncloud.engine.config import EngineConfig
from dtncloud.errors import ConfigError

#: The name of the file in a node directory (``dtncloud init DIR``).
CONFIG_FILE_NAME: Final = "dtncloud.toml"
KNOWN_CLA_TYPES: Final = ("tcpcl", "tcpclv3", "udp", "serial", "sbd", "mule")
#: Types that a later release will bring; named so that the error says so.
RESERVED_CLA_TYPES: Final[tuple[str, ...]] = ()
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
LOG_FORMATS: Final = ("human", "json")
#: The IPND beacon port dtn7-rs uses (see dtncloud.cla.discovery, not imported: asyncio).
DISCOVERY_PORT: Final = 3003

# A configuration is a few kilobytes; the limit keeps "dtnd /dev/zero" from eating memory.
MAX_CONFIG_FILE = 1 << 20
MAX_TOKEN_FILE = 1 << 16
# sun_path holds 108 bytes on Linux and 104 on the BSDs and macOS, NUL included.
MAX_SOCKET_PATH = 107 if sys.platform.startswith("linux") else 103
CLA_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)


# -- the configuration ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogConfig:
    """``[log]``: ``level`` is one of :data:`LOG_LEVELS`, ``format`` one of :data:`LOG_FORMATS`."""

    level: str = "info"
    format: str = "human"


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """``[store]``: the SQLite store in ``path``; ``durable`` is ``fsync = "full"``."""

    path: Path
    quota_bytes: int | None = None
    durable: bool = True
    inline_threshold: int = 65536


@dataclass(frozen=True, slots=True)
class EngineSection:
    """``[engine]``: the settings of the bundle protocol agent, times in milliseconds.

    ``max_bundle_size`` None keeps the engine's default. ``default_lifetime_ms`` is the
    lifetime of bundles sent through the application API when the application gives none.
    """

    clock_accurate: bool = True
    status_reports: bool = True
    custody: bool = False
    retry_ms: int = 30_000
    remember: int = 50_000
    max_bundle_size: int | None = None
    reactive_fragmentation: bool = False
    custody_retransmit_ms: int = 60_000
    default_lifetime_ms: int = 86_400_000
    custody_max_retransmit_ms: int = 3_600_000

    def engine_config(self, node_id: str) -> EngineConfig:
        """The :class:`EngineConfig` of a node ``node_id`` with these settings."""
        return EngineConfig(
            node_id=node_id,
            clock_accurate=self.clock_accurate,
            status_reports=self.status_reports,
            custody=self.custody,
            retry_ms=self.retry_ms,
            remember=self.remember,
            reactive_fragmentation=self.reactive_fragmentation,
            custody_retransmit_ms=self.custody_retransmit_ms,
            custody_max_retransmit_ms=self.custody_max_retransmit_ms,
            max_bundle_size=(
                DEFAULT_MAX_BUNDLE_SIZE if self.max_bundle_size is None else self.max_bundle_size
            ),
        )


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """``[api]``: the application API on a Unix ``socket`` (None: off) and optionally ``tcp``.

    ``token`` (from ``token`` or the file ``token_file``) is required with ``tcp``.
    """

    socket: Path | None
    tcp: tuple[str, int] | None = None
    token: str | None = None
    max_payload: int = 64 << 20


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """``[metrics]``: where the metrics endpoint listens; None: no metrics endpoint."""

    listen: tuple[str, int] | None = None


@dataclass(frozen=True, slots=True)
class TlsSection:
    """``[cla.tls]`` of a TCPCL: PEM files (checked to exist at load) and ``require``."""

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    require: bool = False


@dataclass(frozen=True, slots=True)
class ClaConfig:
    """One ``[[cla]]``: a convergence layer, known by its unique ``name``.

    ``listen`` is ``(host, port)`` (host ``""``: every interface) or None (connect out only).
    ``None`` in the optional sizes and the rate means the convergence layer's own default.
    """

    name: str
    type: str
    listen: tuple[str, int] | None
    keepalive_s: int = 60
    segment_mru: int | None = None
    transfer_mru: int | None = None
    max_sessions: int = 256
    keep_partial: bool = False
    tls: TlsSection | None = None
    max_bundle_size: int | None = None
    rate_bytes_per_s: int | None = None
    #: first wait before reconnecting to a configured peer, doubled per failure up to the max
    reconnect_ms: int = 1_000
    reconnect_max_ms: int = 60_000
    #: serial, sbd and mule: the driver's options (see dtncloud.daemon.config_links)
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)


@dataclass(frozen=True, slots=True)
class PeerConfig:
    """One ``[[peer]]``: neighbour ``node_id``, reached through the ``[[cla]]`` named ``cla``
    at ``address`` (normalised ``host:port``, IPv6 hosts in brackets)."""

    node_id: str
    cla: str
    address: str


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """One ``[[routing.route]]``: bundles for ``destination`` (a pattern) go to ``via``."""

    destination: str
    via: str


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """``[routing]``: the router's name and its settings.

    ``params`` are the other keys of ``[routing]``, read-only, for the router as they are.
    Hand :meth:`router_params` to ``default_registry.create``: it adds the routes, the
    default next hop and the contact plan in the form the routers take them.
    """

    router: str = "static"
    routes: tuple[RouteConfig, ...] = ()
    default: str | None = None
    contact_plan: Path | None = None
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def router_params(self) -> dict[str, Any]:
        """Keyword settings for the router; reads the contact plan file if there is one."""
        settings = dict(self.params)
        if self.routes:
            settings["routes"] = [(route.destination, route.via) for route in self.routes]
        if self.default is not None:
            settings["default"] = self.default
        if self.contact_plan is not None:
            settings["contact_plan"] = _read_contact_plan(self.contact_plan)
        return settings


@dataclass(frozen=True, slots=True)
class DiscoverySection:
    """``[discovery]``: IPND beacons every ``period_ms``, on ``listen``, to ``destinations``
    (normalised ``host:port`` texts) and, with ``multicast``, the default multicast group."""

    enabled: bool = False
    period_ms: int = 10_000
    listen: tuple[str, int] = ("", DISCOVERY_PORT)
    destinations: tuple[str, ...] = ()
    multicast: bool = True


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """A whole ``dtncloud.toml``. ``source`` is the file (None for the embedded default);
    every path in it is absolute."""

    node_id: str
    data_dir: Path
    source: Path | None
    log: LogConfig
    store: StoreConfig
    engine: EngineSection
    api: ApiConfig
    metrics: MetricsConfig
    clas: tuple[ClaConfig, ...]
    peers: tuple[PeerConfig, ...]
    routing: RoutingConfig
    discovery: DiscoverySection
    bpsec: BundleSecurity = field(default_factory=BundleSecurity)


def read_text(path: Path, where: str, limit: int | None = None) -> str:
    try:
        with path.open("rb") as stream:
            raw = stream.read() if limit is None else stream.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    if limit is not None and len(raw) > limit:
        raise ConfigError(f"{where}: {path} is larger than {limit} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: {path} is not UTF-8 text") from None


def _read_contact_plan(path: Path) -> Any:
    where = "routing.contact_plan"
    text = read_text(path, where)
    if path.suffix.lower() != ".json" and text.lstrip()[:1] not in ("{", "["):
        return text  # the ION form; the router parses it
    # The JSON form goes as its value: the router takes a one-line text for a file name.
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{where}: {path} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise ConfigError(f"{where}: {path} is nested too deeply") from None


__all__ = [
    "CONFIG_FILE_NAME", "KNOWN_CLA_TYPES", "RESERVED_CLA_TYPES", "LOG_LEVELS", "LOG_FORMATS",
    "DISCOVERY_PORT", "MAX_CONFIG_FILE", "MAX_TOKEN_FILE", "MAX_SOCKET_PATH", "CLA_NAME",
    "NodeConfig", "LogConfig", "StoreConfig", "EngineSection", "ApiConfig", "MetricsConfig",
    "TlsSection", "ClaConfig", "PeerConfig", "RouteConfig", "RoutingConfig", "DiscoverySection",
    "read_text",
]  # fmt: skip
