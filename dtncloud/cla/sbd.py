"""The Iridium SBD convergence layer (``type = "sbd"``): bundles through a RockBLOCK-style modem.

One CLA drives one modem on one serial port and has one link: the peer reached through the
Iridium gateway, whose node ID is configured (``SbdOptions.peer_node_id``) because SBD
messages carry none. Everything that is protocol or policy is the sans-IO
:class:`~dtncloud.sbd.terminal.SbdTerminal`; this module moves bytes between it and the port,
re-arms its one timer, and turns its events into the :class:`~dtncloud.cla.base.LinkEvents`
calls and :meth:`SbdLink.send` results.

* :meth:`SbdConvergenceLayer.start` opens the port; the link is *up* (``link_up``) once the
  modem has answered its initialisation, and *down* (``link_down``) when it stops answering
  or the port goes away. A vanished port is reopened every ``reopen_delay_ms``.
* :meth:`SbdLink.send` queues the bundle and returns once every piece of it went to the
  gateway in a successful session. SBD says nothing about the far modem fetching it, so the
  CLA is unreliable (``reliable = False``), like UDP. Sessions that fail are retried after a
  back-off, so ``send`` may take minutes (hours, when the daily credit budget is spent).
  It raises ``TransferRefused(reason=2)`` for a bundle over :attr:`max_bundle_size`,
  ``TransferRefused`` if the bundle expired in the queue, and ``LinkDown`` if the modem is
  lost meanwhile (its pieces already sent are wasted).
* Bundles are ordered by urgency (less than ``urgent_lifetime_ms`` of lifetime left: first),
  then size: the lifetime is read from the BPv7 primary block when it can be.
* Received bundles go to ``LinkEvents.bundle_received`` one at a time, in arrival order.
* :attr:`SbdConvergenceLayer.stats` has the figures (sessions, bytes, credits, queue).

Serial I/O is pyserial-asyncio (the library the serial CLA uses too): it watches the port's file
descriptor with the event loop's ``add_reader``, so there is no thread, pseudo-terminals work
(pyserial ignores the modem-control ioctls a pty does not have), and an unplugged device
arrives as ``connection_lost``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import serial_asyncio  # type: ignore[import-untyped, unused-ignore]

from dtncloud import bpv7
from dtncloud.cla.base import (
    ConvergenceLayer,
    Link,
    LinkEvents,
    Outgoing,
    ReceivedBundle,
    outgoing_length,
)
from dtncloud.dtntime import dtn_time_from_unix
from dtncloud.errors import ConfigError, ConnectError, DtnError, LinkDown, TransferRefused
from dtncloud.sbd.config import SbdConfig
from dtncloud.sbd.modem import (
    BudgetExhausted,
    ModemLost,
    ModemReady,
    ModemTrouble,
    SessionFailed,
    SignalTooWeak,
)
from dtncloud.sbd.terminal import (
    BundleDropped,
    BundleReceived,
    BundleSent,
    SbdStats,
    SbdTerminal,
    TerminalEvent,
)

__all__ = ["SbdConvergenceLayer", "SbdLink", "SbdOptions"]

log = logging.getLogger(__name__)

#: TCPCLv4 XFER_REFUSE reason 2 ("no resources"): too large for the link; fragment, retry.
_NO_RESOURCES = 2
_BAUD_RATES = frozenset({1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200})


@dataclass(frozen=True, kw_only=True)
class SbdOptions(SbdConfig):
    """Settings of one SBD convergence layer: the port and peer, plus every
    :class:`~dtncloud.sbd.config.SbdConfig` field (sizes, timings, signal, budget)."""

    #: serial device of the modem (``/dev/ttyUSB0``, or a pty of ``dtncloud sbd-emulator``)
    device: str
    #: node ID of the node behind the peer modem (SBD carries no node IDs)
    peer_node_id: str | None = None
    #: our own node ID, for status displays
    node_id: str | None = None
    baudrate: int = 19200
    #: how long ``connect`` waits for the modem to answer its initialisation
    connect_timeout_ms: int = 60_000
    #: pause before reopening a port that went away
    reopen_delay_ms: int = 5_000
    #: bundles with less lifetime than this left go before all others
    urgent_lifetime_ms: int = 3_600_000

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.device:
            raise ConfigError("sbd device: a serial device is required")
        if self.baudrate not in _BAUD_RATES:
            known = ", ".join(str(rate) for rate in sorted(_BAUD_RATES))
            raise ConfigError(f"sbd baudrate: {self.baudrate} is not one of {known}")
        for key in ("connect_timeout_ms", "reopen_delay_ms", "urgent_lifetime_ms"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"sbd {key}: must be positive")


def _wall_clock_dtn_ms() -> int:
    return dtn_time_from_unix(time.time())


class SbdLink(Link):
    """The one link of an SBD CLA: the peer behind the Iridium gateway."""

    cla_name = "sbd"

    def __init__(self, cla: SbdConvergenceLayer) -> None:
        super().__init__()
        self._cla = cla
        self.peer_address = cla.options.device

    @property
    def peer_node_id(self) -> str | None:
        """The configured peer node ID (SBD carries none)."""
        return self._cla.options.peer_node_id

    @property
    def max_bundle_size(self) -> int:
        return self._cla.max_bundle_size

    @property
    def is_up(self) -> bool:
        return self._cla._up

    async def send(self, bundle: Outgoing, *, priority: int | None = None) -> None:
        """Send one encoded bundle; see the module docstring for what returning means.

        ``priority`` (higher first) replaces the urgency read from the bundle's lifetime.
        """
        await self._cla._send(bundle, priority)

    async def close(self) -> None:
        """Close the port: the CLA has no other link."""
        await self._cla.stop()


class _PortProtocol(asyncio.Protocol):
    def __init__(self, cla: SbdConvergenceLayer) -> None:
        self._cla = cla
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._cla._data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cla._port_lost(self, exc)


class SbdConvergenceLayer(ConvergenceLayer):
    """Bundles over one Iridium SBD modem (see the module docstring).

    ``rng`` drives retry jitter and the first segment tag; ``clock`` returns DTN time in ms
    (the wall clock by default: the daily budget follows UTC days and lifetimes are DTN times).
    """

    name = "sbd"
    reliable = False

    def __init__(
        self,
        events: LinkEvents,
        options: SbdOptions,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        super().__init__(events)
        self.options = options
        self._clock = clock or _wall_clock_dtn_ms
        self.terminal = SbdTerminal(options, rng=rng or random.Random())
        self.link = SbdLink(self)
        self._up = False
        self._ready = asyncio.Event()
        self._started = False
        self._protocol: _PortProtocol | None = None
        self._transport: Any = None
        self._timer: asyncio.TimerHandle | None = None
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._deliverer: asyncio.Task[None] | None = None
        self._reopener: asyncio.Task[None] | None = None

    # -- ConvergenceLayer ---------------------------------------------------------------------

    @property
    def max_bundle_size(self) -> int:
        return self.options.max_bundle_size

    @property
    def links(self) -> list[Link]:
        return [self.link] if self._up else []

    @property
    def stats(self) -> SbdStats:
        """Sessions, bytes, credits and queue now (``stats.as_dict()`` for a plain dict)."""
        return self.terminal.stats(self._clock())

    async def start(self) -> None:
        """Open the port and start initialising the modem; raises ``ConnectError`` if the
        port cannot be opened. The link comes up (``link_up``) when the modem answers."""
        if self._started:
            return
        await self._open()
        self._started = True
        self._deliverer = asyncio.create_task(self._deliver_loop(), name="sbd-deliver")

    async def stop(self) -> None:
        """Close the port; pending sends fail with ``LinkDown``."""
        if not self._started:
            return
        self._started = False
        reopener, self._reopener = self._reopener, None
        if reopener is not None:
            reopener.cancel()
        self._close_port("convergence layer stopped")
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deliverer, self._deliverer = self._deliverer, None
        tasks = [task for task in (reopener, deliverer) if task is not None]
        for task in tasks:
            task.cancel()
        # gather, not suppress(CancelledError): a cancellation of stop() must propagate.
        await asyncio.gather(*tasks, return_exceptions=True)

    async def connect(self, address: str = "") -> SbdLink:
        """The link through the modem at ``address`` (the configured device; ``""`` too).

        Starts the CLA if need be and waits until the modem answers; raises
        :class:`ConnectError` if the port does not open or the modem stays silent for
        ``connect_timeout_ms``.
        """
        if address and address != self.options.device:
            raise ConnectError(
                f"sbd: this convergence layer drives {self.options.device}, not {address}"
            )
        await self.start()
        try:
            await asyncio.wait_for(self._ready.wait(), self.options.connect_timeout_ms / 1000)
        except TimeoutError:
            raise ConnectError(
                f"sbd {self.options.device}: the modem did not answer within "
                f"{self.options.connect_timeout_ms / 1000:g} s"
            ) from None
        return self.link

    # -- the port -----------------------------------------------------------------------------

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        protocol = _PortProtocol(self)
        try:
            transport, _ = await serial_asyncio.create_serial_connection(
                loop, lambda: protocol, self.options.device, baudrate=self.options.baudrate
            )
        except (OSError, ValueError) as exc:  # serial.SerialException is an OSError
            raise ConnectError(f"sbd {self.options.device}: cannot open the port: {exc}") from exc
        self._protocol = protocol
        self._transport = transport
        # Whatever a previous user left unread (old ring alerts, replies) means nothing now.
        with contextlib.suppress(Exception):
            transport.serial.reset_input_buffer()
        log.info("sbd: opened %s at %d baud", self.options.device, self.options.baudrate)
        self.terminal.start(self._clock())
        self._flush()

    def _close_port(self, reason: str) -> None:
        transport, self._transport = self._transport, None
        self._protocol = None
        if transport is not None:
            transport.abort()
        self.terminal.port_closed(reason, self._clock())
        self._flush()

    def _port_lost(self, protocol: _PortProtocol, exc: Exception | None) -> None:
        if protocol is not self._protocol:
            return  # a port we closed ourselves
        self._transport = None
        self._protocol = None
        reason = f"the serial port closed: {exc}" if exc else "the serial port closed"
        log.warning("sbd %s: %s", self.options.device, reason)
        self.terminal.port_closed(reason, self._clock())
        self._flush()
        if self._started and self._reopener is None:
            self._reopener = asyncio.get_running_loop().create_task(
                self._reopen_loop(), name="sbd-reopen"
            )

    async def _reopen_loop(self) -> None:
        delay = self.options.reopen_delay_ms / 1000
        try:
            while self._started and self._transport is None:
                await asyncio.sleep(delay)
                try:
                    await self._open()
                except ConnectError as exc:
                    log.debug("%s", exc)
                    delay = min(delay * 2, 60.0)
        finally:
            self._reopener = None

    def _data_received(self, data: bytes) -> None:
        self.terminal.receive_data(data, self._clock())
        self._flush()

    # -- driving the terminal -----------------------------------------------------------------

    def _flush(self) -> None:
        data = self.terminal.data_to_send()
        if data and self._transport is not None:
            self._transport.write(data)
        while (event := self.terminal.next_event()) is not None:
            self._handle_event(event)
        self._arm_timer()

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = self.terminal.get_timer()
        if when is None:
            return
        # One millisecond late rather than early, so that the timer is due when it fires.
        delay = max(0, when - self._clock() + 1) / 1000
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.terminal.handle_timer(self._clock())
        self._flush()

    def _handle_event(self, event: TerminalEvent) -> None:
        device = self.options.device
        if isinstance(event, BundleSent):
            waiter = self._waiters.pop(event.ticket, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        elif isinstance(event, BundleDropped):
            waiter = self._waiters.pop(event.ticket, None)
            if waiter is not None and not waiter.done():
                waiter.set_exception(TransferRefused(f"sbd {device}: {event.reason}"))
        elif isinstance(event, BundleReceived):
            self._inbox.put_nowait(event.data)
        elif isinstance(event, ModemReady):
            log.info("sbd %s: modem ready", device)
            if not self._up:
                self._up = True
                self._ready.set()
                self.events.link_up(self.link)
        elif isinstance(event, ModemLost):
            log.warning("sbd %s: modem lost: %s", device, event.reason)
            self._link_down(event.reason)
        elif isinstance(event, SessionFailed):
            log.info("sbd %s: session failed: %s", device, event.reason)
        elif isinstance(event, ModemTrouble):
            log.warning("sbd %s: %s", device, event.reason)
        elif isinstance(event, SignalTooWeak):
            log.info("sbd %s: signal %d is too weak; waiting", device, event.signal)
        elif isinstance(event, BudgetExhausted):
            log.warning("sbd %s: daily credit budget spent; sessions wait for the next day", device)
        else:
            log.debug("sbd %s: %s", device, event)

    def _link_down(self, reason: str) -> None:
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters.values():
            if not waiter.done():
                waiter.set_exception(LinkDown(f"sbd {self.options.device}: {reason}"))
        self.terminal.cancel_all(reason)
        if self._up:
            self._up = False
            self._ready.clear()
            self.events.link_down(self.link, reason)

    # -- sending and receiving -----------------------------------------------------------------

    async def _send(self, bundle: Outgoing, priority: int | None) -> None:
        size = outgoing_length(bundle)
        if size > self.max_bundle_size:
            self._refuse(size)
        if isinstance(bundle, bytes | bytearray | memoryview):
            data = bytes(bundle)
        else:
            data = Path(bundle).read_bytes()
            if len(data) > self.max_bundle_size:  # the file grew since it was measured
                self._refuse(len(data))
        if not self._up:
            raise LinkDown(f"sbd {self.options.device}: the modem is not answering")
        now = self._clock()
        urgency, expires_at = self._urgency(data, now)
        ticket = self.terminal.submit(
            data, now=now, priority=urgency if priority is None else priority, expires_at=expires_at
        )
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[ticket] = waiter
        self._flush()
        try:
            await waiter
        except asyncio.CancelledError:
            self._waiters.pop(ticket, None)
            self.terminal.cancel(ticket)
            self._flush()
            raise
        self.link.stats.bundles_sent += 1
        self.link.stats.bytes_sent += len(data)

    def _refuse(self, size: int) -> None:
        self.link.stats.refused += 1
        raise TransferRefused(
            f"bundle of {size} bytes exceeds the SBD limit of {self.max_bundle_size} bytes: "
            "fragment it",
            reason=_NO_RESOURCES,
        )

    def _urgency(self, data: bytes, now: int) -> tuple[int, int | None]:
        """Priority (1: urgent) and expiry time from the bundle's primary block, if BPv7."""
        try:
            primary = bpv7.decode_bundle(data, max_size=len(data), lenient=True).primary
        except DtnError:
            return 0, None
        if primary.creation_time == 0:
            return 0, None  # no clock at the source: the age block would be needed
        expires_at = primary.creation_time + primary.lifetime
        urgent = expires_at - now < self.options.urgent_lifetime_ms
        return int(urgent), expires_at

    async def _deliver_loop(self) -> None:
        while True:
            data = await self._inbox.get()
            self.link.stats.bundles_received += 1
            self.link.stats.bytes_received += len(data)
            try:
                await self.events.bundle_received(ReceivedBundle(len(data), self.link, data=data))
            except TransferRefused as exc:
                # Nobody to tell over SBD; the count is all that remains.
                self.link.stats.refused += 1
                log.debug("sbd %s: node refused a bundle: %s", self.options.device, exc)
            except Exception:
                log.exception("sbd %s: handing over a received bundle failed", self.options.device)
