"""The configuration of ``dtnd``: ``dtncloud.toml`` read into frozen dataclasses, and checked.

::

    node_id = "dtn://relay/"            # or "ipn:2.0"; required
    data_dir = "/var/lib/dtncloud"      # default: the directory of this file
    [log]        level, format
    [store]      path, quota, fsync = "full" | "off", inline_threshold
    [engine]     clock_accurate, status_reports, custody, retry, remember, max_bundle_size,
                 reactive_fragmentation, custody_retransmit, custody_max_retransmit,
                 default_lifetime
    [api]        socket, tcp, token, token_file, max_payload
    [metrics]    listen
    [[cla]]      name, type, listen, ... (keys depend on the type; [cla.tls] for tcpcl)
    [[peer]]     node_id, cla, address
    [routing]    router, default, contact_plan, router settings; [[routing.route]] entries
    [discovery]  enabled, period, listen, destinations, multicast

Every key has a default except ``node_id``; with no ``cla`` key the node gets the default
TCPCL (all interfaces, port 4556), and ``cla = []`` gives it none. Sizes, durations, rates and
addresses are read by :mod:`dtncloud.daemon.units`.

**Relative paths.** ``data_dir`` is relative to the directory of the configuration file.
What the daemon creates and owns lives in the data directory, so ``store.path`` and
``api.socket`` are relative to ``data_dir``. What the operator provides is relative to the
configuration file, like ``data_dir`` itself: ``api.token_file``, ``routing.contact_plan`` and
the ``[cla.tls]`` files. (``dtncloud init`` writes ``data_dir = "."``, where the two agree.)
``~`` is expanded everywhere.

Every problem is a :class:`~dtncloud.errors.ConfigError` with one line that names the file and
the key, and nothing is left to fail later that can be checked now: files that must exist are
looked at, the token file is read, the router is built once with its settings.
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from dtncloud.daemon.config_links import DEVICE_CLA_TYPES, DEVICE_KEYS, read_device_settings
from dtncloud.daemon.keys import read_bpsec
from dtncloud.daemon.schema import (
    CLA_NAME,
    CONFIG_FILE_NAME,
    DISCOVERY_PORT,
    KNOWN_CLA_TYPES,
    LOG_FORMATS,
    LOG_LEVELS,
    MAX_CONFIG_FILE,
    MAX_SOCKET_PATH,
    MAX_TOKEN_FILE,
    RESERVED_CLA_TYPES,
    ApiConfig,
    ClaConfig,
    DiscoverySection,
    EngineSection,
    LogConfig,
    MetricsConfig,
    NodeConfig,
    PeerConfig,
    RouteConfig,
    RoutingConfig,
    StoreConfig,
    TlsSection,
    read_text,
)
from dtncloud.daemon.units import (
    TomlTable,
    describe_value,
    format_hostport,
    parse_bool,
    parse_choice,
    parse_duration_ms,
    parse_hostport,
    parse_int,
    parse_node_id,
    parse_path,
    parse_rate,
    parse_size,
    parse_toml_bytes,
    unknown_key,
)
from dtncloud.errors import ConfigError
from dtncloud.routing import default_registry
from dtncloud.tcpcl.codes import DEFAULT_PORT as TCPCL_PORT
from dtncloud.udpcl import DEFAULT_PORT as UDP_PORT
from dtncloud.udpcl import IPV6_MAX_PAYLOAD

__all__ = [
    "CONFIG_FILE_NAME", "KNOWN_CLA_TYPES", "RESERVED_CLA_TYPES", "LOG_LEVELS", "LOG_FORMATS",
    "DISCOVERY_PORT",
    "NodeConfig", "LogConfig", "StoreConfig", "EngineSection", "ApiConfig", "MetricsConfig",
    "TlsSection", "ClaConfig", "PeerConfig", "RouteConfig", "RoutingConfig", "DiscoverySection",
    "load_config", "parse_config", "default_config", "node_id_from_hostname",
]  # fmt: skip

# -- entry points ---------------------------------------------------------------------------


def load_config(path: str | Path) -> NodeConfig:
    """Read and check a configuration file (or ``DIR/dtncloud.toml`` for a directory)."""
    given = Path(path)
    file = given / CONFIG_FILE_NAME if given.is_dir() else given
    try:
        with file.open("rb") as stream:
            raw = stream.read(MAX_CONFIG_FILE + 1)
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read it: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_FILE:
        raise ConfigError(f"{file}: larger than 1 MiB, so not a dtncloud configuration")
    data = parse_toml_bytes(raw, file)
    source = Path(os.path.abspath(file))
    return parse_config(data, source=source, base_dir=source.parent, label=str(file))


def parse_config(
    data: Mapping[str, Any],
    *,
    source: Path | None,
    base_dir: Path,
    label: str | None = None,
) -> NodeConfig:
    """Check ``data`` (parsed TOML) and build the configuration.

    ``base_dir`` is the directory of the configuration file, which relative paths start from
    (see the module docstring). Errors start with ``label``, by default ``source``'s name.
    """
    if label is None:
        label = source.name if source is not None else "default configuration"
    try:
        return _Reader(Path(os.path.abspath(base_dir)), source).node(data)
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc}") from None


def default_config(data_dir: Path, node_id: str | None = None) -> NodeConfig:
    """The embedded default: a node with its store and API socket in ``data_dir``, a TCPCL on
    every interface at port 4556, the static router and no peers.

    ``node_id`` defaults to one made from the host name (:func:`node_id_from_hostname`).
    """
    if node_id is None:
        node_id = node_id_from_hostname(socket.gethostname())
    return parse_config({"node_id": node_id}, source=None, base_dir=data_dir)


def node_id_from_hostname(hostname: str) -> str:
    """``dtn://<hostname>/``, lower-cased, with characters unfit for a node name replaced."""
    name = re.sub(r"[^a-z0-9._-]+", "-", hostname.lower()).strip("-.")
    return f"dtn://{name or 'localhost'}/"


# -- value checks -----------------------------------------------------------------------------


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {describe_value(value)}")
    return value


def _at_least(minimum: int) -> Callable[[Any, str], int]:
    return lambda value, where: parse_int(value, where, minimum=minimum)


def _choice(*options: str) -> Callable[[Any, str], str]:
    return lambda value, where: parse_choice(value, where, options)


def _positive(convert: Callable[[Any, str], int]) -> Callable[[Any, str], int]:
    def check(value: Any, where: str) -> int:
        result = convert(value, where)
        if result <= 0:
            raise ConfigError(f"{where}: must be more than 0, got {describe_value(value)}")
        return result

    return check


def _unknown_name(where: str, what: str, name: str, known: Sequence[str]) -> ConfigError:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(
        f"{where}: unknown {what} {describe_value(name)}; known {what}s: {', '.join(known)}{hint}"
    )


def _hostport(default_port: int | None) -> Callable[[Any, str], tuple[str, int]]:
    return lambda value, where: parse_hostport(value, where, default_port)


def _path_in(base: Path) -> Callable[[Any, str], Path]:
    return lambda value, where: parse_path(value, where, base)


def _existing(path: Path, where: str, *, directory_ok: bool = False) -> Path:
    if not (path.is_file() or (directory_ok and path.is_dir())):
        raise ConfigError(f"{where}: no such file: {path}")
    return path


# -- reading ----------------------------------------------------------------------------------

# Keys of [[cla]] by type, to tell a misspelt key from one that belongs to another type.
_TCP_KEYS = frozenset({"keepalive", "segment_mru", "transfer_mru", "max_sessions"})
_TCP_KEYS |= {"keep_partial", "reconnect", "reconnect_max"}
_CLA_KEYS: Final = {
    **DEVICE_KEYS,
    "tcpcl": _TCP_KEYS | {"tls"},
    "tcpclv3": _TCP_KEYS,
    "udp": frozenset({"max_bundle_size", "rate"}),
}
_DEFAULT_LISTEN: Final = {"tcpcl": TCPCL_PORT, "tcpclv3": TCPCL_PORT, "udp": UDP_PORT}
# CLAs whose listeners would share a port namespace (TCP or UDP).
_TRANSPORT: Final = {"tcpcl": "tcp", "tcpclv3": "tcp", "udp": "udp"}


class _Reader:
    """Reads one configuration; paths resolve against ``base_dir`` (the file's directory)."""

    def __init__(self, base_dir: Path, source: Path | None) -> None:
        self.base_dir = base_dir
        self.source = source

    def node(self, data: Mapping[str, Any]) -> NodeConfig:
        top = TomlTable(dict(data))
        node_id = top.required("node_id", parse_node_id, 'a node ID such as "dtn://name/"')
        data_dir = top.get("data_dir", _path_in(self.base_dir), self.base_dir)
        log = self.log(top.table("log"))
        store = self.store(top.table("store"), data_dir)
        engine = self.engine(top.table("engine"), node_id)
        api = self.api(top.table("api"), data_dir)
        metrics = self.metrics(top.table("metrics"))
        if top.raw("cla") is None:
            clas: tuple[ClaConfig, ...] = (ClaConfig("tcpcl", "tcpcl", ("", TCPCL_PORT)),)
        else:
            clas = self.clas(top.tables("cla", "cla"))
        peers = self.peers(top.tables("peer", "peer"), clas, node_id)
        routing = self.routing(top.table("routing"), node_id)
        discovery = self.discovery(top.table("discovery"))
        bpsec = read_bpsec(top.table("bpsec"), self.base_dir)
        top.finish()
        return NodeConfig(
            node_id=node_id,
            data_dir=data_dir,
            source=self.source,
            log=log,
            store=store,
            engine=engine,
            api=api,
            metrics=metrics,
            clas=clas,
            peers=peers,
            routing=routing,
            discovery=discovery,
            bpsec=bpsec,
        )

    # -- sections ---------------------------------------------------------------------------

    def log(self, table: TomlTable) -> LogConfig:
        log = LogConfig(
            level=table.get("level", _choice(*LOG_LEVELS), "info"),
            format=table.get("format", _choice(*LOG_FORMATS), "human"),
        )
        table.finish()
        return log

    def store(self, table: TomlTable, data_dir: Path) -> StoreConfig:
        store = StoreConfig(
            path=table.get("path", _path_in(data_dir), data_dir / "store"),
            quota_bytes=table.get("quota", _positive(parse_size), None),
            durable=table.get("fsync", _choice("full", "off"), "full") == "full",
            inline_threshold=table.get("inline_threshold", parse_size, 65536),
        )
        table.finish()
        return store

    def engine(self, table: TomlTable, node_id: str) -> EngineSection:
        duration = _positive(parse_duration_ms)
        engine = EngineSection(
            clock_accurate=table.get("clock_accurate", parse_bool, True),
            status_reports=table.get("status_reports", parse_bool, True),
            custody=table.get("custody", parse_bool, False),
            retry_ms=table.get("retry", duration, 30_000),
            remember=table.get("remember", _at_least(1), 50_000),
            max_bundle_size=table.get("max_bundle_size", _positive(parse_size), None),
            reactive_fragmentation=table.get("reactive_fragmentation", parse_bool, False),
            custody_retransmit_ms=table.get("custody_retransmit", duration, 60_000),
            default_lifetime_ms=table.get("default_lifetime", duration, 86_400_000),
            custody_max_retransmit_ms=table.get("custody_max_retransmit", duration, 3_600_000),
        )
        table.finish()
        if engine.custody_max_retransmit_ms < engine.custody_retransmit_ms:
            raise ConfigError(
                "engine.custody_max_retransmit: must not be shorter than engine.custody_retransmit"
            )
        try:
            engine.engine_config(node_id)  # the engine's own checks, now rather than at start
        except ConfigError as exc:
            raise ConfigError(f"[engine]: {exc}") from None
        return engine

    def api(self, table: TomlTable, data_dir: Path) -> ApiConfig:
        socket_path: Path | None = data_dir / "api.sock"
        value = table.raw("socket")
        if value is False or value == "":
            socket_path = None
        elif value is not None:
            if isinstance(value, bool):
                raise ConfigError("api.socket: expected a path, or false for no socket, got true")
            socket_path = _path_in(data_dir)(value, "api.socket")
        if socket_path is not None and len(os.fsencode(socket_path)) > MAX_SOCKET_PATH:
            raise ConfigError(
                f"api.socket: {socket_path} is longer than the {MAX_SOCKET_PATH} bytes a Unix "
                "socket path may have; set a shorter api.socket"
            )
        token = table.get("token", _string, None)
        token_file = table.get("token_file", _path_in(self.base_dir), None)
        if token is not None and token_file is not None:
            raise ConfigError("api.token_file: set api.token or api.token_file, not both")
        if token_file is not None:
            token = read_text(token_file, "api.token_file", MAX_TOKEN_FILE).strip()
            if not token:
                raise ConfigError(f"api.token_file: {token_file} is empty")
        elif token is not None:
            token = token.strip()
            if not token:
                raise ConfigError("api.token: must not be empty")
        tcp = table.get("tcp", _hostport(None), None)
        if tcp is not None and token is None:
            raise ConfigError(
                "api.tcp: a TCP listener needs a token; set api.token or api.token_file"
            )
        max_payload = table.get("max_payload", _positive(parse_size), 64 << 20)
        table.finish()
        return ApiConfig(socket=socket_path, tcp=tcp, token=token, max_payload=max_payload)

    def metrics(self, table: TomlTable) -> MetricsConfig:
        value = table.raw("listen")
        table.finish()
        if value is None or value is False:
            return MetricsConfig()
        return MetricsConfig(parse_hostport(value, table.where("listen")))

    def clas(self, tables: list[TomlTable]) -> tuple[ClaConfig, ...]:
        clas: list[ClaConfig] = []
        for n, table in enumerate(tables, 1):
            cla = self.cla(table)
            for m, other in enumerate(clas, 1):
                if other.name == cla.name:
                    raise ConfigError(
                        f"[[cla]] {n}: name {cla.name!r} is taken by [[cla]] {m}; give each "
                        "[[cla]] its own name"
                    )
                if _listeners_clash(cla, other):
                    raise ConfigError(
                        f"[[cla]] {n}: listen: port {cla.listen[1] if cla.listen else 0} "
                        f"is already used by [[cla]] {m} ({other.name})"
                    )
            clas.append(cla)
        return tuple(clas)

    def cla(self, table: TomlTable) -> ClaConfig:
        kind = table.required("type", _string, f"one of {', '.join(KNOWN_CLA_TYPES)}")
        if kind in RESERVED_CLA_TYPES:
            raise ConfigError(
                f"{table.where('type')}: cla type {kind!r} is not available in this version"
            )
        if kind not in KNOWN_CLA_TYPES:
            raise _unknown_name(table.where("type"), "cla type", kind, KNOWN_CLA_TYPES)
        name = table.get("name", _string, kind)
        if CLA_NAME.fullmatch(name) is None:
            raise ConfigError(
                f"{table.where('name')}: expected letters, digits, '.', '_' or '-' "
                f"(at most 64), got {describe_value(name)}"
            )
        if kind in DEVICE_CLA_TYPES:
            options = read_device_settings(kind, table, self.base_dir)
            self._reject_other_types_keys(table, kind)
            return ClaConfig(name=name, type=kind, listen=None, options=MappingProxyType(options))
        listen: tuple[str, int] | None = ("", _DEFAULT_LISTEN[kind])
        if (value := table.raw("listen")) is False:
            listen = None
        elif value is not None:
            listen = parse_hostport(value, table.where("listen"), _DEFAULT_LISTEN[kind])
        settings: dict[str, Any] = {}
        if kind == "udp":
            settings["max_bundle_size"] = table.get("max_bundle_size", _datagram_size, None)
            settings["rate_bytes_per_s"] = table.get("rate", parse_rate, None)
        else:
            keepalive_ms = table.get("keepalive", parse_duration_ms, 60_000)
            if keepalive_ms % 1000 or keepalive_ms > 65_535_000:
                # TCPCL sends the interval as a 16-bit count of seconds (0: no keepalives).
                raise ConfigError(f"{table.where('keepalive')}: must be whole seconds, 0s..65535s")
            settings["keepalive_s"] = keepalive_ms // 1000
            for key in ("segment_mru", "transfer_mru"):
                settings[key] = table.get(key, _positive(parse_size), None)
            settings["max_sessions"] = table.get("max_sessions", _at_least(1), 256)
            settings["keep_partial"] = table.get("keep_partial", parse_bool, False)
            first = table.get("reconnect", _positive(parse_duration_ms), 1_000)
            most = table.get("reconnect_max", _positive(parse_duration_ms), max(first, 60_000))
            if most < first:
                raise ConfigError(
                    f"{table.where('reconnect_max')}: must not be shorter than reconnect"
                )
            settings["reconnect_ms"], settings["reconnect_max_ms"] = first, most
            if kind == "tcpcl" and table.raw("tls") is not None:
                settings["tls"] = self.tls(table.table("tls", f"[cla.tls] of {table.title}"))
        self._reject_other_types_keys(table, kind)
        return ClaConfig(name=name, type=kind, listen=listen, **settings)

    @staticmethod
    def _reject_other_types_keys(table: TomlTable, kind: str) -> None:
        for key in table.unknown():
            if any(key in keys for keys in _CLA_KEYS.values()):
                raise ConfigError(f"{table.where(key)}: not a setting of cla type {kind!r}")
        table.finish()

    def tls(self, table: TomlTable) -> TlsSection:
        path = _path_in(self.base_dir)
        cert = table.get("cert", path, None)
        key = table.get("key", path, None)
        ca = table.get("ca", path, None)
        require = table.get("require", parse_bool, False)
        table.finish()
        if key is not None and cert is None:
            raise ConfigError(f"{table.where('key')}: a key needs its certificate (cert)")
        for name, file in (("cert", cert), ("key", key), ("ca", ca)):
            if file is not None:
                _existing(file, table.where(name), directory_ok=name == "ca")
        return TlsSection(cert=cert, key=key, ca=ca, require=require)

    def peers(
        self, tables: list[TomlTable], clas: tuple[ClaConfig, ...], node_id: str
    ) -> tuple[PeerConfig, ...]:
        by_name = {cla.name: cla for cla in clas}
        names = ", ".join(by_name) or "none"
        peers: list[PeerConfig] = []
        for n, table in enumerate(tables, 1):
            peer_id = table.required("node_id", parse_node_id, "the neighbour's node ID")
            if peer_id == node_id:
                raise ConfigError(f"[[peer]] {n}: node_id: that is this node's own ID")
            name = table.get("cla", _string, None)
            if name is None:
                if len(clas) != 1:
                    raise ConfigError(
                        f"[[peer]] {n}: 'cla' is missing; set it to the name of a [[cla]] "
                        f"entry (known: {names})"
                    )
                name = clas[0].name
            if name not in by_name:
                raise ConfigError(
                    f"[[peer]] {n}: 'cla' names no [[cla]] entry ({name!r}); known: {names}"
                )
            address = ""  # a serial line, a modem or a mule reaches its one neighbour
            if by_name[name].type not in DEVICE_CLA_TYPES:
                port = _DEFAULT_LISTEN[by_name[name].type]
                host, port = table.required("address", _hostport(port), '"host:port"')
                if not host:
                    raise ConfigError(
                        f"[[peer]] {n}: address: needs a host, as in 192.0.2.1:{port}"
                    )
                address = format_hostport(host, port)
            table.finish()
            peer = PeerConfig(node_id=peer_id, cla=name, address=address)
            if peer in peers:
                raise ConfigError(f"[[peer]] {n}: repeats [[peer]] {peers.index(peer) + 1}")
            peers.append(peer)
        return tuple(peers)

    def routing(self, table: TomlTable, node_id: str) -> RoutingConfig:
        names = default_registry.names()
        router = table.get("router", _string, "static")
        if router not in names:
            raise _unknown_name("routing.router", "router", router, names)
        routes = []
        for route in table.tables("route", "routing.route"):
            routes.append(
                RouteConfig(
                    destination=route.required("destination", _pattern, '"dtn://node/*"'),
                    via=route.required("via", parse_node_id, "the next hop's node ID"),
                )
            )
            route.finish()
        default = table.get("default", parse_node_id, None)
        contact_plan = table.get("contact_plan", _path_in(self.base_dir), None)
        if contact_plan is not None:
            _existing(contact_plan, "routing.contact_plan")
        params = {key: table.data[key] for key in table.unknown()}
        config = RoutingConfig(
            router=router,
            routes=tuple(routes),
            default=default,
            contact_plan=contact_plan,
            params=MappingProxyType(params),
        )
        _check_router(config, node_id, table.asked)
        return config

    def discovery(self, table: TomlTable) -> DiscoverySection:
        listen = table.get("listen", _hostport(DISCOVERY_PORT), ("", DISCOVERY_PORT))
        # As the discovery driver does: a destination without a port gets ours.
        port = listen[1] or DISCOVERY_PORT
        destinations = []
        for n, value in enumerate(table.get("destinations", _array, []), 1):
            where = f"discovery.destinations[{n}]"
            host, dest_port = parse_hostport(value, where, port)
            if not host:
                raise ConfigError(f"{where}: needs a host, as in 192.0.2.255:{port}")
            destinations.append(format_hostport(host, dest_port))
        section = DiscoverySection(
            enabled=table.get("enabled", parse_bool, False),
            period_ms=table.get("period", _positive(parse_duration_ms), 10_000),
            listen=listen,
            destinations=tuple(destinations),
            multicast=table.get("multicast", parse_bool, True),
        )
        table.finish()
        return section


def _array(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected an array, got {describe_value(value)}")
    return value


def _datagram_size(value: Any, where: str) -> int:
    size = parse_size(value, where)
    if not 1 <= size <= IPV6_MAX_PAYLOAD:
        raise ConfigError(f"{where}: a datagram carries 1..{IPV6_MAX_PAYLOAD} bytes, got {size}")
    return size


def _pattern(value: Any, where: str) -> str:
    # The full check of a pattern is the static router's, run when the router is built.
    text = _string(value, where).strip()
    if not text:
        raise ConfigError(f"{where}: expected a pattern such as dtn://node/*, got ''")
    return text


def _listeners_clash(a: ClaConfig, b: ClaConfig) -> bool:
    if a.listen is None or b.listen is None or _TRANSPORT[a.type] != _TRANSPORT[b.type]:
        return False
    (host_a, port_a), (host_b, port_b) = a.listen, b.listen
    # Port 0 asks for a free port; "" (every interface) overlaps any address on the port.
    return port_a == port_b != 0 and (host_a == host_b or not host_a or not host_b)


def _router_settings(cls: type) -> set[str]:
    """The keyword settings a router class takes, gathered up its ``__init__`` chain."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        try:
            parameters = list(inspect.signature(init).parameters.values())[1:]
        except (TypeError, ValueError):  # no signature to read (a C-level __init__)
            continue
        for parameter in parameters:
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                names.add(parameter.name)
    return names - {"node_id", "rng"}


def _check_router(config: RoutingConfig, node_id: str, own_keys: Iterable[str]) -> None:
    """Build the router once, so that its settings fail now with the key named."""
    name = config.router
    settings = _router_settings(default_registry.get(name))
    if config.routes and "routes" not in settings:
        raise ConfigError(f"[[routing.route]]: router {name!r} does not take routes")
    for key, given in (("default", config.default), ("contact_plan", config.contact_plan)):
        if given is not None and key not in settings:
            raise ConfigError(f"routing.{key}: not a setting of router {name!r}")
    # [[routing.route]], default and contact_plan have keys of their own in [routing].
    spelt_otherwise = {"routes", "default", "contact_plan"}
    for key in config.params:
        if key not in settings or key in spelt_otherwise:
            known = (settings - spelt_otherwise) | set(own_keys)
            raise unknown_key(key, f"in [routing] (router {name!r})", known)
    params = config.router_params()
    try:
        default_registry.create(name, node_id=node_id, params=params)
    except ConfigError as exc:
        raise ConfigError(f"[routing]: {exc}") from None
