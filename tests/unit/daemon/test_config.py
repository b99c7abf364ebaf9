"""Reading and checking dtncloud.toml."""

from __future__ import annotations

import dataclasses
import os
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dtncloud.daemon import config as config_module
from dtncloud.daemon.config import (
    CONFIG_FILE_NAME,
    ClaConfig,
    NodeConfig,
    PeerConfig,
    RouteConfig,
    TlsSection,
    default_config,
    load_config,
    node_id_from_hostname,
    parse_config,
)
from dtncloud.errors import ConfigError
from dtncloud.routing import default_registry

EXAMPLE = """\
node_id = "dtn://relay/"            # or "ipn:2.0"
data_dir = "/var/lib/dtncloud"      # relative paths are relative to this file
[api]
socket = "/var/lib/dtncloud/api.sock"
[[cla]]
type = "tcpcl"                      # tcpcl, tcpclv3, udp, sbd, serial, mule, ...
listen = "127.0.0.1:4556"
[[peer]]                            # a neighbour reached through a convergence layer
node_id = "dtn://cloud/"
cla = "tcpcl"
address = "127.0.0.1:4557"
[routing]
router = "static"                   # static, cgr, epidemic, prophet, spray_and_wait, direct, first_contact
[[routing.route]]
destination = "dtn://cloud/*"
via = "dtn://cloud/"
"""

NODE = 'node_id = "dtn://relay/"\n'


def write(directory: Path, text: str, name: str = CONFIG_FILE_NAME) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(directory: Path, text: str) -> NodeConfig:
    return load_config(write(directory, text))


def error(directory: Path, text: str) -> str:
    """The message of loading ``text``, after checking that it is one line naming the file."""
    path = write(directory, text)
    with pytest.raises(ConfigError) as info:
        # Relative, so that messages name the file as in the examples: "dtncloud.toml: ..."
        load_config(os.path.relpath(path))
    message = str(info.value)
    assert "\n" not in message
    prefix = os.path.relpath(path) + ": "
    assert message.startswith(prefix)
    return message[len(prefix) :]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


# -- the example from the issue --------------------------------------------------------------


def test_the_documented_example_is_accepted_as_written(tmp_path: Path) -> None:
    config = load(tmp_path, EXAMPLE)
    data_dir = Path("/var/lib/dtncloud")
    assert config.node_id == "dtn://relay/"
    assert config.data_dir == data_dir
    assert config.source == tmp_path / CONFIG_FILE_NAME
    assert config.api.socket == data_dir / "api.sock"
    assert config.store.path == data_dir / "store"
    assert config.clas == (ClaConfig(name="tcpcl", type="tcpcl", listen=("127.0.0.1", 4556)),)
    assert config.peers == (
        PeerConfig(node_id="dtn://cloud/", cla="tcpcl", address="127.0.0.1:4557"),
    )
    assert config.routing.router == "static"
    assert config.routing.routes == (RouteConfig("dtn://cloud/*", "dtn://cloud/"),)
    assert config.routing.router_params() == {"routes": [("dtn://cloud/*", "dtn://cloud/")]}


# -- defaults ---------------------------------------------------------------------------------


def test_default_config(tmp_path: Path) -> None:
    config = default_config(tmp_path, "ipn:7.0")
    assert config.node_id == "ipn:7.0"
    assert config.data_dir == tmp_path
    assert config.source is None
    assert config.store.path == tmp_path / "store"
    assert config.store.durable and config.store.quota_bytes is None
    assert config.api.socket == tmp_path / "api.sock"
    assert config.api.tcp is None and config.api.token is None
    assert config.metrics.listen is None
    assert config.clas == (ClaConfig(name="tcpcl", type="tcpcl", listen=("", 4556)),)
    assert config.peers == ()
    assert config.routing.router == "static" and config.routing.routes == ()
    assert not config.discovery.enabled


def test_a_file_with_only_a_node_id_is_the_default(tmp_path: Path) -> None:
    config = load(tmp_path, NODE)
    assert dataclasses.replace(config, source=None) == default_config(tmp_path, "dtn://relay/")


def test_the_default_node_id_comes_from_the_host_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config_module.socket, "gethostname", lambda: "Field-Unit_7.Example")
    assert default_config(tmp_path).node_id == "dtn://field-unit_7.example/"


@pytest.mark.parametrize(
    ("hostname", "node_id"),
    [
        ("relay", "dtn://relay/"),
        ("RELAY", "dtn://relay/"),
        ("my host (2)", "dtn://my-host-2/"),
        ("näs", "dtn://n-s/"),
        ("", "dtn://localhost/"),
        ("---", "dtn://localhost/"),
    ],
)
def test_node_id_from_hostname(hostname: str, node_id: str) -> None:
    assert node_id_from_hostname(hostname) == node_id


def test_configurations_are_frozen_and_params_read_only(tmp_path: Path) -> None:
    config = load(tmp_path, NODE + '[routing]\nrouter = "spray_and_wait"\ncopies = 4\n')
    assert dict(config.routing.params) == {"copies": 4}
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.node_id = "dtn://other/"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.routing.params["copies"] = 2  # type: ignore[index]
    hash(config)  # usable as a key, params or not


# -- every section ----------------------------------------------------------------------------


def test_every_section_is_read(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("  s3cret\n")
    (tmp_path / "node.crt").write_text("cert")
    (tmp_path / "node.key").write_text("key")
    (tmp_path / "cas").mkdir()
    config = load(
        tmp_path,
        """\
        node_id = "IPN:2.0"
        data_dir = "data"
        [log]
        level = "DEBUG"
        format = "json"
        [store]
        path = "bundles"
        quota = "10GiB"
        fsync = "off"
        inline_threshold = "4 KiB"
        [engine]
        clock_accurate = false
        status_reports = false
        custody = true
        retry = "10s"
        remember = 100
        max_bundle_size = "16MiB"
        reactive_fragmentation = true
        custody_retransmit = "2m"
        custody_max_retransmit = "2h"
        default_lifetime = "1w"
        [api]
        socket = "/run/dtn.sock"
        tcp = "[::1]:4243"
        token_file = "secret"
        max_payload = "1MiB"
        [metrics]
        listen = "127.0.0.1:9556"
        [[cla]]
        type = "tcpcl"
        name = "tcp-secure"
        listen = false
        keepalive = "30s"
        segment_mru = "4MiB"
        transfer_mru = "1GB"
        max_sessions = 8
        keep_partial = true
        [cla.tls]
        cert = "node.crt"
        key = "node.key"
        ca = "cas"
        require = true
        [[cla]]
        type = "udp"
        listen = "0.0.0.0"
        max_bundle_size = "60000"
        rate = "128kbit/s"
        [[cla]]
        type = "tcpclv3"
        listen = "[::]:4557"
        [[peer]]
        node_id = "ipn:3.0"
        cla = "udp"
        address = "192.0.2.1"
        [[peer]]
        node_id = "dtn://cloud/"
        cla = "tcp-secure"
        address = "[2001:db8::1]:4556"
        [routing]
        router = "static"
        default = "ipn:3.0"
        [[routing.route]]
        destination = "ipn:4.*"
        via = "ipn:3.0"
        [discovery]
        enabled = true
        period = "30s"
        listen = ":4000"
        destinations = ["192.0.2.255", "[ff02::1]:3003"]
        multicast = false
        """,
    )
    data = tmp_path / "data"
    assert config.node_id == "ipn:2.0"
    assert config.data_dir == data
    assert config.log == config_module.LogConfig(level="debug", format="json")
    assert config.store == config_module.StoreConfig(
        path=data / "bundles", quota_bytes=10 * 1024**3, durable=False, inline_threshold=4096
    )
    assert config.engine == config_module.EngineSection(
        clock_accurate=False,
        status_reports=False,
        custody=True,
        retry_ms=10_000,
        remember=100,
        max_bundle_size=16 * 1024**2,
        reactive_fragmentation=True,
        custody_retransmit_ms=120_000,
        default_lifetime_ms=604_800_000,
        custody_max_retransmit_ms=7_200_000,
    )
    assert config.api == config_module.ApiConfig(
        socket=Path("/run/dtn.sock"), tcp=("::1", 4243), token="s3cret", max_payload=1024**2
    )
    assert config.metrics.listen == ("127.0.0.1", 9556)
    tls = TlsSection(
        cert=tmp_path / "node.crt", key=tmp_path / "node.key", ca=tmp_path / "cas", require=True
    )
    assert config.clas == (
        ClaConfig(
            name="tcp-secure",
            type="tcpcl",
            listen=None,
            keepalive_s=30,
            segment_mru=4 * 1024**2,
            transfer_mru=10**9,
            max_sessions=8,
            keep_partial=True,
            tls=tls,
        ),
        ClaConfig(
            name="udp",
            type="udp",
            listen=("0.0.0.0", 4556),
            max_bundle_size=60_000,
            rate_bytes_per_s=16_000,
        ),
        ClaConfig(name="tcpclv3", type="tcpclv3", listen=("::", 4557)),
    )
    assert config.peers == (
        PeerConfig("ipn:3.0", "udp", "192.0.2.1:4556"),
        PeerConfig("dtn://cloud/", "tcp-secure", "[2001:db8::1]:4556"),
    )
    assert config.routing.default == "ipn:3.0"
    assert config.routing.routes == (RouteConfig("ipn:4.*", "ipn:3.0"),)
    assert config.discovery == config_module.DiscoverySection(
        enabled=True,
        period_ms=30_000,
        listen=("", 4000),
        destinations=("192.0.2.255:4000", "[ff02::1]:3003"),
        multicast=False,
    )
    engine = config.engine.engine_config(config.node_id)
    assert engine.max_bundle_size == 16 * 1024**2
    assert engine.custody_max_retransmit_ms == 7_200_000


def test_a_peer_may_leave_out_the_only_cla(tmp_path: Path) -> None:
    config = load(tmp_path, NODE + '[[peer]]\nnode_id = "dtn://b/"\naddress = "b.example"\n')
    assert config.peers == (PeerConfig("dtn://b/", "tcpcl", "b.example:4556"),)


def test_cla_empty_list_means_no_convergence_layer(tmp_path: Path) -> None:
    assert load(tmp_path, NODE + "cla = []\n").clas == ()


@pytest.mark.parametrize("value", ["false", '""'])
def test_the_api_socket_can_be_switched_off(tmp_path: Path, value: str) -> None:
    assert load(tmp_path, NODE + f"[api]\nsocket = {value}\n").api.socket is None


def test_api_token_is_stripped(tmp_path: Path) -> None:
    config = load(tmp_path, NODE + '[api]\ntcp = ":4243"\ntoken = " abc "\n')
    assert config.api.token == "abc"
    assert config.api.tcp == ("", 4243)


def test_router_settings_and_a_contact_plan(tmp_path: Path) -> None:
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "contacts.txt").write_text(
        "@ 2024/05/01-12:00:00\na contact +0 +3600 2 3 100000\n"
    )
    config = load(
        tmp_path,
        NODE.replace("dtn://relay/", "ipn:2.0")
        + '[routing]\nrouter = "cgr"\ncontact_plan = "plans/contacts.txt"\nmax_routes = 2\n',
    )
    assert config.routing.contact_plan == tmp_path / "plans" / "contacts.txt"
    assert dict(config.routing.params) == {"max_routes": 2}
    params = config.routing.router_params()
    router = default_registry.create("cgr", node_id="ipn:2.0", params=params)
    assert len(router.plan.contacts) == 1  # type: ignore[attr-defined]


def test_a_json_contact_plan_goes_to_the_router_decoded(tmp_path: Path) -> None:
    (tmp_path / "plan.json").write_text('{"contacts":[]}')
    config = load(tmp_path, NODE + '[routing]\nrouter = "cgr"\ncontact_plan = "plan.json"\n')
    assert config.routing.router_params() == {"contact_plan": {"contacts": []}}


# -- relative paths ---------------------------------------------------------------------------


def test_relative_paths(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "token").write_text("t")
    (etc / "plan.txt").write_text("a contact 2024/05/01-12:00:00 2024/05/01-13:00:00 1 2 1\n")
    (etc / "tls").mkdir()
    (etc / "tls" / "ca.pem").write_text("ca")
    write(
        etc,
        """\
        node_id = "ipn:1.0"
        data_dir = "../var/node"
        [store]
        path = "db"
        [api]
        socket = "run/api.sock"
        token_file = "token"
        [[cla]]
        type = "tcpcl"
        [cla.tls]
        ca = "tls/ca.pem"
        [routing]
        router = "cgr"
        contact_plan = "plan.txt"
        """,
    )
    config = load_config(etc)  # a directory means its dtncloud.toml
    data = tmp_path / "var" / "node"
    # What the daemon creates lives under data_dir...
    assert config.data_dir == data
    assert config.store.path == data / "db"
    assert config.api.socket == data / "run" / "api.sock"
    # ...what the operator provides is found next to the configuration file.
    assert config.api.token == "t"
    assert config.routing.contact_plan == etc / "plan.txt"
    assert config.clas[0].tls == TlsSection(ca=etc / "tls" / "ca.pem")


def test_home_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = load(tmp_path, NODE + 'data_dir = "~/dtn"\n')
    assert config.data_dir == tmp_path / "home" / "dtn"


def test_parse_config_takes_a_relative_base_dir(tmp_path: Path) -> None:
    config = parse_config({"node_id": "ipn:1.0"}, source=None, base_dir=Path("."))
    assert config.data_dir == tmp_path


# -- reading the file -------------------------------------------------------------------------


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^nowhere\.toml: no such file$"):
        load_config("nowhere.toml")


def test_a_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    write(tmp_path, NODE + "[store\n")
    with pytest.raises(ConfigError) as info:
        load_config(CONFIG_FILE_NAME)
    assert str(info.value).startswith("dtncloud.toml: TOML syntax error: ")
    assert "line 2" in str(info.value)


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE_NAME).write_bytes(b'node_id = "dtn://\xff/"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(CONFIG_FILE_NAME)


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE_NAME).write_bytes(b"\xef\xbb\xbf" + NODE.encode())
    assert load_config(CONFIG_FILE_NAME).node_id == "dtn://relay/"


def test_a_huge_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE_NAME).write_bytes(b"#" * (2 << 20))
    with pytest.raises(ConfigError, match="larger than 1 MiB"):
        load_config(CONFIG_FILE_NAME)


def test_an_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    with pytest.raises(ConfigError, match=r"^sub/x/dtncloud\.toml: "):
        load_config("sub/x/dtncloud.toml")


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", """node_id: missing; set it to a node ID such as "dtn://name/\""""),
        (
            'node_id = "dtn://relay/app"',
            "node_id: 'dtn://relay/app' is not a node ID (such as dtn://name/ or ipn:7.0)",
        ),
        (
            'node_id = "relay"',
            "node_id: 'relay' is not an endpoint ID: no scheme (expected dtn: or ipn:)",
        ),
        ("node_id = 7", "node_id: expected a node ID such as dtn://name/ or ipn:7.0, got 7"),
        (
            'node_id = "dtn:none"',
            "node_id: 'dtn:none' is not a node ID (such as dtn://name/ or ipn:7.0)",
        ),
        (NODE + 'nodeid = "x"', "unknown key 'nodeid' at the top level; did you mean 'node_id'?"),
        (NODE + "[stroe]", "unknown key 'stroe' at the top level; did you mean 'store'?"),
        (NODE + "store = 5", "store: expected a table, got 5"),
        (
            NODE + "[log]\nlevel = 'loud'",
            "log.level: expected one of debug, info, warning, error, got 'loud'",
        ),
        (NODE + "[log]\nlevel = 1", "log.level: expected a string, got 1"),
        (
            NODE + "[store]\nquota = 'lots'",
            "store.quota: expected a size such as 512MiB, got 'lots'",
        ),
        (NODE + "[store]\nquota = 0", "store.quota: must be more than 0, got 0"),
        (NODE + "[store]\nfsync = true", "store.fsync: expected a string, got true"),
        (
            NODE + "[store]\nfsync = 'sometimes'",
            "store.fsync: expected one of full, off, got 'sometimes'",
        ),
        (NODE + "[store]\npath = ''", "store.path: expected a path, got ''"),
        (NODE + "[engine]\ncustody = 'yes'", "engine.custody: expected true or false, got 'yes'"),
        (NODE + "[engine]\nretry = '0s'", "engine.retry: must be more than 0, got '0s'"),
        (
            NODE + "[engine]\nretry_ms = 5",
            "unknown key 'retry_ms' in [engine]; did you mean 'retry'?",
        ),
        (NODE + "[engine]\nremember = true", "engine.remember: expected an integer, got true"),
        (
            NODE + "[engine]\ncustody_retransmit = '2h'",
            "engine.custody_max_retransmit: must not be shorter than engine.custody_retransmit",
        ),
        (
            NODE + "[api]\ntcp = ':4243'",
            "api.tcp: a TCP listener needs a token; set api.token or api.token_file",
        ),
        (
            NODE + "[api]\ntcp = '4243'",
            "api.tcp: '4243' has no host; write :4243 for every interface",
        ),
        (
            NODE + "[api]\ntoken = 'a'\ntoken_file = 'f'",
            "api.token_file: set api.token or api.token_file, not both",
        ),
        (NODE + "[api]\ntoken = '  '", "api.token: must not be empty"),
        (
            NODE + "[api]\nsocket = true",
            "api.socket: expected a path, or false for no socket, got true",
        ),
        (
            NODE + "[metrics]\nlisten = 9556",
            "metrics.listen: expected an address such as 127.0.0.1:4556, got 9556",
        ),
        (
            NODE + "[[cla]]\nlisten = ':1'",
            "[[cla]] 1: type: missing; set it to one of tcpcl, tcpclv3, udp, serial, sbd, mule",
        ),
        (
            NODE + "[[cla]]\ntype = 'sbd'",
            '[[cla]] 1: device: missing; set it to "/dev/ttyUSB0"',
        ),
        (
            NODE + "[[cla]]\ntype = 'udpcl'",
            "[[cla]] 1: type: unknown cla type 'udpcl'; known cla types: tcpcl, tcpclv3, udp, "
            "serial, sbd, mule; "
            "did you mean 'udp'?",
        ),
        (
            NODE + "[[cla]]\ntype = 'tcpcl'\nlisen = ':1'",
            "unknown key 'lisen' in [[cla]] 1; did you mean 'listen'?",
        ),
        (
            NODE + "[[cla]]\ntype = 'tcpcl'\nrate = '1MB/s'",
            "[[cla]] 1: rate: not a setting of cla type 'tcpcl'",
        ),
        (
            NODE + "[[cla]]\ntype = 'tcpclv3'\n[cla.tls]\nrequire = true",
            "[[cla]] 1: tls: not a setting of cla type 'tcpclv3'",
        ),
        (
            NODE + "[[cla]]\ntype = 'udp'\ntls = {}",
            "[[cla]] 1: tls: not a setting of cla type 'udp'",
        ),
        (
            NODE + "[[cla]]\ntype = 'tcpcl'\n[cla.tls]\ncert = 'missing.pem'",
            "[[cla]] 1: tls.cert: no such file: {tmp}/missing.pem",
        ),
        (
            NODE + "[[cla]]\ntype = 'tcpcl'\n[cla.tls]\nkey = 'k.pem'",
            "[[cla]] 1: tls.key: a key needs its certificate (cert)",
        ),
        (
            NODE + "[[cla]]\ntype = 'tcpcl'\n[cla.tls]\nrequired = true",
            "unknown key 'required' in [cla.tls] of [[cla]] 1; did you mean 'require'?",
        ),
        (
            NODE + "[[cla]]\ntype = 'tcpcl'\nkeepalive = '1.5s'",
            "[[cla]] 1: keepalive: must be whole seconds, 0s..65535s",
        ),
        (
            NODE + "[[cla]]\ntype = 'tcpcl'\nmax_sessions = 0",
            "[[cla]] 1: max_sessions: must be 1..9223372036854775807, got 0",
        ),
        (
            NODE + "[[cla]]\ntype = 'tcpcl'\nlisten = true",
            "[[cla]] 1: listen: expected an address such as 127.0.0.1:4556, got true",
        ),
        (
            NODE + "[[cla]]\ntype = 'udp'\nmax_bundle_size = '1MiB'",
            "[[cla]] 1: max_bundle_size: a datagram carries 1..65527 bytes, got 1048576",
        ),
        (
            NODE + "[[cla]]\ntype = 'tcpcl'\nname = 'a b'",
            "[[cla]] 1: name: expected letters, digits, '.', '_' or '-' (at most 64), got 'a b'",
        ),
        (
            NODE + "[[cla]]\ntype = 'tcpcl'\n[[cla]]\ntype = 'tcpcl'\nlisten = ':4557'",
            "[[cla]] 2: name 'tcpcl' is taken by [[cla]] 1; give each [[cla]] its own name",
        ),
        (
            NODE + "[[cla]]\ntype = 'tcpcl'\n[[cla]]\ntype = 'tcpclv3'\nlisten = '127.0.0.1'",
            "[[cla]] 2: listen: port 4556 is already used by [[cla]] 1 (tcpcl)",
        ),
        (NODE + "[cla]\ntype = 'tcpcl'", "cla: expected [[cla]] tables, got a table"),
        (NODE + "cla = ['tcpcl']", "[[cla]] 1: expected a table, got 'tcpcl'"),
        (
            NODE + "[[cla]]\ntype = 'tcpcl'\n[[cla]]\ntype = 'udp'\nname = 'udp0'\n"
            "[[peer]]\nnode_id = 'dtn://a/'\ncla = 'tcpcl'\naddress = 'a:1'\n"
            "[[peer]]\nnode_id = 'dtn://b/'\ncla = 'tcp'\naddress = 'b:1'",
            "[[peer]] 2: 'cla' names no [[cla]] entry ('tcp'); known: tcpcl, udp0",
        ),
        (
            NODE
            + "[[cla]]\ntype = 'tcpcl'\n[[cla]]\ntype = 'udp'\n[[peer]]\nnode_id = 'dtn://a/'\naddress = 'a'",
            "[[peer]] 1: 'cla' is missing; set it to the name of a [[cla]] entry (known: tcpcl, udp)",
        ),
        (
            NODE + "cla = []\n[[peer]]\nnode_id = 'dtn://a/'\naddress = 'a'",
            "[[peer]] 1: 'cla' is missing; set it to the name of a [[cla]] entry (known: none)",
        ),
        (
            NODE + "[[peer]]\nnode_id = 'dtn://a/'",
            """[[peer]] 1: address: missing; set it to "host:port\"""",
        ),
        (
            NODE + "[[peer]]\nnode_id = 'dtn://a/'\naddress = ':4556'",
            "[[peer]] 1: address: needs a host, as in 192.0.2.1:4556",
        ),
        (
            NODE + "[[peer]]\nnode_id = 'dtn://relay/'\naddress = 'a'",
            "[[peer]] 1: node_id: that is this node's own ID",
        ),
        (
            NODE
            + "[[peer]]\nnode_id = 'dtn://a/'\naddress = 'a'\n[[peer]]\nnode_id = 'dtn://a/'\naddress = 'a:4556'",
            "[[peer]] 2: repeats [[peer]] 1",
        ),
        (
            NODE + "[routing]\nrouter = 'foo'",
            "routing.router: unknown router 'foo'; known routers: "
            + ", ".join(default_registry.names()),
        ),
        (
            NODE + "[routing]\nrouter = 'epidemics'",
            "routing.router: unknown router 'epidemics'; known routers: "
            + ", ".join(default_registry.names())
            + "; did you mean 'epidemic'?",
        ),
        (
            NODE + "[routing]\nrouter = 'spray_and_wait'\ncopiez = 3",
            "unknown key 'copiez' in [routing] (router 'spray_and_wait'); did you mean 'copies'?",
        ),
        (
            NODE + "[routing]\nrouter = 'spray_and_wait'\ncopies = 0",
            "[routing]: router 'spray_and_wait': setting 'copies' must be an integer >= 1, not 0",
        ),
        (
            NODE + "[routing]\nroutes = []",
            "unknown key 'routes' in [routing] (router 'static'); did you mean 'route'?",
        ),
        (
            NODE
            + "[routing]\nrouter = 'cgr'\n[[routing.route]]\ndestination = 'ipn:2.*'\nvia = 'ipn:2.0'",
            "[[routing.route]]: router 'cgr' does not take routes",
        ),
        (
            NODE + "[routing]\ndefault = 'dtn://a/x'",
            "routing.default: 'dtn://a/x' is not a node ID (such as dtn://name/ or ipn:7.0)",
        ),
        (
            NODE + "[routing]\nrouter = 'epidemic'\ndefault = 'dtn://a/'",
            "routing.default: not a setting of router 'epidemic'",
        ),
        (
            NODE + "[routing]\nrouter = 'cgr'\ncontact_plan = 'none.txt'",
            "routing.contact_plan: no such file: {tmp}/none.txt",
        ),
        (
            NODE + "[[routing.route]]\ndestination = 'dtn://x*/y'\nvia = 'dtn://x/'",
            "[routing]: router 'static': route 1 ('dtn://x*/y' via 'dtn://x/'): '*' may only end a pattern",
        ),
        (
            NODE + "[[routing.route]]\ndestination = 'dtn://x/*'",
            "[[routing.route]] 1: via: missing; set it to the next hop's node ID",
        ),
        (
            NODE + "[[routing.route]]\ndestination = 'dtn://x/*'\nvia = 'dtn://x/'\nvai = 1",
            "unknown key 'vai' in [[routing.route]] 1; did you mean 'via'?",
        ),
        (NODE + "[discovery]\nperiod = 0", "discovery.period: must be more than 0, got 0"),
        (
            NODE + "[discovery]\ndestinations = 'a'",
            "discovery.destinations: expected an array, got 'a'",
        ),
        (
            NODE + "[discovery]\ndestinations = [':1']",
            "discovery.destinations[1]: needs a host, as in 192.0.2.255:3003",
        ),
        (
            NODE + "[discovery]\nenable = true",
            "unknown key 'enable' in [discovery]; did you mean 'enabled'?",
        ),
        (
            NODE + "[discovery]\nxyzzy = true",
            "unknown key 'xyzzy' in [discovery]; known keys: destinations, enabled, listen, "
            "multicast, period",
        ),
    ],
)
def test_errors_are_one_line_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    assert error(tmp_path, text) == message.format(tmp=tmp_path)


def test_token_file_problems(tmp_path: Path) -> None:
    base = NODE + "[api]\ntcp = ':4243'\ntoken_file = 'token'\n"
    assert error(tmp_path, base) == (
        f"api.token_file: cannot read {tmp_path / 'token'}: No such file or directory"
    )
    (tmp_path / "token").write_text("\n \n")
    assert error(tmp_path, base) == f"api.token_file: {tmp_path / 'token'} is empty"


def test_a_bad_contact_plan_is_reported_at_load(tmp_path: Path) -> None:
    (tmp_path / "plan.json").write_text("{nope")
    text = NODE + '[routing]\nrouter = "cgr"\ncontact_plan = "plan.json"\n'
    assert error(tmp_path, text).startswith(
        f"routing.contact_plan: {tmp_path / 'plan.json'} is not valid JSON: "
    )
    (tmp_path / "plan.txt").write_text("a contact +0 +10 1\n")
    assert error(tmp_path, text.replace(".json", ".txt")).startswith("[routing]: router 'cgr': ")


def test_a_socket_path_too_long_for_unix_sockets(tmp_path: Path) -> None:
    long = "/tmp/" + "d" * 120
    assert error(tmp_path, NODE + f"data_dir = '{long}'") == (
        f"api.socket: {long}/api.sock is longer than the {config_module.MAX_SOCKET_PATH} "
        "bytes a Unix socket path may have; set a shorter api.socket"
    )
    # With the socket elsewhere the data directory may be as deep as it likes.
    config = load(tmp_path, NODE + f"data_dir = '{long}'\n[api]\nsocket = false\n")
    assert config.data_dir == Path(long)


def test_errors_of_the_embedded_default_say_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^default configuration: node_id: "):
        default_config(tmp_path, "not an id")


# -- properties -------------------------------------------------------------------------------

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["", "0", "-1", ":1", "dtn://x/", "ipn:1.0", "tcpcl", "udp", "1h", "1MiB"]),
    st.lists(st.text(max_size=5), max_size=2),
    st.dictionaries(st.sampled_from(["type", "x", "listen", "node_id"]), st.text(max_size=5)),
    st.dates(),
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in ``data`` a value could be swapped for another."""
    found = []
    items = data.items() if isinstance(data, dict) else enumerate(data)
    for key, value in items:
        found.append((*prefix, key))
        if isinstance(value, dict | list):
            found.extend(_paths(value, (*prefix, key)))
    return found


EXAMPLE_DATA = tomllib.loads(EXAMPLE)
EXAMPLE_PATHS = _paths(EXAMPLE_DATA) + [
    (section, key)
    for section, keys in {
        "store": ["quota", "path", "fsync", "inline_threshold"],
        "engine": ["retry", "max_bundle_size", "custody", "remember"],
        "api": ["tcp", "token", "token_file", "max_payload"],
        "metrics": ["listen"],
        "routing": ["default", "contact_plan", "copies"],
        "discovery": ["period", "listen", "destinations"],
        "log": ["level"],
    }.items()
    for key in keys
]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(EXAMPLE_PATHS), junk, st.booleans())
def test_broken_configurations_raise_only_config_error(
    tmp_path: Path, path: tuple[Any, ...], value: Any, delete: bool
) -> None:
    data = tomllib.loads(EXAMPLE)
    target: Any = data
    for step in path[:-1]:
        if isinstance(target, dict):
            target = target.setdefault(step, {})
        else:
            target = target[step]
    if delete and isinstance(target, dict):
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    try:
        parse_config(data, source=None, base_dir=tmp_path, label="x.toml")
    except ConfigError as exc:
        assert str(exc).startswith("x.toml: ")
        assert "\n" not in str(exc)
