"""The commented ``dtncloud.toml`` that ``dtncloud init`` writes.

:func:`render_template` is the embedded default configuration written out: read back with
:func:`~dtncloud.daemon.config.parse_config` it gives exactly
:func:`~dtncloud.daemon.config.default_config`. Every section is present; a line
``# key = value`` shows a setting's default (uncommenting it changes nothing), and settings
that are off by default are described with an example. The values shown come from the
configuration's own defaults, so the file cannot drift from them.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

from dtncloud.bpv7 import DEFAULT_MAX_BUNDLE_SIZE
from dtncloud.daemon.config import (
    CONFIG_FILE_NAME,
    DISCOVERY_PORT,
    KNOWN_CLA_TYPES,
    ApiConfig,
    ClaConfig,
    DiscoverySection,
    EngineSection,
    LogConfig,
    StoreConfig,
    parse_config,
)
from dtncloud.daemon.units import format_duration_ms, format_rate, format_size, parse_size
from dtncloud.errors import ConfigError
from dtncloud.routing import default_registry
from dtncloud.tcpcl.codes import DEFAULT_PORT as TCPCL_PORT
from dtncloud.tcpcl.config import DEFAULT_SEGMENT_MRU, DEFAULT_TRANSFER_MRU
from dtncloud.udpcl import DEFAULT_RATE_BYTES_PER_S, IPV4_MAX_PAYLOAD

__all__ = ["render_template", "write_node_directory"]


def _quote(text: str) -> str:
    # A JSON string is a valid TOML basic string (same escapes), for any text.
    return json.dumps(text, ensure_ascii=False)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _size_text(n: int) -> str:
    # format_size rounds to two decimals; a size it cannot show exactly is shown in bytes.
    text = format_size(n)
    if parse_size(text, "template") == n:
        return text
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} bytes"


def _size(n: int) -> str:
    return _quote(_size_text(n))


def _duration(ms: int) -> str:
    return _quote(format_duration_ms(ms))


def render_template(node_id: str, data_dir: Path | None = None) -> str:
    """The default configuration of node ``node_id`` as commented TOML.

    ``data_dir`` None writes ``data_dir = "."``: the directory of the file itself, so that
    the node directory can be moved.
    """
    log = LogConfig()
    store = StoreConfig(path=Path("store"))
    engine = EngineSection()
    api = ApiConfig(socket=None)
    tcp = ClaConfig(name="tcpcl", type="tcpcl", listen=None)
    discovery = DiscoverySection()
    routers = ", ".join(default_registry.names())
    return f"""\
# dtncloud node configuration, read by `dtnd -c THIS_FILE`.
#
# A line "# key = value" shows a setting's default: uncomment it and change the value.
# Sizes take units ("512MiB", "10MB"), durations too ("500ms", "30s", "5m", "1h30m", "2d"),
# rates bits or bytes per second ("10Mbit/s", "1MB/s").
# Relative paths: data_dir is relative to this file's directory; store.path and api.socket
# to data_dir; api.token_file, routing.contact_plan and TLS files to this file's directory.

# This node's ID: dtn://NAME/ or ipn:NUMBER.0.
node_id = {_quote(node_id)}

# Where the node keeps its bundle store and API socket.
data_dir = {_quote("." if data_dir is None else str(data_dir))}

[log]
# How much to log: debug, info, warning or error.
# level = {_quote(log.level)}
# "human" for readable lines, "json" for one JSON object per line.
# format = {_quote(log.format)}

[store]
# The bundle store: a SQLite database, with large payloads as files beside it.
# path = {_quote(str(store.path))}
# "full" syncs each bundle to disk before it is acknowledged to the previous hop; "off" is
# faster, but a power cut can lose bundles the previous hop has already let go.
# fsync = {_quote("full" if store.durable else "off")}
# Payloads up to this size are kept inside the database, larger ones in files.
# inline_threshold = {_size(store.inline_threshold)}
# The most the stored bundles may take; beyond it new bundles are refused. Default: no
# limit. Example: quota = "10GiB"

[engine]
# Whether this node's clock is synchronised; false stamps bundles with creation time 0 and
# a bundle age block instead.
# clock_accurate = {_bool(engine.clock_accurate)}
# Send the status reports that bundles ask for.
# status_reports = {_bool(engine.status_reports)}
# Send bundles to neighbours under custody transfer (BIBE), retransmitting until a custody
# signal arrives: first after custody_retransmit, then backing off up to
# custody_max_retransmit.
# custody = {_bool(engine.custody)}
# custody_retransmit = {_duration(engine.custody_retransmit_ms)}
# custody_max_retransmit = {_duration(engine.custody_max_retransmit_ms)}
# How long a bundle whose transmission failed waits before it is routed again.
# retry = {_duration(engine.retry_ms)}
# How many bundle IDs are remembered after bundles leave, to recognise duplicates.
# remember = {engine.remember}
# After a transfer broke part-way, send only what the peer did not acknowledge. Only for
# networks where every neighbour keeps partial transfers (dtncloud nodes do).
# reactive_fragmentation = {_bool(engine.reactive_fragmentation)}
# The lifetime of bundles applications send without one.
# default_lifetime = {_duration(engine.default_lifetime_ms)}
# The largest bundle accepted. Default: {_size_text(DEFAULT_MAX_BUNDLE_SIZE)}.
# Example: max_bundle_size = "16MiB"

[api]
# The Unix socket applications connect to; false for none.
# socket = "api.sock"
# The largest payload an application may send or receive in one message.
# max_payload = {_size(api.max_payload)}
# The API over TCP as well, for applications on other hosts. It needs a token, given
# inline (token = "...") or read from token_file. Default: no TCP listener. Example:
#   tcp = "127.0.0.1:4243"
#   token_file = "api.token"

[metrics]
# Serve Prometheus metrics over HTTP at this address. Default: no metrics endpoint.
# Example: listen = "127.0.0.1:9556"

# Convergence layers, one [[cla]] table each; types: {", ".join(KNOWN_CLA_TYPES)}.
# With no [[cla]] at all the node gets this TCPCL; `cla = []` gives it none.
[[cla]]
type = "tcpcl"
# Listen on every interface (":PORT"), one address ("192.0.2.1:{TCPCL_PORT}"), or not at all
# (false: connect out only).
listen = ":{TCPCL_PORT}"
# The name peers use to refer to this convergence layer; needed when two share a type.
# name = {_quote(tcp.name)}
# How often an idle session is checked with a keepalive (whole seconds; 0s: never).
# keepalive = {_duration(tcp.keepalive_s * 1000)}
# Sessions beyond this number are turned away.
# max_sessions = {tcp.max_sessions}
# Hand the engine what a broken incoming transfer delivered, for reactive_fragmentation.
# keep_partial = {_bool(tcp.keep_partial)}
# The largest segment and the largest transfer (bundle) accepted from peers. Default:
# {_size_text(DEFAULT_SEGMENT_MRU)} and {_size_text(DEFAULT_TRANSFER_MRU)}. Example:
#   segment_mru = "4MiB"
#   transfer_mru = "1GiB"
# TLS for this TCPCL (PEM files; ca is a file or a directory of trusted certificates;
# require refuses peers without TLS). Default: no TLS.
# [cla.tls]
# cert = "node.crt"
# key = "node.key"
# ca = "ca.crt"
# require = false

# A UDP convergence layer: one bundle per datagram. It sends at most `rate` (default
# {format_rate(DEFAULT_RATE_BYTES_PER_S)}; 0 for no limit) and bundles up to max_bundle_size
# (default {_size_text(IPV4_MAX_PAYLOAD)}, the most an IPv4 datagram carries).
# [[cla]]
# type = "udp"
# listen = ":4556"
# rate = "10Mbit/s"

# Neighbours: a node ID, the [[cla]] (by name) that reaches it, and its address. Default:
# none.
# [[peer]]
# node_id = "dtn://neighbour/"
# cla = "tcpcl"
# address = "192.0.2.10:{TCPCL_PORT}"

[routing]
# The router: {routers}.
router = "static"
# The static router's next hop for bundles no route matches. Default: none (they are
# dropped). Example: default = "dtn://gateway/"
# cgr plans over a contact plan file (ION or JSON form). Example:
#   contact_plan = "contacts.txt"
# Other keys here are settings of the router (such as copies = 8 for spray_and_wait).
# Static routes: bundles whose destination matches go to the neighbour `via`.
# [[routing.route]]
# destination = "dtn://cloud/*"
# via = "dtn://cloud/"

[discovery]
# Announce this node with IPND beacons and find neighbours that do.
# enabled = {_bool(discovery.enabled)}
# Time between beacons.
# period = {_duration(discovery.period_ms)}
# Where beacons are received (a port without a host: every interface).
# listen = ":{DISCOVERY_PORT}"
# Send beacons to the default multicast group (224.0.0.26, ff02::300).
# multicast = {_bool(discovery.multicast)}
# Send beacons to these addresses too (unicast or broadcast; host[:port]).
# destinations = []

[bpsec]
# Bundle Protocol Security with keys shared across a fleet. Default: none. Each key is a
# file (relative to this file, private: chmod 600) holding it in hex, e.g. made with
# `openssl rand -hex 32`. Example:
#   keys = {{ fleet = "keys/fleet.key" }}
# Sign (BIB-HMAC-SHA2) and/or encrypt the payload (BCB-AES-GCM) of every bundle sent by
# this node's applications, with the named key; applications may choose per bundle.
#   sign = "fleet"
#   encrypt = "fleet"
# Verify and decrypt bundles before they are delivered here; a bundle that fails is
# deleted, never delivered. With require, unprotected bundles are refused too.
#   accept = "fleet"
#   require = false
"""


def write_node_directory(directory: Path, node_id: str, *, force: bool = False) -> Path:
    """Create a node directory with a default ``dtncloud.toml`` for ``node_id``.

    The directory is created with mode 0o700 (the store and API socket will live in it) if
    it does not exist. An existing configuration file is only replaced when ``force`` is
    true. Returns the absolute path of the configuration file. Raises
    :class:`~dtncloud.errors.ConfigError` (one line) for a bad node ID, an existing file or
    an OS error.
    """
    directory = Path(os.path.abspath(directory))
    file = directory / CONFIG_FILE_NAME
    text = render_template(node_id)
    # Check before anything is created: a bad node ID must not leave an empty directory.
    parse_config(tomllib.loads(text), source=file, base_dir=directory, label=str(file))
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{directory}: cannot create the directory: {exc.strerror}") from None
    try:
        if force:
            partial = file.with_name(f".{CONFIG_FILE_NAME}.tmp")
            partial.write_text(text, encoding="utf-8")
            # Replaced in one step, so that a crash leaves the old file or the new one.
            os.replace(partial, file)
        else:
            # "x" creates the file only if it is not there, in one step (no check-then-write).
            with file.open("x", encoding="utf-8") as stream:
                stream.write(text)
    except FileExistsError:
        raise ConfigError(f"{file}: already exists; not overwriting it without force") from None
    except OSError as exc:
        target = exc.filename or directory
        raise ConfigError(f"{target}: cannot write the configuration: {exc.strerror}") from None
    return file
