"""PRoPHET's delivery predictabilities in the simulator, step by step, against RFC 6693.

A scripted sequence of encounters runs in a :class:`~dtncloud.sim.Simulation` of ``prophet``
nodes (links with no rate limit or delay, so the table exchange of an encounter completes
at the moment the link comes up). After every step each router's table (``router.table``)
is compared with what the RFC's equations give, worked out here by :class:`Rfc6693Node`
with the router's own parameter values (read from the router instances).

The equations (RFC 6693 section 2.1.2), and when they apply:

- **aging** (eq. 2) ``P = P_old * gamma ** K``, K the whole time units elapsed, before any
  other update and whenever a table is read. The unit clock of a node starts at its first
  aging, here at time 0 when the test first reads the tables, so at time t a value has aged
  by ``t // time_unit - t_then // time_unit`` units since it was set at ``t_then``. A value
  that falls below ``P_first_threshold`` is treated as 0 (forgotten, with its last
  encounter time).
- **direct update** (eq. 1), at each end when a link comes up: if ``P(A,B)`` is below
  ``P_first_threshold`` it becomes ``P_encounter_first``; else
  ``P(A,B) = P_old + (1 - delta - P_old) * P_encounter`` with
  ``P_encounter = P_encounter_max * min(1, interval / I_typ)``, the interval being the time
  since A last met B (a node A knows only by transitivity counts as met ``I_typ`` ago, so
  ``P_encounter = P_encounter_max``; that is the router's reading of the RFC, which leaves
  the case open).
- **transitivity** (eq. 3), when A receives B's table, which B sent after its own direct
  update: ``P(A,C) = max(P_old(A,C), P(A,B) * P(B,C) * beta)`` for every C in it other than
  A and B; a product below ``P_first_threshold`` is not taken (as if 0).
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from dtncloud.routing.prophet import ProphetRouter
from dtncloud.sim import Simulation, node_id_of

A, B, C, D = (node_id_of(x) for x in "abcd")


class Rfc6693Node:
    """One node's delivery predictabilities, by the equations of RFC 6693 only."""

    def __init__(self, name: str, params: dict[str, float]) -> None:
        self.name = name
        self.p_max = params["p_encounter_max"]
        self.p_first = params["p_encounter_first"]
        self.threshold = params["p_first_threshold"]
        self.delta = params["delta"]
        self.beta = params["beta"]
        self.gamma = params["gamma"]
        self.unit = params["time_unit_ms"]
        self.i_typ = params["i_typ_ms"]
        self.p: dict[str, float] = {}
        self.met: dict[str, int] = {}
        self.units_done = 0  # aging clock started at time 0

    def age(self, now: int) -> None:
        """Equation 2."""
        k = now // self.unit - self.units_done
        if k <= 0:
            return
        self.units_done += k
        for node in list(self.p):
            value = self.p[node] * self.gamma**k
            if value < self.threshold:
                del self.p[node]
                self.met.pop(node, None)
            else:
                self.p[node] = value

    def encounter(self, peer: str, now: int) -> None:
        """Equation 1, with P_encounter_first for a node below the threshold."""
        old = self.p.get(peer, 0.0)
        if old < self.threshold:
            new = self.p_first
        else:
            interval = now - self.met.get(peer, now - self.i_typ)
            p_encounter = self.p_max * min(1.0, interval / self.i_typ)
            new = old + (1 - self.delta - old) * p_encounter
        self.p[peer] = new
        self.met[peer] = now

    def transitive(self, peer: str, table: dict[str, float]) -> None:
        """Equation 3."""
        p_ab = self.p.get(peer, 0.0)
        for node, p_bc in table.items():
            if node in (self.name, peer):
                continue
            candidate = p_ab * p_bc * self.beta
            if candidate >= self.threshold:
                self.p[node] = max(self.p.get(node, 0.0), candidate)


def meet(x: Rfc6693Node, y: Rfc6693Node, now: int) -> None:
    """An encounter: both age and update directly, swap tables, update transitively."""
    for node in (x, y):
        node.age(now)
    x.encounter(y.name, now)
    y.encounter(x.name, now)
    sent_x, sent_y = dict(x.p), dict(y.p)
    x.transitive(y.name, sent_y)
    y.transitive(x.name, sent_x)


#: (time the link comes up, the pair); each contact lasts 10 s. What each step exercises
#: with the default parameters is noted.
ENCOUNTERS: list[tuple[int, str, str]] = [
    (45_000, A, B),  # first meetings: P_encounter_first both ways
    (400_000, B, C),  # c learns a through b (eq. 3); b's P(b,a) has aged 12 units
    (700_000, A, B),  # again after 655 s < I_typ: scaled P_encounter; a learns c
    (1_000_000, C, D),  # d learns b; d's P(d,a) = 0.5 * P(c,a) * beta < threshold: not taken
    (3_000_000, A, B),  # again after more than I_typ: full P_encounter_max
    (3_500_000, A, C),  # a meets c, known only by transitivity so far
    (150_000_000, A, B),  # everything has aged away: back to P_encounter_first
]
CONTACT_MS = 10_000


def _params(router: ProphetRouter) -> dict[str, float]:
    names = (
        "p_encounter_max",
        "p_encounter_first",
        "p_first_threshold",
        "delta",
        "beta",
        "gamma",
        "time_unit_ms",
        "i_typ_ms",
    )
    return {name: getattr(router, name) for name in names}


def _run(router_params: dict[str, float] | None) -> tuple[list, dict[str, float]]:
    """Runs the encounters; returns, per step, (read time, {node: router table}) and the
    router's parameters."""
    sim = Simulation(seed=5, record_occupancy_every_ms=None)
    routers: dict[str, ProphetRouter] = {}
    for name in "abcd":
        node = sim.add_node(name, router="prophet", router_params=router_params)
        assert isinstance(node.router, ProphetRouter)
        routers[node.node_id] = node.router
    params = _params(routers[A])
    assert all(_params(r) == params for r in routers.values())
    readings: list[tuple[int, dict[str, dict[str, float]]]] = []

    def read() -> None:
        now = sim.now
        readings.append((now, {n: r.table(now) for n, r in routers.items()}))

    read()  # time 0: starts every router's aging clock
    for at, x, y in ENCOUNTERS:
        sim.contact(at, at + CONTACT_MS, x, y)
        sim.schedule(at + 1, read)  # the tables have been swapped by then
    sim.run(ENCOUNTERS[-1][0] + CONTACT_MS + 1)
    return readings, params


def _expected(params: dict[str, float], times: Iterable[int]) -> list[dict[str, dict]]:
    model = {n: Rfc6693Node(n, params) for n in (A, B, C, D)}
    out = []
    steps = iter(ENCOUNTERS)
    for t in times:
        if t > 0:
            at, x, y = next(steps)
            assert t == at + 1
            meet(model[x], model[y], at)
        for node in model.values():
            node.age(t)
        out.append({n: dict(m.p) for n, m in model.items()})
    return out


@pytest.mark.parametrize(
    "router_params",
    [
        None,  # the router's defaults
        {"gamma": 0.99, "time_unit_ms": 10_000, "i_typ_ms": 600_000, "beta": 0.5, "delta": 0.05},
        {"p_encounter_first": 0.3, "p_encounter_max": 0.9, "p_first_threshold": 0.05},
    ],
)
def test_predictabilities_follow_rfc_6693_step_by_step(router_params: dict | None) -> None:
    readings, params = _run(router_params)
    expected = _expected(params, [t for t, _ in readings])
    assert len(readings) == len(ENCOUNTERS) + 1
    for (t, got), want in zip(readings, expected, strict=True):
        for node in (A, B, C, D):
            assert set(got[node]) == set(want[node]), (t, node)
            for peer, value in want[node].items():
                assert got[node][peer] == pytest.approx(value, rel=1e-12, abs=0), (t, node, peer)


def test_the_steps_by_hand_with_the_default_parameters() -> None:
    """The first steps written out as numbers, so the model above is checked too."""
    readings, params = _run(None)
    assert params == {
        "p_encounter_max": 0.7,
        "p_encounter_first": 0.5,
        "p_first_threshold": 0.1,
        "delta": 0.01,
        "beta": 0.9,
        "gamma": 0.999,
        "time_unit_ms": 30_000,
        "i_typ_ms": 1_800_000,
    }
    tables = [r[1] for r in readings]
    assert all(not t for t in tables[0].values())
    # step 1 (45 s): first encounter, P_encounter_first
    assert tables[1][A] == {B: 0.5}
    assert tables[1][B] == {A: 0.5}
    assert tables[1][C] == {} and tables[1][D] == {}
    # step 2 (400 s): b's P(b,a) aged from unit 1 to unit 13; c learns a through b
    p_ba = 0.5 * 0.999**12
    assert tables[2][B][A] == pytest.approx(p_ba)
    assert tables[2][B][C] == 0.5
    assert tables[2][C] == {B: 0.5, A: pytest.approx(0.5 * p_ba * 0.9)}
    p_ca = 0.5 * p_ba * 0.9
    # step 3 (700 s): a meets b 655 s after the last time; a learns c through b
    old = 0.5 * 0.999**22  # aged from unit 1 to unit 23
    p_enc = 0.7 * 655_000 / 1_800_000
    p_ab = old + (1 - 0.01 - old) * p_enc
    assert tables[3][A][B] == pytest.approx(p_ab)
    p_bc = 0.5 * 0.999**10  # set at unit 13, now unit 23
    assert tables[3][A][C] == pytest.approx(p_ab * p_bc * 0.9)
    # step 4 (1000 s): d learns b, but not a (0.5 * P(c,a) * beta is below the threshold)
    p_ca_now = p_ca * 0.999**20
    assert 0.5 * p_ca_now * 0.9 < 0.1
    assert set(tables[4][D]) == {C, B}
    assert tables[4][D][B] == pytest.approx(0.5 * 0.5 * 0.999**20 * 0.9)
    # step 5 (3000 s): 2300 s since a and b last met, more than I_typ: P_encounter_max
    old = p_ab * 0.999 ** (100 - 23)
    assert tables[5][A][B] == pytest.approx(old + (1 - 0.01 - old) * 0.7)
    # step 7 (150,000 s): everything aged below the threshold; a and b start again
    assert tables[7][A] == {B: 0.5}
    assert tables[7][B] == {A: 0.5}
    assert tables[7][C] == {} and tables[7][D] == {}
