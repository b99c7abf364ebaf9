"""In-memory links between simulated nodes, in virtual time.

A *link* is one contact between two nodes: it comes up, carries bundles both ways and goes
down. Each end's agent knows it by the same link ID, new for every contact. Each direction
sends one transfer at a time, in the order the agent asked (a queue per direction), so a
rate limit is meaningful; the two directions do not share the rate (full duplex).

A transfer takes ``size / rate`` seconds to put on the link (its serialisation; the next
transfer in that direction starts when it ends, at fractional milliseconds so that many
small transfers add up right) and arrives ``delay_ms`` later (transfers in flight overlap).
On arrival the receiver's agent gets :class:`~dtncloud.engine.inputs.BundleReceived`, and
the sender hears at the same moment whether the receiver stored it
(:class:`~dtncloud.engine.inputs.TransmissionSucceeded`) or refused it
(:class:`~dtncloud.engine.inputs.TransmissionFailed` with ``refused``), as a TCPCL sender
learns from the acknowledgement of the last segment. The acknowledgement takes no time to
come back.

A transfer either completes or breaks off, as in the ONE simulator:

- the link goes down before it arrives: aborted, the sender gets ``TransmissionFailed``
  (transfers still waiting in the queue fail too, but were never started);
- with ``loss`` p, each transfer is lost with probability p (drawn from the simulation's
  random generator when it starts): the receiver gets nothing and the sender, when it would
  have arrived, ``TransmissionFailed``, as a convergence layer whose acknowledgement never
  comes. Lost transfers count as aborted, and as ``lost``.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dtncloud.engine import actions as act
from dtncloud.engine import inputs as inp
from dtncloud.engine.transmit import render
from dtncloud.errors import DtnError

if TYPE_CHECKING:
    from dtncloud.sim.node import SimNode
    from dtncloud.sim.scheduler import Scheduler
    from dtncloud.sim.stats import MessageRecord, SimStats

__all__ = ["MODES", "Link", "LinkModel", "Network", "Transfer"]

#: The link modes: transfer times from size and rate, or real TCPCLv4 sessions.
MODES = ("bundle", "tcpcl")


@dataclass(frozen=True, slots=True)
class LinkModel:
    """How a link carries bytes: ``rate_bytes_s`` each way (None: no limit), ``delay_ms``
    of propagation, the probability ``loss`` that a transfer is lost (in mode "tcpcl": that a
    chunk of the byte pipe must be sent again), and the largest bundle it takes
    (``max_bundle_size``, None: any; larger ones are fragmented by the sender)."""

    rate_bytes_s: float | None = None
    delay_ms: int = 0
    loss: float = 0.0
    max_bundle_size: int | None = None
    #: "bundle": transfer times from size and rate; "tcpcl": two TCPCLv4 sessions
    #: exchanging bytes (:mod:`dtncloud.sim.tcpcl_link`)
    mode: str = "bundle"
    #: (name, value) settings of the sessions' SessionConfig in mode "tcpcl"
    tcpcl: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        rate = self.rate_bytes_s
        if rate is not None and not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate_bytes_s must be a positive number or None, not {rate!r}")
        if type(self.delay_ms) is not int or self.delay_ms < 0:
            raise ValueError(f"delay_ms must be an integer >= 0, not {self.delay_ms!r}")
        if not 0.0 <= self.loss <= 1.0:
            raise ValueError(f"loss must be in [0, 1], not {self.loss!r}")
        if self.max_bundle_size is not None and self.max_bundle_size < 1:
            raise ValueError(f"max_bundle_size must be positive, not {self.max_bundle_size!r}")


class Transfer:
    """One transmission (a Transmit action) on its way from ``sender`` to ``receiver``."""

    __slots__ = (
        "accepted",
        "action",
        "direction",
        "done",
        "hops",
        "incarnation",
        "lost",
        "pieces",
        "receiver",
        "record",
        "sender",
        "sent_at",
    )

    def __init__(self, action: act.Transmit, direction: Any) -> None:
        self.action = action
        self.direction = direction
        self.sender = direction.sender
        #: the sender's run this transfer belongs to: a restarted node gets no answers
        #: meant for its previous run (its transmission numbers start again)
        self.incarnation = direction.sender.incarnation
        self.receiver = direction.receiver
        self.pieces: list[bytes] = []
        self.record: MessageRecord | None = None
        #: hops the copy will have taken when it arrives
        self.hops = 1
        self.lost = False
        #: arrived, aborted or failed: nothing more happens to it
        self.done = False
        #: the receiver's acknowledgement: None until it answers
        self.accepted: bool | None = None
        #: when its last bit left the sender (None: not serialised yet)
        self.sent_at: int | None = None

    def failed(self, reason: str) -> inp.TransmissionFailed:
        a = self.action
        return inp.TransmissionFailed(a.link_id, a.bundle_id, a.transmission, reason=reason)


class _Direction:
    """One direction of a link: a queue, the transfer being serialised, those in flight."""

    __slots__ = ("busy", "flying", "free_at", "link", "queue", "receiver", "sender")

    def __init__(self, link: Link, sender: SimNode, receiver: SimNode) -> None:
        self.link = link
        self.sender = sender
        self.receiver = receiver
        self.queue: deque[Transfer] = deque()
        #: a transfer is being put on the link
        self.busy = False
        #: started and not yet arrived, oldest first
        self.flying: deque[Transfer] = deque()
        #: when (fractional ms) the last transfer started finished serialising
        self.free_at = 0.0


class Link:
    """One contact between nodes ``a`` and ``b``, known to both agents as ``link_id``."""

    __slots__ = ("a", "b", "link_id", "model", "outbound", "up")

    def __init__(self, link_id: str, a: SimNode, b: SimNode, model: LinkModel) -> None:
        self.link_id = link_id
        self.a = a
        self.b = b
        self.model = model
        self.up = True
        #: node ID -> the direction it sends in
        self.outbound = {a.node_id: _Direction(self, a, b), b.node_id: _Direction(self, b, a)}

    def peer_of(self, node: SimNode) -> SimNode:
        return self.b if node is self.a else self.a

    def sending(self, node: SimNode) -> list[str]:
        """The stored bundles ``node`` is sending on this link now: transfers started (being
        serialised or on their way) whose outcome it has not heard yet."""
        flying = self.outbound[node.node_id].flying
        return [t.action.bundle_id for t in flying if not t.done and t.action.plan.inline is None]


#: Link mode "tcpcl": how long after a session ended on its own during a contact the nodes
#: connect again, at first and at most, in ms (dtnd's TCPCL reconnect_initial_s and
#: reconnect_max_s defaults, dtncloud.cla.tcpcl.TcpclOptions).
RECONNECT_INITIAL_MS = 1_000
RECONNECT_MAX_MS = 60_000


class Network:
    """Every link of a simulation: which node pairs are in contact, which links are up,
    and the transfers on them."""

    def __init__(self, scheduler: Scheduler, stats: SimStats, rng: random.Random) -> None:
        self.scheduler = scheduler
        self.stats = stats
        self.rng = rng
        #: (node ID, node ID) -> link model, for every pair in contact (a node being down
        #: does not end a contact: its link comes back when the node does)
        self.contacts: dict[tuple[str, str], LinkModel] = {}
        #: pair -> the link up now
        self.links: dict[tuple[str, str], Link] = {}
        self._by_id: dict[str, Link] = {}
        self._contacts_of: dict[str, dict[tuple[str, str], None]] = {}
        self._next_link = 1
        self.contacts_started = 0
        #: pair -> the number of its contacts so far (a reconnection is for one contact)
        self._contact_serial: dict[tuple[str, str], int] = {}
        #: pair -> the wait before the next reconnection (link mode "tcpcl")
        self._reconnect_ms: dict[tuple[str, str], int] = {}

    # -- contacts -----------------------------------------------------------------------------

    @staticmethod
    def pair(a: SimNode, b: SimNode) -> tuple[str, str]:
        return (a.node_id, b.node_id) if a.node_id < b.node_id else (b.node_id, a.node_id)

    def contact_up(self, a: SimNode, b: SimNode, model: LinkModel) -> None:
        """``a`` and ``b`` are in contact from now on (no change if they already are)."""
        key = self.pair(a, b)
        if key in self.contacts:
            return
        self.contacts[key] = model
        self._contact_serial[key] = self._contact_serial.get(key, 0) + 1
        self._reconnect_ms.pop(key, None)
        for node in (a, b):
            self._contacts_of.setdefault(node.node_id, {})[key] = None
        self._connect(key, a, b, model)

    def contact_down(self, a: SimNode, b: SimNode) -> None:
        """The contact between ``a`` and ``b`` ends (no change if there is none)."""
        key = self.pair(a, b)
        if self.contacts.pop(key, None) is None:
            return
        for node in (a, b):
            self._contacts_of[node.node_id].pop(key, None)
        link = self.links.get(key)
        if link is not None:
            self._disconnect(key, link, "contact ended")

    def node_down(self, node: SimNode) -> None:
        """Every link of ``node`` goes down; its contacts stay, for when it is back."""
        for key in list(self._contacts_of.get(node.node_id, ())):
            link = self.links.get(key)
            if link is not None:
                self._disconnect(key, link, "node down")

    def node_up(self, node: SimNode, nodes: dict[str, SimNode]) -> None:
        """``node`` is back: a link comes up for each of its contacts with a node that is
        up too."""
        for key in list(self._contacts_of.get(node.node_id, ())):
            if key not in self.links:
                a, b = nodes[key[0]], nodes[key[1]]
                self._connect(key, a, b, self.contacts[key])

    def _connect(
        self,
        key: tuple[str, str],
        a: SimNode,
        b: SimNode,
        model: LinkModel,
        *,
        reconnection: bool = False,
    ) -> None:
        if not (a.up and b.up):
            return
        link_id = f"c{self._next_link}"
        self._next_link += 1
        if not reconnection:
            self.contacts_started += 1
        if model.mode == "tcpcl":
            from dtncloud.sim.tcpcl_link import TcpclLink

            tcpcl = TcpclLink(link_id, a, b, model, self)
            self.links[key] = tcpcl
            self._by_id[link_id] = tcpcl
            tcpcl.open()  # the agents hear LinkUp when their sessions are established
            return
        link = Link(link_id, a, b, model)
        self.links[key] = link
        self._by_id[link_id] = link
        a.link_up(link)
        b.link_up(link)

    def contact_ending(self, a: SimNode, b: SimNode) -> None:
        """The contact between ``a`` and ``b`` is about to end: a TCPCL link sends SESS_TERM
        (nothing happens on other links)."""
        link = self.links.get(self.pair(a, b))
        terminate = getattr(link, "terminate", None)
        if terminate is not None:
            terminate()

    def link_finished(self, link: Link, opened_at: int) -> None:
        """A TCPCL link (opened at ``opened_at``) whose sessions both closed on their own (an
        idle timeout, a SESS_TERM) is gone. While the contact lasts the nodes connect again,
        as dtnd keeps a session with a peer: after :data:`RECONNECT_INITIAL_MS`, the wait
        doubling each time up to :data:`RECONNECT_MAX_MS` and jittered by a factor of 0.5 to
        1.5, and starting again from the first once a session lasted the longest wait."""
        key = self.pair(link.a, link.b)
        if self.links.get(key) is not link:
            return
        del self.links[key]
        del self._by_id[link.link_id]
        if key not in self.contacts:
            return
        now = self.scheduler.now
        wait = self._reconnect_ms.get(key, RECONNECT_INITIAL_MS)
        if now - opened_at >= RECONNECT_MAX_MS:
            wait = RECONNECT_INITIAL_MS
        self._reconnect_ms[key] = min(2 * wait, RECONNECT_MAX_MS)
        jittered = round(wait * (0.5 + self.rng.random()))
        again = (link.a, link.b, self._contact_serial[key])
        self.scheduler.at(now + jittered, self._reconnect, again)

    def _reconnect(self, again: tuple[SimNode, SimNode, int]) -> None:
        a, b, serial = again
        key = self.pair(a, b)
        model = self.contacts.get(key)
        if model is None or key in self.links or self._contact_serial[key] != serial:
            return  # the contact ended (another may have begun), or a node came back
        self._connect(key, a, b, model, reconnection=True)

    def _disconnect(self, key: tuple[str, str], link: Link, reason: str) -> None:
        del self.links[key]
        del self._by_id[link.link_id]
        link.up = False
        cut = getattr(link, "cut", None)
        if cut is not None:  # a TCPCL link: its sessions lose their connection
            cut(reason)
            return
        broken: list[tuple[Transfer, bool]] = []
        now = self.scheduler.now
        for direction in link.outbound.values():
            # Bits already sent are on their way (a light-time delay): the contact ending
            # does not stop them, as contact graph routing plans. Only the transfer still
            # being serialised is cut.
            sent = [t for t in direction.flying if t.sent_at is not None and t.sent_at <= now]
            broken.extend((t, True) for t in direction.flying if t not in sent)
            broken.extend((t, False) for t in direction.queue)
            direction.flying.clear()
            direction.flying.extend(sent)
            direction.queue.clear()
            direction.busy = False
        # The convergence layer reports its broken transfers, then the link's end.
        for transfer, started in broken:
            transfer.done = True
            if started:
                self.stats.transfer_aborted(transfer.record, transfer.sender.node_id, False)
            transfer.sender.answer(transfer.failed(reason))
        link.a.link_down(link, reason)
        link.b.link_down(link, reason)

    # -- transfers ----------------------------------------------------------------------------

    def send(self, node: SimNode, action: act.Transmit) -> inp.Input | None:
        """Carry out ``node``'s Transmit: queue it on its link. Returns the answer when it
        fails at once (the link is gone)."""
        link = self._by_id.get(action.link_id)
        if link is None or not link.up:
            return inp.TransmissionFailed(
                action.link_id, action.bundle_id, action.transmission, reason="link down"
            )
        if link.model.mode == "tcpcl":
            return link.send(node, action)  # type: ignore[attr-defined, no-any-return]
        direction = link.outbound[node.node_id]
        direction.queue.append(Transfer(action, direction))
        if not direction.busy:
            self._start_next(direction, chained=False)
        return None

    def _start_next(self, direction: _Direction, *, chained: bool) -> None:
        """Start the first transfer of ``direction``'s queue that can be rendered.
        ``chained``: it follows the one just serialised without a gap."""
        now = self.scheduler.now
        sender = direction.sender
        model = direction.link.model
        while direction.queue:
            transfer = direction.queue.popleft()
            action = transfer.action
            plan = action.plan
            try:
                data = plan.inline if plan.inline is not None else sender.stored(action.bundle_id)
                pieces = render(data, plan, now)
            except (DtnError, ValueError) as exc:  # gone from the store meanwhile, uncuttable
                transfer.done = True
                # answered as an event of its own: the sender may be busy with its actions
                failure = transfer.failed(f"not sent: {exc}")
                self.scheduler.at(now, sender.answer_later, (sender.incarnation, failure))
                continue
            transfer.pieces = pieces
            size = sum(map(len, pieces))
            record = self.stats.record_of(action.bundle_id) if plan.inline is None else None
            if record is not None:
                transfer.record = record
                transfer.hops = record.holders.get(sender.node_id, 0) + 1
            self.stats.transfer_started(record, sender.node_id, size)
            if model.loss > 0.0 and self.rng.random() < model.loss:
                transfer.lost = True
            rate = model.rate_bytes_s
            if rate is None:
                end = now
            else:
                start = direction.free_at if chained else max(direction.free_at, float(now))
                finish = start + size * 1000.0 / rate
                direction.free_at = finish
                end = max(now, math.ceil(finish - 1e-9))
            direction.busy = True
            transfer.sent_at = end
            direction.flying.append(transfer)
            arrive = end + model.delay_ms
            if arrive == end:
                self.scheduler.at(end, self._arrive_free, transfer)
            else:
                self.scheduler.at(end, self._serialised, direction)
                self.scheduler.at(arrive, self._arrive, transfer)
            return
        direction.busy = False

    def _serialised(self, direction: _Direction) -> None:
        if direction.link.up:
            self._start_next(direction, chained=True)

    def _arrive_free(self, transfer: Transfer) -> None:
        """A transfer with no propagation delay arrives as its direction frees up."""
        if transfer.done:
            return
        self._start_next(transfer.direction, chained=True)
        self._arrive(transfer)

    def _arrive(self, transfer: Transfer) -> None:
        if transfer.done:
            return
        transfer.done = True
        flying = transfer.direction.flying
        if flying[0] is transfer:
            flying.popleft()
        else:
            flying.remove(transfer)
        sender = transfer.sender
        answer = self._answer
        if transfer.lost:
            self.stats.transfer_aborted(transfer.record, sender.node_id, True)
            answer(transfer, transfer.failed("lost"))
            return
        if not transfer.receiver.up:  # it went down while the bits were on their way
            self.stats.transfer_aborted(transfer.record, sender.node_id, False)
            answer(transfer, transfer.failed("the receiver is down"))
            return
        transfer.receiver.receive(transfer)
        action = transfer.action
        if transfer.accepted:
            answer(
                transfer,
                inp.TransmissionSucceeded(action.link_id, action.bundle_id, action.transmission),
            )
        else:
            answer(
                transfer,
                inp.TransmissionFailed(
                    action.link_id,
                    action.bundle_id,
                    action.transmission,
                    refused=True,
                    reason="refused by the peer",
                ),
            )

    @staticmethod
    def _answer(transfer: Transfer, answer: inp.Input) -> None:
        if transfer.sender.incarnation == transfer.incarnation:
            transfer.sender.answer(answer)
