"""An emulated Iridium SBD modem and gateway, sans-IO, for tests and ``dtncloud sbd-emulator``.

:class:`EmulatedModem` answers the AT dialect of a 9602/9603 the way the host sees it: one MO
and one MT buffer, 16-bit MOMSN/MTMSN counters, the 340/270-byte limits, the ``AT+SBDWB``
``READY`` handshake with its checksum check and 60-second timeout, ``AT+SBDIX`` sessions with
a configurable duration, failure probability (from an injected ``random.Random``) and signal
strength, ring alerts, ``AT+SBDD``, ``AT+SBDS``/``+SBDSX``, ``AT+SBDTC`` and echo on/off. It
starts as a real one does: echo on, ring alerts off.

:class:`SbdGateway` carries each modem's MO messages to another modem's MT queue, like
RockBLOCK-to-RockBLOCK messaging: a message that starts with ``RB`` and the 7-digit serial
number of an attached modem goes to that modem without the 9-byte prefix; any other message
goes to the modem paired with the sender (:meth:`SbdGateway.pair`), or is dropped if there is
none. Delivered messages wait in the receiver's MT queue (at most ``queue_limit``) and ring it.

:class:`SbdNetwork` holds a gateway and its modems behind one timer, which is what a shell
needs. Time is virtual: ``now`` in milliseconds, as everywhere in the core.

``AT+SBDIX`` reports the MOMSN given to the message it sent (the counter advances after a
successful session that carried a message); a failed session reports the current counter.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

from dtncloud.sbd.at import MO_MAX, MT_MAX, checksum, sbdrb_reply

__all__ = ["EmulatorConfig", "EmulatedModem", "GatewayStats", "SbdGateway", "SbdNetwork"]

#: MO statuses an emulated failed session reports (chosen at random).
FAILURE_STATUSES = (10, 13, 17, 18, 19, 32, 35)
_MAX_LINE = 512
_OK = b"\r\nOK\r\n"
_ERROR = b"\r\nERROR\r\n"


@dataclass(frozen=True, kw_only=True)
class EmulatorConfig:
    #: how long an AT+SBDIX session takes
    session_latency_ms: int = 2_000
    #: probability that a session fails (0..1)
    failure_rate: float = 0.0
    #: what AT+CSQ reports (0..5); 0 also makes every session fail (no network)
    signal: int = 5
    #: time from a successful MO session to the message waiting at the receiver
    delivery_delay_ms: int = 0
    #: how long AT+SBDWB waits for the promised bytes
    write_timeout_ms: int = 60_000
    #: MT messages the gateway holds per modem; more are dropped
    queue_limit: int = 50
    mo_max: int = MO_MAX
    mt_max: int = MT_MAX

    def __post_init__(self) -> None:
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError(f"failure rate must be 0..1, not {self.failure_rate}")
        if not 0 <= self.signal <= 5:
            raise ValueError(f"signal must be 0..5, not {self.signal}")
        if self.session_latency_ms < 0 or self.delivery_delay_ms < 0:
            raise ValueError("latencies must not be negative")


@dataclass
class ModemStats:
    sessions: int = 0
    failed_sessions: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    commands: int = 0


class EmulatedModem:
    """One emulated 9602/9603 (see the module docstring)."""

    def __init__(
        self,
        number: int,
        *,
        gateway: SbdGateway,
        rng: random.Random,
        config: EmulatorConfig | None = None,
        serial: int | None = None,
        imei: str | None = None,
    ) -> None:
        self.number = number
        self.serial = serial if serial is not None else 10_000 + number
        self.imei = imei if imei is not None else f"3002340{number:08d}"
        self.gateway = gateway
        self.rng = rng
        self.config = config or EmulatorConfig()
        self.signal = self.config.signal
        self.stats = ModemStats()
        self.echo = True
        self.ring_alerts = False
        self.mo = b""
        self.mt = b""
        self.momsn = 0
        self.mtmsn = 0
        self.ring_flag = False
        self._out = bytearray()
        self._line = bytearray()
        self._overflow = False
        self._write_size: int | None = None  # bytes AT+SBDWB waits for (data + checksum)
        self._write_buffer = bytearray()
        self._write_deadline = 0
        self._session_until: int | None = None
        self._held = bytearray()  # input that arrived during a session
        self._ring_due = False
        gateway.attach(self)

    # -- sans-IO interface -------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview, now: int) -> None:
        if self._session_until is not None:
            self._held += data
            return
        self._process(bytes(data), now)

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    def get_timer(self) -> int | None:
        if self._session_until is not None:
            return self._session_until
        if self._write_size is not None:
            return self._write_deadline
        return None

    def handle_timer(self, now: int) -> None:
        if self._session_until is not None and now >= self._session_until:
            self._finish_session(now)
        elif self._write_size is not None and now >= self._write_deadline:
            self._write_size = None
            self._write_buffer.clear()
            self._out += b"1\r\n"  # timeout: no OK follows
            self._ring_if_due()

    def ring(self, now: int) -> None:
        """The gateway has a message for this modem."""
        if not self.ring_alerts:
            return
        self.ring_flag = True
        self._ring_due = True
        if self._session_until is None and self._write_size is None:
            self._ring_if_due()

    @property
    def in_session(self) -> bool:
        return self._session_until is not None

    # -- input -------------------------------------------------------------------------------

    def _process(self, data: bytes, now: int) -> None:
        i = 0
        while i < len(data):
            if self._write_size is not None:
                take = min(self._write_size - len(self._write_buffer), len(data) - i)
                self._write_buffer += data[i : i + take]
                i += take
                if len(self._write_buffer) == self._write_size:
                    self._finish_write()
                continue
            if self._session_until is not None:
                self._held += data[i:]
                return
            byte = data[i]
            i += 1
            if self.echo:
                self._out.append(byte)
            if byte == 0x0D:
                line = bytes(self._line)
                overflow, self._overflow = self._overflow, False
                self._line.clear()
                if overflow:
                    self._out += _ERROR
                else:
                    self._execute(line.decode("ascii", errors="replace").strip(), now)
            elif byte in (0x08, 0x7F):
                if self._line:
                    self._line.pop()
            elif byte != 0x0A:
                if len(self._line) < _MAX_LINE:
                    self._line.append(byte)
                else:
                    self._overflow = True

    def _execute(self, text: str, now: int) -> None:
        if text[:2].upper() != "AT":
            return  # a modem ignores what does not start with AT
        self.stats.commands += 1
        body = text[2:]
        command = body.upper()
        if command in ("", "&K0", "&K3", "E", "E0", "E1", "Z", "&F0"):
            if command in ("E", "E0"):
                self.echo = False
            elif command == "E1":
                self.echo = True
            self._ok()
        elif command in ("+CSQ", "+CSQF"):
            self._info(f"+CSQ:{self.signal}")
        elif command in ("+CGSN", "+GSN"):
            self._info(self.imei)
        elif command in ("I4", "+CGMM", "+GMM"):
            self._info("IRIDIUM 9600 Family SBD Transceiver")
        elif command in ("+SBDMTA=0", "+SBDMTA=1"):
            self.ring_alerts = command.endswith("1")
            self._ok()
        elif command == "+SBDMTA?":
            self._info(f"+SBDMTA:{int(self.ring_alerts)}")
        elif command.startswith("+SBDWB="):
            self._start_write(command[7:], now)
        elif command.startswith("+SBDWT="):
            text_message = body[7:].encode("ascii", errors="replace")
            if 1 <= len(text_message) <= self.config.mo_max:
                self.mo = text_message
                self._ok()
            else:
                self._error()
        elif command in ("+SBDIX", "+SBDIXA"):
            self.stats.sessions += 1
            self.mt = b""  # a session clears the MT buffer
            self._session_until = now + self.config.session_latency_ms
        elif command == "+SBDRB":
            self._out += sbdrb_reply(self.mt)
            self._ok()
        elif command == "+SBDRT":
            self._out += b"+SBDRT:\r\n" + self.mt + b"\r\n"
            self._ok()
        elif command in ("+SBDD0", "+SBDD1", "+SBDD2"):
            if command[-1] in "02":
                self.mo = b""
            if command[-1] in "12":
                self.mt = b""
            self._info("0")
        elif command == "+SBDS":
            self._info(f"+SBDS: {self._status_fields()}")
        elif command == "+SBDSX":
            queued = self.gateway.queued(self)
            fields = f"{self._status_fields()}, {int(self.ring_flag)}, {queued}"
            self._info(f"+SBDSX: {fields}")
        elif command == "+SBDTC":
            self.mt = self.mo
            self._info(f"SBDTC: Outbound SBD Copied to Inbound SBD: size = {len(self.mo)}")
        else:
            self._error()

    def _status_fields(self) -> str:
        mtmsn = self.mtmsn if self.mt else -1
        return f"{int(bool(self.mo))}, {self.momsn}, {int(bool(self.mt))}, {mtmsn}"

    # -- AT+SBDWB ----------------------------------------------------------------------------

    def _start_write(self, argument: str, now: int) -> None:
        try:
            size = int(argument)
        except ValueError:
            self._error()
            return
        if not 1 <= size <= self.config.mo_max:
            self._info("3")
            return
        self._write_size = size + 2
        self._write_buffer.clear()
        self._write_deadline = now + self.config.write_timeout_ms
        self._out += b"READY\r\n"

    def _finish_write(self) -> None:
        data = bytes(self._write_buffer[:-2])
        received = bytes(self._write_buffer[-2:])
        self._write_size = None
        self._write_buffer.clear()
        if received == checksum(data):
            self.mo = data
            self._info("0")
        else:
            self._info("2")
        self._ring_if_due()

    # -- AT+SBDIX ----------------------------------------------------------------------------

    def _finish_session(self, now: int) -> None:
        self._session_until = None
        # Draw every time, so that the sequence of outcomes depends only on the seed.
        failed = self.rng.random() < self.config.failure_rate or self.signal == 0
        status = 32 if self.signal == 0 else self.rng.choice(FAILURE_STATUSES)
        if failed:
            self.stats.failed_sessions += 1
            self._info(f"+SBDIX: {status}, {self.momsn}, 2, 0, 0, 0")
        else:
            momsn = self.momsn
            if self.mo:
                self.gateway.submit(self, self.mo, now)
                self.stats.messages_sent += 1
                self.momsn = (self.momsn + 1) & 0xFFFF
            message, queued = self.gateway.take(self)
            self.ring_flag = queued > 0
            if message is not None:
                self.mt = message
                self.mtmsn = (self.mtmsn + 1) & 0xFFFF
                self.stats.messages_received += 1
                mt = f"1, {self.mtmsn}, {len(message)}, {queued}"
            else:
                mt = "0, 0, 0, 0"
            self._info(f"+SBDIX: 0, {momsn}, {mt}")
        self._ring_if_due()
        held, self._held = bytes(self._held), bytearray()
        if held:
            self._process(held, now)

    # -- output ------------------------------------------------------------------------------

    def _info(self, text: str) -> None:
        self._out += text.encode("ascii") + b"\r\n" + _OK

    def _ok(self) -> None:
        self._out += _OK

    def _error(self) -> None:
        self._out += _ERROR

    def _ring_if_due(self) -> None:
        if self._ring_due and self.ring_alerts and self.gateway.queued(self):
            self._out += b"SBDRING\r\n"
        self._ring_due = False


# -- the gateway ---------------------------------------------------------------------------------


@dataclass
class GatewayStats:
    accepted: int = 0
    delivered: int = 0
    unroutable: int = 0
    too_big: int = 0
    queue_full: int = 0


class SbdGateway:
    """Carries MO messages to MT queues (see the module docstring)."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.stats = GatewayStats()
        self._modems: dict[int, EmulatedModem] = {}  # by serial number
        self._peers: dict[int, int] = {}
        self._queues: dict[int, deque[bytes]] = {}
        self._in_transit: deque[tuple[int, int, bytes]] = deque()  # (due, serial, message)

    def attach(self, modem: EmulatedModem) -> None:
        self._modems[modem.serial] = modem
        self._queues.setdefault(modem.serial, deque())

    def pair(self, a: EmulatedModem, b: EmulatedModem) -> None:
        """Unaddressed messages from either modem go to the other."""
        self._peers[a.serial] = b.serial
        self._peers[b.serial] = a.serial

    def queued(self, modem: EmulatedModem) -> int:
        return len(self._queues.get(modem.serial, ()))

    def take(self, modem: EmulatedModem) -> tuple[bytes | None, int]:
        """The next MT message for ``modem`` (if any) and how many remain after it."""
        queue = self._queues.get(modem.serial)
        if not queue:
            return None, 0
        message = queue.popleft()
        return message, len(queue)

    def queue_mt(self, modem: EmulatedModem, message: bytes, now: int) -> bool:
        """Put a message in ``modem``'s MT queue (as the provider's web service would)."""
        queue = self._queues[modem.serial]
        if not 1 <= len(message) <= self.config.mt_max:
            self.stats.too_big += 1
            return False
        if len(queue) >= self.config.queue_limit:
            self.stats.queue_full += 1
            return False
        queue.append(message)
        self.stats.delivered += 1
        modem.ring(now)
        return True

    def submit(self, sender: EmulatedModem, message: bytes, now: int) -> None:
        """An MO message reached the gateway in a successful session."""
        self.stats.accepted += 1
        target: int | None = self._peers.get(sender.serial)
        head = message[2:9]
        if message[:2] == b"RB" and len(head) == 7 and head.isdigit():
            target, message = int(head), message[9:]
        if target is None or target not in self._modems:
            self.stats.unroutable += 1
            return
        self._in_transit.append((now + self.config.delivery_delay_ms, target, message))
        self.handle_timer(now)

    def get_timer(self) -> int | None:
        return self._in_transit[0][0] if self._in_transit else None

    def handle_timer(self, now: int) -> None:
        while self._in_transit and self._in_transit[0][0] <= now:
            _, serial, message = self._in_transit.popleft()
            self.queue_mt(self._modems[serial], message, now)


class SbdNetwork:
    """A gateway and ``count`` modems (paired 1-2, 3-4, ...), driven as one."""

    def __init__(self, count: int, config: EmulatorConfig | None = None, *, seed: int) -> None:
        if count < 1:
            raise ValueError("at least one modem")
        self.config = config or EmulatorConfig()
        rng = random.Random(seed)
        self.gateway = SbdGateway(self.config)
        self.modems = [
            EmulatedModem(
                number,
                gateway=self.gateway,
                rng=random.Random(rng.getrandbits(64)),
                config=self.config,
            )
            for number in range(1, count + 1)
        ]
        for a, b in zip(self.modems[::2], self.modems[1::2], strict=False):
            self.gateway.pair(a, b)

    def receive_data(self, index: int, data: bytes | bytearray | memoryview, now: int) -> None:
        """Bytes from the host of modem ``index`` (0-based)."""
        self.modems[index].receive_data(data, now)

    def data_to_send(self, index: int) -> bytes:
        return self.modems[index].data_to_send()

    def get_timer(self) -> int | None:
        timers = [m.get_timer() for m in self.modems] + [self.gateway.get_timer()]
        known = [t for t in timers if t is not None]
        return min(known) if known else None

    def handle_timer(self, now: int) -> None:
        self.gateway.handle_timer(now)
        for modem in self.modems:
            timer = modem.get_timer()
            if timer is not None and timer <= now:
                modem.handle_timer(now)
