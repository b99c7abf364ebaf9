"""The serial convergence layer: bundles over a serial line, in SLIP or COBS frames.

A serial line (a null-modem cable, or a LoRa or packet-radio modem in transparent mode) joins
exactly two nodes, so this CLA has one port and at most one link: the link is up while the
port is open. The framing (SLIP or COBS, a CRC-32C per frame, bundles cut into frames no longer
than ``max_frame_size``) is the sans-IO :mod:`dtncloud.cla.framing`; docs/serial.md is the
operator's guide.

* :meth:`SerialConvergenceLayer.start` opens the port and keeps it open: a port that cannot be
  opened or disappears (a USB radio unplugged) takes the link down with the reason, and the CLA
  tries again with exponential backoff from ``reopen_initial_s`` to ``reopen_max_s``.
  :meth:`SerialLink.close` closes the port for good (until :meth:`connect`).
* :meth:`SerialLink.send` returns once every frame of the bundle has been handed to the
  operating system's serial driver. Nothing is acknowledged (``reliable = False``): a frame
  lost or garbled on the line loses its bundle, which the receiver counts and drops.
* A bundle larger than ``max_bundle_size`` is refused with ``TransferRefused(reason=2)`` so
  that the engine fragments it; smaller ones are cut into frames here (link-layer segments).
* Sending is paced by a :class:`~dtncloud.udpcl.TokenBucket` (``rate_bytes_per_s``, 0: only
  the port's own speed), for radios whose air rate is below the serial rate.
* Frame and drop counters are in ``link.stats.extra`` (and summed over links in
  :attr:`SerialConvergenceLayer.stats`).

I/O goes through pyserial-asyncio, which watches the port's file descriptor with the event
loop's own ``add_reader``/``add_writer``: no thread, cancellation works as everywhere else, and
a read error (the device vanished) arrives as ``connection_lost``. Its drawback is that it only
works where file descriptors can be polled (POSIX; on Windows it polls).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import serial_asyncio  # type: ignore[import-untyped, unused-ignore]

from dtncloud.cla.base import (
    ConvergenceLayer,
    Link,
    LinkEvents,
    LinkStats,
    Outgoing,
    ReceivedBundle,
    outgoing_length,
)
from dtncloud.cla.framing import (
    FRAMINGS,
    MIN_FRAME_SIZE,
    FrameCounters,
    FrameReceiver,
    Framing,
    Segmenter,
)
from dtncloud.eid import parse_eid
from dtncloud.errors import ConfigError, ConnectError, InvalidEID, LinkDown, TransferRefused
from dtncloud.udpcl import TokenBucket

__all__ = ["SerialConvergenceLayer", "SerialLink", "SerialOptions"]

log = logging.getLogger(__name__)

#: TCPCLv4 XFER_REFUSE reason 2 ("no resources"): too large for the link; fragment, retry.
_NO_RESOURCES = 2
# Received bundles waiting for the node; past this many, stop reading the port for a while.
_QUEUE_HIGH = 8
_QUEUE_LOW = 2
# How long a graceful close may take to flush what is still buffered before it aborts.
_CLOSE_GRACE_S = 2.0


@dataclass(frozen=True)
class SerialOptions:
    """How the serial CLA uses its port (see docs/serial.md for choosing the values).

    ``device`` is the port's path (``/dev/ttyUSB0``; a stable ``/dev/serial/by-id/...`` link
    is better). ``framing`` is ``"slip"`` or ``"cobs"`` and ``max_frame_size`` the longest
    frame put on the line, delimiters and stuffing included (255 suits most packet radios; a
    cable takes far more); both ends must agree on both. ``max_bundle_size`` is the largest
    bundle sent or accepted (the engine fragments larger ones). ``rate_bytes_per_s`` paces
    sending (0: as fast as the port goes) with bursts of ``burst_bytes`` (default two frames).
    ``peer_node_id`` names the node at the other end (a serial line carries no node IDs).
    A bundle whose next frame does not come within ``reassembly_timeout_s`` is dropped. A
    lost port is reopened after ``reopen_initial_s``, doubling up to ``reopen_max_s``.
    ``exclusive`` locks the port against other programs (POSIX ``flock``).
    """

    device: str
    baud_rate: int = 115_200
    framing: Framing = "cobs"
    max_frame_size: int = 255
    max_bundle_size: int = 4096
    rate_bytes_per_s: int = 0
    burst_bytes: int | None = None
    peer_node_id: str | None = None
    reassembly_timeout_s: float = 30.0
    reopen_initial_s: float = 0.5
    reopen_max_s: float = 30.0
    exclusive: bool = True

    def __post_init__(self) -> None:
        if not self.device:
            raise ConfigError("serial: no device given")
        if self.baud_rate <= 0:
            raise ConfigError(f"serial baud rate must be positive, not {self.baud_rate}")
        if self.framing not in FRAMINGS:
            raise ConfigError(f"serial framing must be 'slip' or 'cobs', not {self.framing!r}")
        if self.max_frame_size < MIN_FRAME_SIZE:
            raise ConfigError(
                f"serial max frame size must be at least {MIN_FRAME_SIZE} bytes, "
                f"not {self.max_frame_size}"
            )
        limit = Segmenter(self.framing, self.max_frame_size).max_bundle_size()
        if not 1 <= self.max_bundle_size <= limit:
            raise ConfigError(
                f"serial max bundle size must be 1..{limit} bytes with {self.max_frame_size}-byte "
                f"{self.framing} frames, not {self.max_bundle_size}"
            )
        if self.rate_bytes_per_s < 0:
            raise ConfigError("serial rate must be 0 (unlimited) or positive")
        if self.burst_bytes is not None and self.burst_bytes < 1:
            raise ConfigError("serial burst must be at least 1 byte")
        if self.reassembly_timeout_s <= 0:
            raise ConfigError("serial reassembly timeout must be positive")
        if not 0 < self.reopen_initial_s <= self.reopen_max_s:
            raise ConfigError("serial reopen delays must satisfy 0 < initial <= max")
        if self.peer_node_id is not None:
            try:
                parse_eid(self.peer_node_id)
            except InvalidEID as exc:
                raise ConfigError(f"serial peer node ID {self.peer_node_id!r}: {exc}") from exc


class _PortProtocol(asyncio.Protocol):
    """Passes the port's events to the link; tracks write flow control."""

    def __init__(self) -> None:
        self.link: SerialLink | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self.lost = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        if self.link is not None:
            self.link._data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.writable.set()
        self.lost.set()
        if self.link is not None:
            self.link._port_lost(exc)

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()


class SerialLink(Link):
    """The link over an open port; a new one each time the port is (re)opened."""

    cla_name = "serial"

    def __init__(
        self, cla: SerialConvergenceLayer, transport: asyncio.Transport, protocol: _PortProtocol
    ) -> None:
        super().__init__()
        options = cla.options
        self._cla = cla
        self._transport = transport
        self._protocol = protocol
        self.peer_address = options.device
        self.counters = FrameCounters()
        self.stats.extra.update(self.counters.as_dict())
        self._receiver = FrameReceiver(
            options.framing,
            max_frame_size=options.max_frame_size,
            max_bundle_size=options.max_bundle_size,
            reassembly_timeout_ms=max(1, round(options.reassembly_timeout_s * 1000)),
            counters=self.counters,
        )
        self._up = True
        self._closed = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._reading_paused = False
        self._delivery = asyncio.create_task(self._deliver(), name=f"serial-{options.device}")
        cla._deliveries.add(self._delivery)
        self._delivery.add_done_callback(cla._deliveries.discard)

    @property
    def peer_node_id(self) -> str | None:
        """The configured ``peer_node_id`` (a serial line carries none)."""
        return self._cla.options.peer_node_id

    @property
    def max_bundle_size(self) -> int:
        return self._cla.options.max_bundle_size

    @property
    def is_up(self) -> bool:
        return self._up

    async def send(self, bundle: Outgoing) -> None:
        """Send one bundle; returns once all its frames are written to the port."""
        await self._cla._send(self, bundle)

    async def close(self) -> None:
        """Close the port; the CLA does not reopen it until :meth:`~SerialConvergenceLayer.connect`."""
        await self._cla._close_link(self, "closed", reopen=False)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # -- called by the CLA and the protocol -----------------------------------------------

    def _write(self, frame: bytes) -> None:
        if not self._up:
            raise LinkDown(f"serial {self.peer_address}: link is down")
        self._transport.write(frame)
        self.counters.frames_sent += 1
        self.counters.wire_bytes_sent += len(frame)

    async def _drained(self) -> None:
        """Wait until the transport has handed everything to the OS."""
        await self._protocol.writable.wait()
        if not self._up:
            raise LinkDown(f"serial {self.peer_address}: port lost while sending")

    def _data_received(self, data: bytes) -> None:
        if not self._up:
            return
        for bundle in self._receiver.receive_data(data, self._cla._now()):
            for stats in (self.stats, self._cla.stats):
                stats.bundles_received += 1
                stats.bytes_received += len(bundle)
            self._queue.put_nowait(bundle)
        if self._queue.qsize() >= _QUEUE_HIGH and not self._reading_paused:
            # The node is slower than the line: let the OS buffer (and then the line) wait.
            self._reading_paused = True
            self._transport.pause_reading()
        self._cla._sync_counters(self)
        self._arm_timer()

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        at = self._receiver.get_timer()
        if at is None or not self._up:
            return
        delay = max(0, at - self._cla._now()) / 1000
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._receiver.handle_timer(self._cla._now())
        self._cla._sync_counters(self)
        self._arm_timer()

    def _port_lost(self, exc: Exception | None) -> None:
        if exc is None:
            reason = f"serial port {self.peer_address} closed"
        else:
            reason = f"serial port {self.peer_address} lost: {exc}"
        self._cla._link_gone(self, reason)

    def _shut(self) -> None:
        """Mark the link down (no I/O): senders wake up, queued bundles are still delivered."""
        self._up = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._protocol.writable.set()
        self._queue.put_nowait(None)
        self._closed.set()

    async def _close_port(self, *, graceful: bool) -> None:
        transport = self._transport
        if graceful:
            transport.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._protocol.lost.wait(), _CLOSE_GRACE_S)
        if not self._protocol.lost.is_set():
            transport.abort()
            await self._protocol.lost.wait()

    async def _deliver(self) -> None:
        events = self._cla.events
        while True:
            data = await self._queue.get()
            if data is None:
                return
            if self._reading_paused and self._queue.qsize() <= _QUEUE_LOW and self._up:
                self._reading_paused = False
                self._transport.resume_reading()
            try:
                await events.bundle_received(ReceivedBundle(len(data), self, data=data))
            except TransferRefused as exc:
                # Nobody to tell over a serial line; the count is all that remains.
                self.stats.refused += 1
                self._cla.stats.refused += 1
                log.debug("serial: node refused a bundle: %s", exc)
            except Exception:
                # The node's callback failed: that must not end reception.
                self._cla._count(self, "delivery_errors")
                log.exception("serial: handing a bundle to the node failed")


class SerialConvergenceLayer(ConvergenceLayer):
    """Bundles over one serial port (see the module docstring).

    ``clock`` (monotonic milliseconds) and ``sleep`` may be replaced by tests; ``rng`` picks
    the first transfer number.
    """

    name = "serial"
    reliable = False

    def __init__(
        self,
        events: LinkEvents,
        options: SerialOptions,
        *,
        clock: Callable[[], int] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(events)
        self.options = options
        self.bucket = TokenBucket(
            options.rate_bytes_per_s, options.burst_bytes or 2 * options.max_frame_size
        )
        rng = rng if rng is not None else random.Random()
        self._segmenter = Segmenter(
            options.framing, options.max_frame_size, first_transfer=rng.randrange(256)
        )
        #: Counters summed over every link this CLA has had.
        self.stats = LinkStats()
        #: Why the port last failed to open or was lost (``None`` before any trouble).
        self.last_error: str | None = None
        self._clock = clock
        self._sleep = sleep
        self._link: SerialLink | None = None
        self._wanted = False
        self._open_failures = 0
        self._supervisor: asyncio.Task[None] | None = None
        self._open_lock = asyncio.Lock()
        # Links hand their last bundles to the node after going down; stop() ends that too.
        self._deliveries: set[asyncio.Task[None]] = set()
        self._send_lock = asyncio.Lock()

    # -- ConvergenceLayer -----------------------------------------------------------------

    @property
    def max_bundle_size(self) -> int:
        return self.options.max_bundle_size

    @property
    def links(self) -> list[Link]:
        return [self._link] if self._link is not None else []

    @property
    def link(self) -> SerialLink | None:
        """The link over the port while it is open."""
        return self._link

    async def start(self) -> None:
        """Open the port and keep it open; a port that cannot be opened yet is retried.

        Raises :class:`ConfigError` only for settings the port rejects (e.g. the baud rate).
        """
        self._wanted = True
        if self._supervisor is not None and not self._supervisor.done():
            return
        with contextlib.suppress(ConnectError):
            await self._open()
        self._supervisor = asyncio.create_task(
            self._supervise(), name=f"serial-open-{self.options.device}"
        )

    async def stop(self) -> None:
        """Close the port (reporting ``link_down``) and stop reopening it."""
        self._wanted = False
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            # gather, not suppress(CancelledError): a cancellation of stop() must propagate.
            await asyncio.gather(supervisor, return_exceptions=True)
        link = self._link
        if link is not None:
            await self._close_link(link, "convergence layer stopped", reopen=False)
        deliveries = list(self._deliveries)
        for task in deliveries:
            task.cancel()
        await asyncio.gather(*deliveries, return_exceptions=True)

    async def connect(self, address: str, *, node_id: str | None = None) -> SerialLink:
        """The link over the port; ``address`` must be the configured device (or empty).

        Opens the port now if it is closed; raises :class:`ConnectError` if it cannot. A
        serial line has one peer, so ``node_id`` may only repeat ``peer_node_id``.
        """
        device = self.options.device
        if address not in ("", device):
            raise ConnectError(
                f"serial CLA on {device} cannot reach {address!r}: one line, one peer"
            )
        if node_id is not None and node_id != self.options.peer_node_id:
            raise ConnectError(
                f"serial {device}: the peer is configured as {self.options.peer_node_id!r}, "
                f"not {node_id!r}"
            )
        await self.start()  # (again) keeps the port open, also after SerialLink.close()
        link = self._link
        if link is not None and link.is_up:
            return link
        return await self._open()

    # -- opening and losing the port ------------------------------------------------------

    async def _open(self) -> SerialLink:
        async with self._open_lock:
            if self._link is not None and self._link.is_up:
                return self._link
            options = self.options
            loop = asyncio.get_running_loop()
            protocol = _PortProtocol()
            try:
                transport, _ = await serial_asyncio.create_serial_connection(
                    loop,
                    lambda: protocol,
                    options.device,
                    baudrate=options.baud_rate,
                    exclusive=options.exclusive,
                )
            except ValueError as exc:  # pyserial's word for a setting the port rejects
                raise ConfigError(f"serial {options.device}: {exc}") from exc
            except OSError as exc:  # serial.SerialException is an OSError
                self.last_error = f"cannot open {options.device}: {exc}"
                self._open_failures += 1
                # Say it once loudly; the retries every few seconds only at debug level.
                level = logging.WARNING if self._open_failures == 1 else logging.DEBUG
                log.log(level, "serial: %s (will keep trying)", self.last_error)
                raise ConnectError(f"serial {self.last_error}") from exc
            self._open_failures = 0
            # High-water mark 0: the protocol is paused while anything is buffered, so that
            # send() can wait until its frames are in the OS's hands.
            transport.set_write_buffer_limits(high=0)
            link = SerialLink(self, transport, protocol)
            protocol.link = link
            self._link = link
            log.info(
                "serial: %s open (%s, %d baud)", options.device, options.framing, options.baud_rate
            )
            self.events.link_up(link)
            return link

    async def _supervise(self) -> None:
        options = self.options
        loop = asyncio.get_running_loop()
        delay = options.reopen_initial_s
        while self._wanted:
            link = self._link
            if link is None:
                try:
                    link = await self._open()
                except ConnectError:
                    await self._sleep(delay)
                    delay = min(2 * delay, options.reopen_max_s)
                    continue
                except ConfigError as exc:
                    log.error("%s; not retrying", exc)
                    self.last_error = str(exc)
                    return
            opened_at = loop.time()
            await link.wait_closed()
            if not self._wanted:
                return
            # A port that stayed open a good while starts the backoff afresh; one that keeps
            # failing right after opening is not hammered.
            if loop.time() - opened_at >= options.reopen_max_s:
                delay = options.reopen_initial_s
            await self._sleep(delay)
            delay = min(2 * delay, options.reopen_max_s)

    def _link_gone(self, link: SerialLink, reason: str) -> None:
        if not link._up:
            return
        link._shut()
        if self._link is link:
            self._link = None
        if link._protocol.lost.is_set():
            self.last_error = reason
            log.warning("serial: %s", reason)
        self._sync_counters(link)
        self.events.link_down(link, reason)

    async def _close_link(self, link: SerialLink, reason: str, *, reopen: bool) -> None:
        if not reopen:
            self._wanted = False
        self._link_gone(link, reason)
        await link._close_port(graceful=True)

    # -- sending --------------------------------------------------------------------------

    def _now(self) -> int:
        if self._clock is not None:
            return self._clock()
        return int(asyncio.get_running_loop().time() * 1000)

    async def _send(self, link: SerialLink, bundle: Outgoing) -> None:
        size = outgoing_length(bundle)
        if size > self.options.max_bundle_size:
            self._refuse(link, size)
        if isinstance(bundle, bytes | bytearray | memoryview):
            data = bytes(bundle)
        else:
            data = Path(bundle).read_bytes()
            if len(data) > self.options.max_bundle_size:  # the file grew since it was measured
                self._refuse(link, len(data))
        # One bundle's frames at a time: the receiver reassembles one bundle at a time.
        async with self._send_lock:
            if not link.is_up:
                raise LinkDown(f"serial {link.peer_address}: link is down")
            try:
                for frame in self._segmenter.frames(data):
                    await self._pace(link, len(frame))
                    link._write(frame)
                    await link._drained()
            finally:
                self._sync_counters(link)
        for stats in (link.stats, self.stats):
            stats.bundles_sent += 1
            stats.bytes_sent += len(data)

    async def _pace(self, link: SerialLink, size: int) -> None:
        delay = self.bucket.delay_ms(size, self._now())
        if delay:
            self._count(link, "rate_limited")
            self._count(link, "rate_wait_ms", delay)
            await self._sleep(delay / 1000)
        self.bucket.consume(size, self._now())

    def _refuse(self, link: SerialLink, size: int) -> NoReturn:
        link.stats.refused += 1
        self.stats.refused += 1
        raise TransferRefused(
            f"bundle of {size} bytes exceeds the serial link's limit of "
            f"{self.options.max_bundle_size} bytes: fragment it",
            reason=_NO_RESOURCES,
        )

    # -- counters -------------------------------------------------------------------------

    def _count(self, link: SerialLink, key: str, amount: int = 1) -> None:
        for stats in (link.stats, self.stats):
            stats.extra[key] = stats.extra.get(key, 0) + amount

    def _sync_counters(self, link: SerialLink) -> None:
        """Copy the link's frame counters into its stats, and the change into the CLA's."""
        for key, value in link.counters.as_dict().items():
            old = link.stats.extra.get(key, 0)
            if value != old:
                link.stats.extra[key] = value
                self.stats.extra[key] = self.stats.extra.get(key, 0) + value - old

    def __repr__(self) -> str:
        state = "open" if self._link is not None else "closed"
        return f"<SerialConvergenceLayer {self.options.device} {state}>"
