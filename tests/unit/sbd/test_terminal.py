"""SbdTerminal end to end against the emulator, in virtual time (no I/O, no clock)."""

from __future__ import annotations

import dataclasses
import random

import pytest

from dtncloud.errors import ConfigError
from dtncloud.sbd.config import SbdConfig
from dtncloud.sbd.cost import DAY_MS, credits_for
from dtncloud.sbd.emulator import EmulatorConfig
from dtncloud.sbd.modem import BudgetExhausted, SessionFailed
from dtncloud.sbd.terminal import BundleDropped, BundleReceived, BundleSent
from tests.unit.sbd.world import FAST, World


def payload(size: int, seed: int = 0) -> bytes:
    return b"\x9f" + random.Random(seed).randbytes(size - 1)


def received(world: World, index: int) -> list[bytes]:
    return [event.data for event in world.of(index, BundleReceived)]


def test_a_10k_bundle_crosses_despite_failing_sessions() -> None:
    world = World.make(emulator=EmulatorConfig(session_latency_ms=2_000, failure_rate=0.3))
    assert world.run(lambda: all(t.is_up for t in world.terminals))
    data = payload(10 * 1024)
    ticket = world.terminals[0].submit(data, now=world.now)
    assert world.run(lambda: bool(received(world, 1)), limit_ms=DAY_MS)
    assert received(world, 1) == [data]
    assert BundleSent(ticket) in world.events[0]
    assert world.of(0, SessionFailed)  # the failures were there, and retried
    sender = world.terminals[0].stats(world.now)
    pieces = -(-len(data) // 246)
    assert sender.messages_sent == pieces and sender.bundles_sent == 1
    last = len(data) - (pieces - 1) * 246 + 4
    assert sender.credits == 5 * (pieces - 1) + credits_for(last)  # full pieces cost 5
    assert sender.queued_bundles == 0 and sender.sessions_failed > 0
    receiver = world.terminals[1].stats(world.now)
    assert receiver.bundles_received == 1 and receiver.partial_bundles == 0
    assert receiver.messages_received == pieces
    assert set(receiver.as_dict()) >= {"credits", "sessions_ok", "queued_bytes", "signal"}


def test_urgent_then_small_bundles_go_first() -> None:
    world = World.make(emulator=EmulatorConfig(session_latency_ms=1_000))
    world.run(lambda: all(t.is_up for t in world.terminals))
    sender = world.terminals[0]
    big, small, urgent = payload(2_000, 1), payload(100, 2), payload(1_500, 3)
    sender.submit(big, now=world.now)  # its first piece goes at once
    sender.submit(small, now=world.now)
    sender.submit(urgent, now=world.now, priority=1)
    assert world.run(lambda: len(received(world, 1)) == 3)
    assert received(world, 1) == [urgent, small, big]


def test_a_bundle_that_expires_in_the_queue_is_dropped() -> None:
    world = World.make(emulator=EmulatorConfig(session_latency_ms=3_000))
    world.run(lambda: all(t.is_up for t in world.terminals))
    sender = world.terminals[0]
    first = sender.submit(payload(2_000), now=world.now)
    doomed = sender.submit(payload(200), now=world.now, expires_at=world.now + 5_000)
    assert world.run(lambda: bool(world.of(0, BundleDropped)))
    [dropped] = world.of(0, BundleDropped)
    assert dropped.ticket == doomed and "expired" in dropped.reason
    assert world.run(lambda: BundleSent(first) in world.events[0])


def test_the_daily_budget_holds_the_rest_until_midnight() -> None:
    config = dataclasses.replace(FAST, daily_credit_budget=10)
    start = DAY_MS - 60_000
    world = World.make(config=config, start=start)
    world.run(lambda: all(t.is_up for t in world.terminals))
    data = payload(246 * 3)  # three pieces of 5 credits
    world.terminals[0].submit(data, now=world.now)
    assert world.run(lambda: bool(world.of(0, BudgetExhausted)))
    assert world.now < DAY_MS
    assert world.terminals[0].stats(world.now).messages_sent == 2
    assert world.run(lambda: bool(received(world, 1)), limit_ms=DAY_MS)
    assert DAY_MS <= world.now < DAY_MS + 60_000
    assert received(world, 1) == [data]


def test_rockblock_addressing_reaches_an_unpaired_modem() -> None:
    addressed = dataclasses.replace(FAST, destination_serial="10002")
    world = World.make(3, configs=[FAST, FAST, addressed])  # modem 3 has no pair
    world.run(lambda: all(t.is_up for t in world.terminals))
    data = payload(1_000)
    world.terminals[2].submit(data, now=world.now)
    assert world.run(lambda: bool(received(world, 1)))
    assert received(world, 1) == [data]
    stats = world.terminals[2].stats(world.now)
    assert stats.messages_sent == 5  # 237 bundle bytes per message after the 9-byte prefix
    assert stats.bytes_sent == len(data) + 5 * (9 + 4)


def test_cancel_and_limits() -> None:
    world = World.make(emulator=EmulatorConfig(session_latency_ms=3_000))
    world.run(lambda: all(t.is_up for t in world.terminals))
    sender = world.terminals[0]
    ticket = sender.submit(payload(1_000), now=world.now)
    assert sender.cancel(ticket) and not sender.cancel(ticket)
    sender.submit(payload(500), now=world.now)
    sender.cancel_all("link down")
    assert len(world.terminals[0].stats(world.now).as_dict()) > 10
    world.shuttle()
    assert [e.reason for e in world.of(0, BundleDropped)] == ["cancelled", "link down"]
    with pytest.raises(ValueError):
        sender.submit(payload(sender.max_bundle_size + 1), now=world.now)


def test_modem_loss_and_return() -> None:
    world = World.make()
    world.run(lambda: all(t.is_up for t in world.terminals))
    terminal = world.terminals[0]
    terminal.port_closed("unplugged", world.now)
    assert not terminal.is_up
    terminal.start(world.now)
    assert world.run(lambda: terminal.is_up)


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"piece_size": 400}, "piece_size"),
        ({"piece_size": 4}, "piece_size"),
        ({"destination_serial": "12345678"}, "destination_serial"),
        ({"destination_serial": "1", "piece_size": 340}, "piece_size"),
        ({"min_signal": 6}, "min_signal"),
        ({"retry_delay_ms": 0}, "retry_delay_ms"),
        ({"retry_max_delay_ms": 10, "retry_delay_ms": 20}, "retry_max_delay_ms"),
        ({"retry_jitter": 1.0}, "retry_jitter"),
        ({"daily_credit_budget": 2}, "daily_credit_budget"),
        ({"mailbox_check_interval_ms": 0}, "mailbox_check_interval_ms"),
        ({"mo_max": 5000}, "mo_max"),
    ],
)
def test_config_errors_name_the_setting(changes: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        SbdConfig(**changes)  # type: ignore[arg-type]


def test_config_figures() -> None:
    config = SbdConfig()
    assert (config.capacity, config.max_bundle_size, config.prefix) == (246, 246 * 256, b"")
    addressed = SbdConfig(destination_serial="1234")
    assert addressed.prefix == b"RB0001234" and addressed.capacity == 237
    assert SbdConfig(piece_size=340, credit_aligned=False).capacity == 336
