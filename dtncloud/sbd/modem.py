"""The host side of an Iridium SBD modem, as a sans-IO state machine.

:class:`ModemController` speaks the AT dialect of :mod:`dtncloud.sbd.at` to one modem. Bytes
from the serial port go in through :meth:`~ModemController.receive_data`, bytes for it come
out of :meth:`~ModemController.data_to_send`, and what happened comes out of
:meth:`~ModemController.next_event`. Time comes in as ``now`` (ms); command timeouts, retry
back-off, signal waits and mailbox checks are woken through
:meth:`~ModemController.get_timer` / :meth:`~ModemController.handle_timer`.

What it does, one command at a time:

* **initialise**: ``AT``, ``AT&K0`` (no flow control), ``ATE0`` (no echo), ``AT+SBDMTA=1``
  (ring alerts), ``AT+SBDD0`` (empty MO buffer); then :class:`ModemReady`.
* **session**: ``AT+CSQ`` (below ``min_signal``: :class:`SignalTooWeak`, wait), the message
  into the MO buffer (``AT+SBDWB``, ``READY``, data and checksum, status digit), or an empty
  MO buffer for a mailbox check (``AT+SBDD0``), then ``AT+SBDIX`` (``AT+SBDIXA`` after a
  ring alert), then ``AT+SBDRB`` if a message came in (checksum checked, read again if bad).
  MO status 0-4 is success; anything else is :class:`SessionFailed` and a retry after a
  back-off (``retry_delay_ms`` doubling up to ``retry_max_delay_ms``, with jitter from the
  injected ``random.Random``; at least 3 minutes after status 36). Messages still queued at
  the gateway (``MT queued`` > 0) or a ring alert bring on another session.
* The messages themselves come from an :class:`Outbox` that the controller asks when a
  session is about to start, so that the most urgent message goes first; the outbox hears
  synchronously when a message went out or the modem refused it.
* A daily :class:`~dtncloud.sbd.cost.CreditBudget` is asked before each session; when it is
  spent the controller waits for the next UTC day (:class:`BudgetExhausted`).
* A modem that does not answer, or answers nonsense, gets timeouts: :class:`ModemTrouble`
  and a re-initialisation, and after ``max_command_failures`` in a row :class:`ModemLost`
  (the link is down) while it keeps trying to initialise the modem again. Nothing the modem
  sends makes :meth:`~ModemController.receive_data` raise.
"""

from __future__ import annotations

import enum
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from dtncloud.sbd.at import (
    SBDWB_STATUS_NAMES,
    BinaryReply,
    InfoLine,
    Ready,
    Response,
    ResponseParser,
    RingAlert,
    SessionReport,
    encode_command,
    parse_csq,
    parse_sbdix,
    sbdwb_payload,
)
from dtncloud.sbd.config import SbdConfig
from dtncloud.sbd.cost import CreditBudget, credits_for

__all__ = [
    "BudgetExhausted",
    "MessageReceived",
    "MessageSent",
    "ModemController",
    "ModemEvent",
    "ModemLost",
    "ModemReady",
    "ModemStats",
    "ModemTrouble",
    "Outbox",
    "RingReceived",
    "SessionFailed",
    "SessionSucceeded",
    "SignalTooWeak",
]

# Status 36 asks to wait three minutes; 15 (access denied) and 16 (locked) will not clear soon.
_MIN_WAIT_AFTER = {36: 180_000}
_LONG_WAIT_STATUSES = frozenset({15, 16})
# Attempts at writing one message into the MO buffer, and at reading one MT message.
_WRITE_ATTEMPTS = 3
_READ_ATTEMPTS = 3


class Outbox(Protocol):
    """Where the controller gets the messages it sends (the terminal's queue)."""

    def has_message(self) -> bool:
        """Whether a message waits (cheap; no side effects)."""

    def next_message(self, now: int) -> bytes | None:
        """The message the next session should carry, or ``None`` (a mailbox check)."""

    def message_sent(self, message: bytes, now: int) -> None:
        """``message`` (as returned by :meth:`next_message`) reached the gateway."""

    def message_refused(self, message: bytes, reason: str, now: int) -> None:
        """The modem will not take ``message`` (wrong size): do not offer it again."""


# -- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModemReady:
    """The modem answered and is initialised: the link is up."""


@dataclass(frozen=True)
class ModemLost:
    """The modem stopped answering (or its port closed): the link is down."""

    reason: str


@dataclass(frozen=True)
class ModemTrouble:
    """Something went wrong that the controller recovers from by itself (worth a log line)."""

    reason: str


@dataclass(frozen=True)
class RingReceived:
    """An ``SBDRING``: a message waits at the gateway; a session will fetch it."""


@dataclass(frozen=True)
class SignalTooWeak:
    signal: int
    retry_at: int


@dataclass(frozen=True)
class BudgetExhausted:
    credits_needed: int
    resume_at: int


@dataclass(frozen=True)
class SessionSucceeded:
    report: SessionReport
    #: what this session is estimated to cost
    credits: int
    #: whether the session carried no message (a mailbox check)
    mailbox_check: bool


@dataclass(frozen=True)
class SessionFailed:
    reason: str
    retry_at: int
    report: SessionReport | None = None


@dataclass(frozen=True)
class MessageSent:
    message: bytes
    momsn: int


@dataclass(frozen=True)
class MessageReceived:
    message: bytes
    mtmsn: int


ModemEvent = (
    ModemReady
    | ModemLost
    | ModemTrouble
    | RingReceived
    | SignalTooWeak
    | BudgetExhausted
    | SessionSucceeded
    | SessionFailed
    | MessageSent
    | MessageReceived
)


@dataclass
class ModemStats:
    """Counters for status displays and metrics."""

    sessions_ok: int = 0
    sessions_failed: int = 0
    mailbox_checks: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    #: MO bytes billed (address prefix included)
    bytes_sent: int = 0
    bytes_received: int = 0
    credits: int = 0
    ring_alerts: int = 0
    timeouts: int = 0
    #: replies that fit no command (ignored)
    unexpected: int = 0
    signal: int | None = None
    last_mo_status: int | None = None
    mo_statuses: dict[int, int] = field(default_factory=dict)


# -- the state machine -------------------------------------------------------------------------


class _Step(enum.Enum):
    PROBE = enum.auto()
    FLOW = enum.auto()
    ECHO = enum.auto()
    RING = enum.auto()
    CLEAR_INIT = enum.auto()
    CSQ = enum.auto()
    CLEAR_MO = enum.auto()
    WRITE = enum.auto()
    SESSION = enum.auto()
    READ = enum.auto()


# Fixed commands; WRITE and SESSION are made up when sent.
_COMMANDS = {
    _Step.PROBE: "AT",
    _Step.FLOW: "AT&K0",
    _Step.ECHO: "ATE0",
    _Step.RING: "AT+SBDMTA=1",
    _Step.CLEAR_INIT: "AT+SBDD0",
    _Step.CSQ: "AT+CSQ",
    _Step.CLEAR_MO: "AT+SBDD0",
    _Step.READ: "AT+SBDRB",
}


_INIT_STEPS = (_Step.PROBE, _Step.FLOW, _Step.ECHO, _Step.RING, _Step.CLEAR_INIT)


@dataclass
class _Pending:
    step: _Step
    command: str
    deadline_at: int
    infos: list[str] = field(default_factory=list)
    ready: bool = False
    status: int | None = None
    binary: BinaryReply | None = None


class ModemController:
    """Drives one SBD modem (see the module docstring). Call :meth:`start` first."""

    def __init__(
        self,
        config: SbdConfig,
        outbox: Outbox,
        *,
        rng: random.Random,
        budget: CreditBudget | None = None,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.rng = rng
        self.budget = budget if budget is not None else CreditBudget(config.daily_credit_budget)
        self.stats = ModemStats()
        self._parser = ResponseParser()
        self._out = bytearray()
        self._events: deque[ModemEvent] = deque()
        self._pending: _Pending | None = None
        self._steps: deque[_Step] = deque()
        self._procedure: str | None = None  # "init", "session" or None
        self._started = False
        self._up = False
        self._initialised = False
        self._wake_at: int | None = None
        self._command_failures = 0
        # Session state
        self._next_session_at = 0
        self._failures = 0
        self._mo: bytes | None = None  # what the MO buffer holds; None: unknown
        self._message: bytes | None = None
        self._ring = False
        self._rings = 0  # ring alerts so far
        self._rings_at_start = 0  # ... when the current session started
        self._want_mailbox = False
        self._last_mailbox_at = 0
        self._write_attempts = 0
        self._read_attempts = 0
        self._expected_mt: SessionReport | None = None

    # -- public interface --------------------------------------------------------------------

    @property
    def is_up(self) -> bool:
        """Whether the modem answers (initialised at least once since it was last lost)."""
        return self._up

    @property
    def busy(self) -> bool:
        """Whether a command is in progress."""
        return self._pending is not None

    @property
    def next_session_at(self) -> int:
        return self._next_session_at

    def start(self, now: int) -> None:
        """Begin (or begin again, after the port was reopened) by initialising the modem."""
        self._started = True
        self._reset_link_state()
        self._wake_at = now
        self._last_mailbox_at = now
        self._advance(now)

    def port_closed(self, reason: str, now: int) -> None:
        """The serial port went away: the modem is lost until :meth:`start` is called again."""
        self._started = False
        self._reset_link_state()
        self._wake_at = None
        self._lose(reason)

    def poke(self, now: int) -> None:
        """Something changed outside (a message was queued): start a session if one is due."""
        self._advance(now)

    def request_mailbox_check(self, now: int) -> None:
        """Check the mailbox at the next opportunity."""
        self._want_mailbox = True
        self._advance(now)

    def receive_data(self, data: bytes | bytearray | memoryview, now: int) -> None:
        """Bytes from the modem. Never raises for anything the modem sends."""
        for item in self._parser.feed(data):
            self._on_response(item, now)
        self._advance(now)

    def data_to_send(self) -> bytes:
        """Bytes for the modem, accumulated since the last call."""
        data = bytes(self._out)
        self._out.clear()
        return data

    def next_event(self) -> ModemEvent | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> int | None:
        """When :meth:`handle_timer` should be called next (``None``: only on new input)."""
        if not self._started:
            return None
        if self._pending is not None:
            return self._pending.deadline_at
        if not self._initialised:
            return self._wake_at
        if self._procedure is not None:
            return None
        candidates: list[int] = []
        if self.outbox.has_message() or self._want_mailbox:
            candidates.append(self._next_session_at)
        interval = self.config.mailbox_check_interval_ms
        if interval is not None:
            candidates.append(max(self._next_session_at, self._last_mailbox_at + interval))
        return min(candidates) if candidates else None

    def handle_timer(self, now: int) -> None:
        pending = self._pending
        if pending is not None and now >= pending.deadline_at:
            self._timed_out(pending, now)
        self._advance(now)

    # -- responses ---------------------------------------------------------------------------

    def _on_response(self, item: Response, now: int) -> None:
        if isinstance(item, RingAlert):
            self.stats.ring_alerts += 1
            self._rings += 1
            self._ring = True
            self._want_mailbox = True
            self._events.append(RingReceived())
            return
        pending = self._pending
        if isinstance(item, InfoLine) and item.is_echo:
            return
        if pending is None:
            self.stats.unexpected += 1
            return
        if isinstance(item, Ready):
            if pending.step is _Step.WRITE and not pending.ready and self._message is not None:
                pending.ready = True
                pending.deadline_at = now + self.config.command_timeout_ms
                self._out += sbdwb_payload(self._message)
            else:
                self.stats.unexpected += 1
        elif isinstance(item, BinaryReply):
            if pending.step is _Step.READ and pending.binary is None:
                pending.binary = item
            else:
                self.stats.unexpected += 1
        elif isinstance(item, InfoLine):
            if pending.step in (_Step.WRITE, _Step.CLEAR_INIT, _Step.CLEAR_MO):
                text = item.text
                if len(text) == 1 and text.isdigit() and pending.status is None:
                    pending.status = int(text)
                    if pending.step is _Step.WRITE and pending.status == 1:
                        self._complete(False, now)  # the timeout status has no OK after it
                else:
                    self.stats.unexpected += 1
            elif len(pending.infos) < 8:
                pending.infos.append(item.text)
        else:
            self._complete(item.ok, now)

    def _complete(self, ok: bool, now: int) -> None:
        pending = self._pending
        assert pending is not None
        self._pending = None
        step = pending.step
        if self._procedure != "init":
            self._command_failures = 0  # during initialisation, refusals count as failures
        if self._procedure == "init":
            self._init_step_done(pending, ok, now)
        elif step is _Step.CSQ:
            self._signal_known(pending, ok, now)
        elif step is _Step.CLEAR_MO:
            if ok and pending.status == 0:
                self._mo = b""
            else:
                self._mo = None
                self._session_failed("the modem could not clear its MO buffer", None, now)
        elif step is _Step.WRITE:
            self._written(pending, ok, now)
        elif step is _Step.SESSION:
            report = next((r for r in map(parse_sbdix, pending.infos) if r is not None), None)
            if not ok or report is None:
                what = "ERROR" if not ok else "OK without a +SBDIX report"
                self._session_failed(f"the modem answered {pending.command} with {what}", None, now)
            else:
                self._session_done(report, now)
        elif step is _Step.READ:
            self._read(pending, ok, now)

    # -- initialisation ----------------------------------------------------------------------

    def _init_step_done(self, pending: _Pending, ok: bool, now: int) -> None:
        if pending.step is _Step.CLEAR_INIT and pending.status != 0:
            ok = False
        if not ok and pending.step is not _Step.FLOW:  # not every modem knows &K0
            self._command_failures += 1
            self._abort(f"the modem refused {pending.command} while being initialised", now)
            return
        if pending.step is _Step.CLEAR_INIT:
            self._mo = b""
        if not self._steps:
            self._procedure = None
            self._initialised = True
            self._command_failures = 0
            self._wake_at = None
            if not self._up:
                self._up = True
                self._events.append(ModemReady())

    # -- sessions ----------------------------------------------------------------------------

    def _maybe_start_session(self, now: int) -> bool:
        if now < self._next_session_at:
            return False
        has_message = self.outbox.has_message()
        interval = self.config.mailbox_check_interval_ms
        mailbox_due = self._want_mailbox or (
            interval is not None and now >= self._last_mailbox_at + interval
        )
        if not has_message and not mailbox_due:
            return False
        message = self.outbox.next_message(now) if has_message else None
        if message is None and not mailbox_due:
            return False
        needed = credits_for(len(message)) if message is not None else 1
        if not self.budget.allows(needed, now):
            resume = self.budget.next_day_at(now)
            self._next_session_at = resume
            self._events.append(BudgetExhausted(needed, resume))
            return False
        self._message = message
        self._rings_at_start = self._rings
        self._write_attempts = 0
        self._read_attempts = 0
        self._procedure = "session"
        if self.config.min_signal > 0:
            self._steps.append(_Step.CSQ)
        if message is None:
            if self._mo != b"":
                self._steps.append(_Step.CLEAR_MO)
        elif self._mo != message:
            self._steps.append(_Step.WRITE)
        self._steps.append(_Step.SESSION)
        return True

    def _signal_known(self, pending: _Pending, ok: bool, now: int) -> None:
        signal = next((s for s in map(parse_csq, pending.infos) if s is not None), None)
        if not ok or signal is None:
            self._events.append(
                ModemTrouble(f"no signal strength in the reply to {pending.command}")
            )
            self._end_session(now + self.config.signal_wait_ms)
            return
        self.stats.signal = signal
        if signal < self.config.min_signal:
            retry_at = now + self.config.signal_wait_ms
            self._events.append(SignalTooWeak(signal, retry_at))
            self._end_session(retry_at)

    def _written(self, pending: _Pending, ok: bool, now: int) -> None:
        message = self._message
        assert message is not None
        status = pending.status
        if ok and status == 0 and pending.ready:
            self._mo = message
            return
        self._mo = None
        if status == 3:
            reason = f"the modem refused a message of {len(message)} bytes (wrong size)"
            self._events.append(ModemTrouble(reason))
            self.outbox.message_refused(message, reason, now)
            self._end_session(now)
            return
        self._write_attempts += 1
        what = SBDWB_STATUS_NAMES.get(status, "ERROR") if status is not None else "ERROR"
        if self._write_attempts < _WRITE_ATTEMPTS:
            self._events.append(ModemTrouble(f"writing the MO buffer failed ({what}); again"))
            self._steps.appendleft(_Step.WRITE)
        else:
            self._session_failed(f"writing the MO buffer failed ({what})", None, now)

    def _session_done(self, report: SessionReport, now: int) -> None:
        stats = self.stats
        stats.last_mo_status = report.mo_status
        stats.mo_statuses[report.mo_status] = stats.mo_statuses.get(report.mo_status, 0) + 1
        message = self._message
        if not report.mo_succeeded:
            self._session_failed(
                f"MO status {report.mo_status}: {report.mo_status_text}", report, now
            )
            return
        if report.mt_status == 2 and message is None:
            self._session_failed("the mailbox check failed (MT status 2)", report, now)
            return
        credits = 0
        if message is not None:
            credits += credits_for(len(message))
            stats.messages_sent += 1
            stats.bytes_sent += len(message)
            # The MO buffer keeps the message; a mailbox check must clear it first.
            self.outbox.message_sent(message, now)
            self._events.append(MessageSent(message, report.momsn))
        if report.mt_status != 2:
            self._last_mailbox_at = now
            # A ring alert during the session may announce a message it did not see.
            if self._rings == self._rings_at_start:
                self._ring = False
                self._want_mailbox = report.mt_queued > 0
        if report.mt_received:
            credits += credits_for(report.mt_length)
            self._expected_mt = report
            self._steps.appendleft(_Step.READ)
        elif message is None:
            credits += 1
        if message is None:
            stats.mailbox_checks += 1
        if report.mo_status == 1:
            self._events.append(ModemTrouble("a message waits that is too big for this modem"))
        stats.sessions_ok += 1
        stats.credits += credits
        self.budget.spend(credits, now)
        self._failures = 0
        self._next_session_at = now + self.config.session_interval_ms
        self._events.append(SessionSucceeded(report, credits, message is None))

    def _read(self, pending: _Pending, ok: bool, now: int) -> None:
        expected = self._expected_mt
        reply = pending.binary
        if (
            ok
            and reply is not None
            and reply.checksum_ok
            and expected is not None
            and reply.data
            and len(reply.data) == expected.mt_length
        ):
            self.stats.messages_received += 1
            self.stats.bytes_received += len(reply.data)
            self._events.append(MessageReceived(reply.data, expected.mtmsn))
            return
        self._read_attempts += 1
        if self._read_attempts < _READ_ATTEMPTS:
            self._events.append(ModemTrouble("reading the MT buffer failed; reading it again"))
            self._steps.appendleft(_Step.READ)
        else:
            self._events.append(ModemTrouble("an MT message was lost: reading it kept failing"))

    def _session_failed(self, reason: str, report: SessionReport | None, now: int) -> None:
        retry_at = self._count_failure(report, now)
        self._events.append(SessionFailed(reason, retry_at, report))
        self._end_session(retry_at)

    def _count_failure(self, report: SessionReport | None, now: int) -> int:
        """Count a failed session; returns when the next one may start (back-off)."""
        self.stats.sessions_failed += 1
        self._failures += 1
        delay: int = min(
            self.config.retry_max_delay_ms,
            self.config.retry_delay_ms * (1 << min(self._failures - 1, 30)),
        )
        if report is not None and report.mo_status in _LONG_WAIT_STATUSES:
            delay = self.config.retry_max_delay_ms
        jitter = self.config.retry_jitter
        delay = round(delay * (1 + self.rng.uniform(-jitter, jitter)))
        if report is not None:  # a wait the modem asks for is a floor, jitter or not
            delay = max(delay, _MIN_WAIT_AFTER.get(report.mo_status, 0))
        return now + max(1, delay)

    def _end_session(self, next_at: int) -> None:
        self._steps.clear()
        self._procedure = None
        self._message = None
        self._next_session_at = max(self._next_session_at, next_at)

    # -- commands, timeouts ------------------------------------------------------------------

    def _advance(self, now: int) -> None:
        """Send the next command if nothing is in progress; start what is due."""
        if not self._started:
            return
        while self._pending is None:
            if self._procedure is not None:
                if self._steps:
                    self._send(self._steps.popleft(), now)
                    return
                self._procedure = None
                self._message = None
                continue
            if not self._initialised:
                if self._wake_at is None or now < self._wake_at:
                    return
                self._procedure = "init"
                self._steps.extend(_INIT_STEPS)
                continue
            if not self._maybe_start_session(now):
                return

    def _send(self, step: _Step, now: int) -> None:
        if step is _Step.WRITE:
            assert self._message is not None
            command = f"AT+SBDWB={len(self._message)}"
        elif step is _Step.SESSION:
            command = "AT+SBDIXA" if self._ring else "AT+SBDIX"
        else:
            command = _COMMANDS[step]
        timeout = self.config.command_timeout_ms
        if step is _Step.SESSION:
            timeout = self.config.session_timeout_ms
        self._pending = _Pending(step, command, now + timeout)
        if step is _Step.READ:
            self._parser.expect_binary()
        self._out += encode_command(command)

    def _timed_out(self, pending: _Pending, now: int) -> None:
        self._pending = None
        self.stats.timeouts += 1
        self._command_failures += 1
        waited = pending.deadline_at - now
        reason = f"no answer to {pending.command}" + (f" ({-waited} ms late)" if waited else "")
        if pending.step is _Step.SESSION:
            retry_at = self._count_failure(None, now)
            self._next_session_at = max(self._next_session_at, retry_at)
            self._events.append(SessionFailed(reason, retry_at))
        self._abort(reason, now)

    def _abort(self, reason: str, now: int) -> None:
        """Give up the current procedure and initialise the modem again after a pause."""
        self._parser.reset()
        self._steps.clear()
        self._procedure = None
        self._message = None
        self._mo = None
        self._initialised = False
        self._wake_at = now + self.config.reinit_delay_ms
        if self._command_failures >= self.config.max_command_failures:
            self._lose(reason)
        else:
            self._events.append(ModemTrouble(reason))

    def _lose(self, reason: str) -> None:
        if self._up:
            self._up = False
            self._events.append(ModemLost(reason))

    def _reset_link_state(self) -> None:
        self._parser.reset()
        self._pending = None
        self._steps.clear()
        self._procedure = None
        self._message = None
        self._mo = None
        self._initialised = False
        self._command_failures = 0
