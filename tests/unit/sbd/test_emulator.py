"""The emulated modem and gateway, byte for byte, in virtual time."""

from __future__ import annotations

import random

import pytest

from dtncloud.sbd.at import parse_sbdix, sbdrb_reply
from dtncloud.sbd.emulator import EmulatedModem, EmulatorConfig, SbdGateway, SbdNetwork

OK = b"\r\nOK\r\n"


def pair(**changes: object) -> tuple[EmulatedModem, EmulatedModem, SbdGateway]:
    config = EmulatorConfig(**{"session_latency_ms": 100, **changes})  # type: ignore[arg-type]
    gateway = SbdGateway(config)
    a = EmulatedModem(1, gateway=gateway, rng=random.Random(1), config=config)
    b = EmulatedModem(2, gateway=gateway, rng=random.Random(2), config=config)
    gateway.pair(a, b)
    for modem in (a, b):
        say(modem, b"ATE0\r")
    return a, b, gateway


def say(modem: EmulatedModem, data: bytes, now: int = 0) -> bytes:
    modem.receive_data(data, now)
    return modem.data_to_send()


def session(modem: EmulatedModem, now: int = 0, command: bytes = b"AT+SBDIX\r") -> bytes:
    assert say(modem, command, now) == b""
    assert modem.in_session
    end = modem.get_timer()
    assert end == now + modem.config.session_latency_ms
    modem.handle_timer(end)
    return modem.data_to_send()


def test_echo_is_on_until_ate0() -> None:
    gateway = SbdGateway()
    modem = EmulatedModem(1, gateway=gateway, rng=random.Random(0))
    assert say(modem, b"AT\r") == b"AT\r" + OK
    assert say(modem, b"ATE0\r") == b"ATE0\r" + OK
    assert say(modem, b"AT\r") == OK
    assert say(modem, b"ATE1\r") == OK
    assert say(modem, b"AT\r") == b"AT\r" + OK


def test_sbdwb_hello_vector() -> None:
    a, _, _ = pair()
    assert say(a, b"AT+SBDWB=5\r") == b"READY\r\n"
    assert say(a, b"hel") == b""  # split anywhere
    assert say(a, b"lo\x02\x14") == b"0\r\n" + OK
    assert a.mo == b"hello"
    assert say(a, b"AT+SBDS\r") == b"+SBDS: 1, 0, 0, -1\r\n" + OK


def test_sbdwb_checksum_size_and_timeout() -> None:
    a, _, _ = pair()
    say(a, b"AT+SBDWB=5\r")
    assert say(a, b"hello\x00\x00") == b"2\r\n" + OK
    assert a.mo == b""
    assert say(a, b"AT+SBDWB=341\r") == b"3\r\n" + OK
    assert say(a, b"AT+SBDWB=0\r") == b"3\r\n" + OK
    assert say(a, b"AT+SBDWB=x\r") == b"\r\nERROR\r\n"
    assert say(a, b"AT+SBDWB=340\r", 1_000) == b"READY\r\n"
    say(a, b"only a few bytes", 2_000)
    assert a.get_timer() == 61_000  # 60 s after the command
    a.handle_timer(61_000)
    assert a.data_to_send() == b"1\r\n"  # no OK after a timeout
    assert say(a, b"AT\r") == OK  # back in command mode


def test_a_message_crosses_the_gateway_with_a_ring_alert() -> None:
    a, b, gateway = pair()
    assert say(b, b"AT+SBDMTA=1\r") == OK
    say(a, b"AT+SBDWB=5\r")
    say(a, b"hello\x02\x14")
    reply = session(a)
    assert parse_sbdix(reply.split(b"\r\n")[0].decode()) is not None
    assert reply == b"+SBDIX: 0, 0, 0, 0, 0, 0\r\n" + OK
    assert b.data_to_send() == b"SBDRING\r\n"
    assert say(b, b"AT+SBDSX\r") == b"+SBDSX: 0, 0, 0, -1, 1, 1\r\n" + OK
    reply = session(b, 200, b"AT+SBDIXA\r")
    assert reply == b"+SBDIX: 0, 0, 1, 1, 5, 0\r\n" + OK
    assert say(b, b"AT+SBDRB\r") == sbdrb_reply(b"hello") + OK
    assert say(b, b"AT+SBDRB\r") == sbdrb_reply(b"hello") + OK  # reading does not clear
    assert say(b, b"AT+SBDD1\r") == b"0\r\n" + OK
    assert say(b, b"AT+SBDRB\r") == b"\x00\x00\x00\x00" + OK
    assert gateway.stats.delivered == 1
    # The MO buffer keeps the message; the counter moved on.
    assert a.mo == b"hello" and a.momsn == 1


def test_no_ring_without_sbdmta() -> None:
    a, b, _ = pair()
    say(a, b"AT+SBDWT=hi\r")
    session(a)
    assert b.data_to_send() == b""
    assert session(b) == b"+SBDIX: 0, 0, 1, 1, 2, 0\r\n" + OK


def test_queued_messages_are_reported_and_fetched_one_per_session() -> None:
    a, b, _ = pair()
    for text in (b"one", b"two", b"three"):
        say(a, b"AT+SBDWT=" + text + b"\r")
        session(a)
    assert session(b) == b"+SBDIX: 0, 0, 1, 1, 3, 2\r\n" + OK
    assert session(b) == b"+SBDIX: 0, 0, 1, 2, 3, 1\r\n" + OK
    assert session(b) == b"+SBDIX: 0, 0, 1, 3, 5, 0\r\n" + OK
    assert say(b, b"AT+SBDRB\r") == sbdrb_reply(b"three") + OK
    assert session(b) == b"+SBDIX: 0, 0, 0, 0, 0, 0\r\n" + OK
    assert say(b, b"AT+SBDRB\r") == b"\x00\x00\x00\x00" + OK  # a session clears the MT buffer


def test_counters_wrap_at_16_bits() -> None:
    a, _, _ = pair()
    a.momsn = 0xFFFF
    say(a, b"AT+SBDWT=x\r")
    session(a)
    assert a.momsn == 0


def test_failures_are_seeded_and_do_not_advance_momsn() -> None:
    def outcomes(seed: int) -> list[bytes]:
        config = EmulatorConfig(session_latency_ms=10, failure_rate=0.5)
        gateway = SbdGateway(config)
        modem = EmulatedModem(1, gateway=gateway, rng=random.Random(seed), config=config)
        say(modem, b"ATE0\r")
        say(modem, b"AT+SBDWT=x\r")
        return [session(modem) for _ in range(20)]

    first = outcomes(4)
    assert first == outcomes(4)
    assert first != outcomes(5)
    reports = [parse_sbdix(reply.split(b"\r\n")[0].decode()) for reply in first]
    successes = 0
    for report in reports:
        assert report is not None
        assert report.momsn == successes  # the counter moves only after a success
        if report.mo_succeeded:
            successes += 1
        else:
            assert report.mt_status == 2
    assert 3 <= successes <= 17


def test_no_signal_means_no_network() -> None:
    a, _, _ = pair(signal=0)
    assert say(a, b"AT+CSQ\r") == b"+CSQ:0\r\n" + OK
    assert session(a) == b"+SBDIX: 32, 0, 2, 0, 0, 0\r\n" + OK


def test_input_during_a_session_waits_for_it() -> None:
    a, _, _ = pair()
    say(a, b"AT+SBDIX\r")
    assert say(a, b"AT+CSQ\r") == b""
    a.handle_timer(100)
    assert a.data_to_send() == b"+SBDIX: 0, 0, 0, 0, 0, 0\r\n" + OK + b"+CSQ:5\r\n" + OK


def test_other_commands() -> None:
    a, _, _ = pair()
    assert say(a, b"AT+CGSN\r") == b"300234000000001\r\n" + OK
    assert say(a, b"AT+SBDMTA?\r") == b"+SBDMTA:0\r\n" + OK
    assert say(a, b"AT+SBDWT=loop\r") == OK
    assert say(a, b"AT+SBDTC\r").startswith(b"SBDTC: Outbound SBD Copied to Inbound SBD: size = 4")
    assert say(a, b"AT+SBDRT\r") == b"+SBDRT:\r\nloop\r\n" + OK
    assert say(a, b"AT+SBDD2\r") == b"0\r\n" + OK
    assert (a.mo, a.mt) == (b"", b"")
    assert say(a, b"AT+NONSENSE\r") == b"\r\nERROR\r\n"
    assert say(a, b"garbage\r\n") == b""  # not a command: ignored
    assert say(a, b"A" * 600 + b"\r") == b"\r\nERROR\r\n"


def test_gateway_routing_by_rb_prefix_and_limits() -> None:
    config = EmulatorConfig(session_latency_ms=10, queue_limit=1)
    network = SbdNetwork(3, config, seed=1)
    one, two, three = network.modems
    gateway = network.gateway
    gateway.submit(one, b"RB0010003hi three", 0)
    gateway.submit(one, b"to my peer", 0)
    gateway.submit(three, b"no peer", 0)  # modem 3 is not paired
    gateway.submit(one, b"RB0099999nobody", 0)
    gateway.submit(one, b"x" * 271, 0)  # a 9602 cannot receive it
    gateway.submit(one, b"RB0010003second", 0)  # queue of one is full
    assert gateway.take(three) == (b"hi three", 0)
    assert gateway.take(two) == (b"to my peer", 0)
    stats = gateway.stats
    assert (stats.unroutable, stats.too_big, stats.queue_full) == (2, 1, 1)


def test_delivery_delay_uses_the_network_timer() -> None:
    network = SbdNetwork(2, EmulatorConfig(delivery_delay_ms=500), seed=1)
    one, two = network.modems
    network.gateway.submit(one, b"later", 0)
    assert network.gateway.queued(two) == 0
    assert network.get_timer() == 500
    network.handle_timer(500)
    assert network.gateway.queued(two) == 1


def test_bad_configuration() -> None:
    with pytest.raises(ValueError):
        EmulatorConfig(failure_rate=2)
    with pytest.raises(ValueError):
        EmulatorConfig(signal=6)
    with pytest.raises(ValueError):
        SbdNetwork(0, seed=1)
