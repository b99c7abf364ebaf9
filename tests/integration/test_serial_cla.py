"""The serial CLA over pseudo-terminals: two ptys joined by a relay act as a null-modem cable.

Each CLA opens a pty's slave device with pyserial as if it were a real port; the test holds the
masters and copies bytes between them (and can mangle them on the way). No sleeping for timing:
everything waits on queues and events with timeouts.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from dtncloud import bpv7
from dtncloud.cla.base import Link, ReceivedBundle
from dtncloud.cla.framing import Framing
from dtncloud.cla.serial import SerialConvergenceLayer, SerialLink, SerialOptions
from dtncloud.errors import ConfigError, ConnectError, LinkDown, TransferRefused
from tests.serial_ptys import Pty, Relay

pytestmark = pytest.mark.timeout(30)

WAIT = 10.0


class Tamper:
    """Mangles one direction of the relay at frame boundaries it finds by counting delimiters.

    Every frame is ``delimiter, stuffed body, delimiter``, so after an even number of
    delimiters the stream is between frames.
    """

    def __init__(
        self, delimiter: int, *, garbage_after: int, garbage: bytes, corrupt: int, at: int
    ):
        self.delimiter = delimiter
        self.garbage_after = garbage_after  # inject after this frame
        self.garbage = garbage
        self.corrupt = corrupt  # flip a bit in this frame...
        self.at = at  # ...this many bytes after its leading delimiter
        self.delimiters = 0
        self.since_delimiter = 0

    def __call__(self, data: bytes) -> bytes:
        out = bytearray()
        for byte in data:
            inside = self.delimiters % 2 == 1
            if inside and self.delimiters // 2 == self.corrupt and self.since_delimiter == self.at:
                byte ^= 0x01
            out.append(byte)
            self.since_delimiter += 1
            if byte == self.delimiter:
                self.delimiters += 1
                self.since_delimiter = 0
                if self.delimiters == 2 * (self.garbage_after + 1):
                    out += self.garbage
        return bytes(out)


class Events:
    """LinkEvents that queue what happens."""

    def __init__(self) -> None:
        self.bundles: asyncio.Queue[ReceivedBundle] = asyncio.Queue()
        self.ups: asyncio.Queue[Link] = asyncio.Queue()
        self.downs: asyncio.Queue[tuple[Link, str]] = asyncio.Queue()

    def link_up(self, link: Link) -> None:
        self.ups.put_nowait(link)

    def link_down(self, link: Link, reason: str) -> None:
        self.downs.put_nowait((link, reason))

    async def bundle_received(self, bundle: ReceivedBundle) -> None:
        await self.bundles.put(bundle)

    async def next(self) -> bytes:
        return (await asyncio.wait_for(self.bundles.get(), WAIT)).read()


def bundle(size: int, sequence: int) -> bytes:
    rng = random.Random(sequence)
    return bpv7.encode_bundle(
        bpv7.Bundle.create(
            source="ipn:1.1",
            destination="ipn:2.1",
            payload=rng.randbytes(size),
            creation_time=755_000_000_000,
            sequence=sequence,
        )
    )


def mixed_bundles(count: int, seed: int) -> list[bytes]:
    """Bundles from a few bytes to a dozen frames' worth, some full of bytes that get stuffed."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        data = bundle(rng.choice([1, 10, 200, 240, 255, 600, 1500, 3000]) + rng.randrange(50), n)
        if n % 7 == 3:
            data = data + b"\xc0\xdb\x00" * 100  # still bytes to carry, stuffing-heavy
        out.append(data)
    return out


def run(body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        await asyncio.wait_for(body(), 25)

    asyncio.run(main())


@dataclass
class Cable:
    a: SerialConvergenceLayer
    a_events: Events
    b: SerialConvergenceLayer
    b_events: Events
    a_pty: Pty
    b_pty: Pty
    relay: Relay


@asynccontextmanager
async def cable(
    tmp_path: Path,
    framing: Framing = "cobs",
    *,
    mangle_a_to_b: Callable[[bytes], bytes] | None = None,
    **options: object,
) -> AsyncIterator[Cable]:
    """Two started CLAs joined by two ptys and a relay; A's device is a symbolic link."""
    a_pty, b_pty = Pty(), Pty()
    device_a = tmp_path / "radio-a"
    device_a.symlink_to(a_pty.name)
    relay = Relay(a_pty, b_pty, mangle_a_to_b=mangle_a_to_b)
    base = SerialOptions(device="-", framing=framing, reopen_initial_s=0.02, reopen_max_s=0.2)
    a_events, b_events = Events(), Events()
    a = SerialConvergenceLayer(
        a_events,
        replace(base, device=str(device_a), peer_node_id="ipn:2.0", **options),  # type: ignore[arg-type]
    )
    b = SerialConvergenceLayer(b_events, replace(base, device=b_pty.name, peer_node_id="ipn:1.0"))
    await a.start()
    await b.start()
    c = Cable(a, a_events, b, b_events, a_pty, b_pty, relay)
    try:
        yield c
    finally:
        await a.stop()
        await b.stop()
        c.relay.close()  # the test may have swapped the relay and A's pty
        c.a_pty.close()
        c.b_pty.close()


async def send_all(link: SerialLink, bundles: list[bytes]) -> None:
    for data in bundles:
        await link.send(data)


@pytest.mark.parametrize("framing", ["slip", "cobs"])
def test_fifty_bundles_each_way_arrive_intact_and_in_order(
    framing: Framing, tmp_path: Path
) -> None:
    async def body() -> None:
        async with cable(tmp_path, framing) as c:
            link_a, link_b = c.a.link, c.b.link
            assert link_a is not None and link_b is not None
            assert await c.a_events.ups.get() is link_a
            assert (link_a.cla_name, link_a.is_up, link_a.peer_node_id) == (
                "serial",
                True,
                "ipn:2.0",
            )
            assert link_a.peer_address == str(tmp_path / "radio-a")
            assert link_a.max_bundle_size == c.a.max_bundle_size == 4096
            assert not c.a.reliable and c.a.links == [link_a]
            assert await c.a.connect(str(tmp_path / "radio-a")) is link_a

            forth, back = mixed_bundles(50, seed=1), mixed_bundles(50, seed=2)
            assert max(map(len, forth)) > 10 * 255  # many bundles take several frames
            sending = asyncio.gather(send_all(link_a, forth), send_all(link_b, back))
            got_b = [await c.b_events.next() for _ in forth]
            got_a = [await c.a_events.next() for _ in back]
            await sending
            assert got_b == forth
            assert got_a == back

            stats = link_a.stats
            assert (stats.bundles_sent, stats.bundles_received) == (50, 50)
            assert stats.bytes_sent == sum(map(len, forth))
            assert stats.extra["frames_sent"] == link_b.stats.extra["frames_received"] > 100
            assert stats.extra["wire_bytes_sent"] == link_b.stats.extra["wire_bytes_received"]
            assert stats.extra["dropped_frames"] == link_b.stats.extra["dropped_frames"] == 0
            assert c.a.stats.bundles_sent == 50  # the CLA's totals

    run(body)


@pytest.mark.parametrize("framing", ["slip", "cobs"])
def test_garbage_and_a_corrupted_byte_on_the_line_cost_one_bundle(
    framing: Framing, tmp_path: Path
) -> None:
    delimiter = 0xC0 if framing == "slip" else 0x00
    # The first byte after a COBS frame's delimiter is a code byte; the next is the header.
    tamper = Tamper(
        delimiter,
        garbage_after=20,
        garbage=b"\x7fATZ\r\nNO CARRIER\r\n",  # e.g. a modem talking
        corrupt=60,
        at=0 if framing == "slip" else 1,
    )

    async def body() -> None:
        async with cable(tmp_path, framing, mangle_a_to_b=tamper) as c:
            link_a, link_b = c.a.link, c.b.link
            assert link_a is not None and link_b is not None
            forth, back = mixed_bundles(50, seed=3), mixed_bundles(50, seed=4)
            sending = asyncio.gather(send_all(link_a, forth), send_all(link_b, back))
            got_b = [await c.b_events.next() for _ in range(49)]
            got_a = [await c.a_events.next() for _ in back]
            await sending
            assert got_a == back  # the other direction was not touched
            assert len(got_b) == 49
            lost = next(i for i, (x, y) in enumerate(zip(got_b, forth, strict=False)) if x != y)
            assert got_b == forth[:lost] + forth[lost + 1 :]
            assert tamper.delimiters >= 2 * 61  # the corrupted frame did go by

            extra = link_b.stats.extra
            assert extra["bad_crc_frames"] >= 1  # the corrupted frame
            assert extra["bad_crc_frames"] + extra["garbled_frames"] == 2  # ...and the noise
            assert extra["dropped_frames"] == 2
            assert extra["frames_received"] == link_a.stats.extra["frames_sent"] - 1
            assert c.b.stats.extra["dropped_frames"] == 2
            assert link_a.stats.extra["dropped_frames"] == 0

    run(body)


def test_an_unplugged_port_goes_down_and_comes_back(tmp_path: Path) -> None:
    async def body() -> None:
        async with cable(tmp_path) as c:
            first = await asyncio.wait_for(c.a_events.ups.get(), WAIT)
            await first.send(bundle(100, 1))
            assert await c.b_events.next() == bundle(100, 1)

            # Pull the plug: the relay stops and A's terminal is hung up.
            c.relay.close()
            c.a_pty.close()
            link, reason = await asyncio.wait_for(c.a_events.downs.get(), WAIT)
            assert link is first and not first.is_up
            assert "lost" in reason and str(tmp_path / "radio-a") in reason
            assert c.a.link is None and c.a.links == []
            with pytest.raises(LinkDown):
                await first.send(bundle(10, 2))
            with pytest.raises(ConnectError):
                await c.a.connect(str(tmp_path / "radio-a"))

            # Plug a "new adapter" in under the same name; the CLA finds it by itself.
            c.a_pty = Pty()
            (tmp_path / "radio-a.new").symlink_to(c.a_pty.name)
            os.replace(tmp_path / "radio-a.new", tmp_path / "radio-a")
            c.relay = Relay(c.a_pty, c.b_pty)
            second = await asyncio.wait_for(c.a_events.ups.get(), WAIT)
            assert second is not first and second.is_up and c.a.link is second
            await second.send(bundle(3000, 3))
            assert await c.b_events.next() == bundle(3000, 3)
            assert c.a.stats.bundles_sent == 2
            assert c.a.last_error is not None

    run(body)


def test_close_keeps_the_port_closed_until_connect(tmp_path: Path) -> None:
    async def body() -> None:
        async with cable(tmp_path) as c:
            first = await asyncio.wait_for(c.b_events.ups.get(), WAIT)
            await first.close()
            assert not first.is_up and c.b.link is None
            link, reason = await asyncio.wait_for(c.b_events.downs.get(), WAIT)
            assert link is first and reason == "closed"
            assert c.b._supervisor is not None
            await asyncio.wait_for(c.b._supervisor, WAIT)  # it stopped instead of reopening
            assert c.b_events.ups.empty()
            again = await c.b.connect("")
            assert again.is_up and again is not first
            assert await c.b_events.ups.get() is again
            await again.send(bundle(50, 5))
            assert await c.a_events.next() == bundle(50, 5)

    run(body)


def test_bundles_over_the_limit_are_refused_for_the_engine_to_fragment(tmp_path: Path) -> None:
    async def body() -> None:
        async with cable(tmp_path, max_bundle_size=2000) as c:
            link = c.a.link
            assert link is not None
            with pytest.raises(TransferRefused) as refused:
                await link.send(b"x" * 2001)
            assert refused.value.reason == 2
            assert link.stats.refused == 1 and link.stats.extra["frames_sent"] == 0
            spooled = tmp_path / "bundle.bin"
            spooled.write_bytes(bundle(1500, 9))
            await link.send(spooled)  # a bundle in a file is sent too
            assert await c.b_events.next() == bundle(1500, 9)

    run(body)


def test_sending_is_paced_by_the_token_bucket(tmp_path: Path) -> None:
    now = [0]
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += round(seconds * 1000)
        await asyncio.sleep(0)

    async def body() -> None:
        async with cable(tmp_path) as c:
            options = replace(c.b.options, rate_bytes_per_s=1000, burst_bytes=255)
            await c.b.stop()
            paced = SerialConvergenceLayer(
                c.b_events, options, clock=lambda: now[0], sleep=fake_sleep
            )
            await paced.start()
            try:
                link = paced.link
                assert link is not None
                data = bundle(2000, 7)
                await link.send(data)
                assert await c.a_events.next() == data
                wire = link.stats.extra["wire_bytes_sent"]
                # All but the first burst waited for credit at 1000 bytes per second.
                assert abs(sum(waits) - (wire - 255) / 1000) < 0.3
                assert link.stats.extra["rate_limited"] == len(waits) > 5
            finally:
                await paced.stop()

    run(body)


def test_a_missing_port_is_retried_not_fatal(tmp_path: Path) -> None:
    async def body() -> None:
        events = Events()
        missing = str(tmp_path / "no-such-radio")
        cla = SerialConvergenceLayer(
            events, SerialOptions(device=missing, reopen_initial_s=0.01, reopen_max_s=0.05)
        )
        await cla.start()  # no exception: a radio may be plugged in later
        try:
            assert cla.link is None and cla.links == []
            assert cla.last_error is not None and missing in cla.last_error
            with pytest.raises(ConnectError):
                await cla.connect(missing)
            with pytest.raises(ConnectError):
                await cla.connect("/dev/ttyS99")  # a serial line has one peer
            with pytest.raises(ConnectError):
                await cla.connect("", node_id="ipn:9.0")
            assert events.ups.empty()
        finally:
            await cla.stop()

    run(body)


@pytest.mark.parametrize(
    "options",
    [
        {"device": ""},
        {"baud_rate": 0},
        {"framing": "kiss"},
        {"max_frame_size": 8},
        {"max_bundle_size": 0},
        {"max_bundle_size": 10**9},
        {"rate_bytes_per_s": -1},
        {"burst_bytes": 0},
        {"reassembly_timeout_s": 0},
        {"reopen_initial_s": 5, "reopen_max_s": 1},
        {"peer_node_id": "not a node"},
    ],
)
def test_bad_options_are_config_errors(options: dict[str, object]) -> None:
    settings: dict[str, object] = {"device": "/dev/ttyUSB0", **options}
    with pytest.raises(ConfigError):
        SerialOptions(**settings)  # type: ignore[arg-type]
