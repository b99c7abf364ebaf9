"""``dtncloud sim``: run the deployed engine and routers in virtual time.

``dtncloud sim replay`` replays contact and message traces in the ONE simulator's
external-events format and writes the report (the ONE's MessageStatsReport figures and
dtncloud's own) to ``DIR/report.json``. See ``docs/simulator.md``.

The :data:`sim` group is importable: further commands register on it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from dtncloud.cli._output import CliError, CliUsageError, about, atomic_write
from dtncloud.cli._params import DURATION, SIZE
from dtncloud.routing import default_registry
from dtncloud.sim.node import BUFFER_POLICIES
from dtncloud.sim.one_format import Event, TraceError, hosts_of, read_events, schedule_events
from dtncloud.sim.scenario import parse_override
from dtncloud.sim.world import Simulation

__all__ = ["Progress", "sim", "write_report"]


@click.group()
def sim() -> None:
    """Simulate DTN scenarios: the deployed engine and routers, in virtual time."""


class Progress:
    """Progress of a long run on stderr: one line rewritten in place on a terminal, else
    a line every ``every_s`` seconds of wall-clock time (a short run prints nothing)."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.tty = sys.stderr.isatty()
        self.every_s = 0.5 if self.tty else every_s
        self.started = time.monotonic()
        self._last = self.started
        self.shown = False

    def __call__(self, now: int, until: int) -> None:
        moment = time.monotonic()
        if moment - self._last < self.every_s:
            return
        self._last = moment
        share = f" ({100 * now / until:.0f}%)" if until > 0 else ""
        line = f"simulated {now / 1000:.0f} s of {until / 1000:.0f} s{share}"
        if self.tty:
            click.echo(f"\r{line[:78]:<78}", nl=False, err=True)
        else:
            click.echo(line, err=True)
        self.shown = True

    def finish(self) -> float:
        """Clear the progress line; returns the wall-clock seconds since the start."""
        if self.shown and self.tty:
            click.echo("\r" + " " * 78 + "\r", nl=False, err=True)
        return time.monotonic() - self.started


def write_report(out: Path, report: dict[str, Any], name: str = "report.json") -> Path:
    """Write ``report`` as ``out/name`` (keys sorted, indent 2), making ``out`` if needed."""
    path = out / name
    with about(str(path)):
        out.mkdir(parents=True, exist_ok=True)
        text = json.dumps(report, sort_keys=True, indent=2, allow_nan=False) + "\n"
        atomic_write(path, text.encode())
    return path


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


@sim.command()
@click.option(
    "--contacts",
    "contacts_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Connection events: lines TIME CONN HOST1 HOST2 up|down (times in seconds).",
)
@click.option(
    "--messages",
    "messages_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Message creations: lines TIME C MSGID FROM TO SIZE.",
)
@click.option("--router", required=True, help="Router of every node (e.g. epidemic).")
@click.option(
    "--copies",
    type=click.IntRange(min=1),
    help="Copies each message starts with (spray_and_wait only).",
)
@click.option(
    "--param",
    "router_settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="A setting of the router, as in a scenario's [routers.NAME] table, e.g. "
    "--param beta=0.25 for prophet (repeatable).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help="Link rate in bytes per second, each way (default: no limit).",
)
@click.option(
    "--delay",
    "delay_ms",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Link propagation delay in milliseconds.",
)
@click.option("--buffer", "buffer_bytes", type=SIZE, help="Each node's store quota (e.g. 5M).")
@click.option(
    "--buffer-policy",
    type=click.Choice(BUFFER_POLICIES),
    default="drop-oldest",
    show_default=True,
    help="What a full buffer does: drop the oldest bundles not being sent, as the ONE "
    "simulator does, or refuse the new one, as dtnd does.",
)
@click.option(
    "--lifetime",
    type=DURATION,
    default="1d",
    show_default=True,
    help="Lifetime of every message.",
)
@click.option(
    "--until",
    "until_s",
    type=click.FloatRange(min=0),
    help="Stop at this time in seconds (default: the last event of the traces).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random choice.")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for report.json.",
)
def replay(
    contacts_path: Path,
    messages_path: Path,
    router: str,
    copies: int | None,
    router_settings: tuple[str, ...],
    rate: float | None,
    delay_ms: int,
    buffer_bytes: int | None,
    buffer_policy: str,
    lifetime: int,
    until_s: float | None,
    seed: int,
    out: Path,
) -> None:
    """Replay ONE simulator traces: contacts and message creations, every node running
    ROUTER. Host N of the traces is the node dtn://nN/. Writes OUT/report.json."""
    with about("--router"):
        router_class = default_registry.get(router)
    params = dict(_router_params(router_settings))
    if copies is not None:
        if router_class.name != "spray_and_wait":
            raise CliUsageError("sim replay: --copies applies to --router spray_and_wait only")
        params["copies"] = copies
    contacts = read_events_of(contacts_path)
    messages = read_events_of(messages_path)
    events = contacts + messages
    last = max((event.time_ms for event in events), default=0)
    until_ms = last if until_s is None else round(until_s * 1000)

    simulation = Simulation(seed=seed)
    for name in hosts_of(events):
        with about("--param" if router_settings else "--router"):
            simulation.add_node(
                name,
                router=router,
                router_params=params,
                buffer_bytes=buffer_bytes,
                buffer_policy=buffer_policy,
            )
    link = {"rate_bytes_s": rate, "delay_ms": delay_ms}
    with _trace(contacts_path):
        ups, _ = schedule_events(
            simulation, contacts, name=str(contacts_path), lifetime_ms=lifetime, **link
        )
    with _trace(messages_path):
        _, created = schedule_events(
            simulation, messages, name=str(messages_path), lifetime_ms=lifetime, **link
        )
    progress = Progress()
    simulation.run(until_ms, progress=progress)
    wall = progress.finish()
    report = simulation.report()
    path = write_report(out, report)

    events_run = report["events"]
    rate_text = f", {events_run / wall:,.0f} events/s" if wall > 0 else ""
    click.echo(
        f"replayed {created} messages and {ups} contacts among {len(simulation.nodes)} nodes "
        f"(router {router}, seed {seed}): {report['sim_time_s']:.0f} s simulated in "
        f"{wall:.1f} s ({events_run} events{rate_text})"
    )
    click.echo(
        f"delivered {report['delivered']} of {report['created']} "
        f"({_percent(report['delivery_prob'])}); latency avg {_seconds(report['latency_avg'])}, "
        f"median {_seconds(report['latency_med'])}; hops avg "
        f"{'-' if report['hopcount_avg'] is None else format(report['hopcount_avg'], '.2f')}"
    )
    overhead = report["overhead_ratio"]
    click.echo(
        f"relayed {report['relayed']}, overhead ratio "
        f"{'-' if overhead is None else format(overhead, '.2f')}, "
        f"dropped {report['dropped']}, aborted {report['aborted']}"
    )
    click.echo(f"wrote {path}")


def _router_params(settings: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    for text in settings:
        key, equals, value = text.partition("=")
        if not equals or not key.strip():
            raise CliUsageError(f"--param {text!r}: expected KEY=VALUE, such as copies=8")
        yield key.strip(), parse_override(value)


@contextmanager
def _trace(path: Path) -> Iterator[None]:
    """Errors about a trace file name it (and the line, which TraceError has already)."""
    try:
        with about(str(path)):
            yield
    except CliError as exc:
        cause = exc.__cause__
        if isinstance(cause, TraceError):
            raise CliError(str(cause)) from cause
        raise


def read_events_of(path: Path) -> list[Event]:
    """The events of one trace file; errors name the file (and line)."""
    with _trace(path):
        return read_events(path)
