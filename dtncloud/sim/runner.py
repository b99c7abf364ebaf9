"""Running a scenario: a :class:`~dtncloud.sim.spec.ScenarioSpec` and a seed in, a report out.

:func:`build` makes a :class:`~dtncloud.sim.world.Simulation` with the scenario's nodes and
hands it every event the generators made; :func:`run_scenario` runs it to the end of the
scenario and returns a :class:`RunResult`. :func:`run_to_directory` does that for a file and
writes the reports (each job of ``dtncloud sim sweep`` is one call).

The same scenario and seed always give the same report: the generators draw from a
:class:`random.Random` made from the seed, and the simulation from its own seeded one.

A group whose router is ``cgr`` and that sets no ``contact_plan`` gets one made of every
contact the scenario has (both directions, unlimited rates as 1 TB/s): contact graph routing
with perfect knowledge of the future, the best case a real plan can reach.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dtncloud.routing.contact_plan import Contact, ContactPlan
from dtncloud.sim.generators import ContactEvent, Events, generate
from dtncloud.sim.reports import write_reports
from dtncloud.sim.scenario import load_scenario
from dtncloud.sim.spec import ScenarioSpec
from dtncloud.sim.world import Simulation, node_id_of

__all__ = ["RunResult", "build", "run_scenario", "run_to_directory"]

#: The rate an unlimited link has in a contact plan made for cgr (bytes/s).
_PLAN_UNLIMITED_RATE = 10**12


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a run gives: ``report`` (see :meth:`Simulation.report`, plus ``scenario``),
    ``messages`` (one row per message, for ``messages.csv`` and the plots) and the
    ``events`` the generators made."""

    report: dict[str, Any]
    messages: list[dict[str, Any]]
    events: Events


def _plan(contacts: Sequence[ContactEvent]) -> ContactPlan:
    found = []
    for c in contacts:
        rate = c.link.rate or _PLAN_UNLIMITED_RATE
        for sender, receiver in ((c.a, c.b), (c.b, c.a)):
            found.append(
                Contact(
                    c.start, c.end, node_id_of(sender), node_id_of(receiver), rate, c.link.delay_ms
                )
            )
    return ContactPlan(found)


def build(spec: ScenarioSpec, seed: int) -> tuple[Simulation, Events]:
    """A simulation of ``spec`` with every event scheduled, ready to run."""
    events = generate(spec, random.Random(f"dtncloud.sim.generators:{seed}"))
    sim = Simulation(seed=seed, start_ms=spec.start, record_occupancy_every_ms=spec.occupancy_every)
    plan: ContactPlan | None = None
    for group in spec.groups:
        params = dict(group.router_params)
        if group.router == "cgr" and "contact_plan" not in params:
            if plan is None:
                plan = _plan(events.contacts)
            params["contact_plan"] = plan
        for name in group.nodes:
            sim.add_node(
                name,
                router=group.router,
                router_params=params,
                buffer_bytes=group.buffer_bytes,
                buffer_policy=group.buffer_policy,
                engine=group.engine or None,
            )
    for contact in events.contacts:
        sim.contact(contact.start, contact.end, contact.a, contact.b, **contact.link.kwargs())
    for change in events.node_changes:
        if change.up:
            sim.node_up(change.at, change.node)
        else:
            sim.node_down(change.at, change.node)
    for message in events.messages:
        sim.create_message(
            message.at,
            message.source,
            message.destination,
            message.size,
            lifetime_ms=message.lifetime,
            message_id=message.message_id,
        )
    return sim, events


def _scenario_summary(spec: ScenarioSpec, seed: int, events: Events) -> dict[str, Any]:
    return {
        "name": spec.name,
        "seed": seed,
        "start_s": spec.start / 1000,
        "duration_s": spec.duration / 1000,
        "routers": {group.name: group.router for group in spec.groups},
        "nodes": len(spec.nodes),
        "contacts": len(events.contacts),
        "node_changes": len(events.node_changes),
        "messages": len(events.messages),
    }


def run_scenario(
    spec: ScenarioSpec,
    *,
    seed: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Run ``spec`` (with ``seed``, else the scenario's own) to its end. ``progress`` is
    called now and then with the virtual time and the end time."""
    chosen = spec.seed if seed is None else seed
    sim, events = build(spec, chosen)
    sim.run(spec.end, progress=progress)
    report = dict(sim.report())
    report["scenario"] = _scenario_summary(spec, chosen, events)
    return RunResult(report, sim.stats.message_rows(), events)


def run_to_directory(
    scenario: str | Path,
    out: str | Path,
    *,
    overrides: Sequence[tuple[str, Any]] = (),
    seed: int | None = None,
    plots: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Load ``scenario`` with ``overrides``, run it, write the reports to ``out`` and return
    the report. A module-level function, so that a process pool can run it."""
    spec = load_scenario(scenario, overrides)
    result = run_scenario(spec, seed=seed, progress=progress)
    write_reports(out, result.report, messages=result.messages, plots=plots)
    return result.report
