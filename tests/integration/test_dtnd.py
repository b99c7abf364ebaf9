"""``dtnd`` as operators run it: a real process, started from ``dtncloud init``'s file,
stopped by signals, killed with SIGKILL, refusing bad configurations and taken ports, and
serving its metrics."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dtncloud.client import Client
from tests.integration.dtnd_helpers import (
    CLI_TIMEOUT,
    REPO,
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


@pytest.fixture
def base() -> Iterator[Path]:
    # Node directories hold API sockets: a short path, which tmp_path may not be.
    with short_tempdir() as path:
        yield path


def init_node(directory: Path, node_id: str) -> Path:
    """``dtncloud init``, then the TCPCL moved from port 4556 to a free loopback port."""
    result = dtncloud("init", str(directory), "--node-id", node_id)
    assert result.returncode == 0, result.stderr
    config = directory / "dtncloud.toml"
    text, count = re.subn(
        r'^listen = ":4556"$', 'listen = "127.0.0.1:0"', config.read_text(), flags=re.M
    )
    assert count == 1, "the [[cla]] of the template moved"
    config.write_text(text)
    return config


# -- starting and stopping --------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_node_from_init_answers_and_stops_cleanly_on_a_signal(base: Path, signum: int) -> None:
    config = init_node(base / "relay", "dtn://relay/")
    with Dtnd.start(config) as dtnd:
        assert dtnd.api.exists()

        async def ping(client: Client) -> dict[str, Any]:
            assert client.node_id == "dtn://relay/"
            return await client.ping()

        answer = call_api(dtnd.api, ping)
        assert answer["node_id"] == "dtn://relay/" and answer["now_ms"] > 0
        assert dtnd.stop(signum) == 0
        assert not dtnd.api.exists()
        name = signal.Signals(signum).name
        assert f"{name} received: shutting down" in dtnd.log
        assert "dtnd dtn://relay/ stopped" in dtnd.log
        assert "Traceback" not in dtnd.log
    assert (base / "relay" / "store").is_dir()


def test_a_second_dtnd_on_the_same_node_exits_1_and_leaves_the_first_alone(base: Path) -> None:
    config = write_config(base / "a", "dtn://a/")
    with Dtnd.start(config) as first:
        second = dtnd_run("-c", str(config), "--log-level", "warning")
        assert second.returncode == 1
        line = one_line(second.stderr)
        assert line.startswith("dtnd: ") and "already" in line
        assert call_api(first.api, lambda client: client.ping())["node_id"] == "dtn://a/"
        assert first.stop() == 0


def test_a_configuration_error_exits_2_with_one_line_naming_the_key(base: Path) -> None:
    config = write_config(base / "a", "dtn://a/")
    config.write_text(config.read_text().replace('router = "static"', 'router = "epidemik"'))
    result = dtnd_run("-c", str(config))
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert line.startswith(f"dtnd: configuration error: {config}: routing.router: ")
    assert "unknown router 'epidemik'" in line and "did you mean 'epidemic'?" in line
    assert not (base / "a" / "store").exists()  # nothing was started

    checked = dtnd_run("-c", str(config), "--check")
    assert checked.returncode == 2
    assert one_line(checked.stderr) == line


def test_check_accepts_a_good_configuration_and_starts_nothing(base: Path) -> None:
    config = init_node(base / "a", "dtn://a/")
    result = dtnd_run("-c", str(config), "--check")
    assert result.returncode == 0, result.stderr
    assert one_line(result.stdout) == f"{config}: configuration of dtn://a/ is valid"
    assert sorted(p.name for p in (base / "a").iterdir()) == ["dtncloud.toml"]


def test_a_port_in_use_exits_1_with_one_line_naming_the_address(base: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(base / "a", "dtn://a/", listen=f"127.0.0.1:{port}")
        result = dtnd_run("-c", str(config), "--log-level", "warning")
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert line.startswith("dtnd: ")
    assert f"127.0.0.1:{port}" in line and "in use" in line
    assert not (base / "a" / "api.sock").exists()


def test_embedded_defaults_with_a_data_dir(base: Path) -> None:
    # The embedded defaults listen on every interface at port 4556, which this machine may
    # use for something else (another DTN node, a parallel test run).
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", 4556))
        except OSError as exc:
            pytest.skip(f"TCP port 4556, which the embedded defaults use, is taken: {exc}")
    data = base / "x"
    daemon = Dtnd(
        ["--data-dir", str(data), "--node-id", "dtn://x/"], base / "x.log", data / "api.sock"
    )
    with daemon:
        try:
            daemon.wait_up()
        except AssertionError:
            if "in use" in daemon.log:
                pytest.skip("TCP port 4556 was taken while the node started")
            raise
        status = call_api(daemon.api, lambda client: client.status())
        assert status["node_id"] == "dtn://x/"
        assert status["data_dir"] == str(data)
        assert status["router"] == "static"
        assert status["convergence_layers"] == ["tcpcl on port 4556"]
        assert (data / "store").is_dir()
        assert daemon.stop() == 0
    assert not (data / "api.sock").exists()


# -- what survives -----------------------------------------------------------------------------


def test_bundles_accepted_before_a_sigkill_are_all_delivered_once(base: Path) -> None:
    b_port = free_port()
    a_config = write_config(
        base / "a",
        "dtn://a/",
        peers=[("dtn://b/", f"127.0.0.1:{b_port}")],
        routes=[("dtn://b/*", "dtn://b/")],
    )
    b_config = write_config(base / "b", "dtn://b/", listen=f"127.0.0.1:{b_port}")
    payloads = [f"reading {i:02d}".encode() for i in range(20)]

    with Dtnd.start(a_config) as a:

        async def send_all(client: Client) -> list[str]:
            return [await client.send("dtn://b/inbox", payload) for payload in payloads]

        sent = call_api(a.api, send_all)
        a.kill()  # right after the last send was answered
    assert len(set(sent)) == 20

    with Dtnd.start(a_config) as a:  # the stale API socket is replaced
        held = call_api(a.api, lambda client: client.list_bundles())
        assert sorted(item["bundle_id"] for item in held) == sorted(sent)
        with Dtnd.start(b_config) as b:

            async def receive_all(client: Client) -> list[tuple[str, bytes]]:
                got = []
                endpoint = await client.register("inbox")
                stream = client.bundles(endpoint)
                async for bundle in stream:
                    got.append((bundle.bundle_id, bundle.payload))
                    await bundle.ack()
                    if len(got) == 20:
                        await stream.aclose()
                        break
                return got

            received = call_api(b.api, receive_all)
            assert sorted(bundle_id for bundle_id, _ in received) == sorted(sent)
            assert sorted(payload for _, payload in received) == payloads

            # Nothing is left anywhere, and b delivered exactly 20.
            def drained() -> bool:
                return not call_api(a.api, lambda c: c.list_bundles()) and not call_api(
                    b.api, lambda c: c.list_bundles()
                )

            poll(drained, "both stores to be empty")
            status = call_api(b.api, lambda client: client.status())
            assert status["bundles"]["delivered"] == 20
            assert status["bundles"]["duplicates"] == 0
            assert b.stop() == 0
        assert a.stop() == 0


_CRASHING_APP = """
import sys
from dtncloud.client import SyncClient
client = SyncClient(sys.argv[1])
client.register("inbox")
bundle = next(iter(client.bundles("inbox")))
print(bundle.bundle_id, bundle.payload.decode(), flush=True)
sys.stdin.read()  # waits, never acknowledging, until it is killed
"""


def test_a_bundle_an_application_never_acknowledged_comes_again(base: Path) -> None:
    config = write_config(base / "a", "dtn://a/")
    with Dtnd.start(config) as dtnd:
        bundle_id = call_api(dtnd.api, lambda c: c.send("dtn://a/inbox", b"handle with care"))
        app = subprocess.Popen(
            [sys.executable, "-c", _CRASHING_APP, str(dtnd.api)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=environment(),
        )
        try:
            assert app.stdout is not None
            assert app.stdout.readline().split() == [bundle_id, "handle", "with", "care"]
        finally:
            app.kill()
            app.wait(CLI_TIMEOUT)

        async def again(client: Client) -> tuple[str, bytes]:
            [bundle] = await client.receive("inbox", count=1, timeout=CLI_TIMEOUT)
            await bundle.ack()
            return bundle.bundle_id, bundle.payload

        assert call_api(dtnd.api, again) == (bundle_id, b"handle with care")
        poll(lambda: not call_api(dtnd.api, lambda c: c.list_bundles()), "the bundle to go")
        assert dtnd.stop() == 0


# -- monitoring --------------------------------------------------------------------------------


def http_get(port: int, path: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=CLI_TIMEOUT) as answer:
        assert answer.status == 200
        return answer.headers["Content-Type"], answer.read()


def delivered_total(port: int) -> float:
    content_type, body = http_get(port, "/metrics")
    assert content_type.startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(body.decode())}
    [sample] = families["dtncloud_bundles_delivered"].samples
    assert sample.name == "dtncloud_bundles_delivered_total"
    return sample.value


def test_metrics_and_status_over_http(base: Path) -> None:
    config = write_config(base / "a", "dtn://a/", extra='[metrics]\nlisten = "127.0.0.1:0"\n')
    with Dtnd.start(config) as dtnd:
        port = dtnd.metrics_port
        before = delivered_total(port)

        async def deliver(client: Client) -> None:
            await client.send("dtn://a/inbox", b"counted")
            [bundle] = await client.receive("inbox", count=1, timeout=CLI_TIMEOUT)
            await bundle.ack()

        call_api(dtnd.api, deliver)
        poll(lambda: delivered_total(port) == before + 1, "the delivery to be counted")

        content_type, body = http_get(port, "/status")
        assert content_type == "application/json"
        status = json.loads(body)
        assert status["node_id"] == "dtn://a/"
        assert status["bundles"]["delivered"] == before + 1
        assert dtnd.stop() == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_json_logs_are_one_object_per_line(base: Path) -> None:
    config = write_config(base / "a", "dtn://a/")
    with Dtnd.start(config, "--log-format", "json") as dtnd:
        assert dtnd.stop() == 0
    records = [json.loads(line) for line in dtnd.log.splitlines()]
    messages = [record["msg"] for record in records]
    assert any(re.match(r"dtnd dtn://a/ up: ", m) for m in messages)
    assert "dtnd dtn://a/ stopped" in messages
    assert {record["level"] for record in records} <= {"debug", "info", "warning", "error"}


def test_dtnd_without_a_configuration_says_what_to_pass() -> None:
    result = dtnd_run()
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "pass -c FILE" in line and "--data-dir DIR" in line
