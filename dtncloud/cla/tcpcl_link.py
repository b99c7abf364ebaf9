"""One TCPCL session on one TCP connection: the asyncio shell around a sans-IO session.

The link only moves bytes between the socket and the session, runs the TLS handshake when
the session asks for it, keeps one timer armed at the session's deadline, and turns session
events into futures and node callbacks. Every protocol decision is the session's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from dtncloud.bpv7 import peek_bundle_id
from dtncloud.cla import tls as tlsmod
from dtncloud.cla.base import Link, Outgoing, ReceivedBundle, outgoing_length
from dtncloud.cla.spool import IncomingTransfer, remove_spool_file
from dtncloud.cla.stream import ChunkStream
from dtncloud.errors import (
    ConnectError,
    LinkDown,
    LocalProtocolError,
    RemoteProtocolError,
    TransferRefused,
)
from dtncloud.tcpcl.codes import Role, SessTermReason, XferRefuseReason, xfer_refuse_reason
from dtncloud.tcpcl.events import (
    ContactEstablished,
    IncomingTransferAborted,
    MessageRejected,
    PeerMisbehaved,
    SegmentAcknowledged,
    SegmentReceived,
    SessionClosed,
    SessionEnding,
    SessionEstablished,
    TransferRefusedByPeer,
    TransferSucceeded,
)
from dtncloud.tcpcl.interface import TcpclSession
from dtncloud.tcpcl.v3 import SessionV3

if TYPE_CHECKING:
    from dtncloud.cla.tcpcl import TcpclConvergenceLayer

log = logging.getLogger("dtncloud.cla.tcpcl")

#: Transport write buffer limits: large enough that a 1 MiB segment does not stall the
#: pipeline, small enough to bound memory per session.
WRITE_HIGH_WATER = 4 << 20
WRITE_LOW_WATER = 1 << 20
_DEFAULT_REASON = "session closed"
_NOT_ACCEPTABLE = XferRefuseReason.NOT_ACCEPTABLE
# TLS 1.3 servers check a client certificate after the client's side of the handshake has
# completed, so their refusal reaches the client as the connection closing right after it.
_REFUSED_AFTER_TLS = "peer closed the connection after TLS (did it refuse our certificate?)"
#: Complete bundles waiting for the node: beyond this the link stops reading (back-pressure).
MAX_QUEUED_DELIVERIES = 4


def loop_ms() -> int:
    """The event loop's monotonic clock in integer milliseconds (the sessions' ``now``)."""
    return int(asyncio.get_running_loop().time() * 1000)


class _SessionSink:
    """Lets the stream read straight into the session's receive buffer (no copy)."""

    __slots__ = ("link",)

    def __init__(self, link: TcpclLink) -> None:
        self.link = link

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.link.session.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        link = self.link
        link._tls_just_started = False
        link.stats.bytes_received += nbytes
        link.session.buffer_updated(nbytes, loop_ms())


class TcpclLink(Link):
    """A TCPCL session with one peer, usable for many bundles in turn (or pipelined)."""

    cla_name = "tcpcl"

    def __init__(
        self,
        cla: TcpclConvergenceLayer,
        session: TcpclSession,
        stream: ChunkStream,
        *,
        role: Role,
        peer_address: str,
        peer_host: str,
    ) -> None:
        super().__init__()
        self.cla = cla
        self.session = session
        self.role = role
        self.peer_address = peer_address
        self._peer_host = peer_host
        self._stream = stream
        self.version = 3 if isinstance(session, SessionV3) else 4
        self.cla_name = "tcpcl" if self.version == 4 else "tcpclv3"
        loop = asyncio.get_running_loop()
        self.established: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[str] = loop.create_future()
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._acknowledged: dict[int, int] = {}
        self._incoming: dict[int, IncomingTransfer] = {}
        self._partial_tasks: set[asyncio.Task[None]] = set()
        self._send_lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: int | None = None
        self._peer_identity: tlsmod.PeerIdentity | None = None
        self._close_reason = _DEFAULT_REASON
        self._up = False
        self._tls_just_started = False
        self._delivery_queue: asyncio.Queue[IncomingTransfer | None] = asyncio.Queue(
            MAX_QUEUED_DELIVERIES
        )
        self._delivery_task: asyncio.Task[None] | None = None
        self._closing = False
        #: Segment data is being written by sendfile: the session's output must wait.
        self._raw_writing = False
        stream.set_write_buffer_limits(WRITE_HIGH_WATER, WRITE_LOW_WATER)

    # --- Link interface ---------------------------------------------------------------

    @property
    def peer_node_id(self) -> str | None:
        node_id = self.session.peer_node_id
        return node_id or None

    @property
    def max_bundle_size(self) -> int | None:
        return int(self.session.peer_transfer_mru) if self._up else None

    @property
    def is_up(self) -> bool:
        return self._up

    @property
    def tls(self) -> bool:
        return bool(self.session.tls)

    async def send(self, bundle: Outgoing) -> None:
        """Send one bundle; returns when the peer has acknowledged all of it."""
        await self._wait_established()
        length = outgoing_length(bundle)
        if length > self.session.peer_transfer_mru:
            self.stats.refused += 1
            raise TransferRefused(
                f"bundle of {length} bytes exceeds the peer's transfer MRU of "
                f"{self.session.peer_transfer_mru} bytes; fragment it",
                reason=XferRefuseReason.NO_RESOURCES,
            )
        async with self._send_lock:
            if not self._up:
                raise LinkDown(f"link to {self.peer_address} is down: {self._close_reason}")
            try:
                transfer_id = self.session.start_transfer(length, loop_ms())
            except LocalProtocolError as exc:
                raise LinkDown(f"link to {self.peer_address}: {exc}") from exc
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._pending[transfer_id] = done
            self._acknowledged[transfer_id] = 0
            try:
                if isinstance(bundle, (bytes, bytearray, memoryview)):
                    await self._send_memory(transfer_id, memoryview(bundle))
                else:
                    await self._send_file(transfer_id, Path(bundle), length)
            except TransferRefused:
                pass  # the peer refused mid-transfer; ``done`` carries the refusal
            except BaseException as exc:
                # A TCPCL sender cannot take back a transfer it has started: a local failure
                # (a file that shrank, a read error) or a cancellation halfway through can
                # only end the session, or the link would stay wedged on this transfer.
                self._abort(f"sending failed halfway: {exc!r}")
                if not done.done():
                    done.set_exception(self._link_down(transfer_id, self._close_reason))
                self._forget_transfer(transfer_id, done)
                if isinstance(exc, asyncio.CancelledError):
                    raise
        try:
            await done
        finally:
            self._forget_transfer(transfer_id, done)
        self.stats.bundles_sent += 1
        self.stats.bytes_sent += length

    def _forget_transfer(self, transfer_id: int, done: asyncio.Future[None]) -> None:
        self._pending.pop(transfer_id, None)
        self._acknowledged.pop(transfer_id, None)
        if done.done() and not done.cancelled():
            done.exception()  # retrieved: a caller that went away must not cause a warning

    def _abort(self, reason: str) -> None:
        """Drop the connection at once (no SESS_TERM): the reader then ends the session."""
        if self._close_reason == _DEFAULT_REASON:
            self._close_reason = reason
        log.warning("%s: %s; dropping the connection", self.peer_address, reason)
        self._stream.abort()

    async def _send_memory(self, transfer_id: int, view: memoryview) -> None:
        length = view.nbytes
        offset = 0
        while True:
            size = self.session.max_segment_size
            end = offset + size >= length
            self.session.send_segment(transfer_id, view[offset : offset + size], loop_ms(), end=end)
            await self._flush_and_drain()
            if end:
                return
            offset += size

    async def _send_file(self, transfer_id: int, path: Path, length: int) -> None:
        with open(path, "rb") as source:
            sent = 0
            # Straight from the file to the socket where possible (no TLS): the data never
            # passes through this process.
            copy_free = not self.session.tls
            while True:
                size = min(self.session.max_segment_size, length - sent)
                end = sent + size >= length
                if copy_free and size:
                    self.session.send_segment_header(transfer_id, size, loop_ms(), end=end)
                    self._flush()
                    copy_free = await self._send_raw(source, sent, size)
                    self._flush()
                else:
                    chunk = source.read(size)
                    if not chunk and length:
                        raise OSError(f"{path} ended after {sent} of {length} bytes")
                    size = len(chunk)
                    end = sent + size >= length
                    self.session.send_segment(transfer_id, chunk, loop_ms(), end=end)
                sent += size
                await self._flush_and_drain()
                if end:
                    return

    async def _send_raw(self, source: BinaryIO, offset: int, size: int) -> bool:
        """Write ``size`` bytes of ``source`` from ``offset`` to the connection, after the
        segment header just flushed; returns whether ``sendfile`` may be used again."""
        self._raw_writing = True
        try:
            try:
                sent = await self._stream.sendfile(source, offset, size)
            except asyncio.SendfileNotAvailableError:
                source.seek(offset)
                data = source.read(size)
                if len(data) == size:
                    self._stream.write(data)
                    source.seek(offset + size)
                    return False
                sent = len(data)
            if sent < size:
                raise OSError(
                    f"the file ended after {offset + sent} bytes; {offset + size} expected"
                )
            source.seek(offset + size)
            return True
        finally:
            self._raw_writing = False

    async def close(self) -> None:
        """End the session with SESS_TERM; open transfers may finish first."""
        if not self.closed.done() and not self.session.closed:
            with contextlib.suppress(LocalProtocolError):
                self.session.terminate(SessTermReason.UNKNOWN, loop_ms())
            self._flush()
            self._rearm()
        try:
            await asyncio.wait_for(
                asyncio.shield(self.closed), self.cla.session_config.ending_timeout_ms / 1000
            )
        except TimeoutError:
            self._stream.abort()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.closed), 1.0)

    async def deliveries_done(self) -> None:
        """Wait until a bundle the node is storing when the session ends has been handed over."""
        if self._delivery_task is not None:
            await asyncio.shield(self._delivery_task)

    @property
    def close_reason(self) -> str:
        """Why the session ended (or is ending), in words."""
        return self._close_reason

    async def wait_closed(self) -> str:
        """Wait until the session is over; returns why it ended, in words."""
        return await asyncio.shield(self.closed)

    # --- the I/O loop -----------------------------------------------------------------

    async def run(self) -> None:
        """Drive the session until it closes; never raises for network or peer trouble."""
        try:
            self._flush()
            await self._process_events()
            if self.version == 4 and self.role is Role.ACTIVE:
                # Read exactly the contact header, so that no TLS byte is consumed as plain text.
                header = await self._stream.readexactly(6)
                self.session.receive_data(header, loop_ms())
                await self._process_events()
            # Contact headers and TLS are behind us: from now on the socket is read straight
            # into the session's buffer, and each read's events are handled before the next.
            for chunk in self._stream.set_sink(_SessionSink(self)):
                self._tls_just_started = False
                self.stats.bytes_received += len(chunk)
                self.session.receive_data(chunk, loop_ms())
            await self._process_events()
            while not self.session.closed:
                if not await self._stream.wait():
                    if self._tls_just_started:
                        self._close_reason = _REFUSED_AFTER_TLS
                    self.session.connection_lost(loop_ms())
                await self._process_events()
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            self._close_reason = f"connection lost: {exc or type(exc).__name__}"
            if self._tls_just_started:
                self._close_reason = _REFUSED_AFTER_TLS
            self.session.connection_lost(loop_ms())
            await self._process_events()
        except (LocalProtocolError, ValueError) as exc:  # our bug, not the peer's
            log.exception("%s: internal error; dropping the connection", self.peer_address)
            self._close_reason = f"internal error: {exc!r}"
            self._stream.abort()
            self.session.connection_lost(loop_ms())
            await self._process_events()
        except asyncio.CancelledError:
            self._close_reason = "stopped"
            self.session.connection_lost(loop_ms())
            await self._process_events()
            raise
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        self._up = False
        if self._timer is not None:
            self._timer.cancel()
        for transfer in self._incoming.values():
            self._partial(transfer)
        self._incoming.clear()
        # Complete bundles still queued for the node are handed over all the same: a TCPCLv3
        # peer without acknowledgements already counts them as delivered (and a TCPCLv4 peer
        # that resends one makes a duplicate, which the node recognises).
        self._closing = True
        if not self._delivery_queue.full():
            self._delivery_queue.put_nowait(None)  # wakes the delivery task if it waits
        for transfer_id, future in list(self._pending.items()):
            if not future.done():
                future.set_exception(self._link_down(transfer_id, self._close_reason))
        if not self.established.done():
            self.established.set_exception(ConnectError(self._close_reason))
            self.established.exception()  # mark retrieved: nobody may be waiting
        with contextlib.suppress(Exception):
            self._stream.close()
        if not self.closed.done():
            self.closed.set_result(self._close_reason)
        self.cla._forget(self)

    def _link_down(self, transfer_id: int, reason: str) -> LinkDown:
        acknowledged = self._acknowledged.get(transfer_id, 0)
        return LinkDown(
            f"link to {self.peer_address} went down ({reason}); "
            f"{acknowledged} bytes of the transfer were acknowledged",
            acknowledged=acknowledged,
        )

    async def _wait_established(self) -> None:
        if not self.established.done():
            await asyncio.shield(self.established)
        if self.established.exception() is not None:
            raise LinkDown(f"link to {self.peer_address} never came up: {self._close_reason}")

    # --- bytes out and the timer --------------------------------------------------------

    def _flush(self) -> None:
        if not self._raw_writing:  # else it goes out once the segment's data is out
            data = self.session.data_to_send()
            if data and not self._stream.is_closing():
                self._stream.write(data)
        self._rearm()

    async def _flush_and_drain(self) -> None:
        self._flush()
        if self._stream.write_buffer_size() > WRITE_LOW_WATER:
            await self._stream.drain()

    def _rearm(self) -> None:
        deadline = self.session.get_timer()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(deadline / 1000, self._on_timer)

    def _on_timer(self) -> None:
        # The loop may call a little early; rounding down must not make the session see a
        # time before its deadline (it would do nothing and ask to be woken again at once).
        deadline = self._timer_at or 0
        self._timer = None
        self._timer_at = None
        self.session.handle_timer(max(loop_ms(), deadline))
        self._flush()
        if self.session.closed:
            # Wake the reader: closing the transport ends its pending read.
            self._stream.close()

    # --- session events -----------------------------------------------------------------

    async def _process_events(self) -> None:
        session = self.session
        while True:
            self._flush()
            event = session.next_event()
            if event is None:
                return
            match event:
                case SegmentReceived():
                    await self._on_segment(event)
                case SegmentAcknowledged():
                    self._acknowledged[event.transfer_id] = event.acknowledged
                case TransferSucceeded():
                    self._on_succeeded(event)
                case TransferRefusedByPeer():
                    self._on_refused(event)
                case IncomingTransferAborted():
                    transfer = self._incoming.pop(event.transfer_id, None)
                    if transfer is not None:
                        self._partial(transfer)
                case ContactEstablished():
                    await self._on_contact(event)
                case SessionEstablished():
                    self._on_established(event)
                case MessageRejected():
                    log.warning(
                        "%s rejected our message type %#x (reason %d)",
                        self.peer_address, event.message_type, event.reason,
                    )  # fmt: skip
                case PeerMisbehaved():
                    self.stats.extra["protocol_errors"] = (
                        self.stats.extra.get("protocol_errors", 0) + 1
                    )
                    log.warning("%s broke the protocol: %s", self.peer_address, event.description)
                case SessionEnding():
                    self._on_ending(event)
                case SessionClosed():
                    self._on_closed(event)

    async def _on_contact(self, event: ContactEstablished) -> None:
        if not event.use_tls:
            return
        self._flush()
        tls = self.cla.tls_config
        if tls is None:  # cannot happen: we only offer CAN_TLS with a TLS configuration
            self.session.connection_lost(loop_ms())
            return
        context = self.cla.tls_context(server_side=event.server_side)
        hostname = None if event.server_side else tlsmod.server_hostname(self._peer_host)
        try:
            await self._stream.start_tls(
                context, server_side=event.server_side, server_hostname=hostname
            )
        except (ssl.SSLError, ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
            self._close_reason = f"TLS handshake failed: {tlsmod.tls_error_message(exc)}"
            log.warning("%s: %s", self.peer_address, self._close_reason)
            self.session.connection_lost(loop_ms())
            return
        self._stream.set_write_buffer_limits(WRITE_HIGH_WATER, WRITE_LOW_WATER)
        ssl_object = self._stream.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        try:
            self._peer_identity = tlsmod.peer_identity(der) if der else None
        except RemoteProtocolError as exc:
            self._close_reason = f"unreadable peer certificate: {exc}"
            self.session.connection_lost(loop_ms())
            return
        self._tls_just_started = self.role is Role.ACTIVE
        self.session.tls_established(loop_ms())

    def _on_established(self, event: SessionEstablished) -> None:
        if event.tls and self.cla.tls_config is not None:
            problem = tlsmod.authenticate_peer(
                self._peer_identity,
                claimed_node_id=event.peer_node_id or None,
                connected_host=self._peer_host if self.role is Role.ACTIVE else None,
                config=self.cla.tls_config,
            )
            if problem is not None:
                self._close_reason = f"peer authentication failed: {problem}"
                log.warning("%s: %s", self.peer_address, self._close_reason)
                self.session.terminate(SessTermReason.CONTACT_FAILURE, loop_ms())
                return
        self._up = True
        if not self.established.done():
            self.established.set_result(None)
        log.info(
            "session with %s (%s) up: TCPCLv%d%s, keepalive %ss",
            self.peer_address, event.peer_node_id or "node ID not disclosed", self.version,
            " over TLS" if event.tls else "", event.keepalive_s,
        )  # fmt: skip
        self.cla._link_up(self)

    async def _on_segment(self, event: SegmentReceived) -> None:
        transfer_id = event.transfer_id
        transfer = self._incoming.get(transfer_id)
        if event.start:
            if transfer is not None:
                transfer.discard()
            try:
                transfer = IncomingTransfer(
                    transfer_id, self.cla.spool_dir, self.cla.spool_threshold,
                    event.total_length, self.cla.spool_writer,
                )  # fmt: skip
            except OSError as exc:
                self._refuse_incoming(transfer_id, None, f"cannot spool: {exc}")
                return
            self._incoming[transfer_id] = transfer
        elif transfer is None:
            # Segments of a transfer already refused (or aborted) that were parsed from the
            # same read before the refusal: the session skips the rest of it.
            return
        try:
            await transfer.append(event.data)
        except OSError as exc:  # a full disk refuses the bundle, it does not end the session
            self._refuse_incoming(transfer_id, transfer, f"cannot spool: {exc}")
            return
        # Refuse a bundle the node already holds as soon as its primary block is in (and
        # again at the end, for a single-segment transfer or a late answer).
        if (event.start or event.end) and self._already_held(transfer):
            self._refuse_incoming(transfer_id, transfer, None, XferRefuseReason.COMPLETED)
            return
        if event.end:
            del self._incoming[transfer_id]
            if self._delivery_task is None:
                self._delivery_task = asyncio.get_running_loop().create_task(self._deliveries())
            await self._delivery_queue.put(transfer)  # waits while the node is behind

    async def _deliveries(self) -> None:
        """Hand complete bundles to the node one at a time, in order of arrival.

        Runs beside the read loop, so that keepalives and the peer's next segments are still
        read (and no idle timeout strikes) while the node stores a large bundle.
        """
        while not (self._closing and self._delivery_queue.empty()):
            transfer = await self._delivery_queue.get()
            if transfer is None:
                continue
            await self._deliver(transfer)
            self._flush()

    def _partial(self, transfer: IncomingTransfer) -> None:
        """A transfer that will not complete: its acknowledged bytes go to the node as a
        partial bundle when the options say so (reactive fragmentation), else away."""
        if not self.cla.options.keep_partial or transfer.length == 0:
            transfer.discard()
            return
        task = asyncio.get_running_loop().create_task(self._deliver_partial(transfer))
        self._partial_tasks.add(task)
        task.add_done_callback(self._partial_tasks.discard)

    async def _deliver_partial(self, transfer: IncomingTransfer) -> None:
        try:
            data, path = await transfer.finish()
        except OSError:
            transfer.discard()
            return
        received = ReceivedBundle(transfer.length, self, data=data, path=path, partial=True)
        try:
            await self.cla.events.bundle_received(received)
        except Exception as exc:  # the sender was never told it arrived: nothing to answer
            log.debug("%s: partial transfer not kept: %s", self.peer_address, exc)
        finally:
            if path is not None:
                remove_spool_file(path, self.cla.spool_writer)

    def _refuse_incoming(
        self,
        transfer_id: int,
        transfer: IncomingTransfer | None,
        problem: str | None,
        reason: XferRefuseReason = XferRefuseReason.NO_RESOURCES,
    ) -> None:
        if problem is not None:
            log.warning("%s: refusing transfer %d: %s", self.peer_address, transfer_id, problem)
        self._incoming.pop(transfer_id, None)
        if transfer is not None:
            transfer.discard()
        self.stats.refused += 1
        self.session.refuse_transfer(transfer_id, reason, loop_ms())

    def _already_held(self, transfer: IncomingTransfer) -> bool:
        known = self.cla.known_bundle
        if known is None:
            return False
        bundle_id = peek_bundle_id(transfer.prefix)
        return bundle_id is not None and known(bundle_id)

    async def _deliver(self, transfer: IncomingTransfer) -> None:
        transfer_id = transfer.transfer_id
        try:
            data, path = await transfer.finish()
        except OSError as exc:
            self._refuse_incoming(transfer_id, transfer, f"cannot spool: {exc}")
            return
        received = ReceivedBundle(length=transfer.length, link=self, data=data, path=path)
        try:
            await self.cla.events.bundle_received(received)
        except TransferRefused as exc:
            self.stats.refused += 1
            reason = xfer_refuse_reason(exc.reason) if exc.reason else _NOT_ACCEPTABLE
            if not isinstance(reason, XferRefuseReason):
                reason = XferRefuseReason.UNKNOWN  # a private code the session cannot send
            self.session.refuse_transfer(transfer_id, reason, loop_ms())
        except Exception:
            log.exception(
                "%s: the node failed to take a bundle over; refusing it", self.peer_address
            )
            self.stats.refused += 1
            self.session.refuse_transfer(transfer_id, XferRefuseReason.NO_RESOURCES, loop_ms())
        else:
            self.stats.bundles_received += 1
            self.session.accept_transfer(transfer_id, loop_ms())
        finally:
            self._flush()  # the final acknowledgement (or refusal) first, then the cleaning
            if path is not None:
                remove_spool_file(path, self.cla.spool_writer)

    def _on_succeeded(self, event: TransferSucceeded) -> None:
        self._acknowledged[event.transfer_id] = event.length
        future = self._pending.get(event.transfer_id)
        if future is not None and not future.done():
            future.set_result(None)

    def _on_refused(self, event: TransferRefusedByPeer) -> None:
        self.stats.refused += 1
        future = self._pending.get(event.transfer_id)
        if future is not None and not future.done():
            reason = int(event.reason)
            future.set_exception(
                TransferRefused(
                    f"{self.peer_address} refused the bundle: {_refuse_text(reason)}",
                    reason=reason,
                )
            )

    def _on_ending(self, event: SessionEnding) -> None:
        self._up = False
        who = "peer" if event.by_peer else "we"
        if self._close_reason == _DEFAULT_REASON:  # keep a more specific reason found earlier
            self._close_reason = f"{who} ended the session ({_term_text(int(event.reason))})"

    def _on_closed(self, event: SessionClosed) -> None:
        self._up = False
        if event.description and self._close_reason == _DEFAULT_REASON:
            self._close_reason = event.description
        for unfinished in event.unfinished:
            self._acknowledged[unfinished.transfer_id] = unfinished.acknowledged
        self._flush()
        with contextlib.suppress(Exception):
            if self._stream.can_write_eof() and not self._stream.is_closing():
                self._stream.write_eof()
        self._stream.close()


def _refuse_text(reason: int) -> str:
    try:
        name = XferRefuseReason(reason).name
    except ValueError:
        return f"reason {reason}"
    return {
        "COMPLETED": "it already has the bundle",
        "NO_RESOURCES": "no resources (too large for it now; a smaller fragment may fit)",
        "RETRANSMIT": "retransmit requested",
        "NOT_ACCEPTABLE": "not acceptable",
        "EXTENSION_FAILURE": "extension failure",
        "SESSION_TERMINATING": "session terminating",
    }.get(name, "no reason given")


def _term_text(reason: int) -> str:
    if reason == SessTermReason.UNKNOWN:
        return "no reason given"  # what an ordinary end of a session says
    try:
        return SessTermReason(reason).name.lower().replace("_", " ")
    except ValueError:
        return f"reason {reason}"
