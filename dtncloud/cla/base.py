"""The interface every convergence-layer driver offers, and what it tells the node.

A convergence layer (CLA) moves whole bundles between neighbours. The node runtime (and the
command line, and the tests) use every CLA the same way:

* ``await cla.start()`` begins listening; ``await cla.stop()`` closes every link and listener.
* ``await cla.connect(address)`` opens a :class:`Link` to a neighbour (``host:port`` for IP
  links); links that a peer opens to us are reported through ``LinkEvents.link_up``.
* ``await link.send(bundle)`` returns once the peer has the bundle (reliable links: fully
  acknowledged; unreliable ones: handed to the OS). It raises
  :class:`~dtncloud.errors.TransferRefused` (with the peer's ``reason``) or
  :class:`~dtncloud.errors.LinkDown` (with how many bytes were ``acknowledged``).
* Received bundles are handed to ``LinkEvents.bundle_received``; a reliable CLA
  acknowledges the last segment only after that coroutine returns, so the node must have
  stored the bundle durably by then (ARCHITECTURE rule 4). Raising
  :class:`~dtncloud.errors.TransferRefused` from it refuses the bundle instead.

OS errors are mapped to :class:`~dtncloud.errors.TransportError` subclasses here, at the edge.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from dtncloud.errors import ConfigError, TransferRefused

#: TCPCLv4 XFER_REFUSE "not acceptable" (kept literal: the CLA interface is version-neutral).
_NOT_ACCEPTABLE = 4

#: What can be sent: the encoded bundle in memory, or a file holding it (streamed from disk).
Outgoing = bytes | bytearray | memoryview | os.PathLike[str]


@dataclass(frozen=True)
class ReceivedBundle:
    """An encoded bundle a CLA received: in memory (``data``) or in a spool file (``path``).

    A spooled bundle's file belongs to the receiver of this object once ``bundle_received``
    returns: the node may move it into its store. If the node leaves it in place the CLA
    deletes it. The file is closed but not synced: a node that keeps it must ``fsync`` it
    (where it ends up) before returning, since returning lets the CLA acknowledge the bundle.
    """

    length: int
    link: Link
    data: bytes | None = None
    path: Path | None = None
    #: only the first bytes of a transfer that broke (for reactive fragmentation); the
    #: sender was not told it arrived, so refusing it changes nothing
    partial: bool = False

    def read(self) -> bytes:
        """The whole encoded bundle in memory (reads the spool file if there is one)."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()


class LinkEvents(Protocol):
    """What a CLA reports to the node that owns it."""

    def link_up(self, link: Link) -> None:
        """A link opened (by us or by the peer) and can carry bundles."""

    def link_down(self, link: Link, reason: str) -> None:
        """A link closed; ``reason`` says why in words."""

    async def bundle_received(self, bundle: ReceivedBundle) -> None:
        """Take the bundle over durably, or raise ``TransferRefused`` to refuse it."""


class SendOnly:
    """The ``LinkEvents`` of a node that only sends (a command-line sender, a benchmark):
    link news is ignored and whatever arrives is refused ("not acceptable")."""

    def link_up(self, link: Link) -> None:
        pass

    def link_down(self, link: Link, reason: str) -> None:
        pass

    async def bundle_received(self, bundle: ReceivedBundle) -> None:
        raise TransferRefused("this node only sends", reason=_NOT_ACCEPTABLE)


@dataclass
class LinkStats:
    """Counters a link keeps for status displays and tests."""

    bundles_sent: int = 0
    bundles_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    refused: int = 0
    ignored: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class Link(ABC):
    """One link to one neighbour, able to carry many bundles in turn."""

    #: The CLA's registry name (``"tcpcl"``, ``"udp"``, ...).
    cla_name: str
    #: The peer's address as the CLA writes it (``"host:port"`` for IP links).
    peer_address: str

    def __init__(self) -> None:
        self.stats = LinkStats()

    @property
    @abstractmethod
    def peer_node_id(self) -> str | None:
        """The peer's node ID if it disclosed one."""

    @property
    @abstractmethod
    def max_bundle_size(self) -> int | None:
        """The largest encoded bundle this link accepts (``None``: no limit)."""

    @property
    @abstractmethod
    def is_up(self) -> bool:
        """Whether the link can still carry bundles."""

    @abstractmethod
    async def send(self, bundle: Outgoing) -> None:
        """Send one encoded bundle; see the module docstring for what returning means."""

    @abstractmethod
    async def close(self) -> None:
        """Close the link gracefully (transfers in progress may finish first)."""

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.cla_name} {self.peer_address} node={self.peer_node_id}>"
        )


class ConvergenceLayer(ABC):
    """A convergence-layer driver: listens, connects, and reports to its ``LinkEvents``."""

    #: Registry name, also used in addresses and configuration.
    name: str
    #: Whether ``Link.send`` returning means the peer acknowledged the bundle.
    reliable: bool

    def __init__(self, events: LinkEvents) -> None:
        self.events = events

    @property
    @abstractmethod
    def max_bundle_size(self) -> int | None:
        """The largest encoded bundle this CLA can carry (``None``: no limit)."""

    @abstractmethod
    async def start(self) -> None:
        """Start listening (if configured to)."""

    @abstractmethod
    async def stop(self) -> None:
        """Close every link and stop listening."""

    @abstractmethod
    async def connect(self, address: str) -> Link:
        """Open a link to ``address``; raises :class:`~dtncloud.errors.ConnectError`."""

    @property
    @abstractmethod
    def links(self) -> list[Link]:
        """The links open now."""


def outgoing_length(bundle: Outgoing) -> int:
    """The length in bytes of something :meth:`Link.send` accepts."""
    if isinstance(bundle, (bytes, bytearray)):
        return len(bundle)
    if isinstance(bundle, memoryview):
        return bundle.nbytes
    return os.stat(bundle).st_size


def parse_host_port(address: str, default_port: int) -> tuple[str, int]:
    """Split ``host[:port]`` (IPv6 hosts in brackets) into host and port."""
    text = address.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ConfigError(f"bad address {address!r}: missing ']'")
        port_text = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ConfigError(f"bad address {address!r}")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ConfigError(f"bad address {address!r}: no host")
    if not port_text:
        return host, default_port
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"bad address {address!r}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"bad address {address!r}: port {port} out of range")
    return host, port
