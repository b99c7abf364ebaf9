"""The host-side modem controller, byte for byte, in virtual time."""

from __future__ import annotations

import itertools
import random
from collections import deque
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dtncloud.sbd.at import sbdrb_reply
from dtncloud.sbd.config import SbdConfig
from dtncloud.sbd.modem import (
    BudgetExhausted,
    MessageReceived,
    MessageSent,
    ModemController,
    ModemLost,
    ModemReady,
    ModemTrouble,
    RingReceived,
    SessionFailed,
    SessionSucceeded,
    SignalTooWeak,
)

CONFIG = SbdConfig(
    command_timeout_ms=1_000,
    session_timeout_ms=60_000,
    retry_delay_ms=60_000,
    retry_max_delay_ms=600_000,
    retry_jitter=0.2,
    signal_wait_ms=10_000,
    reinit_delay_ms=5_000,
)
OK = b"\r\nOK\r\n"


class ListOutbox:
    def __init__(self, *messages: bytes) -> None:
        self.messages = deque(messages)
        self.sent: list[bytes] = []
        self.refused: list[bytes] = []

    def has_message(self) -> bool:
        return bool(self.messages)

    def next_message(self, now: int) -> bytes | None:
        return self.messages[0] if self.messages else None

    def message_sent(self, message: bytes, now: int) -> None:
        assert message == self.messages[0]
        self.sent.append(self.messages.popleft())

    def message_refused(self, message: bytes, reason: str, now: int) -> None:
        self.refused.append(self.messages.popleft())


def events(controller: ModemController) -> list[Any]:
    found = []
    while (event := controller.next_event()) is not None:
        found.append(event)
    return found


def exchange(controller: ModemController, expect: bytes, reply: bytes, now: int = 0) -> None:
    assert controller.data_to_send() == expect
    controller.receive_data(reply, now)


def ready(
    *messages: bytes, config: SbdConfig = CONFIG, seed: int = 0
) -> tuple[ModemController, ListOutbox]:
    """A controller that went through initialisation (the modem starts with echo on)."""
    outbox = ListOutbox()
    controller = ModemController(config, outbox, rng=random.Random(seed))
    controller.start(0)
    exchange(controller, b"AT\r", b"AT\r" + OK)
    exchange(controller, b"AT&K0\r", b"AT&K0\r" + OK)
    exchange(controller, b"ATE0\r", b"ATE0\r" + OK)
    exchange(controller, b"AT+SBDMTA=1\r", OK)
    exchange(controller, b"AT+SBDD0\r", b"0\r\n" + OK)
    assert events(controller) == [ModemReady()]
    assert controller.is_up
    if config.mailbox_check_interval_ms is None:
        assert controller.get_timer() is None
    outbox.messages.extend(messages)
    controller.poke(0)
    return controller, outbox


def send_hello(controller: ModemController, now: int = 0, momsn: int = 12) -> None:
    exchange(controller, b"AT+CSQ\r", b"+CSQ:4\r\n" + OK, now)
    exchange(controller, b"AT+SBDWB=5\r", b"READY\r\n", now)
    exchange(controller, b"hello\x02\x14", b"0\r\n" + OK, now)
    exchange(controller, b"AT+SBDIX\r", f"+SBDIX: 0, {momsn}, 0, 0, 0, 0\r\n".encode() + OK, now)


def test_a_message_goes_out() -> None:
    controller, outbox = ready(b"hello")
    send_hello(controller)
    assert outbox.sent == [b"hello"]
    found = events(controller)
    assert MessageSent(b"hello", 12) in found
    succeeded = [e for e in found if isinstance(e, SessionSucceeded)]
    assert succeeded[0].credits == 1 and not succeeded[0].mailbox_check
    assert controller.data_to_send() == b""
    assert controller.get_timer() is None
    assert controller.stats.sessions_ok == 1 and controller.stats.signal == 4


def test_a_failed_session_is_retried_after_a_growing_backoff() -> None:
    controller, outbox = ready(b"hello")
    exchange(controller, b"AT+CSQ\r", b"+CSQ:5\r\n" + OK)
    exchange(controller, b"AT+SBDWB=5\r", b"READY\r\n")
    exchange(controller, b"hello\x02\x14", b"0\r\n" + OK)
    exchange(controller, b"AT+SBDIX\r", b"+SBDIX: 18, 12, 2, 0, 0, 0\r\n" + OK)
    [failed] = [e for e in events(controller) if isinstance(e, SessionFailed)]
    assert "RF drop" in failed.reason and failed.report is not None
    assert 48_000 <= failed.retry_at <= 72_000
    assert controller.get_timer() == failed.retry_at
    controller.handle_timer(failed.retry_at - 1)
    assert controller.data_to_send() == b""
    # The MO buffer still holds the message: no second SBDWB.
    now = failed.retry_at
    controller.handle_timer(now)
    exchange(controller, b"AT+CSQ\r", b"+CSQ:5\r\n" + OK, now)
    exchange(controller, b"AT+SBDIX\r", b"+SBDIX: 32, 12, 2, 0, 0, 0\r\n" + OK, now)
    [second] = [e for e in events(controller) if isinstance(e, SessionFailed)]
    assert 96_000 <= second.retry_at - now <= 144_000
    assert outbox.sent == []


def test_statuses_that_ask_for_longer_waits() -> None:
    cases = [(36, 180_000), (15, 600_000 * 0.8), (16, 600_000 * 0.8)]
    for (status, least), seed in itertools.product(cases, range(5)):
        controller, _ = ready(b"hello", seed=seed)
        exchange(controller, b"AT+CSQ\r", b"+CSQ:5\r\n" + OK)
        exchange(controller, b"AT+SBDWB=5\r", b"READY\r\n")
        exchange(controller, b"hello\x02\x14", b"0\r\n" + OK)
        reply = f"+SBDIX: {status}, 1, 2, 0, 0, 0\r\n".encode() + OK
        exchange(controller, b"AT+SBDIX\r", reply)
        [failed] = [e for e in events(controller) if isinstance(e, SessionFailed)]
        assert failed.retry_at >= least, status


def test_every_mo_status_leads_somewhere() -> None:
    for status in range(0, 70):
        controller, outbox = ready(b"hello")
        exchange(controller, b"AT+CSQ\r", b"+CSQ:5\r\n" + OK)
        exchange(controller, b"AT+SBDWB=5\r", b"READY\r\n")
        exchange(controller, b"hello\x02\x14", b"0\r\n" + OK)
        reply = f"+SBDIX: {status}, 1, 0, 0, 0, 0\r\n".encode() + OK
        exchange(controller, b"AT+SBDIX\r", reply)
        found = events(controller)
        if status <= 4:
            assert outbox.sent == [b"hello"], status
            assert any(isinstance(e, SessionSucceeded) for e in found)
        else:
            assert outbox.sent == [], status
            assert controller.get_timer() is not None  # a retry is planned


def test_weak_signal_waits_without_counting_a_failure() -> None:
    controller, _outbox = ready(b"hello")
    exchange(controller, b"AT+CSQ\r", b"+CSQ:1\r\n" + OK, 100)
    assert events(controller) == [SignalTooWeak(1, 10_100)]
    assert controller.data_to_send() == b""
    assert controller.get_timer() == 10_100
    controller.handle_timer(10_100)
    assert controller.data_to_send() == b"AT+CSQ\r"
    assert controller.stats.sessions_failed == 0


def test_mailbox_check_clears_the_mo_buffer_and_fetches_what_is_queued() -> None:
    controller, _ = ready(b"hello")
    send_hello(controller)
    events(controller)
    controller.request_mailbox_check(10)
    exchange(controller, b"AT+CSQ\r", b"+CSQ:5\r\n" + OK, 10)
    exchange(controller, b"AT+SBDD0\r", b"0\r\n" + OK, 10)  # or SBDIX would send hello again
    exchange(controller, b"AT+SBDIX\r", b"+SBDIX: 0, 13, 1, 7, 5, 2\r\n" + OK, 10)
    exchange(controller, b"AT+SBDRB\r", sbdrb_reply(b"world") + OK, 10)
    found = events(controller)
    assert MessageReceived(b"world", 7) in found
    [ok] = [e for e in found if isinstance(e, SessionSucceeded)]
    assert ok.mailbox_check and ok.credits == 1  # the message received, not the check
    # Two more wait at the gateway: another session, straight away.
    exchange(controller, b"AT+CSQ\r", b"+CSQ:5\r\n" + OK, 10)
    exchange(controller, b"AT+SBDIX\r", b"+SBDIX: 0, 13, 0, 0, 0, 0\r\n" + OK, 10)
    assert controller.get_timer() is None
    assert controller.stats.mailbox_checks == 2 and controller.stats.credits == 3


def test_a_ring_alert_is_answered_with_sbdixa() -> None:
    controller, _ = ready()
    controller.receive_data(b"SBDRING\r\n", 5)
    assert events(controller) == [RingReceived()]
    exchange(controller, b"AT+CSQ\r", b"+CSQ:5\r\n" + OK, 5)
    exchange(controller, b"AT+SBDIXA\r", b"+SBDIX: 0, 0, 1, 1, 5, 0\r\n" + OK, 5)
    exchange(controller, b"AT+SBDRB\r", sbdrb_reply(b"hello") + OK, 5)
    assert MessageReceived(b"hello", 1) in events(controller)
    assert controller.get_timer() is None


def test_a_ring_during_a_session_brings_another_session() -> None:
    controller, _ = ready(b"hello")
    exchange(controller, b"AT+CSQ\r", b"+CSQ:5\r\n" + OK)
    exchange(controller, b"AT+SBDWB=5\r", b"READY\r\n")
    exchange(controller, b"hello\x02\x14", b"0\r\n" + OK)
    assert controller.data_to_send() == b"AT+SBDIX\r"
    controller.receive_data(b"SBDRING\r\n+SBDIX: 0, 1, 0, 0, 0, 0\r\n" + OK, 0)
    # The ring may announce a message this session missed: another one, straight away.
    exchange(controller, b"AT+CSQ\r", b"+CSQ:5\r\n" + OK)
    exchange(controller, b"AT+SBDD0\r", b"0\r\n" + OK)
    assert controller.data_to_send() == b"AT+SBDIXA\r"


def test_a_corrupt_mt_message_is_read_again() -> None:
    controller, _ = ready()
    controller.request_mailbox_check(0)
    exchange(controller, b"AT+CSQ\r", b"+CSQ:5\r\n" + OK)
    exchange(controller, b"AT+SBDIX\r", b"+SBDIX: 0, 0, 1, 1, 5, 0\r\n" + OK)
    exchange(controller, b"AT+SBDRB\r", b"\x00\x05hello\x00\x00" + OK)
    exchange(controller, b"AT+SBDRB\r", b"\x00\x05hellx\x02\x14" + OK)
    exchange(controller, b"AT+SBDRB\r", sbdrb_reply(b"hello") + OK)
    found = events(controller)
    assert MessageReceived(b"hello", 1) in found
    assert sum(isinstance(e, ModemTrouble) for e in found) == 2


def test_write_retries_and_refusal() -> None:
    controller, outbox = ready(b"hello", b"x" * 300)
    exchange(controller, b"AT+CSQ\r", b"+CSQ:5\r\n" + OK)
    exchange(controller, b"AT+SBDWB=5\r", b"READY\r\n")
    exchange(controller, b"hello\x02\x14", b"2\r\n" + OK)  # checksum mismatch on the line
    exchange(controller, b"AT+SBDWB=5\r", b"READY\r\n")
    exchange(controller, b"hello\x02\x14", b"1\r\n")  # timeout: no OK follows
    exchange(controller, b"AT+SBDWB=5\r", b"3\r\n" + OK)  # the modem refuses the size
    assert outbox.refused == [b"hello"]
    # The next message goes ahead at once.
    assert controller.data_to_send() == b"AT+CSQ\r"


def test_a_modem_that_stops_answering_is_lost_and_found_again() -> None:
    controller, _outbox = ready(b"hello")
    assert controller.data_to_send() == b"AT+CSQ\r"
    now = 0
    for _ in range(CONFIG.max_command_failures - 1):
        now = controller.get_timer() or 0
        controller.handle_timer(now)  # timeout
        now += CONFIG.reinit_delay_ms
        assert controller.get_timer() == now
        controller.handle_timer(now)
        assert controller.data_to_send() == b"AT\r"
    found = events(controller)
    assert sum(isinstance(e, ModemTrouble) for e in found) == CONFIG.max_command_failures - 1
    assert not any(isinstance(e, ModemLost) for e in found)
    controller.handle_timer(controller.get_timer() or 0)
    [lost] = events(controller)
    assert isinstance(lost, ModemLost) and "no answer to AT" in lost.reason
    assert not controller.is_up
    # It keeps probing; when the modem answers again, the link comes back.
    now = controller.get_timer() or 0
    controller.handle_timer(now)
    exchange(controller, b"AT\r", OK, now)
    exchange(controller, b"AT&K0\r", b"\r\nERROR\r\n", now)  # tolerated
    exchange(controller, b"ATE0\r", OK, now)
    exchange(controller, b"AT+SBDMTA=1\r", OK, now)
    exchange(controller, b"AT+SBDD0\r", b"0\r\n" + OK, now)
    assert events(controller) == [ModemReady()]
    assert controller.data_to_send() == b"AT+CSQ\r"


def test_a_session_that_never_ends_counts_as_failed() -> None:
    controller, _ = ready(b"hello")
    exchange(controller, b"AT+CSQ\r", b"+CSQ:5\r\n" + OK)
    exchange(controller, b"AT+SBDWB=5\r", b"READY\r\n")
    exchange(controller, b"hello\x02\x14", b"0\r\n" + OK)
    assert controller.data_to_send() == b"AT+SBDIX\r"
    assert controller.get_timer() == CONFIG.session_timeout_ms
    controller.handle_timer(CONFIG.session_timeout_ms)
    found = events(controller)
    assert any(isinstance(e, SessionFailed) for e in found)
    assert controller.stats.sessions_failed == 1 and controller.stats.timeouts == 1


def test_odd_answers_to_sbdix() -> None:
    controller, _ = ready(b"hello")
    exchange(controller, b"AT+CSQ\r", b"+CSQ:5\r\n" + OK)
    exchange(controller, b"AT+SBDWB=5\r", b"READY\r\n")
    exchange(controller, b"hello\x02\x14", b"0\r\n" + OK)
    exchange(controller, b"AT+SBDIX\r", b"+SBDIX: what\r\n" + OK)
    [failed] = [e for e in events(controller) if isinstance(e, SessionFailed)]
    assert "without a +SBDIX report" in failed.reason


def test_budget_defers_sessions_to_the_next_utc_day() -> None:
    config = SbdConfig(daily_credit_budget=6, retry_delay_ms=1000)
    day = 86_400_000
    controller, _outbox = ready(b"a" * 250, b"b" * 250, config=config)
    exchange(controller, b"AT+CSQ\r", b"+CSQ:5\r\n" + OK, 10)
    exchange(controller, b"AT+SBDWB=250\r", b"READY\r\n", 10)
    assert controller.data_to_send()[:250] == b"a" * 250
    controller.receive_data(b"0\r\n" + OK, 10)
    exchange(controller, b"AT+SBDIX\r", b"+SBDIX: 0, 1, 0, 0, 0, 0\r\n" + OK, 10)
    assert controller.budget.spent_today(10) == 5
    assert BudgetExhausted(5, day) in events(controller)
    assert controller.data_to_send() == b""
    assert controller.get_timer() == day
    controller.handle_timer(day)
    assert controller.data_to_send() == b"AT+CSQ\r"


def test_periodic_mailbox_checks() -> None:
    config = SbdConfig(mailbox_check_interval_ms=3_600_000, min_signal=0)
    controller, _ = ready(config=config)
    assert controller.get_timer() == 3_600_000
    controller.handle_timer(3_600_000)
    # min_signal 0: no AT+CSQ; the MO buffer is known to be empty: straight to the session.
    exchange(controller, b"AT+SBDIX\r", b"+SBDIX: 0, 0, 0, 0, 0, 0\r\n" + OK, 3_600_000)
    assert controller.get_timer() == 7_200_000


def test_port_closed_and_started_again() -> None:
    controller, _ = ready(b"hello")
    controller.port_closed("unplugged", 5)
    assert events(controller) == [ModemLost("unplugged")]
    assert controller.get_timer() is None
    controller.receive_data(b"OK\r\n", 6)  # nothing is running: ignored
    controller.start(10)
    assert controller.data_to_send().endswith(b"AT\r")


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=64),
            st.sampled_from(
                [
                    OK,
                    b"\r\nERROR\r\n",
                    b"READY\r\n",
                    b"SBDRING\r\n",
                    b"0\r\n",
                    b"1\r\n",
                    b"+CSQ:5\r\n",
                    b"+SBDIX: 0, 1, 1, 2, 5, 3\r\n",
                    b"+SBDIX: 18, 1, 2, 0, 0, 0\r\n",
                    b"\x00\x05hello\x02\x14",
                    b"\x07\xff",
                ]
            ),
            st.integers(0, 100_000),  # let time pass
        ),
        max_size=40,
    )
)
def test_nothing_the_modem_says_makes_it_raise(steps: list[bytes | int]) -> None:
    controller = ModemController(CONFIG, ListOutbox(b"hello", b"x" * 340), rng=random.Random(1))
    controller.start(0)
    now = 0
    for step in steps:
        if isinstance(step, int):
            now += step
            controller.handle_timer(now)
        else:
            controller.receive_data(step, now)
        controller.data_to_send()
        events(controller)
        timer = controller.get_timer()
        assert timer is None or isinstance(timer, int)
    # Whatever happened, the controller still has a way forward.
    assert controller.get_timer() is not None or controller.is_up
