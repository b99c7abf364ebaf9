"""Simulator throughput: a day of random encounters among many nodes, spray and wait and
epidemic, against a bare heapq event loop.

The scenario (built with the :class:`dtncloud.sim.Simulation` API, every choice drawn from
a ``random.Random(seed)``): ``--nodes`` nodes (default 1,000), ``--contacts`` contacts
(default 50,000) between random pairs, starting uniformly over ``--hours`` (default 24) and
lasting 30 s to 5 min at 250 kB/s, and ``--messages`` messages (default 10,000) of 1 to
10 KiB between random pairs, created uniformly over the first 20/24 of the run, each with a
24 h lifetime.

* ``spray_and_wait``: binary spray and wait with 8 copies, no buffer limit.
* ``epidemic``: every node's store limited to ``--buffer`` bytes (default 5 MB), full
  stores dropping their oldest bundles (``--buffer-policy``, default ``drop-oldest`` as the
  ONE; ``refuse`` as dtnd). Epidemic is far more work than spray and wait (the full
  scenario takes half an hour with ``refuse`` and well over an hour with ``drop-oldest``
  here, and 6 to 8 GB of memory), so unless ``--full`` it runs on a scaled-down
  copy of the scenario: ``--epidemic-nodes`` nodes (default 50) with contacts and messages
  scaled in proportion (the same contacts and messages per node). The output says which.
* baseline: a bare ``heapq`` loop that pops as many ``(time, seq, function, argument)``
  events as the spray-and-wait run ran (the epidemic run with ``--only epidemic``), with
  trivial callbacks: what the scheduler alone costs. The simulator's events/s are printed
  as a share of it.

``--only spray_and_wait`` or ``--only epidemic`` runs just that router (the target is then
judged only if spray and wait ran).

Target (issue): spray and wait on the full scenario (1,000 nodes, 24 h, 10,000 messages)
in under 5 minutes on a 2-core machine; reported as met/MISSED, never asserted.

    python benchmarks/bench_sim.py [--nodes N] [--messages N] [--contacts N] [--hours H]
                                   [--seed S] [--epidemic-nodes N | --full] [--buffer BYTES]
                                   [--buffer-policy POLICY] [--only ROUTER] [--quick]
                                   [--json FILE]

Progress goes to stderr, the figures to stdout.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

try:
    import dtncloud  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dtncloud.sim import Simulation

#: The issue's target for spray and wait on the full scenario, in seconds of wall time.
TARGET_S = 300.0
FULL = {"nodes": 1_000, "messages": 10_000, "contacts": 50_000, "hours": 24.0}
RATE_BYTES_S = 250_000
HOUR_MS = 3_600_000


def build(
    *,
    router: str,
    params: dict[str, Any],
    nodes: int,
    messages: int,
    contacts: int,
    hours: float,
    seed: int,
    buffer_bytes: int | None,
    buffer_policy: str = "refuse",
) -> Simulation:
    """The random-encounter scenario, all of it drawn from ``random.Random(seed)``."""
    rng = random.Random(seed)
    sim = Simulation(seed=seed)
    names = [f"n{i}" for i in range(nodes)]
    for name in names:
        sim.add_node(
            name,
            router=router,
            router_params=params,
            buffer_bytes=buffer_bytes,
            buffer_policy=buffer_policy,
        )
    span = int(hours * HOUR_MS)
    for _ in range(contacts):
        a, b = rng.sample(names, 2)
        start = rng.randrange(span)
        sim.contact(start, start + rng.randint(30_000, 300_000), a, b, rate_bytes_s=RATE_BYTES_S)
    created_within = span * 20 // 24
    for _ in range(messages):
        src, dst = rng.sample(names, 2)
        sim.create_message(
            rng.randrange(created_within),
            src,
            dst,
            rng.randint(1_024, 10_240),
            lifetime_ms=24 * HOUR_MS,
        )
    return sim


def run_sim(label: str, sim: Simulation, until_ms: int) -> dict[str, Any]:
    """Run ``sim`` to ``until_ms``; its figures with the wall time and events/s."""
    last = [time.perf_counter()]

    def progress(now: int, until: int) -> None:
        t = time.perf_counter()
        if t - last[0] >= 5 or now >= until:
            last[0] = t
            print(
                f"  {label}: {now / HOUR_MS:5.1f} h of {until / HOUR_MS:.1f} h simulated, "
                f"{sim.scheduler.events_run:,} events",
                file=sys.stderr,
                flush=True,
            )

    gc.collect()
    start = time.perf_counter()
    sim.run(until_ms, progress=progress)
    wall = time.perf_counter() - start
    report = sim.report()
    events = report["events"]
    return {
        "nodes": report["nodes"],
        "wall_s": wall,
        "events": events,
        "events_per_s": events / wall if wall > 0 else 0.0,
        "created": report["created"],
        "delivered": report["delivered"],
        "delivery_prob": report["delivery_prob"],
        "relayed": report["relayed"],
        "dropped": report["dropped"],
        "contacts": report["contacts"],
    }


def _nothing(_argument: Any) -> None:
    pass


def bare_heapq(events: int, span_ms: int, seed: int) -> float:
    """Events/s of a bare heapq event loop: ``events`` events at random times pushed, then
    popped one by one, each calling a trivial function (as the scheduler does)."""
    rng = random.Random(seed)
    heap: list[tuple[int, int, Any, Any]] = []
    gc.collect()
    start = time.perf_counter()
    push, pop = heapq.heappush, heapq.heappop
    for seq in range(events):
        push(heap, (rng.randrange(span_ms), seq, _nothing, None))
    while heap:
        _when, _, function, argument = pop(heap)
        function(argument)
    wall = time.perf_counter() - start
    return events / wall if wall > 0 else 0.0


def describe(name: str, fig: dict[str, Any], base_rate: float) -> str:
    ratio = fig["events_per_s"] / base_rate if base_rate else 0.0
    prob = fig["delivery_prob"] or 0.0
    return (
        f"{name}: {fig['nodes']:,} nodes, {fig['wall_s']:.1f} s wall, "
        f"{fig['events']:,} events, {fig['events_per_s']:,.0f} events/s "
        f"({ratio:.1%} of bare heapq), delivered {fig['delivered']:,} of "
        f"{fig['created']:,} ({prob:.1%})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=FULL["nodes"])
    parser.add_argument("--messages", type=int, default=FULL["messages"])
    parser.add_argument("--contacts", type=int, default=FULL["contacts"])
    parser.add_argument("--hours", type=float, default=FULL["hours"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--buffer", type=int, default=5_000_000, help="epidemic's store quota")
    parser.add_argument(
        "--buffer-policy",
        choices=("drop-oldest", "refuse"),
        default="drop-oldest",
        help="what epidemic's full stores do (default: drop the oldest, as the ONE does)",
    )
    parser.add_argument(
        "--epidemic-nodes",
        type=int,
        default=None,
        help="run epidemic on this many nodes (contacts, messages scaled); default 50",
    )
    parser.add_argument("--full", action="store_true", help="run epidemic on the full scenario")
    parser.add_argument(
        "--only", choices=("spray_and_wait", "epidemic"), help="run just this router"
    )
    parser.add_argument("--quick", action="store_true", help="a tiny run (smoke test)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.nodes, args.messages, args.contacts, args.hours = 20, 50, 200, 2.0
    if args.full:
        epi_nodes = args.nodes
    elif args.epidemic_nodes is not None:
        epi_nodes = min(args.epidemic_nodes, args.nodes)
    else:
        # Epidemic floods: 200 nodes already take ~10 minutes here, so make bench stays short.
        epi_nodes = min(50, args.nodes)
    if epi_nodes < 2:
        parser.error("epidemic needs at least 2 nodes")
    until = int(args.hours * HOUR_MS)
    scale = epi_nodes / args.nodes
    epi_messages = round(args.messages * scale)
    epi_contacts = round(args.contacts * scale)
    is_full = all(getattr(args, key) == value for key, value in FULL.items())

    saw = None if args.only == "epidemic" else run_spray(args, until)
    epi = None
    if args.only != "spray_and_wait":
        epi = run_epidemic(args, epi_nodes, epi_messages, epi_contacts, until)
    timed = saw if saw is not None else epi
    assert timed is not None  # --only names one of the two
    print("baseline: bare heapq loop", file=sys.stderr, flush=True)
    base_rate = bare_heapq(timed["events"], until, args.seed)

    print(
        f"scenario: {args.nodes:,} nodes, {args.hours:g} h, {args.contacts:,} contacts of "
        f"30 s-5 min at 250 kB/s, {args.messages:,} messages of 1-10 KiB (seed {args.seed})"
    )
    print(f"bare heapq loop: {base_rate:,.0f} events/s ({timed['events']:,} events)")
    if saw is not None:
        print(describe("spray_and_wait (binary, 8 copies)", saw, base_rate))
    if epi is not None:
        scope = (
            "the full scenario"
            if epi_nodes == args.nodes
            else f"{epi_nodes:,} nodes, contacts and messages scaled to {epi_contacts:,} and "
            f"{epi_messages:,} (--full for the whole scenario)"
        )
        label = f"epidemic ({args.buffer:,} B buffers, {args.buffer_policy})"
        print(describe(label, epi, base_rate) + f" [{scope}]")
    met = None if saw is None else saw["wall_s"] < TARGET_S
    if saw is not None:
        verdict = "met" if met else "MISSED"
        note = "" if is_full else " (this run is not the issue's full scenario)"
        print(f"target: spray_and_wait under 5 minutes: {verdict} ({saw['wall_s']:.1f} s){note}")
    if args.json:
        figures: dict[str, Any] = {
            "scenario": {
                "nodes": args.nodes,
                "messages": args.messages,
                "contacts": args.contacts,
                "hours": args.hours,
                "seed": args.seed,
                "full": is_full,
            },
            "baseline_events_per_s": base_rate,
            "target_met": met,
        }
        if saw is not None:
            figures["spray_and_wait"] = saw | {"ratio_to_baseline": saw["events_per_s"] / base_rate}
        if epi is not None:
            figures["epidemic"] = epi | {
                "ratio_to_baseline": epi["events_per_s"] / base_rate,
                "buffer_bytes": args.buffer,
                "buffer_policy": args.buffer_policy,
                "scaled_down": epi_nodes != args.nodes,
            }
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


def run_spray(args: argparse.Namespace, until: int) -> dict[str, Any]:
    """Spray and wait on the whole scenario."""
    print(
        f"spray_and_wait: building {args.nodes:,} nodes, {args.contacts:,} contacts, "
        f"{args.messages:,} messages over {args.hours:g} h (seed {args.seed})",
        file=sys.stderr,
        flush=True,
    )
    return run_sim(
        "spray_and_wait",
        build(
            router="spray_and_wait",
            params={"copies": 8, "binary": True},
            nodes=args.nodes,
            messages=args.messages,
            contacts=args.contacts,
            hours=args.hours,
            seed=args.seed,
            buffer_bytes=None,
        ),
        until,
    )


def run_epidemic(
    args: argparse.Namespace, nodes: int, messages: int, contacts: int, until: int
) -> dict[str, Any]:
    """Epidemic on ``nodes`` nodes of the scenario (scaled down unless all of them)."""
    print(
        f"epidemic: building {nodes:,} nodes, {contacts:,} contacts, "
        f"{messages:,} messages, {args.buffer:,} B buffers",
        file=sys.stderr,
        flush=True,
    )
    return run_sim(
        "epidemic",
        build(
            router="epidemic",
            params={},
            nodes=nodes,
            messages=messages,
            contacts=contacts,
            hours=args.hours,
            seed=args.seed,
            buffer_bytes=args.buffer,
            buffer_policy=args.buffer_policy,
        ),
        until,
    )


if __name__ == "__main__":
    sys.exit(main())
