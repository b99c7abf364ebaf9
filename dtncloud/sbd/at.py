"""The AT dialect of Iridium SBD transceivers (9602/9603, as in a RockBLOCK): encoding and parsing.

Pure functions and one incremental parser; nothing here does I/O.

* Commands end with a carriage return only (:func:`encode_command`); a line feed is not a
  terminator to these modems.
* Binary messages carry a 2-byte checksum: the low 16 bits of the sum of the bytes, high byte
  first (:func:`checksum`). ``AT+SBDWB=<n>`` is answered ``READY``, then the host sends the n
  bytes and the checksum (:func:`sbdwb_payload`); ``AT+SBDRB`` is answered with a 2-byte length,
  the message and its checksum (:func:`sbdrb_reply`), then ``OK``.
* :class:`ResponseParser` turns the modem's byte stream into :data:`Response` items: final
  result codes, information lines, ``READY``, ``SBDRING`` and the binary ``AT+SBDRB`` reply,
  however the stream is split into reads.
* :func:`parse_sbdix` and :func:`parse_csq` read the session and signal reports;
  :data:`MO_STATUS_NAMES` names every MO status of ``+SBDIX`` (0-4 are successes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "MO_MAX",
    "MT_MAX",
    "MO_STATUS_NAMES",
    "MT_STATUS_NAMES",
    "SBDWB_STATUS_NAMES",
    "BinaryReply",
    "FinalResult",
    "InfoLine",
    "Ready",
    "RingAlert",
    "Response",
    "ResponseParser",
    "SessionReport",
    "checksum",
    "encode_command",
    "mo_status_name",
    "parse_csq",
    "parse_sbdix",
    "sbdrb_reply",
    "sbdwb_payload",
]

#: Largest mobile-originated message of a 9602/9603 (device to network), in bytes.
MO_MAX = 340
#: Largest mobile-terminated message of a 9602/9603 (network to device), in bytes.
MT_MAX = 270

#: ``+SBDIX`` MO status codes. 0-4 are successes; every other value is a failure.
MO_STATUS_NAMES = {
    0: "MO message transferred",
    1: "MO transferred, MT message too big to transfer",
    2: "MO transferred, location update not accepted",
    3: "reserved (success)",
    4: "reserved (success)",
    5: "reserved (failure)",
    6: "reserved (failure)",
    7: "reserved (failure)",
    8: "reserved (failure)",
    10: "gateway: call did not complete in the allowed time",
    11: "gateway: MO message queue full",
    12: "MO message has too many segments",
    13: "gateway: session did not complete",
    14: "invalid segment size",
    15: "access denied",
    16: "transceiver locked (+CULK)",
    17: "gateway not responding (local session timeout)",
    18: "connection lost (RF drop)",
    19: "link failure (protocol error)",
    32: "no network service",
    35: "transceiver busy",
    36: "must wait 3 minutes since the last registration",
}

#: ``+SBDIX`` MT status codes.
MT_STATUS_NAMES = {0: "no MT message", 1: "MT message received", 2: "mailbox check failed"}

#: Status digits that answer the data of ``AT+SBDWB``.
SBDWB_STATUS_NAMES = {
    0: "written",
    1: "timeout: fewer bytes than promised",
    2: "checksum mismatch",
    3: "wrong size (1 to 340 bytes)",
}

# A 9522/9523 takes up to 1960 bytes; no SBD length field can be larger than 0x07FF, so a first
# byte above 0x07 where a binary reply is expected starts a text line (an echo, or ERROR).
_MAX_BINARY_LENGTH = 0x07FF
# Longer lines are garbage; they are dropped so that memory stays bounded.
_MAX_LINE = 512
_SBDIX = re.compile(
    r"\+SBDIXA?:\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)"
)
_CSQ = re.compile(r"\+CSQF?:\s*(\d+)")


def encode_command(text: str) -> bytes:
    """``text`` (``"AT+SBDIX"``) as the bytes to send: ASCII ending with a carriage return."""
    if "\r" in text or "\n" in text:
        raise ValueError("an AT command is one line")
    return text.encode("ascii") + b"\r"


def checksum(data: bytes | bytearray | memoryview) -> bytes:
    """The SBD checksum of ``data``: the low 16 bits of its byte sum, high byte first."""
    return (sum(data) & 0xFFFF).to_bytes(2, "big")


def sbdwb_payload(message: bytes) -> bytes:
    """What the host sends after ``READY``: the message and its checksum."""
    return message + checksum(message)


def sbdrb_reply(message: bytes) -> bytes:
    """What a modem sends for ``AT+SBDRB`` before ``OK``: length, message, checksum."""
    return len(message).to_bytes(2, "big") + message + checksum(message)


def mo_status_name(code: int) -> str:
    """A short description of a ``+SBDIX`` MO status code (unknown codes are failures)."""
    return MO_STATUS_NAMES.get(code, f"failure (status {code})")


@dataclass(frozen=True)
class SessionReport:
    """The fields of a ``+SBDIX:`` reply, in order."""

    mo_status: int
    momsn: int
    mt_status: int
    mtmsn: int
    mt_length: int
    mt_queued: int

    @property
    def mo_succeeded(self) -> bool:
        """Whether the MO buffer (possibly empty: a mailbox check) went to the gateway."""
        return 0 <= self.mo_status <= 4

    @property
    def mt_received(self) -> bool:
        return self.mt_status == 1

    @property
    def mailbox_failed(self) -> bool:
        return self.mt_status == 2

    @property
    def mo_status_text(self) -> str:
        return mo_status_name(self.mo_status)


def parse_sbdix(line: str) -> SessionReport | None:
    """The report in a ``+SBDIX: a, b, c, d, e, f`` line, or ``None`` if it is not one."""
    match = _SBDIX.match(line.strip())
    if match is None:
        return None
    mo, momsn, mt, mtmsn, length, queued = (int(group) for group in match.groups())
    if momsn > 0xFFFF or mtmsn > 0xFFFF or length > _MAX_BINARY_LENGTH:
        return None
    return SessionReport(mo, momsn, mt, mtmsn, length, queued)


def parse_csq(line: str) -> int | None:
    """The signal strength 0-5 in a ``+CSQ:n`` line, or ``None`` if it is not one."""
    match = _CSQ.match(line.strip())
    if match is None:
        return None
    value = int(match.group(1))
    return value if value <= 5 else None


# -- responses ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FinalResult:
    """``OK`` (``ok`` true) or ``ERROR``: the end of a command's reply."""

    ok: bool


@dataclass(frozen=True)
class InfoLine:
    """Any other non-empty line (a status digit, ``+SBDIX: ...``, an echoed command)."""

    text: str

    @property
    def is_echo(self) -> bool:
        """Whether this is the modem echoing a command back (echo is on)."""
        return self.text[:2].upper() == "AT"


@dataclass(frozen=True)
class Ready:
    """``READY``: the modem waits for the bytes announced by ``AT+SBDWB``."""


@dataclass(frozen=True)
class RingAlert:
    """``SBDRING``: a mobile-terminated message waits at the gateway (unsolicited)."""


@dataclass(frozen=True)
class BinaryReply:
    """The binary reply to ``AT+SBDRB``; ``checksum_ok`` says whether its checksum matched."""

    data: bytes
    checksum_ok: bool


Response = FinalResult | InfoLine | Ready | RingAlert | BinaryReply


class ResponseParser:
    """Splits the bytes a modem sends into :data:`Response` items, incrementally.

    Lines end with CR, LF or both; empty lines are skipped. After :meth:`expect_binary` (call
    it when sending ``AT+SBDRB``) the next item is read as a binary reply, except that text
    lines before it (an echo, ``ERROR``, ``SBDRING``) are still recognised. Over-long lines
    are dropped and counted in :attr:`dropped_bytes`. :meth:`feed` never raises.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._binary = False
        self._discarding = False
        #: bytes of over-long lines thrown away
        self.dropped_bytes = 0

    @property
    def expecting_binary(self) -> bool:
        return self._binary

    def expect_binary(self) -> None:
        """Read the next reply as ``AT+SBDRB``'s: 2-byte length, data, 2-byte checksum."""
        self._binary = True

    def reset(self) -> None:
        """Forget buffered bytes and any binary expectation (after a timeout)."""
        self._buffer.clear()
        self._binary = False
        self._discarding = False

    def feed(self, data: bytes | bytearray | memoryview) -> list[Response]:
        """The complete items in the stream so far; partial ones wait for more bytes."""
        self._buffer += data
        items: list[Response] = []
        while True:
            item = self._next_item()
            if item is None:
                return items
            if isinstance(item, FinalResult):
                self._binary = False
            items.append(item)

    def _next_item(self) -> Response | None:
        buffer = self._buffer
        while True:
            if self._binary and not self._discarding:
                # Line ends left over from earlier replies cannot start a length (it would
                # exceed every SBD limit), so they are skipped.
                skip = 0
                while skip < len(buffer) and buffer[skip] in b"\r\n":
                    skip += 1
                del buffer[:skip]
                if not buffer:
                    return None
                if buffer[0] <= _MAX_BINARY_LENGTH >> 8:
                    return self._binary_item()
            line = self._take_line()
            if line is None:
                return None
            if line:
                return _classify(line)

    def _binary_item(self) -> BinaryReply | None:
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        length = int.from_bytes(buffer[:2], "big")
        end = 2 + length + 2
        if len(buffer) < end:
            return None
        data = bytes(buffer[2 : 2 + length])
        received = bytes(buffer[2 + length : end])
        del buffer[:end]
        self._binary = False
        return BinaryReply(data, received == checksum(data))

    def _take_line(self) -> str | None:
        """The next line without its terminator ("" for an empty one), or None if incomplete."""
        buffer = self._buffer
        end = next((i for i, byte in enumerate(buffer) if byte in b"\r\n"), -1)
        if end < 0:
            if len(buffer) > _MAX_LINE:
                self.dropped_bytes += len(buffer)
                buffer.clear()
                self._discarding = True
            return None
        raw = bytes(buffer[:end])
        del buffer[: end + 1]
        if self._discarding:
            self.dropped_bytes += len(raw) + 1
            self._discarding = False
            return ""
        if len(raw) > _MAX_LINE:
            self.dropped_bytes += len(raw) + 1
            return ""
        return raw.decode("ascii", errors="replace").strip()


def _classify(line: str) -> Response:
    upper = line.upper()
    if upper == "OK":
        return FinalResult(True)
    if upper == "ERROR":
        return FinalResult(False)
    if upper == "READY":
        return Ready()
    if upper == "SBDRING":
        return RingAlert()
    return InfoLine(line)
