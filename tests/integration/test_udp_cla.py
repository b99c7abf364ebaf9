"""The UDP convergence layer on loopback: two CLAs, real sockets, no sleeping for timing."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from dtncloud import bpv6, bpv7
from dtncloud.cla.base import Link, ReceivedBundle
from dtncloud.cla.udp import UdpConvergenceLayer, UdpLink
from dtncloud.errors import ConfigError, ConnectError, LinkDown, TransferRefused, TransportError
from dtncloud.udpcl import KEEPALIVE

pytestmark = pytest.mark.timeout(30)

WAIT = 5.0


class Events:
    """LinkEvents that queue what happens."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.bundles: asyncio.Queue[ReceivedBundle] = asyncio.Queue()
        self.up: list[Link] = []
        self.down: list[tuple[Link, str]] = []
        self.refuse = refuse

    def link_up(self, link: Link) -> None:
        self.up.append(link)

    def link_down(self, link: Link, reason: str) -> None:
        self.down.append((link, reason))

    async def bundle_received(self, bundle: ReceivedBundle) -> None:
        await self.bundles.put(bundle)
        if self.refuse:
            raise TransferRefused("no thanks", reason=1)

    async def next(self) -> ReceivedBundle:
        return await asyncio.wait_for(self.bundles.get(), WAIT)


def bundle(payload: bytes = b"hello", sequence: int = 0) -> bytes:
    return bpv7.encode_bundle(
        bpv7.Bundle.create(
            source="dtn://a/app",
            destination="dtn://b/app",
            payload=payload,
            creation_time=755_000_000_000,
            sequence=sequence,
        )
    )


def cla(events: Events, **options: object) -> UdpConvergenceLayer:
    return UdpConvergenceLayer(events, host="127.0.0.1", port=0, **options)  # type: ignore[arg-type]


def run(body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        await asyncio.wait_for(body(), 20)

    asyncio.run(main())


Pair = tuple[UdpConvergenceLayer, Events, UdpConvergenceLayer, Events]


@asynccontextmanager
async def started_pair() -> AsyncIterator[Pair]:
    """Two started CLAs on 127.0.0.1 without rate limits, and their events."""
    events_a, events_b = Events(), Events()
    a, b = cla(events_a, rate_bytes_per_s=0), cla(events_b, rate_bytes_per_s=0)
    await a.start()
    await b.start()
    try:
        yield a, events_a, b, events_b
    finally:
        await a.stop()
        await b.stop()


def test_bundles_travel_both_ways_over_one_link_per_peer() -> None:
    async def body() -> None:
        async with started_pair() as pair:
            a, events_a, b, events_b = pair
            assert a.port and b.port and a.port != b.port
            link = await a.connect(f"127.0.0.1:{b.port}")
            assert events_a.up == [link]
            assert await a.connect(f"127.0.0.1:{b.port}") is link  # reused
            assert (link.cla_name, link.peer_address, link.is_up) == (
                "udp",
                f"127.0.0.1:{b.port}",
                True,
            )
            assert link.max_bundle_size == 65_507
            assert not a.reliable

            sent = [bundle(sequence=n) for n in range(3)]
            for data in sent:
                await link.send(data)
            received = [await events_b.next() for _ in sent]
            assert [r.read() for r in received] == sent
            assert [r.length for r in received] == [len(d) for d in sent]
            back = received[0].link
            assert all(r.link is back for r in received)
            assert events_b.up == [back]  # reported once
            assert back.peer_address == f"127.0.0.1:{a.port}"

            await back.send(bundle(b"reply"))
            reply = await events_a.next()
            assert reply.link is link  # the reply comes from the port we sent to
            assert events_a.up == [link]
            assert link.stats.bundles_sent == 3
            assert link.stats.bundles_received == 1
            assert b.stats.bundles_received == 3
            assert b.stats.bytes_received == sum(map(len, sent))

    run(body)


def test_file_bundles_and_bpv6_bundles(tmp_path: Path) -> None:
    async def body() -> None:
        async with started_pair() as pair:
            a, _, b, events_b = pair
            link = await a.connect(f"127.0.0.1:{b.port}")
            path = tmp_path / "b.bundle"
            path.write_bytes(bundle(b"from a file"))
            await link.send(path)
            assert (await events_b.next()).read() == path.read_bytes()
            v6 = bpv6.encode_bundle(
                bpv6.Bundle.create(
                    source="dtn://a/app", destination="ipn:2.1", payload=b"x", creation_time=1
                )
            )
            await link.send(v6)
            assert (await events_b.next()).read() == v6

    run(body)


def test_too_large_bundle_is_refused_before_sending(tmp_path: Path) -> None:
    async def body() -> None:
        events_a, events_b = Events(), Events()
        small = bundle()
        a, b = cla(events_a, max_bundle_size=len(small)), cla(events_b)
        await a.start()
        await b.start()
        try:
            link = await a.connect(f"127.0.0.1:{b.port}")
            big = bundle(b"x" * 100)
            with pytest.raises(TransferRefused) as refused:
                await link.send(big)
            assert refused.value.reason == 2
            assert "fragment" in str(refused.value)
            path = tmp_path / "big.bundle"
            path.write_bytes(big)
            with pytest.raises(TransferRefused):
                await link.send(path)
            assert link.stats.refused == 2 and a.stats.refused == 2
            assert link.is_up  # a refusal does not end the link
            await link.send(small)
            assert (await events_b.next()).read() == small  # the first datagram that arrived
            assert link.stats.bundles_sent == 1
        finally:
            await a.stop()
            await b.stop()

    run(body)


def test_junk_is_ignored_and_counted_without_making_links() -> None:
    async def body() -> None:
        async with started_pair() as pair:
            _, _, b, events_b = pair
            junk = [b"hello", b"\xa1\x04\x01", bundle()[:-5], b"\x06\x00", b"\x16\xfe\xfd"]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
                raw.bind(("127.0.0.1", 0))
                for data in junk:
                    raw.sendto(data, ("127.0.0.1", b.port))
                raw.sendto(KEEPALIVE, ("127.0.0.1", b.port))
                raw.sendto(b"", ("127.0.0.1", b.port))
                # Datagrams on loopback arrive in order: once the bundle is here, so is the junk.
                raw.sendto(bundle(), ("127.0.0.1", b.port))
                received = await events_b.next()
            assert received.read() == bundle()
            assert b.stats.ignored == len(junk)
            assert b.stats.extra["not_a_bundle"] == 1
            assert b.stats.extra["extension_map"] == 1
            assert b.stats.extra["undecodable"] == 2
            assert b.stats.extra["dtls"] == 1
            assert b.stats.extra["keepalives"] == 2
            assert b.stats.bundles_received == 1
            assert events_b.up == [received.link]  # only the bundle made a link
            assert received.link.stats.ignored == 0

    run(body)


def test_keepalive_is_counted_on_the_link() -> None:
    async def body() -> None:
        async with started_pair() as pair:
            a, _, b, events_b = pair
            link = await a.connect(f"127.0.0.1:{b.port}")
            await link.send(bundle())
            back = (await events_b.next()).link
            assert isinstance(link, UdpLink)
            await link.send_keepalive()
            await link.send(bundle(sequence=1))
            await events_b.next()
            assert back.stats.extra["keepalives"] == 1
            assert link.stats.extra["keepalives_sent"] == 1
            assert link.stats.bundles_sent == 2

    run(body)


def test_rate_limit_paces_sends_in_order() -> None:
    """A fake clock and sleep record what the CLA waits for: the accounting, not the timing."""

    async def body() -> None:
        clock = [0]
        waits: list[float] = []

        async def fake_sleep(seconds: float) -> None:
            waits.append(seconds)
            clock[0] += round(seconds * 1000)

        data = [bundle(sequence=n) for n in range(4)]
        size = len(data[0])
        assert all(len(d) == size for d in data)
        events_a, events_b = Events(), Events()
        # 1000 bytes/s is one byte per ms; the bucket holds one bundle and 10 bytes more.
        a = cla(
            events_a,
            rate_bytes_per_s=1000,
            burst_bytes=size + 10,
            clock=lambda: clock[0],
            sleep=fake_sleep,
        )
        b = cla(events_b)
        await a.start()
        await b.start()
        try:
            link = await a.connect(f"127.0.0.1:{b.port}")
            await asyncio.gather(*(link.send(d) for d in data))
            received = [(await events_b.next()).read() for _ in data]
        finally:
            await a.stop()
            await b.stop()
        assert received == data  # in call order
        # The first goes at once; the second waits for the bytes the bucket lacks, the others
        # for a whole bundle's worth each.
        assert waits == [(size - 10) / 1000, size / 1000, size / 1000]
        assert link.stats.extra["rate_limited"] == 3
        assert link.stats.extra["rate_wait_ms"] == 3 * size - 10
        assert clock[0] == 3 * size - 10

    run(body)


def test_node_refusal_is_counted() -> None:
    async def body() -> None:
        async with started_pair() as pair:
            a, _, b, events_b = pair
            events_b.refuse = True
            link = await a.connect(f"127.0.0.1:{b.port}")
            await link.send(bundle())
            await link.send(bundle(sequence=1))
            first = await events_b.next()
            await events_b.next()
            events_b.refuse = False
            await link.send(bundle(sequence=2))
            await events_b.next()
            # The receive loop takes one datagram at a time, so by the time the third bundle
            # is handed over, both refusals have been counted.
            assert b.stats.refused == 2
            assert first.link.stats.refused == 2
            assert b.stats.bundles_received == 3

    run(body)


def test_close_and_stop_report_link_down() -> None:
    async def body() -> None:
        async with started_pair() as pair:
            a, events_a, b, _ = pair
            link = await a.connect(f"127.0.0.1:{b.port}")
            await link.close()
            assert not link.is_up
            assert events_a.down == [(link, "closed")]
            assert a.links == []
            with pytest.raises(LinkDown):
                await link.send(bundle())
            again = await a.connect(f"127.0.0.1:{b.port}")
            assert again is not link and again.is_up
            await a.stop()
            assert events_a.down[-1] == (again, "convergence layer stopped")
            assert not again.is_up

    run(body)


def test_inbound_links_are_bounded() -> None:
    async def body() -> None:
        async with started_pair() as pair:
            _, _, b, events_b = pair
            b.max_links = 2
            sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
            try:
                for n, raw in enumerate(sockets):
                    raw.bind(("127.0.0.1", 0))
                    raw.sendto(bundle(sequence=n), ("127.0.0.1", b.port))
                    await events_b.next()
            finally:
                for raw in sockets:
                    raw.close()
            assert len(b.links) == 2
            assert len(events_b.up) == 3
            assert [link for link, _ in events_b.down] == [events_b.up[0]]

    run(body)


def test_connect_starts_the_cla_and_reports_bad_names() -> None:
    async def body() -> None:
        a = cla(Events())
        try:
            with pytest.raises(ConnectError):
                await a.connect("nonexistent.invalid:4556")
            assert a.port != 0  # started on the way
            with pytest.raises(ConfigError):
                await a.connect("127.0.0.1:notaport")
        finally:
            await a.stop()

    run(body)


def test_configuration_errors() -> None:
    async def body() -> None:
        with pytest.raises(ConfigError):
            UdpConvergenceLayer(Events(), max_bundle_size=0)
        with pytest.raises(ConfigError):
            UdpConvergenceLayer(Events(), port=70000)
        too_big = cla(Events(), max_bundle_size=65_527)  # fine over IPv6, too large over IPv4
        with pytest.raises(ConfigError):
            await too_big.start()

    run(body)


def test_port_in_use_is_a_transport_error() -> None:
    async def body() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
            taken.bind(("127.0.0.1", 0))
            busy = UdpConvergenceLayer(Events(), host="127.0.0.1", port=taken.getsockname()[1])
            with pytest.raises(TransportError, match="cannot listen"):
                await busy.start()

    run(body)
