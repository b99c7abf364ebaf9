"""The SBD convergence layer over the emulator's pseudo-terminals: real serial I/O, no sleeping.

Two CLAs, each on its own emulated modem, joined by the emulated gateway. Sessions are
shortened to milliseconds and retries to a fraction of a second through the options, so that
dozens of sessions (with injected failures) fit in a few seconds.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from dtncloud import bpv7
from dtncloud.cla.base import Link, ReceivedBundle
from dtncloud.cla.sbd import SbdConvergenceLayer, SbdOptions
from dtncloud.cla.sbd_emulator import SbdEmulator
from dtncloud.dtntime import dtn_time_from_unix
from dtncloud.errors import ConfigError, ConnectError, LinkDown, TransferRefused
from dtncloud.sbd.emulator import EmulatorConfig, SbdNetwork

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX"),
]

WAIT = 20.0


class Events:
    """LinkEvents that queue what happens."""

    def __init__(self) -> None:
        self.bundles: asyncio.Queue[ReceivedBundle] = asyncio.Queue()
        self.up: asyncio.Queue[Link] = asyncio.Queue()
        self.down: asyncio.Queue[tuple[Link, str]] = asyncio.Queue()

    def link_up(self, link: Link) -> None:
        self.up.put_nowait(link)

    def link_down(self, link: Link, reason: str) -> None:
        self.down.put_nowait((link, reason))

    async def bundle_received(self, bundle: ReceivedBundle) -> None:
        await self.bundles.put(bundle)


def fast_options(device: str, **changes: object) -> SbdOptions:
    settings: dict[str, object] = {
        "device": device,
        "peer_node_id": "ipn:2.0",
        "command_timeout_ms": 2_000,
        "session_timeout_ms": 5_000,
        "retry_delay_ms": 20,
        "retry_max_delay_ms": 200,
        "signal_wait_ms": 50,
        "reinit_delay_ms": 100,
        "reopen_delay_ms": 100,
        "connect_timeout_ms": 5_000,
    }
    settings.update(changes)
    return SbdOptions(**settings)  # type: ignore[arg-type]


def bundle(size: int, sequence: int = 0, *, lifetime: int = 3_600_000) -> bytes:
    return bpv7.encode_bundle(
        bpv7.Bundle.create(
            source="ipn:1.1",
            destination="ipn:2.1",
            payload=random.Random(sequence).randbytes(size),
            creation_time=dtn_time_from_unix(time.time()),
            sequence=sequence,
            lifetime=lifetime,
        )
    )


Pair = tuple[SbdConvergenceLayer, Events, SbdConvergenceLayer, Events, SbdNetwork]


@asynccontextmanager
async def emulated_pair(
    config: EmulatorConfig, *, seed: int = 7, **changes: object
) -> AsyncIterator[Pair]:
    network = SbdNetwork(2, config, seed=seed)
    emulator = SbdEmulator(network)
    ports = await emulator.start()
    events_a, events_b = Events(), Events()
    a = SbdConvergenceLayer(
        events_a, fast_options(ports[0].path, **changes), rng=random.Random(seed)
    )
    b = SbdConvergenceLayer(
        events_b, fast_options(ports[1].path, **changes), rng=random.Random(seed + 1)
    )
    try:
        yield a, events_a, b, events_b, network
    finally:
        await a.stop()
        await b.stop()
        await emulator.stop()


def run(coroutine_function: object) -> None:
    asyncio.run(asyncio.wait_for(coroutine_function(), 45))  # type: ignore[operator]


def test_a_10k_bundle_crosses_with_failing_sessions() -> None:
    async def body() -> None:
        config = EmulatorConfig(session_latency_ms=5, failure_rate=0.3)
        async with emulated_pair(config) as (a, events_a, b, events_b, network):
            link = await a.connect(a.options.device)
            await b.connect()
            assert await asyncio.wait_for(events_a.up.get(), WAIT) is link
            assert link.is_up and link.peer_node_id == "ipn:2.0"
            data = bundle(10 * 1024)
            await asyncio.wait_for(link.send(data), WAIT)
            received = await asyncio.wait_for(events_b.bundles.get(), WAIT)
            assert received.read() == data
            assert received.link is b.link
            stats = a.stats
            assert stats.sessions_failed > 0  # the injected failures were met and retried
            assert stats.bundles_sent == 1 and stats.queued_bundles == 0
            assert stats.messages_sent == -(-len(data) // a.options.capacity)
            assert stats.credits >= stats.messages_sent * 5
            assert b.stats.bundles_received == 1
            assert network.gateway.stats.delivered == stats.messages_sent

    run(body)


def test_bundles_both_ways_and_small_ones_whole() -> None:
    async def body() -> None:
        config = EmulatorConfig(session_latency_ms=5)
        async with emulated_pair(config) as (a, _, b, events_b, _network):
            link_a = await a.connect()
            link_b = await b.connect()
            events_a = a.events
            small, large = bundle(100, 1), bundle(2_000, 2)
            await asyncio.gather(link_a.send(large), link_b.send(small))
            assert (await asyncio.wait_for(events_b.bundles.get(), WAIT)).read() == large
            got = await asyncio.wait_for(events_a.bundles.get(), WAIT)  # type: ignore[attr-defined]
            assert got.read() == small
            assert b.stats.messages_sent == 1  # small enough for one message, no header

    run(body)


def test_oversized_bundles_are_refused_for_fragmentation() -> None:
    async def body() -> None:
        async with emulated_pair(EmulatorConfig(session_latency_ms=5)) as (a, _, _b, _, _n):
            link = await a.connect()
            with pytest.raises(TransferRefused) as refused:
                await link.send(b"\x9f" + bytes(a.max_bundle_size))
            assert refused.value.reason == 2

    run(body)


def test_a_silent_modem_fails_connect_and_a_vanished_one_takes_the_link_down() -> None:
    async def body() -> None:
        master, slave = os.openpty()  # a port with nothing answering behind it
        try:
            silent = SbdConvergenceLayer(
                Events(), fast_options(os.ttyname(slave), connect_timeout_ms=300)
            )
            with pytest.raises(ConnectError, match="did not answer"):
                await silent.connect()
            await silent.stop()
        finally:
            os.close(master)
            os.close(slave)

        network = SbdNetwork(2, EmulatorConfig(session_latency_ms=60_000), seed=1)
        emulator = SbdEmulator(network)
        ports = await emulator.start()
        events = Events()
        cla = SbdConvergenceLayer(events, fast_options(ports[0].path, command_timeout_ms=200))
        try:
            link = await cla.connect()
            sending = asyncio.ensure_future(link.send(bundle(50)))
            await asyncio.sleep(0)
            await emulator.stop()  # the modem disappears in the middle of a session
            _, reason = await asyncio.wait_for(events.down.get(), WAIT)
            assert reason
            with pytest.raises(LinkDown):
                await asyncio.wait_for(sending, WAIT)
            assert not link.is_up and cla.links == []
            with pytest.raises(LinkDown):
                await link.send(bundle(50))
        finally:
            await cla.stop()

    run(body)


def test_a_port_that_comes_back_is_reopened(tmp_path: Path) -> None:
    """A device path that goes away and comes back (a USB modem replugged) is reopened."""

    async def body() -> None:
        device = tmp_path / "modem"
        network = SbdNetwork(2, EmulatorConfig(session_latency_ms=5), seed=3)
        first = SbdEmulator(network)
        ports = await first.start()
        device.symlink_to(ports[0].path)
        events = Events()
        cla = SbdConvergenceLayer(events, fast_options(str(device)))
        second = SbdEmulator(network)
        try:
            link = await cla.connect()
            await asyncio.wait_for(events.up.get(), WAIT)
            await first.stop()
            await asyncio.wait_for(events.down.get(), WAIT)
            replugged = await second.start()
            device.unlink()
            device.symlink_to(replugged[0].path)
            assert await asyncio.wait_for(events.up.get(), WAIT) is link
            assert link.is_up
        finally:
            await cla.stop()
            await second.stop()

    run(body)


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="device"):
        SbdOptions(device="")
    with pytest.raises(ConfigError, match="baudrate"):
        SbdOptions(device="/dev/null", baudrate=12345)
    with pytest.raises(ConfigError, match="piece_size"):
        SbdOptions(device="/dev/null", piece_size=400)


def test_the_emulator_command_prints_its_ports_and_stops_on_ctrl_c() -> None:
    command = [sys.executable, "-m", "dtncloud", "sbd-emulator", "--modems", "2", "--seed", "5"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(
        [*command, "--latency", "10ms"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        lines = [child.stdout.readline() for _ in range(2)]
        paths = []
        for number, line in enumerate(lines, start=1):
            match = re.fullmatch(
                rf"modem {number}: (\S+) \(imei \d{{15}}, serial \d{{7}}\)\n", line
            )
            assert match, line
            paths.append(match[1])
        assert child.stdout.readline() == "gateway pairs: 1-2; seed 5\n"
        fd = os.open(paths[0], os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(fd, b"AT+CGSN\r")
            reply = b""
            while not reply.endswith(b"OK\r\n"):
                ready, _, _ = select.select([fd], [], [], WAIT)
                assert ready, reply
                reply += os.read(fd, 100)
            assert reply == b"AT+CGSN\r300234000000001\r\n\r\nOK\r\n"  # echo is on at first
        finally:
            os.close(fd)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=WAIT)
        assert child.returncode == 0, err
        assert "gateway carried 0 messages" in out
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
