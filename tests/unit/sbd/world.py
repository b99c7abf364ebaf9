"""A virtual-time harness: SBD terminals wired to emulated modems, no I/O, no real clock."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from dtncloud.sbd.config import SbdConfig
from dtncloud.sbd.emulator import EmulatorConfig, SbdNetwork
from dtncloud.sbd.terminal import SbdTerminal, TerminalEvent

FAST = SbdConfig(
    command_timeout_ms=1_000,
    session_timeout_ms=5_000,
    retry_delay_ms=100,
    retry_max_delay_ms=1_000,
    signal_wait_ms=500,
    reinit_delay_ms=200,
)


@dataclass
class World:
    """Terminal ``i`` talks to emulated modem ``i``; :meth:`run` steps virtual time."""

    network: SbdNetwork
    terminals: list[SbdTerminal]
    now: int = 0
    events: list[list[TerminalEvent]] = field(default_factory=list)
    #: bytes each terminal sent to its modem, and received from it
    wire: list[tuple[bytearray, bytearray]] = field(default_factory=list)

    @classmethod
    def make(
        cls,
        count: int = 2,
        *,
        config: SbdConfig = FAST,
        configs: list[SbdConfig] | None = None,
        emulator: EmulatorConfig | None = None,
        seed: int = 1,
        start: int = 0,
    ) -> World:
        network = SbdNetwork(count, emulator or EmulatorConfig(session_latency_ms=50), seed=seed)
        rng = random.Random(seed)
        terminals = [
            SbdTerminal(own, rng=random.Random(rng.getrandbits(32)))
            for own in (configs or [config] * count)
        ]
        world = cls(network, terminals, now=start)
        world.events = [[] for _ in terminals]
        world.wire = [(bytearray(), bytearray()) for _ in terminals]
        for terminal in terminals:
            terminal.start(start)
        return world

    def shuttle(self) -> None:
        moved = True
        while moved:
            moved = False
            for index, terminal in enumerate(self.terminals):
                data = terminal.data_to_send()
                if data:
                    self.wire[index][0].extend(data)
                    self.network.receive_data(index, data, self.now)
                    moved = True
                data = self.network.data_to_send(index)
                if data:
                    self.wire[index][1].extend(data)
                    terminal.receive_data(data, self.now)
                    moved = True
                while (event := terminal.next_event()) is not None:
                    self.events[index].append(event)

    def run(self, until: Callable[[], bool], *, limit_ms: int = 600_000) -> bool:
        """Step time until ``until()`` holds (True) or nothing is left to do / time is up."""
        end = self.now + limit_ms
        while True:
            self.shuttle()
            if until():
                return True
            timers = [t.get_timer() for t in self.terminals] + [self.network.get_timer()]
            known = [t for t in timers if t is not None]
            if not known or min(known) > end:
                return False
            self.now = max(self.now, min(known))
            self.network.handle_timer(self.now)
            for terminal in self.terminals:
                timer = terminal.get_timer()
                if timer is not None and timer <= self.now:
                    terminal.handle_timer(self.now)

    def of(self, index: int, kind: type) -> list:  # type: ignore[type-arg]
        return [event for event in self.events[index] if isinstance(event, kind)]
