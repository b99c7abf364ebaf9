"""One conformance suite for every convergence layer (ARCHITECTURE.md, "Convergence layers").

Each test runs against TCPCLv4, TCPCLv3, UDP, the serial CLA (two pseudo-terminals joined by
a relay) and the in-memory fake, through the common interface only: start/stop, connect,
Link.send, and the LinkEvents callbacks. A property a CLA cannot have by its nature is
skipped with the reason its factory gives (``ClaPair.lacks``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from dtncloud.bpv7 import Bundle, decode_bundle, encode_bundle
from dtncloud.errors import ConnectError, LinkDown, TransferRefused, TransportError
from dtncloud.tcpcl.codes import XferRefuseReason
from tests.conformance.clas import FACTORIES, ClaPair

pytestmark = pytest.mark.timeout(60)

TIMEOUT = 20


def bundle_bytes(size: int, sequence: int = 0) -> bytes:
    bundle = Bundle.create(
        source="ipn:1.1", destination="ipn:2.1", payload=bytes(range(256)) * (size // 256) + b"x" * (size % 256),
        creation_time=1_000, sequence=sequence,
    )  # fmt: skip
    return encode_bundle(bundle)


def run(kind: str, tmp_path: Path, body: Callable[[ClaPair], Awaitable[None]]) -> None:
    async def main() -> None:
        async with FACTORIES[kind](tmp_path) as pair:
            await asyncio.wait_for(body(pair), TIMEOUT)

    asyncio.run(main())


def require(pair: ClaPair, ability: str) -> None:
    """Skip the test when the CLA cannot have ``ability`` (see ``ClaPair.lacks``)."""
    reason = pair.lacks.get(ability)
    if reason is not None:
        pytest.skip(f"{pair.kind}: {reason}")


@pytest.fixture(params=sorted(FACTORIES))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_a_bundle_arrives_intact(kind: str, tmp_path: Path) -> None:
    data = bundle_bytes(1000)

    async def body(pair: ClaPair) -> None:
        link = await pair.sender.connect(pair.address)
        assert link.is_up
        await link.send(data)
        assert await pair.receiver_events.received.get() == data
        assert link.stats.bundles_sent == 1

    run(kind, tmp_path, body)


def test_many_bundles_arrive_in_order(kind: str, tmp_path: Path) -> None:
    bundles = [bundle_bytes(100 + 37 * i, sequence=i) for i in range(40)]

    async def body(pair: ClaPair) -> None:
        link = await pair.sender.connect(pair.address)
        for data in bundles:
            await link.send(data)
        got = [await pair.receiver_events.received.get() for _ in bundles]
        assert got == bundles

    run(kind, tmp_path, body)


def test_concurrent_sends_all_arrive(kind: str, tmp_path: Path) -> None:
    bundles = [bundle_bytes(500, sequence=i) for i in range(25)]

    async def body(pair: ClaPair) -> None:
        link = await pair.sender.connect(pair.address)
        await asyncio.gather(*(link.send(data) for data in bundles))
        got = [await pair.receiver_events.received.get() for _ in bundles]
        assert sorted(got) == sorted(bundles)

    run(kind, tmp_path, body)


def test_a_bundle_from_a_file_arrives_intact(kind: str, tmp_path: Path) -> None:
    data = bundle_bytes(45_000)
    source = tmp_path / "out.bundle"
    source.write_bytes(data)

    async def body(pair: ClaPair) -> None:
        link = await pair.sender.connect(pair.address)
        await link.send(source)
        received = await pair.receiver_events.received.get()
        assert received == data
        assert decode_bundle(received).payload == decode_bundle(data).payload

    run(kind, tmp_path, body)


def test_too_large_a_bundle_is_refused_as_no_resources(kind: str, tmp_path: Path) -> None:
    async def body(pair: ClaPair) -> None:
        link = await pair.sender.connect(pair.address)
        data = bundle_bytes(pair.limit + 1000)
        with pytest.raises(TransferRefused) as info:
            await link.send(data)
        assert info.value.reason == XferRefuseReason.NO_RESOURCES
        # The link survives the refusal and carries the next bundle.
        small = bundle_bytes(200)
        await link.send(small)
        assert await pair.receiver_events.received.get() == small

    run(kind, tmp_path, body)


def test_a_refusal_by_the_receiving_node_reaches_the_sender(kind: str, tmp_path: Path) -> None:
    async def body(pair: ClaPair) -> None:
        require(pair, "refusals")
        pair.receiver_events.refuse_with = XferRefuseReason.COMPLETED
        link = await pair.sender.connect(pair.address)
        with pytest.raises(TransferRefused) as info:
            await link.send(bundle_bytes(300))
        assert info.value.reason == XferRefuseReason.COMPLETED
        pair.receiver_events.refuse_with = None
        data = bundle_bytes(300, sequence=1)
        await link.send(data)
        assert await pair.receiver_events.received.get() == data

    run(kind, tmp_path, body)


def test_link_up_is_reported_on_both_sides(kind: str, tmp_path: Path) -> None:
    async def body(pair: ClaPair) -> None:
        link = await pair.sender.connect(pair.address)
        await link.send(bundle_bytes(100))
        await pair.receiver_events.received.get()
        assert link in pair.sender_events.ups or not pair.reliable
        assert pair.receiver_events.ups, "the receiver saw no link come up"
        assert pair.receiver.links

    run(kind, tmp_path, body)


def test_connect_reuses_the_open_link(kind: str, tmp_path: Path) -> None:
    async def body(pair: ClaPair) -> None:
        first = await pair.sender.connect(pair.address)
        second = await pair.sender.connect(pair.address)
        assert first is second

    run(kind, tmp_path, body)


def test_sending_after_close_fails_cleanly(kind: str, tmp_path: Path) -> None:
    async def body(pair: ClaPair) -> None:
        link = await pair.sender.connect(pair.address)
        await link.send(bundle_bytes(100))
        await link.close()
        assert not link.is_up
        with pytest.raises(TransportError):
            await link.send(bundle_bytes(100))

    run(kind, tmp_path, body)


def test_a_link_to_nowhere_fails_with_connect_error(kind: str, tmp_path: Path) -> None:
    async def body(pair: ClaPair) -> None:
        require(pair, "nowhere")
        with pytest.raises(ConnectError):
            await pair.sender.connect(pair.nowhere)

    run(kind, tmp_path, body)


def test_stopping_the_receiver_takes_the_link_down(kind: str, tmp_path: Path) -> None:
    async def body(pair: ClaPair) -> None:
        require(pair, "peer_stop")
        link = await pair.sender.connect(pair.address)
        await link.send(bundle_bytes(100))
        await pair.receiver.stop()
        await pair.sender_events.went_down.wait()
        assert not link.is_up
        with pytest.raises((LinkDown, TransferRefused, ConnectError)):
            await link.send(bundle_bytes(100))

    run(kind, tmp_path, body)
