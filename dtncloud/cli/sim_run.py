"""``dtncloud sim run``, ``sim compare`` and ``sim sweep``: scenario files in, reports out.

``run`` simulates one scenario (:mod:`dtncloud.sim.scenario`) and writes its reports
(:mod:`dtncloud.sim.reports`); ``compare`` tabulates the reports of several runs; ``sweep``
runs a scenario for every combination of a grid of settings, in parallel processes, one
sub-directory each, and compares them. Importing this module adds the three commands to the
``sim`` group of :mod:`dtncloud.cli.sim`.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import click

from dtncloud.cli._output import CliUsageError, about
from dtncloud.cli.sim import sim
from dtncloud.daemon.units import format_duration_ms
from dtncloud.routing import default_registry
from dtncloud.sim.reports import compare as compare_runs
from dtncloud.sim.reports import write_reports
from dtncloud.sim.runner import run_scenario, run_to_directory
from dtncloud.sim.scenario import load_scenario, parse_override

__all__ = ["compare", "run", "sweep"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


def _setting(text: str, option: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise CliUsageError(f"{option} {text!r}: expected KEY=VALUE, such as duration=2h")
    return key.strip(), value


class _Progress:
    """Virtual time simulated, on stderr: a click progress bar on a terminal; elsewhere a
    line every ``every_s`` seconds of wall-clock time (a run shorter than that prints none)."""

    def __init__(self, start: int, duration: int, every_s: float = 10.0) -> None:
        self.start = start
        self.duration = duration
        self.every_s = every_s
        self.began = self._last = time.monotonic()
        self.shown = 0
        self.bar: Any = None
        if sys.stderr.isatty():
            self.bar = click.progressbar(
                length=max(1, duration), label="simulating", file=sys.stderr, show_eta=True
            )
            self.bar.__enter__()

    def __call__(self, now: int, until: int) -> None:
        done = min(max(0, now - self.start), self.duration)
        if self.bar is not None:
            self.bar.update(done - self.shown)
            self.shown = done
            return
        moment = time.monotonic()
        if moment - self._last >= self.every_s:
            self._last = moment
            share = 100 * done / self.duration if self.duration else 100.0
            shown = done - done % 60_000  # whole minutes are enough here
            click.echo(
                f"simulated {format_duration_ms(shown)} of "
                f"{format_duration_ms(self.duration)} ({share:.0f}%)",
                err=True,
            )

    def finish(self) -> float:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
        return time.monotonic() - self.began


def _number(value: Any, digits: int = 2, unit: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def _summary(report: dict[str, Any], wall: float) -> list[str]:
    scenario = report.get("scenario", {})
    routers = ", ".join(sorted(set(scenario.get("routers", {}).values())))
    ms = round(scenario.get("duration_s", 0) * 1000)
    events = report.get("events", 0)
    lines = [
        f"ran {scenario.get('name')} (seed {scenario.get('seed')}, {routers}): "
        f"{scenario.get('nodes')} nodes, {scenario.get('contacts')} contacts, "
        f"{format_duration_ms(ms)} simulated in {wall:.1f} s ({events} events)",
        f"delivered {report['delivered']} of {report['created']} "
        f"({100 * report['delivery_prob']:.1f}%); latency avg "
        f"{_number(report['latency_avg'], 1, ' s')}, median "
        f"{_number(report['latency_med'], 1, ' s')}, p95 {_number(report['latency_p95'], 1, ' s')}",
        f"hops avg {_number(report['hopcount_avg'])}, overhead ratio "
        f"{_number(report['overhead_ratio'])}, dropped {report['dropped']}",
    ]
    return lines


@sim.command("run")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the reports (created if needed).",
)
@click.option("--seed", type=click.IntRange(min=0), help="Seed instead of the scenario's own.")
@click.option("--router", help="Router of every group instead of the scenario's.")
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change a key of the scenario, e.g. duration=2h or group.field.buffer=1MiB.",
)
@click.option("--no-plots", is_flag=True, help="Write JSON and CSV only, no PNG plots.")
def run(
    scenario: Path,
    out: Path,
    seed: int | None,
    router: str | None,
    settings: tuple[str, ...],
    no_plots: bool,
) -> None:
    """Simulate SCENARIO (a TOML file) and write its reports to OUT: report.json,
    report.csv, nodes.csv, occupancy.csv, messages.csv and plots. The same scenario and
    seed give the same report, byte for byte."""
    overrides = _overrides(settings, "--set")
    if router is not None:
        with about("--router"):
            default_registry.get(router)
        overrides.append(("group.router", router))
    if seed is not None:
        overrides.append(("seed", seed))
    spec = load_scenario(scenario, overrides)
    progress = _Progress(spec.start, spec.duration)
    try:
        result = run_scenario(spec, progress=progress)
    finally:
        wall = progress.finish()
    with about(str(out)):
        write_reports(out, result.report, messages=result.messages, plots=not no_plots)
    for line in _summary(result.report, wall):
        click.echo(line)
    click.echo(f"wrote the reports to {out}")


def _overrides(settings: Sequence[str], option: str) -> list[tuple[str, Any]]:
    return [(key, parse_override(value)) for key, value in (_setting(s, option) for s in settings)]


@sim.command("compare")
@click.argument("dirs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def compare(dirs: tuple[Path, ...], as_json: bool) -> None:
    """Put the reports of several runs (directories written by sim run) side by side:
    delivery ratio, latency (mean, median, 95th percentile), overhead, hops, drops."""
    comparison = compare_runs(dirs)
    click.echo(comparison.as_json() if as_json else comparison.table())


def _grid(params: Sequence[str]) -> list[list[tuple[str, Any]]]:
    axes = []
    for text in params:
        key, values = _setting(text, "--param")
        choices = [value.strip() for value in values.split(",")]
        if not all(choices):
            raise CliUsageError(f"--param {text!r}: expected KEY=VALUE,VALUE,...")
        axes.append([(key, parse_override(choice)) for choice in choices])
    return [list(combination) for combination in itertools.product(*axes)]


def _run_name(combination: Sequence[tuple[str, Any]]) -> str:
    """The sub-directory of one combination: ``group.router=epidemic_seed=1``."""
    parts = [_UNSAFE.sub("-", f"{key}={value}") for key, value in combination]
    return "_".join(parts) or "run"


def _sweep_job(scenario: str, out: str, overrides: list[tuple[str, Any]], plots: bool) -> str:
    run_to_directory(scenario, out, overrides=overrides, plots=plots)
    return out


@sim.command("sweep")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--param",
    "params",
    multiple=True,
    required=True,
    metavar="KEY=V1,V2,...",
    help="A key of the scenario and the values to try, e.g. group.router=epidemic,prophet "
    "or seed=1,2,3; the runs cover every combination.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for one sub-directory of reports per combination.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    help="Runs at once, each in its own process (default: the number of CPUs).",
)
@click.option("--no-plots", is_flag=True, help="Write JSON and CSV only, no PNG plots.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def sweep(
    scenario: Path,
    params: tuple[str, ...],
    out: Path,
    jobs: int | None,
    no_plots: bool,
    as_json: bool,
) -> None:
    """Run SCENARIO once for every combination of the --param values, in parallel, each
    into its own sub-directory of OUT, then compare the runs."""
    grid = _grid(params)
    names = [_run_name(combination) for combination in grid]
    if len(set(names)) != len(names):
        raise CliUsageError("sim sweep: two combinations give the same directory name")
    for combination in grid:
        load_scenario(scenario, combination)  # every mistake before any run starts
    directories = [out / name for name in names]
    with about(str(out)):
        out.mkdir(parents=True, exist_ok=True)
    workers = min(jobs or os.cpu_count() or 1, len(grid))
    click.echo(f"sweeping {len(grid)} runs of {scenario}, {workers} at a time", err=True)
    started = time.monotonic()

    def done(index: int, count: int) -> None:
        click.echo(f"[{count}/{len(grid)}] {names[index]} done", err=True)

    if workers == 1:
        for count, (combination, directory) in enumerate(zip(grid, directories, strict=True), 1):
            _sweep_job(str(scenario), str(directory), combination, not no_plots)
            done(count - 1, count)
    else:
        _in_processes(workers, scenario, grid, directories, not no_plots, done)
    click.echo(f"{len(grid)} runs in {time.monotonic() - started:.1f} s", err=True)
    comparison = compare_runs(directories)
    click.echo(comparison.as_json() if as_json else comparison.table())


def _in_processes(
    workers: int,
    scenario: Path,
    grid: Sequence[list[tuple[str, Any]]],
    directories: Sequence[Path],
    plots: bool,
    done: Callable[[int, int], None],
) -> None:
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures: dict[Future[str], int] = {
            pool.submit(_sweep_job, str(scenario), str(directory), combination, plots): index
            for index, (combination, directory) in enumerate(zip(grid, directories, strict=True))
        }
        pending = set(futures)
        count = 0
        while pending:
            finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in sorted(finished, key=futures.__getitem__):
                error = future.exception()
                if error is not None:
                    for other in pending:
                        other.cancel()
                    raise error
                count += 1
                done(futures[future], count)
