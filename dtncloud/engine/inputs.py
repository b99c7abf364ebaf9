"""What happens to a bundle protocol agent: the inputs of
:meth:`~dtncloud.engine.agent.BundleProtocolAgent.handle`, named in the past tense.

A shell (``dtnd``'s asyncio runtime or the simulator) turns what its links, store and
applications report into these values. Several answer an action the agent emitted: a
:class:`~dtncloud.engine.actions.Persist` is answered with :class:`Persisted` or
:class:`PersistFailed`, a :class:`~dtncloud.engine.actions.Transmit` with
:class:`TransmissionSucceeded` or :class:`TransmissionFailed`, and so on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dtncloud.bpv7.bundle import Bundle
from dtncloud.bpv7.flags import BundleFlag, StatusReportReason

__all__ = [
    "ApplicationCancelled",
    "ApplicationDeregistered",
    "ApplicationRegistered",
    "ApplicationSubmitted",
    "BundleEvicted",
    "BundleReceived",
    "Delivered",
    "DeliveryFailed",
    "DeliveryRefused",
    "Input",
    "LinkDown",
    "LinkUp",
    "Persisted",
    "PersistFailed",
    "Reassembled",
    "Refragmented",
    "RoutesChanged",
    "TransmissionFailed",
    "TransmissionSucceeded",
]


@dataclass(frozen=True, slots=True)
class BundleReceived:
    """Encoded bundle bytes arrived on ``link_id`` (None when they came another way, e.g. a
    data mule import). ``receipt`` is the shell's handle for acknowledging the sender: the
    agent answers it with exactly one :class:`~dtncloud.engine.actions.Acknowledge`, and only
    after the bundle is durably stored when it is accepted."""

    data: bytes
    link_id: str | None = None
    receipt: object = None
    #: only the first bytes of a transfer that broke: kept as a fragment if they reach into
    #: the payload (reactive fragmentation, RFC 9171 5.8)
    partial: bool = False


@dataclass(frozen=True, slots=True)
class Persisted:
    """The store holds ``bundle_id`` durably."""

    bundle_id: str


@dataclass(frozen=True, slots=True)
class PersistFailed:
    """The store refused ``bundle_id``; ``full`` when for lack of space (StoreFull)."""

    bundle_id: str
    full: bool = True
    message: str = ""


@dataclass(frozen=True, slots=True)
class TransmissionSucceeded:
    """The peer on ``link_id`` acknowledged all of transmission ``transmission``."""

    link_id: str
    bundle_id: str
    transmission: int


@dataclass(frozen=True, slots=True)
class TransmissionFailed:
    """Transmission ``transmission`` of ``bundle_id`` on ``link_id`` did not complete.
    ``refused`` is True when the peer refused it on purpose (it may already hold the
    bundle), False when the link broke; ``acknowledged`` is how many leading bytes the peer
    had acknowledged."""

    link_id: str
    bundle_id: str
    transmission: int
    refused: bool = False
    acknowledged: int = 0
    reason: str = ""
    #: leading payload bytes the peer acknowledged (see dtncloud.bpv7.reactive)
    payload_acknowledged: int = 0


@dataclass(frozen=True, slots=True)
class LinkUp:
    """A link to a neighbour is up. ``peer_node`` is its node ID when known."""

    link_id: str
    peer_node: str | None = None
    cla: str = ""
    max_bundle_size: int | None = None


@dataclass(frozen=True, slots=True)
class LinkDown:
    link_id: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ApplicationRegistered:
    """An application is attached to ``endpoint`` and takes deliveries from now on."""

    endpoint: str


@dataclass(frozen=True, slots=True)
class ApplicationDeregistered:
    """The application of ``endpoint`` went away. With ``forget`` False (the default) the
    registration stays and bundles for it are kept until it comes back or they expire."""

    endpoint: str
    forget: bool = False


@dataclass(frozen=True, slots=True)
class ApplicationSubmitted:
    """An application asks the node to send ``payload``. ``lifetime`` is in ms; the agent
    answers ``submission`` with a :class:`~dtncloud.engine.actions.SubmissionAccepted` once
    the new bundle is stored, or a :class:`~dtncloud.engine.actions.SubmissionRefused`."""

    source: str
    destination: str
    payload: bytes
    lifetime: int = 86_400_000
    flags: BundleFlag = BundleFlag.NONE
    report_to: str | None = None
    hop_limit: int | None = None
    submission: object = None
    #: applied to the new bundle before it is encoded (BPSec: sign, encrypt); what it raises
    #: refuses the submission
    secure: Callable[[Bundle], Bundle] | None = None


@dataclass(frozen=True, slots=True)
class ApplicationCancelled:
    """An application withdraws ``bundle_id``: the node stops keeping it (a deletion report
    with reason "no additional information" goes out if the bundle asked for one). Ignored
    when the node no longer holds the bundle."""

    bundle_id: str


@dataclass(frozen=True, slots=True)
class BundleEvicted:
    """The shell asks the agent to let ``bundle_id`` go to make room in a full store: it is
    deleted with ``reason`` (a status report reason code, default "depleted storage"), with a
    deletion report if it asked for one. Only the simulator's ``drop-oldest`` buffer policy
    sends it; ``dtnd`` never evicts an accepted bundle. Ignored when the node no longer holds
    the bundle."""

    bundle_id: str
    reason: int = int(StatusReportReason.DEPLETED_STORAGE)


@dataclass(frozen=True, slots=True)
class RoutesChanged:
    """The router's configuration changed (a route or contact added or removed at run
    time): every bundle waiting to be forwarded is routed again."""


@dataclass(frozen=True, slots=True)
class Delivered:
    """The application of ``endpoint`` took ``bundle_id``."""

    bundle_id: str
    endpoint: str


@dataclass(frozen=True, slots=True)
class DeliveryFailed:
    """Handing ``bundle_id`` to its application failed (it went away meanwhile); the agent
    keeps the bundle for a later delivery."""

    bundle_id: str
    endpoint: str


@dataclass(frozen=True, slots=True)
class DeliveryRefused:
    """``bundle_id`` may never be delivered to ``endpoint`` (it failed the node's security
    checks): the agent deletes it with ``reason`` (a status report reason code)."""

    bundle_id: str
    endpoint: str
    reason: int


@dataclass(frozen=True, slots=True)
class Reassembled:
    """Answer to :class:`~dtncloud.engine.actions.Reassemble`: the whole bundle's bytes, or
    None when the fragments could not be put together."""

    bundle_id: str
    data: bytes | None
    message: str = ""


@dataclass(frozen=True, slots=True)
class Refragmented:
    """Answer to :class:`~dtncloud.engine.actions.Refragment`: the encoded fragments to keep
    instead of the bundle, or none if it could not be cut."""

    bundle_id: str
    pieces: tuple[bytes, ...]


Input = (
    BundleReceived
    | Persisted
    | PersistFailed
    | TransmissionSucceeded
    | TransmissionFailed
    | LinkUp
    | LinkDown
    | ApplicationRegistered
    | ApplicationDeregistered
    | ApplicationSubmitted
    | ApplicationCancelled
    | BundleEvicted
    | RoutesChanged
    | Delivered
    | DeliveryFailed
    | DeliveryRefused
    | Reassembled
    | Refragmented
)
