"""Properties of custody bookkeeping (dtncloud.engine.custody).

1. The aggregator's runs cover exactly the IDs given, sorted, non-overlapping, non-adjacent.
2. The ledger behaves like a plain reference model (dicts and sorting, no heaps, no lazy
   deletion) under any sequence of sends, timeouts, signals, forgets and restarts.
3. A custodian and a receiver talking over a channel that loses, delays, reorders and
   duplicates messages, with refusals and custodian restarts thrown in, end with every
   bundle released, and never release a bundle the receiver does not hold.
"""

from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from dtncloud.bpv7.bibe import CustodyDisposition, CustodySignal, custody_signal_for
from dtncloud.cborutil import MAX_UINT64
from dtncloud.engine.custody import CustodyLedger, SignalAggregator

D = CustodyDisposition

# IDs clustered enough to make adjacent and duplicate IDs common, plus a few huge ones.
clustered_ids = st.one_of(
    st.integers(1, 40), st.integers(1, 2000), st.integers(MAX_UINT64 - 40, MAX_UINT64)
)


def check_runs(scope: tuple[tuple[int, int], ...]) -> None:
    for first, count in scope:
        assert count >= 1 and first >= 1 and first + count - 1 <= MAX_UINT64
    for (a, n), (b, _) in itertools.pairwise(scope):
        assert a + n < b, f"runs {scope} overlap, touch or are unsorted"


def ids_of(scope: tuple[tuple[int, int], ...]) -> list[int]:
    return [i for first, count in scope for i in range(first, first + count)]


# -- 1. aggregation -------------------------------------------------------------------------------


@given(st.lists(clustered_ids, max_size=200), st.randoms(use_true_random=False))
def test_runs_cover_exactly_the_ids(ids: list[int], rng: random.Random) -> None:
    rng.shuffle(ids)
    agg = SignalAggregator(max_runs=10**6)
    for tid in ids:
        assert agg.add("ipn:1.0", tid, D.ACCEPTED, 0) == []
    out = agg.flush_all()
    if not ids:
        assert out == []
        return
    [(_, signal)] = out
    check_runs(signal.scope)
    assert ids_of(signal.scope) == sorted(set(ids))
    assert signal.scope == custody_signal_for(ids).scope


@given(
    st.lists(st.tuples(st.sampled_from("abc"), clustered_ids, st.sampled_from([0, 3, 4])),
             max_size=300),
    st.integers(1, 6),
    st.integers(1, 3),
    st.integers(0, 50),
)  # fmt: skip
def test_bounded_aggregation_loses_nothing(
    adds: list[tuple[str, int, int]], max_runs: int, max_custodians: int, delay: int
) -> None:
    agg = SignalAggregator(delay_ms=delay, max_runs=max_runs, max_custodians=max_custodians)
    sent: list[tuple[str, CustodySignal]] = []
    for now, (custodian, tid, code) in enumerate(adds):
        timer = agg.get_timer()
        if timer is not None and timer <= now:
            sent += agg.handle_timer(now)
        sent += agg.add(custodian, tid, code, now)
        assert len(agg) <= max_custodians
        timer = agg.get_timer()
        assert timer is None or timer >= now
    sent += agg.flush_all()
    got: dict[tuple[str, int], set[int]] = {}
    for custodian, signal in sent:
        check_runs(signal.scope)
        assert 1 <= len(signal.scope) <= max_runs
        got.setdefault((custodian, int(signal.disposition)), set()).update(ids_of(signal.scope))
    want: dict[tuple[str, int], set[int]] = {}
    for custodian, tid, code in adds:
        want.setdefault((custodian, code), set()).add(tid)
    assert got == want


# -- 2. the ledger against a reference model ------------------------------------------------------

INITIAL, CAP = 100, 700
PEERS = ("p", "q")
BUNDLES = ("b0", "b1", "b2", "b3", "b4", "b5")


@dataclass
class Ref:
    tx: int
    peer: str
    deadline: int
    backoff: int
    armed: bool = True


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ledger = CustodyLedger(retransmit_after_ms=INITIAL, max_retransmit_after_ms=CAP)
        self.model: dict[str, Ref] = {}
        self.next_id = 1
        self.now = 0

    @initialize()
    def start(self) -> None:
        pass

    @rule(step=st.integers(0, 400))
    def advance(self, step: int) -> None:
        self.now += step

    @rule(bundle=st.sampled_from(BUNDLES), peer=st.sampled_from(PEERS))
    def send(self, bundle: str, peer: str) -> None:
        old = self.model.get(bundle)
        backoff = INITIAL if old is None else old.backoff
        deadline = min(self.now + backoff, MAX_UINT64)
        self.model[bundle] = Ref(self.next_id, peer, deadline, backoff)
        assert self.ledger.send(bundle, peer, self.now) == (self.next_id, deadline)
        self.next_id += 1

    @rule()
    def due(self) -> None:
        hits = sorted(
            (r.deadline, r.tx, b)
            for b, r in self.model.items()
            if r.armed and r.deadline <= self.now
        )
        for _, _, bundle in hits:
            ref = self.model[bundle]
            ref.armed = False
            if ref.tx:
                ref.backoff = min(ref.backoff * 2, CAP)
            ref.tx = 0
            ref.deadline = 0
        assert self.ledger.due(self.now) == [b for _, _, b in hits]

    @rule(
        peer=st.sampled_from(PEERS),
        code=st.sampled_from([0, 3, 4, 6, 1]),
        runs=st.lists(st.tuples(st.integers(1, 60), st.integers(1, 8)), max_size=4),
    )
    def signal(self, peer: str, code: int, runs: list[tuple[int, int]]) -> None:
        sig = CustodySignal(code, tuple(runs))
        hits = sorted(
            (r.tx, b) for b, r in self.model.items() if r.tx and r.peer == peer and sig.covers(r.tx)
        )
        for _, bundle in hits:
            del self.model[bundle]
        out = self.ledger.on_signal(peer, sig, self.now)
        assert [(o.transmission_id, o.bundle_id) for o in out] == hits
        assert all(o.released == (code in (0, 3)) for o in out)

    @rule(bundle=st.sampled_from(BUNDLES))
    def forget(self, bundle: str) -> None:
        assert self.ledger.forget(bundle) == (self.model.pop(bundle, None) is not None)

    @rule(corrupt=st.sets(st.sampled_from(BUNDLES)))
    def restart(self, corrupt: set[str]) -> None:
        counter = self.ledger.next_transmission_id
        states = {b: self.ledger.state_of(b) for b in BUNDLES}
        self.ledger = CustodyLedger(
            next_transmission_id=counter,
            retransmit_after_ms=INITIAL,
            max_retransmit_after_ms=CAP,
        )
        for bundle, state in states.items():
            if bundle in corrupt and state:
                state = state[:-1]
            restored = self.ledger.restore(bundle, state)
            ref = self.model.get(bundle)
            assert restored == (ref is not None and bundle not in corrupt)
            if ref is None:
                continue
            if bundle in corrupt:
                self.model[bundle] = Ref(0, "", 0, INITIAL)
            elif not ref.armed:
                ref.armed, ref.deadline = True, 0
        assert self.ledger.next_transmission_id == counter

    @invariant()
    def agrees(self) -> None:
        armed = [r.deadline for r in self.model.values() if r.armed]
        assert self.ledger.get_timer() == (min(armed) if armed else None)
        assert len(self.ledger) == len(self.model)
        for bundle in BUNDLES:
            ref = self.model.get(bundle)
            info = self.ledger.info(bundle)
            if ref is None:
                assert info is None and self.ledger.state_of(bundle) == b""
                continue
            assert info is not None
            assert (info.transmission_id, info.peer, info.backoff) == (
                ref.tx,
                ref.peer,
                ref.backoff,
            )
            if ref.tx:
                assert info.deadline == ref.deadline
            assert self.ledger.outstanding(bundle) == bool(ref.tx)
        assert self.ledger.next_transmission_id == self.next_id


LedgerMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=60)
test_ledger_matches_the_model = LedgerMachine.TestCase


# -- 3. end to end over a bad channel -------------------------------------------------------------


@dataclass
class World:
    """A custodian C sends bundles to a receiver R over a channel that loses, delays,
    reorders and duplicates; R refuses some; C crashes and restarts from persisted state."""

    rng: random.Random
    loss: float
    refuse: float
    crash: float
    ledger: CustodyLedger = field(
        default_factory=lambda: CustodyLedger(retransmit_after_ms=200, max_retransmit_after_ms=3000)
    )
    agg: SignalAggregator = field(default_factory=lambda: SignalAggregator(delay_ms=50, max_runs=4))
    events: list[tuple[int, int, str, object]] = field(default_factory=list)
    seq: int = 0
    held: set[str] = field(default_factory=set)  # bundles R has durably stored
    tx_bundle: dict[int, str] = field(default_factory=dict)  # what R learns from each BPDU
    released: set[str] = field(default_factory=set)

    def transmit(self, now: int, kind: str, payload: object) -> None:
        copies = 2 if self.rng.random() < 0.1 else 1
        for _ in range(copies):
            if self.rng.random() < self.loss:
                continue
            self.seq += 1
            heapq.heappush(self.events, (now + self.rng.randint(1, 400), self.seq, kind, payload))

    def send(self, bundle: str, now: int) -> None:
        tx, _deadline = self.ledger.send(bundle, "R", now)
        self.transmit(now, "bpdu", (tx, bundle))

    def restart(self) -> None:
        states = {b: self.ledger.state_of(b) for b in self.ledger}
        counter = self.ledger.next_transmission_id
        self.ledger = CustodyLedger(
            next_transmission_id=counter, retransmit_after_ms=200, max_retransmit_after_ms=3000
        )
        for bundle, state in states.items():
            if self.rng.random() < 0.1:
                state = b"\xff" + state  # a torn write
            self.ledger.restore(bundle, state)

    def deliver(self, now: int, kind: str, payload: object) -> None:
        if kind == "bpdu":
            assert isinstance(payload, tuple)
            tx: int = payload[0]
            bundle: str = payload[1]
            if bundle in self.held:
                code = D.REDUNDANT_RECEPTION
            elif self.rng.random() < self.refuse:
                code = D.DEPLETED_STORAGE
            else:
                self.held.add(bundle)
                code = D.ACCEPTED
            for _custodian, signal in self.agg.add("C", tx, code, now):
                self.transmit(now, "signal", signal)
        else:
            assert isinstance(payload, CustodySignal)
            for outcome in self.ledger.on_signal("R", payload, now):
                if outcome.released:
                    assert outcome.bundle_id in self.held, "released a bundle R does not hold"
                    assert outcome.bundle_id not in self.released
                    self.released.add(outcome.bundle_id)
                else:
                    self.send(outcome.bundle_id, now)  # the engine routes it again

    def run(self, bundles: list[str]) -> int:
        now = 0
        for bundle in bundles:
            self.send(bundle, now)
        for _step in range(200_000):
            if len(self.released) == len(bundles):
                return now
            candidates = [
                t for t in (self.ledger.get_timer(), self.agg.get_timer()) if t is not None
            ]
            if self.events:
                candidates.append(self.events[0][0])
            assert candidates, "nothing left to happen but bundles are not released"
            now = max(now, min(candidates))
            while self.events and self.events[0][0] <= now:
                _, _, kind, payload = heapq.heappop(self.events)
                self.deliver(now, kind, payload)
            for _custodian, signal in self.agg.handle_timer(now):
                self.transmit(now, "signal", signal)
            for bundle in self.ledger.due(now):
                self.send(bundle, now)
            if self.rng.random() < self.crash:
                self.restart()
        raise AssertionError(f"not done after 200000 steps: {len(self.released)}/{len(bundles)}")


@settings(max_examples=60)
@given(
    n=st.integers(1, 25),
    loss=st.sampled_from([0.0, 0.2, 0.5, 0.7]),
    refuse=st.sampled_from([0.0, 0.3]),
    crash=st.sampled_from([0.0, 0.02]),
    rng=st.randoms(use_true_random=False),
)
def test_every_bundle_is_eventually_released(
    n: int, loss: float, refuse: float, crash: float, rng: random.Random
) -> None:
    world = World(rng, loss, refuse, crash)
    bundles = [f"ipn:1.1@{1000 + i}.0" for i in range(n)]
    world.run(bundles)
    assert world.released == set(bundles) <= world.held
    assert len(world.ledger) == 0 and world.ledger.get_timer() is None
