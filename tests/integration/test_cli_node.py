"""The ``dtncloud`` commands that talk to a node, run as processes against real ``dtnd``s.

Two daemons run for the module: ``a``, with ``b`` as its peer and a static route to it, and
``b``. Each test uses endpoints of its own, so the tests do not see each other's bundles."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dtncloud.client import Client
from tests.integration.dtnd_helpers import (
    Dtnd,
    call_api,
    dtncloud,
    dtnd_run,
    environment,
    free_port,
    one_line,
    poll,
    short_tempdir,
    write_config,
)

pytestmark = pytest.mark.timeout(180)

BUNDLE_ID = re.compile(r"^dtn://a/@\d+\.\d+$")


@dataclass
class Pair:
    a: Dtnd
    b: Dtnd
    b_address: str

    def at_a(self, *args: str, **options: Any) -> Any:
        return dtncloud(*args[:1], "--api", str(self.a.api), *args[1:], **options)

    def at_b(self, *args: str, **options: Any) -> Any:
        return dtncloud(*args[:1], "--api", str(self.b.api), *args[1:], **options)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    with short_tempdir("dtncli-") as base:
        b_address = f"127.0.0.1:{free_port()}"
        a_config = write_config(
            base / "a",
            "dtn://a/",
            peers=[("dtn://b/", b_address)],
            routes=[("dtn://b/*", "dtn://b/")],
        )
        b_config = write_config(base / "b", "dtn://b/", listen=b_address)
        with Dtnd.start(b_config) as b, Dtnd.start(a_config) as a:

            def linked() -> bool:
                peers = call_api(a.api, lambda client: client.peers())
                return bool(peers) and all(peer["up"] for peer in peers)

            poll(linked, "a's session to b")
            yield Pair(a, b, b_address)
            assert a.stop() == 0 and b.stop() == 0


def endpoint() -> str:
    return f"inbox-{secrets.token_hex(4)}"


def held_at(daemon: Dtnd, destination: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = call_api(daemon.api, lambda client: client.list_bundles())
    return [item for item in items if item["destination"] == destination]


# -- send and recv ----------------------------------------------------------------------------


def test_send_text_file_and_stdin_and_recv_prints_each(pair: Pair, tmp_path: Path) -> None:
    name = endpoint()
    to = f"dtn://b/{name}"
    (tmp_path / "reading.csv").write_bytes(b"t,moisture\n1,0.27\n")
    sent = [
        pair.at_a("send", "--to", to, "--text", "hello b"),
        pair.at_a("send", "--to", to, "--file", str(tmp_path / "reading.csv")),
        pair.at_a("send", "--to", to, "--file", "-", stdin=b"from stdin"),
    ]
    for result in sent:
        assert result.returncode == 0, result.stderr
        assert BUNDLE_ID.match(one_line(result.stdout)), result.stdout
    assert len({result.stdout for result in sent}) == 3

    received = pair.at_b("recv", "--endpoint", name, "--count", "3", "--timeout", "60")
    assert received.returncode == 0, received.stderr
    # Each payload, with a newline added where it had none; in the order they came.
    assert sorted(received.stdout.splitlines()) == sorted(
        ["hello b", "t,moisture", "1,0.27", "from stdin"]
    )
    poll(lambda: not held_at(pair.b, to), "b to delete what was acknowledged")


def test_send_needs_exactly_one_payload(pair: Pair) -> None:
    result = pair.at_a("send", "--to", "dtn://b/x")
    assert result.returncode == 2
    assert "exactly one of --file and --text" in one_line(result.stderr)


def test_recv_out_writes_a_file_per_bundle(pair: Pair, tmp_path: Path) -> None:
    name = endpoint()
    payloads = {b"\x00binary\nline\xff", b"second"}
    ids = set()
    for payload in payloads:
        (tmp_path / "payload").write_bytes(payload)
        result = pair.at_a("send", "--to", f"dtn://b/{name}", "--file", str(tmp_path / "payload"))
        assert result.returncode == 0, result.stderr
        ids.add(result.stdout.strip())

    out = tmp_path / "out"
    received = pair.at_b(
        "recv",
        "--endpoint",
        f"dtn://b/{name}",
        "--count",
        "2",
        "--timeout",
        "60",
        "--out",
        str(out),
    )
    assert received.returncode == 0, received.stderr
    assert received.stdout == ""
    files = sorted(out.iterdir())
    assert len(files) == 2 and all(f.suffix == ".payload" for f in files)
    assert {f.read_bytes() for f in files} == payloads
    # One line per bundle on stderr: its ID, where it came from, and where it went.
    lines = received.stderr.splitlines()
    assert len(lines) == 2
    for line in lines:
        bundle_id = line.split()[0]
        assert bundle_id in ids and "from dtn://a/" in line and str(out) in line


def test_recv_exits_1_when_fewer_than_count_came(pair: Pair) -> None:
    name = endpoint()
    assert pair.at_a("send", "--to", f"dtn://b/{name}", "--text", "only one").returncode == 0
    # Once b holds it, the timeout below only has to cover handing it over.
    poll(lambda: held_at(pair.b, f"dtn://b/{name}"), "the bundle to reach b")
    received = pair.at_b("recv", "--endpoint", name, "--count", "2", "--timeout", "3")
    assert received.returncode == 1
    assert received.stdout == "only one\n"
    assert (
        one_line(received.stderr) == "dtncloud: error: received 1 of 2 bundles before the timeout"
    )
    # The one that came was acknowledged all the same.
    poll(lambda: not held_at(pair.b, f"dtn://b/{name}"), "b to delete the acknowledged bundle")


# -- ping -------------------------------------------------------------------------------------


def test_ping_a_neighbour(pair: Pair) -> None:
    result = pair.at_a("ping", "dtn://b/", "-c", "2", "--interval", "0.2", "--timeout", "60")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    for seq, line in enumerate(lines[:2], 1):
        assert re.fullmatch(rf"reply from dtn://b/echo: seq={seq} time=\d+\.\d ms", line), line
    assert lines[2].startswith("--- dtn://b/echo: 2 sent, 2 received, 0% lost, rtt min/avg/max ")


def test_ping_a_node_without_a_route_exits_1(pair: Pair) -> None:
    # a's static router has no route to dtn://nowhere/ and drops the pings.
    result = pair.at_a("ping", "dtn://nowhere/", "-c", "1", "--timeout", "1")
    assert result.returncode == 1
    assert one_line(result.stdout) == "--- dtn://nowhere/echo: 1 sent, 0 received, 100% lost"


# -- status and listings ----------------------------------------------------------------------


def test_status_as_text_and_json(pair: Pair) -> None:
    text = pair.at_a("status")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert "node_id: dtn://a/" in lines and "router: static" in lines
    assert any(line.startswith("bundles.delivered: ") for line in lines)

    as_json = pair.at_a("status", "--json")
    assert as_json.returncode == 0, as_json.stderr
    status = json.loads(as_json.stdout)
    assert status["node_id"] == "dtn://a/"
    assert {"now_ms", "uptime_seconds", "bundles", "store", "links", "api_socket"} <= set(status)
    assert status["api_socket"] == str(pair.a.api)
    assert [link["peer_node"] for link in status["links"]["up"]] == ["dtn://b/"]


def test_peers_and_links_listings(pair: Pair) -> None:
    peers = pair.at_a("peers")
    assert peers.returncode == 0, peers.stderr
    header, row = peers.stdout.splitlines()
    assert header.split() == ["PEER", "CLA", "ADDRESS", "UP"]
    assert row.split() == ["dtn://b/", "tcpcl", pair.b_address, "yes"]
    [peer] = json.loads(pair.at_a("peers", "--json").stdout)
    assert peer["node_id"] == "dtn://b/" and peer["up"] is True and len(peer["links"]) == 1

    links = pair.at_a("links")
    assert links.returncode == 0, links.stderr
    assert links.stdout.splitlines()[0].split() == [
        "LINK", "CLA", "PEER", "ADDRESS", "SENT", "RECEIVED"
    ]  # fmt: skip
    [link] = json.loads(pair.at_a("links", "--json").stdout)
    assert link["link_id"] == peer["links"][0]
    assert link["peer_node"] == "dtn://b/" and link["up"] is True
    assert {"cla", "peer_address", "max_bundle_size", "stats"} <= set(link)


def test_routes_and_contacts_listings(pair: Pair) -> None:
    routes = pair.at_a("routes")
    assert routes.returncode == 0, routes.stderr
    assert [line.split() for line in routes.stdout.splitlines()] == [
        ["DESTINATION", "VIA"],
        ["dtn://b/*", "dtn://b/"],
    ]
    assert pair.at_b("routes").stdout == "no routes\n"
    # A static node has no contact plan (--json of routes: see test_routes_add_and_remove).
    contacts = pair.at_a("contacts", "--json")
    assert (contacts.returncode, json.loads(contacts.stdout)) == (0, [])


def test_bundles_lists_what_the_node_holds(pair: Pair) -> None:
    # For an endpoint of a itself that no application took: it stays at a.
    to = f"dtn://a/{endpoint()}"
    bundle_id = one_line(pair.at_a("send", "--to", to, "--text", "wait here").stdout)
    try:
        table = pair.at_a("bundles")
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        assert lines[0].split() == ["BUNDLE", "TO", "BYTES", "EXPIRES", "KEPT", "FOR"]
        [row] = [line for line in lines if line.startswith(bundle_id)]
        assert row.split()[1] == to and "dispatch_pending" in row

        as_json = pair.at_a("bundles", "--json")
        assert as_json.returncode == 0, as_json.stderr
        [item] = [item for item in json.loads(as_json.stdout) if item["bundle_id"] == bundle_id]
        assert item["destination"] == to and item["source"] == "dtn://a/"
        assert item["retention"] == ["dispatch_pending"]
        assert {"size", "created_ms", "received_ms", "expires_ms", "protocol"} <= set(item)
    finally:
        call_api(pair.a.api, lambda client: client.cancel(bundle_id))


# -- routes add and remove --------------------------------------------------------------------


def test_routes_add_and_remove(pair: Pair) -> None:
    pattern = f"dtn://{endpoint()}/*"
    added = dtncloud("routes", "--api", str(pair.a.api), "add", pattern, "dtn://b/")
    assert added.returncode == 0, added.stderr
    assert one_line(added.stdout) == f"route {pattern} via dtn://b/ added"
    routes = json.loads(pair.at_a("routes", "--json").stdout)
    assert {"destination": pattern, "via": "dtn://b/"} in routes

    with_env = environment(DTNCLOUD_API=str(pair.a.api))
    removed = dtncloud("routes", "remove", pattern, env=with_env)
    assert removed.returncode == 0, removed.stderr
    assert one_line(removed.stdout) == f"route {pattern} removed"
    again = dtncloud("routes", "remove", pattern, env=with_env)
    assert again.returncode == 1
    assert one_line(again.stderr) == f"dtncloud: error: no route for {pattern}"
    assert call_api(pair.a.api, lambda client: client.routes()) == [
        {"destination": "dtn://b/*", "via": "dtn://b/"}
    ]

    refused = dtncloud("routes", "add", "dtn://x/*", "dtn://x/inbox", env=with_env)
    assert refused.returncode == 1
    assert "not a node ID" in one_line(refused.stderr)


def test_routes_add_takes_api_after_the_subcommand(pair: Pair) -> None:
    pattern = f"dtn://{endpoint()}/*"
    added = dtncloud("routes", "add", "--api", str(pair.a.api), pattern, "dtn://b/")
    assert added.returncode == 0, added.stderr
    assert dtncloud("routes", "remove", "--api", str(pair.a.api), pattern).returncode == 0


# -- finding the node -------------------------------------------------------------------------


def test_no_api_address_is_one_line_saying_what_to_do() -> None:
    result = dtncloud("status")
    assert result.returncode == 1
    assert one_line(result.stderr) == (
        "dtncloud: error: no node to talk to: pass --api PATH or set DTNCLOUD_API"
    )


def test_no_node_at_the_address_is_one_line(tmp_path: Path) -> None:
    result = dtncloud("peers", "--api", str(tmp_path / "api.sock"))
    assert result.returncode == 1
    assert one_line(result.stderr) == (
        f"dtncloud: error: no node API listens on {tmp_path / 'api.sock'} (is dtnd running?)"
    )


def test_dtncloud_api_in_the_environment(pair: Pair) -> None:
    result = dtncloud("status", "--json", env=environment(DTNCLOUD_API=str(pair.b.api)))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["node_id"] == "dtn://b/"

    async def ping(client: Client) -> str:
        return str((await client.ping())["node_id"])

    assert call_api(pair.b.api, ping) == "dtn://b/"


# -- init -------------------------------------------------------------------------------------


def test_init_writes_a_configuration_that_dtnd_accepts(tmp_path: Path) -> None:
    directory = tmp_path / "node"
    config = directory / "dtncloud.toml"
    result = dtncloud("init", str(directory), "--node-id", "dtn://field-3/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"wrote {config}"
    assert f"dtnd -c {config}" in result.stdout
    assert 'node_id = "dtn://field-3/"' in config.read_text()

    checked = dtnd_run("-c", str(config), "--check")
    assert checked.returncode == 0, checked.stderr
    assert one_line(checked.stdout) == f"{config}: configuration of dtn://field-3/ is valid"

    config.write_text('node_id = "dtn://changed/"\n')
    again = dtncloud("init", str(directory), "--node-id", "dtn://field-3/")
    assert again.returncode == 1
    line = one_line(again.stderr)
    assert line.startswith("dtncloud: error: ") and "already exists" in line
    assert config.read_text() == 'node_id = "dtn://changed/"\n'

    forced = dtncloud("init", str(directory), "--node-id", "dtn://field-4/", "--force")
    assert forced.returncode == 0, forced.stderr
    assert 'node_id = "dtn://field-4/"' in config.read_text()
    assert sorted(p.name for p in directory.iterdir()) == ["dtncloud.toml"]


def test_init_refuses_a_bad_node_id_and_creates_nothing(tmp_path: Path) -> None:
    result = dtncloud("init", str(tmp_path / "node"), "--node-id", "not-an-eid")
    assert result.returncode == 1
    assert one_line(result.stderr).startswith("dtncloud: error: ")
    assert not (tmp_path / "node").exists()
