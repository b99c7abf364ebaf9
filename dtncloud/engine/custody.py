"""Custody transfer bookkeeping: the custodian's ledger and the receiver's signal aggregator.

BPv7 (RFC 9171) has no custody transfer. dtncloud does it the way ION does, with Bundle-in-Bundle
Encapsulation (draft-ietf-dtn-bibect, -03 numbering; renamed "Bundle Retransmission Methods" in
-05): a custodian sends a bundle to the next custodian inside a BPDU that carries a
*transmission ID* (unique per sending node, counting up from 1; 0 asks for no custody) and a
*retransmission time* (the DTN time by which it expects an answer). The receiver, once the
bundle is durably stored (ARCHITECTURE.md rule 4), answers with a *custody signal*: a
disposition code and runs ``[first ID, count]`` of the transmission IDs it covers. The codecs
of both records are in :mod:`dtncloud.bpv7.bibe`; this module only keeps the books, sans-IO:
no clock (``now`` is DTN ms, passed in), no I/O, no module state.

:class:`CustodyLedger` (sending side)
    One entry per bundle this node holds in custody and has handed on: the current
    transmission ID, the peer it went to, the deadline, and the retransmission backoff (which
    doubles on every timeout, up to a cap). :meth:`~CustodyLedger.on_signal` settles entries a
    signal covers: dispositions 0 (accepted) and 3 (redundant reception: the peer already had
    it) *release* custody; every other code is a *refusal* (depleted storage, no known route,
    ...) and the engine routes the bundle again. :meth:`~CustodyLedger.due` hands back bundles
    whose deadline passed; the engine sends them again with :meth:`~CustodyLedger.send`, which
    gives them a new transmission ID. An entry persists as a few bytes of CBOR in
    :attr:`dtncloud.store.BundleMeta.custody` (:meth:`~CustodyLedger.state_of`,
    :meth:`~CustodyLedger.restore`).

:class:`SignalAggregator` (receiving side)
    Collects the transmission IDs this node accepted or refused, per upstream custodian and
    disposition, as sorted runs, and emits a :class:`~dtncloud.bpv7.bibe.CustodySignal` when
    the oldest pending ID has waited ``delay_ms``, when a signal reaches ``max_runs`` runs, or
    when too many custodians have signals pending.

Differences between implementations the engine must bridge (see docs/standards.md section 4):

* ION numbers the records 7 (BPDU) and 8 (custody signal) instead of 3 and 4: pick
  :data:`dtncloud.bpv7.admin.ION_ADMIN_RECORD_TYPES` for an ION duct. ION also fills the
  retransmission time with Unix *seconds* (``getCtime()``), not DTN milliseconds;
  :func:`ion_retransmission_time` converts a deadline from this ledger.
* HDTN decodes BPDUs but has no BIBE custody signal; uD3TN always sends transmission ID 0; dtn7
  has no custody at all. Against those, send BPDUs with ID 0 (no ledger entry).
* Dispositions are the RFC 5050 custody reasons (0, 3-8); HDTN adds 1 "no further information".

The ledger's deadlines are its own: the retransmission time a peer puts in *its* BPDUs is
informative only; the aggregator answers within ``delay_ms`` regardless.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import sys
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

from dtncloud.bpv7.bibe import CustodyDisposition, CustodySignal
from dtncloud.cborutil import (
    MAJOR_ARRAY,
    MAX_UINT64,
    CborError,
    DecodeBudget,
    decode_item,
    encode_text,
    encode_uint,
    head,
)
from dtncloud.dtntime import DTN_EPOCH_UNIX
from dtncloud.errors import BundleDecodeError, CodecError, ConfigError, InvalidEID, StoreFull

__all__ = [
    "CustodyLedger",
    "CustodyOutcome",
    "CustodyState",
    "SignalAggregator",
    "disposition_for_error",
    "ion_retransmission_time",
    "releases_custody",
]

#: Version tag of the persisted entry format ``[1, tx id, peer, deadline, backoff]``.
_STATE_VERSION = 1
#: Dispositions that end custody successfully.
_RELEASING = frozenset({CustodyDisposition.ACCEPTED, CustodyDisposition.REDUNDANT_RECEPTION})
#: Codes shared by BPv7 status-report reasons and custody dispositions (RFC 5050 lineage).
_SHARED_REASONS = frozenset({4, 5, 6, 7, 8})
#: Dead heap slots tolerated before the timer heap is rebuilt.
_MIN_COMPACT = 64


def releases_custody(disposition: CustodyDisposition | int) -> bool:
    """Whether a signal with ``disposition`` ends our custody (accepted, or redundant
    reception) rather than refusing it."""
    return disposition in _RELEASING


def ion_retransmission_time(deadline_ms: int) -> int:
    """The retransmission time ION expects in a BPDU (Unix seconds, rounded up) for a ledger
    deadline in DTN ms."""
    return DTN_EPOCH_UNIX + -(-deadline_ms // 1000)


def disposition_for_error(exc: BaseException) -> CustodyDisposition:
    """The disposition to refuse custody with, for the error that kept us from taking it.

    :class:`~dtncloud.errors.StoreFull` -> depleted storage; a decode error -> its reason when
    that is one of the shared codes 4-8 (so :class:`~dtncloud.errors.BundleTooLarge` gives
    depleted storage), else block unintelligible; :class:`~dtncloud.errors.InvalidEID` ->
    destination EID unintelligible; any other codec error -> block unintelligible; anything
    else -> no further information (code 1, which ION treats as a plain refusal).
    """
    if isinstance(exc, StoreFull):
        return CustodyDisposition.DEPLETED_STORAGE
    if isinstance(exc, BundleDecodeError):
        if exc.reason in _SHARED_REASONS:
            return CustodyDisposition(exc.reason)
        return CustodyDisposition.BLOCK_UNINTELLIGIBLE
    if isinstance(exc, InvalidEID):
        return CustodyDisposition.DESTINATION_EID_UNINTELLIGIBLE
    if isinstance(exc, CodecError):
        return CustodyDisposition.BLOCK_UNINTELLIGIBLE
    return CustodyDisposition.NO_FURTHER_INFORMATION


def _uint(name: str, value: object, *, minimum: int = 0) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= MAX_UINT64:
        return int(value)
    raise ValueError(f"{name} must be an integer from {minimum} to 2**64-1, not {value!r:.40}")


# -- custodian side ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustodyOutcome:
    """What a custody signal (or :meth:`CustodyLedger.settle`) did to one bundle.

    ``released``: our custody ended (disposition 0 or 3); the engine drops the
    ``CUSTODY_ACCEPTED`` retention and deletes the bundle if nothing else keeps it. Otherwise
    the peer refused (``disposition`` says why) and the engine must route the bundle again.
    Either way the ledger no longer tracks the bundle.
    """

    bundle_id: str
    transmission_id: int
    disposition: CustodyDisposition | int
    released: bool

    @property
    def refused(self) -> bool:
        return not self.released


@dataclass(frozen=True, slots=True)
class CustodyState:
    """A read-only view of one ledger entry. ``transmission_id`` 0 means the bundle waits to
    be sent again (``deadline`` is then 0)."""

    transmission_id: int
    peer: str
    deadline: int
    backoff: int

    @property
    def outstanding(self) -> bool:
        return self.transmission_id != 0


class _Entry:
    """One bundle's custody entry.

    ``deadline`` -1: not armed (handed back by :meth:`CustodyLedger.due`, waiting for
    :meth:`CustodyLedger.send`); it is only set after the entry left the timer heap, whose
    order (deadline, tx id, bundle ID) never changes under it. ``backoff`` 0: dead (released,
    refused, forgotten or replaced); the heap and the transmission ID index skip such slots
    and drop them lazily. :meth:`CustodyLedger.send` always makes a new entry."""

    __slots__ = ("backoff", "bundle_id", "deadline", "peer", "tx_id")

    def __init__(self, bundle_id: str, peer: str, tx_id: int, deadline: int, backoff: int) -> None:
        self.bundle_id = bundle_id
        self.peer = peer
        self.tx_id = tx_id
        self.deadline = deadline
        self.backoff = backoff

    def __lt__(self, other: _Entry) -> bool:
        if self.deadline != other.deadline:
            return self.deadline < other.deadline
        if self.tx_id != other.tx_id:
            return self.tx_id < other.tx_id
        return self.bundle_id < other.bundle_id


class _TxIndex:
    """Outstanding entries by transmission ID, with lazy deletion: a sorted ``array('Q')`` of
    IDs beside a list of entries (16 bytes a slot, a third of a dict's), plus a dict of IDs
    that came out of order (from :meth:`CustodyLedger.restore`, which sees bundles in store
    order), merged into the sorted part before the next range lookup. A slot is live while
    its entry still has that ID and is not dead; dead slots are squeezed out once they are
    half the index."""

    __slots__ = ("dead", "entries", "extra", "ids")

    def __init__(self) -> None:
        self.ids = array("Q")
        self.entries: list[_Entry] = []
        self.extra: dict[int, _Entry] = {}
        self.dead = 0

    def add(self, entry: _Entry) -> None:
        if not self.ids or entry.tx_id > self.ids[-1]:
            self.ids.append(entry.tx_id)
            self.entries.append(entry)
        else:
            self.extra[entry.tx_id] = entry

    def discard(self) -> None:
        """One slot went dead (its entry was released, dropped or timed out)."""
        self.dead += 1
        if self.dead > _MIN_COMPACT and self.dead * 2 > len(self.ids) + len(self.extra):
            self._rebuild()

    def find(self, tx_id: int) -> _Entry | None:
        entry = self.extra.get(tx_id)
        if entry is not None and entry.tx_id == tx_id and entry.backoff:
            return entry
        for entry in self._sorted_between(tx_id, tx_id + 1):
            return entry
        return None

    def between(self, first: int, end: int) -> Iterator[_Entry]:
        """Live entries with ``first <= ID < end``, in ID order."""
        if self.extra:
            self._rebuild()
        return self._sorted_between(first, end)

    def _sorted_between(self, first: int, end: int) -> Iterator[_Entry]:
        ids, entries = self.ids, self.entries
        i = bisect.bisect_left(ids, first)
        n = len(ids)
        while i < n and ids[i] < end:
            entry = entries[i]
            if entry.tx_id == ids[i] and entry.backoff:
                yield entry
            i += 1

    def _rebuild(self) -> None:
        slots = itertools.chain(zip(self.ids, self.entries, strict=True), self.extra.items())
        live = [(t, e) for t, e in slots if e.tx_id == t and e.backoff]
        if self.extra:
            live.sort(key=lambda pair: pair[0])
        self.ids = array("Q", [t for t, _ in live])
        self.entries = [e for _, e in live]
        self.extra = {}
        self.dead = 0


class CustodyLedger:
    """The custodian's books for bundles handed on under custody (BIBE).

    Bundle IDs are the engine's keys (``str(BundleId)``, for BPv6 bundles too); peers are
    strings the engine chooses (the next custodian's node ID) and must pass the same way to
    :meth:`send` and :meth:`on_signal`.

    Persistence: after any call that changes a bundle's entry (:meth:`send`, :meth:`due`,
    :meth:`on_signal`, :meth:`settle`, :meth:`forget`), :meth:`state_of` gives the bytes to
    put in ``BundleMeta.custody`` (``b""`` once the entry is gone) and
    :attr:`next_transmission_id` the counter to save. Persist both *before* the BPDU goes out,
    or a restarted node could hand the same ID to another bundle. :meth:`restore` moves the
    counter past every ID it restores, as a second line of defence.

    >>> ledger = CustodyLedger(retransmit_after_ms=1000)
    >>> ledger.send("ipn:1.1@5.0", "ipn:2.0", now=10)
    (1, 1010)
    >>> ledger.due(1010)
    ['ipn:1.1@5.0']
    >>> ledger.send("ipn:1.1@5.0", "ipn:2.0", now=1010)  # backoff doubled
    (2, 3010)
    >>> [o.released for o in ledger.on_signal("ipn:2.0", CustodySignal(0, ((2, 1),)), 1500)]
    [True]
    """

    __slots__ = ("_by_bundle", "_by_tx", "_dead", "_heap", "_initial", "_max", "_next_id")

    def __init__(
        self,
        *,
        next_transmission_id: int = 1,
        retransmit_after_ms: int = 60_000,
        max_retransmit_after_ms: int = 3_600_000,
    ) -> None:
        if not isinstance(next_transmission_id, int) or next_transmission_id < 1:
            raise ConfigError(f"next transmission ID must be >= 1, not {next_transmission_id!r}")
        if not isinstance(retransmit_after_ms, int) or retransmit_after_ms <= 0:
            raise ConfigError(
                f"custody retransmission delay must be > 0 ms, not {retransmit_after_ms!r}"
            )
        if not isinstance(max_retransmit_after_ms, int) or (
            max_retransmit_after_ms < retransmit_after_ms
        ):
            raise ConfigError(
                "maximum custody retransmission delay must be >= the initial delay "
                f"({retransmit_after_ms} ms), not {max_retransmit_after_ms!r}"
            )
        self._next_id = next_transmission_id
        self._initial = retransmit_after_ms
        self._max = max_retransmit_after_ms
        self._by_bundle: dict[str, _Entry] = {}
        self._by_tx = _TxIndex()
        self._heap: list[_Entry] = []
        self._dead = 0

    # -- queries -------------------------------------------------------------------------------

    @property
    def next_transmission_id(self) -> int:
        """The ID the next :meth:`send` hands out: the counter to persist."""
        return self._next_id

    def __len__(self) -> int:
        """Bundles with an entry (outstanding or waiting to be sent again)."""
        return len(self._by_bundle)

    def __contains__(self, bundle_id: object) -> bool:
        return bundle_id in self._by_bundle

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._by_bundle))

    def outstanding(self, bundle_id: str) -> bool:
        """Whether ``bundle_id`` was sent under custody and awaits a signal."""
        entry = self._by_bundle.get(bundle_id)
        return entry is not None and entry.tx_id != 0

    def info(self, bundle_id: str) -> CustodyState | None:
        entry = self._by_bundle.get(bundle_id)
        if entry is None:
            return None
        return CustodyState(entry.tx_id, entry.peer, max(entry.deadline, 0), entry.backoff)

    # -- sending and timers ----------------------------------------------------------------------

    def send(self, bundle_id: str, peer: str, now: int) -> tuple[int, int]:
        """Record that ``bundle_id`` goes to ``peer`` under custody at ``now``.

        Returns ``(transmission ID, retransmission time)`` for the BPDU. The deadline is
        ``now`` plus the bundle's current backoff (the initial delay for a bundle the ledger
        does not know yet). Sending a bundle that is still outstanding replaces the entry: a
        late signal for the old ID is then ignored.
        """
        tx_id = self._next_id
        if tx_id > MAX_UINT64:
            raise OverflowError("custody transmission IDs exhausted (2**64 - 1 used)")
        old = self._by_bundle.get(bundle_id)
        backoff = self._initial if old is None else old.backoff
        if old is not None:
            self._drop(old)
        self._next_id = tx_id + 1
        deadline = min(now + backoff, MAX_UINT64)
        entry = _Entry(bundle_id, sys.intern(peer), tx_id, deadline, backoff)
        self._by_bundle[bundle_id] = entry
        self._by_tx.add(entry)
        heapq.heappush(self._heap, entry)
        self._maybe_compact()
        return tx_id, deadline

    def get_timer(self) -> int | None:
        """The earliest deadline (DTN ms) of an outstanding entry, or None."""
        heap = self._heap
        while heap and not self._live(heap[0]):
            heapq.heappop(heap)
            self._dead -= 1
        return heap[0].deadline if heap else None

    def due(self, now: int) -> list[str]:
        """Bundles whose deadline is ``<= now``, earliest first. They stop being outstanding
        (a late signal for their old ID is ignored) and their backoff doubles, up to the cap;
        the engine sends each again with :meth:`send`."""
        out: list[str] = []
        heap = self._heap
        while heap and heap[0].deadline <= now:
            entry = heapq.heappop(heap)
            if not self._live(entry):
                self._dead -= 1
                continue
            entry.deadline = -1
            if entry.tx_id:  # a real transmission timed out (not a corrupt restored entry)
                entry.tx_id = 0
                self._by_tx.discard()
                entry.backoff = min(entry.backoff * 2, self._max)
            out.append(entry.bundle_id)
        return out

    def handle_timer(self, now: int) -> list[str]:
        """The same as :meth:`due`, for shells that drive every timer the same way."""
        return self.due(now)

    # -- signals -------------------------------------------------------------------------------

    def on_signal(self, peer: str, signal: CustodySignal, now: int) -> list[CustodyOutcome]:
        """Settle every outstanding transmission of ``peer`` that ``signal`` covers, in
        transmission ID order. IDs not outstanding, or sent to another peer, are ignored.

        The work is bounded by the number of runs and outstanding entries, never by the
        counts a (possibly hostile) signal announces.
        """
        del now  # signals are settled whenever they come; kept for a uniform signature
        hits = [
            entry
            for first, end in _merged_intervals(signal.scope)
            for entry in self._by_tx.between(first, end)
            if entry.peer == peer
        ]
        outcomes = []
        for entry in hits:
            self._drop(entry)
            outcomes.append(self._outcome(entry, signal.disposition))
        self._maybe_compact()
        return outcomes

    def settle(
        self,
        bundle_id: str,
        disposition: CustodyDisposition | int,
        *,
        peer: str | None = None,
    ) -> CustodyOutcome | None:
        """Settle ``bundle_id`` by bundle ID rather than transmission ID, as an RFC 5050
        custody signal names its subject (see :mod:`dtncloud.engine.custody_v6`).

        Returns None when the bundle is not outstanding, or when ``peer`` is given and the
        bundle went to another peer. (An RFC 5050 signal may come from any downstream
        custodian, so BPv6 callers pass no peer.)
        """
        entry = self._by_bundle.get(bundle_id)
        if entry is None or entry.tx_id == 0 or (peer is not None and entry.peer != peer):
            return None
        self._drop(entry)
        self._maybe_compact()
        return self._outcome(entry, disposition)

    def forget(self, bundle_id: str) -> bool:
        """Drop the entry of a bundle that expired or was deleted. True if there was one."""
        entry = self._by_bundle.get(bundle_id)
        if entry is None:
            return False
        self._drop(entry)
        self._maybe_compact()
        return True

    # -- persistence -----------------------------------------------------------------------------

    def state_of(self, bundle_id: str) -> bytes:
        """The entry of ``bundle_id`` as CBOR ``[1, tx id, peer, deadline, backoff]`` for
        ``BundleMeta.custody``; ``b""`` when the ledger has none. Tx id 0 means the bundle
        waits to be sent again."""
        entry = self._by_bundle.get(bundle_id)
        if entry is None:
            return b""
        return b"".join(
            (
                head(MAJOR_ARRAY, 5),
                encode_uint(_STATE_VERSION),
                encode_uint(entry.tx_id),
                encode_text(entry.peer),
                encode_uint(max(entry.deadline, 0)),
                encode_uint(entry.backoff),
            )
        )

    def restore(self, bundle_id: str, state: bytes) -> bool:
        """Rebuild the entry of ``bundle_id`` from :meth:`state_of` bytes after a restart.

        ``b""`` restores nothing (returns False). Bytes that do not parse, or name a
        transmission ID another entry holds, never raise: the bundle is then kept as due
        now, with the initial backoff, so the engine sends it again (returns False). Returns
        True when the entry came back as it was. The counter moves past a restored ID.
        """
        if not state:
            return False
        parsed = _parse_state(state)
        old = self._by_bundle.get(bundle_id)
        if old is not None:
            self._drop(old)
        if parsed is None or (parsed[0] and self._by_tx.find(parsed[0]) is not None):
            self._arm(_Entry(bundle_id, "", 0, 0, self._initial))
            return False
        tx_id, peer, deadline, backoff = parsed
        backoff = min(max(backoff, self._initial), self._max)
        if tx_id == 0:
            self._arm(_Entry(bundle_id, sys.intern(peer), 0, 0, backoff))
            return True
        entry = _Entry(bundle_id, sys.intern(peer), tx_id, deadline, backoff)
        self._arm(entry)
        self._by_tx.add(entry)
        if tx_id >= self._next_id:
            self._next_id = tx_id + 1
        return True

    # -- internals -------------------------------------------------------------------------------

    def _arm(self, entry: _Entry) -> None:
        self._by_bundle[entry.bundle_id] = entry
        heapq.heappush(self._heap, entry)

    @staticmethod
    def _live(entry: _Entry) -> bool:
        return entry.backoff != 0

    def _drop(self, entry: _Entry) -> None:
        """Remove ``entry`` from the indexes; its heap slot (if armed) goes dead."""
        del self._by_bundle[entry.bundle_id]
        entry.backoff = 0
        if entry.deadline >= 0:
            self._dead += 1
            if entry.tx_id:
                self._by_tx.discard()

    def _maybe_compact(self) -> None:
        if self._dead > _MIN_COMPACT and self._dead * 2 > len(self._heap):
            self._heap = [e for e in self._heap if self._live(e)]
            heapq.heapify(self._heap)
            self._dead = 0

    @staticmethod
    def _outcome(entry: _Entry, disposition: CustodyDisposition | int) -> CustodyOutcome:
        return CustodyOutcome(
            entry.bundle_id, entry.tx_id, disposition, releases_custody(disposition)
        )


def _merged_intervals(scope: tuple[tuple[int, int], ...]) -> list[tuple[int, int]]:
    """The runs of a scope as sorted, disjoint ``[first, end)`` intervals."""
    merged: list[tuple[int, int]] = []
    for first, count in sorted(scope):
        end = first + count
        if merged and first <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((first, end))
    return merged


def _parse_state(state: bytes) -> tuple[int, str, int, int] | None:
    """``(tx id, peer, deadline, backoff)`` from persisted bytes, or None if corrupt."""
    try:
        data = bytes(state)
        value, end = decode_item(data, 0, len(data), DecodeBudget(items=8, max_depth=2))
    except (CborError, TypeError, ValueError, IndexError, OverflowError):
        return None
    if end != len(data) or type(value) is not list or len(value) != 5:
        return None
    version, tx_id, peer, deadline, backoff = value
    if version != _STATE_VERSION or type(peer) is not str:
        return None
    for number in (tx_id, deadline, backoff):
        if type(number) is not int or not 0 <= number <= MAX_UINT64:
            return None
    if backoff == 0 or (tx_id and not peer):
        return None
    return tx_id, peer, deadline, backoff


# -- receiving side ----------------------------------------------------------------------------


class _Runs:
    """Sorted, disjoint, non-adjacent runs of IDs as parallel arrays of starts and ends
    (exclusive; an end can be 2**64, hence Python ints there would not do, so ends are kept
    as ``end - 1``: the last ID of the run)."""

    __slots__ = ("lasts", "starts")

    def __init__(self) -> None:
        self.starts = array("Q")
        self.lasts = array("Q")

    def __len__(self) -> int:
        return len(self.starts)

    def add(self, tx_id: int) -> None:
        starts, lasts = self.starts, self.lasts
        i = bisect.bisect_right(starts, tx_id)
        if i and tx_id <= lasts[i - 1]:
            return  # duplicate
        join_left = bool(i) and lasts[i - 1] == tx_id - 1
        join_right = i < len(starts) and starts[i] == tx_id + 1
        if join_left and join_right:
            lasts[i - 1] = lasts[i]
            del starts[i], lasts[i]
        elif join_left:
            lasts[i - 1] = tx_id
        elif join_right:
            starts[i] = tx_id
        else:
            starts.insert(i, tx_id)
            lasts.insert(i, tx_id)

    def scope(self) -> tuple[tuple[int, int], ...]:
        return tuple((s, e - s + 1) for s, e in zip(self.starts, self.lasts, strict=True))


class _Pending:
    __slots__ = ("by_disposition", "since")

    def __init__(self, since: int) -> None:
        self.since = since
        self.by_disposition: dict[int, _Runs] = {}


class SignalAggregator:
    """Gathers the custody dispositions this node owes upstream custodians into BIBE custody
    signals.

    Call :meth:`add` once a BPDU's bundle is durably stored (or refused). Signals come out of
    :meth:`add` (a signal reached ``max_runs`` runs, or more than ``max_custodians``
    custodians had signals pending: the oldest is flushed), :meth:`handle_timer` (a
    custodian's oldest pending ID has waited ``delay_ms``; all its dispositions go) and
    :meth:`flush_all` (shutdown). Each is ``(custodian, signal)``: send ``signal`` in an
    admin bundle to ``custodian``. Within a custodian, signals come in disposition order.

    Timers assume ``now`` does not go backwards; if it does, a signal may leave late, never
    lost.

    >>> agg = SignalAggregator(delay_ms=100)
    >>> [agg.add("ipn:9.0", tid, CustodyDisposition.ACCEPTED, now=0) for tid in (1, 2, 3, 7, 5, 6)]
    [[], [], [], [], [], []]
    >>> agg.get_timer()
    100
    >>> [(custodian, signal.scope) for custodian, signal in agg.handle_timer(100)]
    [('ipn:9.0', ((1, 3), (5, 3)))]
    """

    __slots__ = ("_delay", "_max_custodians", "_max_runs", "_pending")

    def __init__(
        self, *, delay_ms: int = 1000, max_runs: int = 64, max_custodians: int = 10_000
    ) -> None:
        if not isinstance(delay_ms, int) or delay_ms < 0:
            raise ConfigError(f"custody signal delay must be >= 0 ms, not {delay_ms!r}")
        if not isinstance(max_runs, int) or max_runs < 1:
            raise ConfigError(f"custody signal max runs must be >= 1, not {max_runs!r}")
        if not isinstance(max_custodians, int) or max_custodians < 1:
            raise ConfigError(
                f"custody signal max pending custodians must be >= 1, not {max_custodians!r}"
            )
        self._delay = delay_ms
        self._max_runs = max_runs
        self._max_custodians = max_custodians
        self._pending: dict[str, _Pending] = {}

    def __len__(self) -> int:
        """Custodians with a signal pending."""
        return len(self._pending)

    def add(
        self, custodian: str, transmission_id: int, disposition: CustodyDisposition | int, now: int
    ) -> list[tuple[str, CustodySignal]]:
        """Owe ``custodian`` ``disposition`` for ``transmission_id`` (a duplicate is
        ignored). Returns the signals to send at once, usually none."""
        tx_id = _uint("transmission ID", transmission_id, minimum=1)
        code = _uint("disposition code", disposition)
        out: list[tuple[str, CustodySignal]] = []
        pending = self._pending.get(custodian)
        if pending is None:
            if len(self._pending) >= self._max_custodians:
                out += self.flush(next(iter(self._pending)))
            pending = self._pending[custodian] = _Pending(now)
        runs = pending.by_disposition.get(code)
        if runs is None:
            runs = pending.by_disposition[code] = _Runs()
        runs.add(tx_id)
        if len(runs) >= self._max_runs:
            del pending.by_disposition[code]
            if not pending.by_disposition:
                del self._pending[custodian]
            out.append((custodian, CustodySignal(code, runs.scope())))
        return out

    def get_timer(self) -> int | None:
        """When the oldest pending signal is due, or None."""
        for pending in self._pending.values():
            return pending.since + self._delay
        return None

    def handle_timer(self, now: int) -> list[tuple[str, CustodySignal]]:
        """Flush every custodian whose oldest pending ID has waited ``delay_ms``."""
        out: list[tuple[str, CustodySignal]] = []
        while self._pending:
            custodian, pending = next(iter(self._pending.items()))
            if pending.since + self._delay > now:
                break
            out += self.flush(custodian)
        return out

    def flush(self, custodian: str) -> list[tuple[str, CustodySignal]]:
        """Every signal pending for ``custodian``, now."""
        pending = self._pending.pop(custodian, None)
        if pending is None:
            return []
        return [
            (custodian, CustodySignal(code, pending.by_disposition[code].scope()))
            for code in sorted(pending.by_disposition)
        ]

    def flush_all(self) -> list[tuple[str, CustodySignal]]:
        """Every pending signal, oldest custodian first (for shutdown)."""
        out: list[tuple[str, CustodySignal]] = []
        for custodian in list(self._pending):
            out += self.flush(custodian)
        return out
