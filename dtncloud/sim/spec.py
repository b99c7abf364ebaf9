"""The checked form of a scenario: :class:`ScenarioSpec` and its parts, frozen dataclasses.

:mod:`dtncloud.sim.scenario` builds them from a TOML file; :mod:`dtncloud.sim.generators`
turns them into events. Times are integer milliseconds and sizes bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Churn",
    "ContactSource",
    "DAY_MS",
    "Distribution",
    "DutyCycle",
    "FixedContacts",
    "Group",
    "LinkModel",
    "Mesh",
    "MuleTour",
    "RandomEncounters",
    "SatellitePasses",
    "ScenarioSpec",
    "Traffic",
    "Window",
]

DAY_MS = 86_400_000


# -- values -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkModel:
    """How a contact carries data: ``rate`` bytes/s (None: unlimited), ``delay_ms`` one way,
    ``loss`` the probability that a transfer is lost (mode "tcpcl": that a chunk of the byte
    pipe is sent again), ``max_bundle`` the largest bundle it takes in one piece (None: any;
    larger ones are fragmented)."""

    rate: int | None = None
    delay_ms: int = 0
    loss: float = 0.0
    max_bundle: int | None = None
    #: "bundle" or "tcpcl" (two TCPCLv4 sessions); the next two apply to "tcpcl" only
    mode: str = "bundle"
    #: the sessions' segment MRU in bytes (None: the session's default)
    segment_mru: int | None = None
    #: the keepalive interval the sessions offer, in seconds (None: the default, 60 s)
    keepalive_s: int | None = None

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``Simulation.link_up``/``contact``."""
        found: dict[str, Any] = {
            "rate_bytes_s": self.rate,
            "delay_ms": self.delay_ms,
            "loss": self.loss,
        }
        if self.max_bundle is not None:
            found["max_bundle_size"] = self.max_bundle
        if self.mode != "bundle":
            found["mode"] = self.mode
            tcpcl: dict[str, int] = {}
            if self.segment_mru is not None:
                tcpcl["segment_mru"] = self.segment_mru
            if self.keepalive_s is not None:
                tcpcl["keepalive_s"] = self.keepalive_s
            if tcpcl:
                found["tcpcl"] = tcpcl
        return found


@dataclass(frozen=True, slots=True)
class Distribution:
    """A non-negative integer quantity (ms or bytes): ``fixed`` (``low``), ``uniform``
    (``low``..``high``, both included) or ``exponential`` (mean ``low``)."""

    kind: str
    low: int
    high: int = 0

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2 if self.kind == "uniform" else float(self.low)

    def sample(self, rng: Any) -> int:
        """One value drawn with ``rng`` (a :class:`random.Random`)."""
        if self.kind == "uniform":
            return int(rng.randint(self.low, self.high))
        if self.kind == "exponential":
            return round(rng.expovariate(1 / self.low)) if self.low else 0
        return self.low


@dataclass(frozen=True, slots=True)
class Group:
    """Nodes that share a router, its parameters, a buffer size and policy, and engine
    settings. ``buffer_policy`` is what a full buffer does: ``"refuse"`` the bundle or
    ``"drop-oldest"`` (see :mod:`dtncloud.sim.node`)."""

    name: str
    nodes: tuple[str, ...]
    router: str
    router_params: dict[str, Any] = field(default_factory=dict)
    buffer_bytes: int | None = None
    engine: dict[str, Any] = field(default_factory=dict)
    buffer_policy: str = "refuse"


@dataclass(frozen=True, slots=True)
class Window:
    """One contact read from a plan or trace: absolute DTN ms, ``a < b``; ``rate`` and
    ``delay_ms`` as the plan gave them (None: the link model's)."""

    start: int
    end: int
    a: str
    b: str
    rate: int | None = None
    delay_ms: int | None = None


@dataclass(frozen=True, slots=True)
class FixedContacts:
    """Contacts read from a file: ``kind`` is ``"plan"`` or ``"trace"``."""

    kind: str
    windows: tuple[Window, ...]
    link: LinkModel


@dataclass(frozen=True, slots=True)
class Mesh:
    """Every pair of ``nodes`` (or each node with ``hub``) in contact for the whole run,
    except in the ``down`` windows and, with ``mtbf``/``mttr``, random outages per pair."""

    nodes: tuple[str, ...]
    hub: tuple[str, ...]
    link: LinkModel
    down: tuple[tuple[int, int], ...] = ()
    mtbf_ms: int | None = None
    mttr_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RandomEncounters:
    """Encounters at random times (a Poisson process) of ``pair_rate`` per pair or
    ``node_rate`` per node (per ms), lasting ``duration``, between ``start`` and ``stop``."""

    nodes: tuple[str, ...]
    duration: Distribution
    link: LinkModel
    pair_rate: float | None = None
    node_rate: float | None = None
    start: int = 0
    stop: int | None = None


@dataclass(frozen=True, slots=True)
class MuleTour:
    """Each of ``mules`` visits ``sites`` in order, dwelling at each (in contact with all of
    its nodes) and travelling between them; ``route`` ``"loop"`` goes back to the first
    site, ``"back_and_forth"`` retraces its steps. With ``period`` a tour starts every
    period (or when the previous one ends, if later); ``tours`` limits their number;
    mule ``i`` starts ``i * stagger`` after ``start``."""

    mules: tuple[str, ...]
    sites: tuple[tuple[str, ...], ...]
    travel: Distribution
    dwell: Distribution
    link: LinkModel
    route: str = "loop"
    start: int = 0
    period: int | None = None
    tours: int | None = None
    stagger: int = 0


@dataclass(frozen=True, slots=True)
class SatellitePasses:
    """Each satellite is in contact with ground node ``j`` for ``duration`` every ``period``,
    from ``first + j * stagger``; each pass moves by up to ``jitter`` either way."""

    satellites: tuple[str, ...]
    ground: tuple[str, ...]
    period: int
    duration: int
    link: LinkModel
    first: int = 0
    stagger: int = 0
    jitter: int = 0


ContactSource = FixedContacts | Mesh | RandomEncounters | MuleTour | SatellitePasses


@dataclass(frozen=True, slots=True)
class DutyCycle:
    """``nodes`` are on from ``on`` to ``off`` (ms after midnight, the scenario starting at
    midnight) every ``period``; each switch moves by up to ``jitter`` either way."""

    nodes: tuple[str, ...]
    on: int
    off: int
    period: int = DAY_MS
    jitter: int = 0


@dataclass(frozen=True, slots=True)
class Churn:
    """``nodes`` fail after exponentially distributed up times (mean ``mtbf``) and come back
    after exponentially distributed repairs (mean ``mttr``)."""

    nodes: tuple[str, ...]
    mtbf: int
    mttr: int


@dataclass(frozen=True, slots=True)
class Traffic:
    """Messages from a random one of ``sources`` (or from each, with ``per_source``) to a
    random other one of ``destinations``, one every ``interval``, between ``start`` and
    ``stop``, at most ``count``."""

    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    interval: Distribution
    size: Distribution
    lifetime: int = 86_400_000
    start: int = 0
    stop: int | None = None
    per_source: bool = False
    count: int | None = None


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    """A checked scenario. Times in ``contacts``, ``duty_cycles``, ``churn`` and ``traffic``
    count from the start of the run, except :class:`Window` times (absolute)."""

    name: str
    duration: int
    seed: int = 0
    start: int = 0
    description: str = ""
    occupancy_every: int | None = 60_000
    groups: tuple[Group, ...] = ()
    links: dict[str, LinkModel] = field(default_factory=dict)
    contacts: tuple[ContactSource, ...] = ()
    duty_cycles: tuple[DutyCycle, ...] = ()
    churn: tuple[Churn, ...] = ()
    traffic: tuple[Traffic, ...] = ()

    @property
    def nodes(self) -> tuple[str, ...]:
        """Every node, group by group."""
        return tuple(node for group in self.groups for node in group.nodes)

    @property
    def end(self) -> int:
        return self.start + self.duration

    def group_of(self, node: str) -> Group:
        for group in self.groups:
            if node in group.nodes:
                return group
        raise KeyError(node)
