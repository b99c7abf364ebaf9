"""What a bundle protocol agent asks its shell to do: the outputs of
:meth:`~dtncloud.engine.agent.BundleProtocolAgent.next_action`, named in the imperative.

A shell carries actions out in the order they come, except that it may run several
:class:`Persist` and :class:`Transmit` actions concurrently (a store commits puts in groups,
links send in parallel). What it learns while doing so goes back in as inputs
(:mod:`dtncloud.engine.inputs`). The ordering rules live in the agent: for instance an
:class:`Acknowledge` of an accepted bundle only ever follows that bundle's
:class:`~dtncloud.engine.inputs.Persisted`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dtncloud.engine.transmit import TransmitPlan
from dtncloud.store.base import BundleMeta

__all__ = [
    "Acknowledge",
    "Action",
    "Deliver",
    "Persist",
    "Reassemble",
    "Refragment",
    "Remove",
    "SaveState",
    "SubmissionAccepted",
    "SubmissionRefused",
    "Transmit",
    "UpdateMeta",
]


@dataclass(frozen=True, slots=True)
class Persist:
    """Store ``data`` (an encoded bundle) with ``meta``, then report
    :class:`~dtncloud.engine.inputs.Persisted` or
    :class:`~dtncloud.engine.inputs.PersistFailed`."""

    meta: BundleMeta
    data: bytes


@dataclass(frozen=True, slots=True)
class UpdateMeta:
    """Replace the stored metadata of ``meta.bundle_id``. No answer is expected."""

    meta: BundleMeta


@dataclass(frozen=True, slots=True)
class Remove:
    """Delete ``bundle_id`` from the store. No answer is expected."""

    bundle_id: str


@dataclass(frozen=True, slots=True)
class SaveState:
    """Durably store a small named node value (counters), before any later action runs."""

    key: str
    value: bytes


@dataclass(frozen=True, slots=True)
class Acknowledge:
    """Answer the sender of a received bundle (the ``receipt`` of its
    :class:`~dtncloud.engine.inputs.BundleReceived`). ``accepted`` is False when the bundle
    was discarded, with ``reason`` an RFC 9171 status-report reason code. Duplicates of
    bundles already held are accepted: the sender need not send them again."""

    receipt: object
    accepted: bool
    reason: int = 0


@dataclass(frozen=True, slots=True)
class Transmit:
    """Send a bundle on ``link_id``: load ``bundle_id`` from the store (or take
    ``plan.inline`` for bundles that are never stored), turn it into wire bundles with
    :func:`~dtncloud.engine.transmit.render` and send them in order. Answer with
    :class:`~dtncloud.engine.inputs.TransmissionSucceeded` or
    :class:`~dtncloud.engine.inputs.TransmissionFailed` quoting ``transmission``."""

    link_id: str
    bundle_id: str
    transmission: int
    plan: TransmitPlan


@dataclass(frozen=True, slots=True)
class Deliver:
    """Hand ``bundle_id``'s payload to the application registered on ``endpoint``, then
    report :class:`~dtncloud.engine.inputs.Delivered` or
    :class:`~dtncloud.engine.inputs.DeliveryFailed`."""

    endpoint: str
    bundle_id: str


@dataclass(frozen=True, slots=True)
class Reassemble:
    """Load the stored fragments ``fragment_ids``, put them together with
    :func:`~dtncloud.engine.transmit.reassemble_stored` and report
    :class:`~dtncloud.engine.inputs.Reassembled` for ``bundle_id``."""

    bundle_id: str
    fragment_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Refragment:
    """Cut stored bundle ``bundle_id`` in two and report the pieces to keep with
    :class:`~dtncloud.engine.inputs.Refragmented`:

    - with ``payload_offset`` (reactive fragmentation: a transfer broke after the peer
      acknowledged that many payload bytes) only the rest is kept
      (:func:`~dtncloud.bpv7.fragment.split_at`);
    - with ``first_size`` (proactive fragmentation: a contact can carry only that many more
      bytes) both are kept: a first fragment of at most ``first_size`` encoded bytes and the
      rest (:func:`~dtncloud.bpv7.fragment.fragment_bundle`).
    """

    bundle_id: str
    payload_offset: int | None = None
    first_size: int | None = None


@dataclass(frozen=True, slots=True)
class SubmissionAccepted:
    """The bundle an application submitted is stored as ``bundle_id``."""

    submission: object
    bundle_id: str


@dataclass(frozen=True, slots=True)
class SubmissionRefused:
    submission: object
    reason: str


Action = (
    Persist
    | UpdateMeta
    | Remove
    | SaveState
    | Acknowledge
    | Transmit
    | Deliver
    | Reassemble
    | Refragment
    | SubmissionAccepted
    | SubmissionRefused
)
