"""Writing a simulation's report to a directory, and comparing the reports of several runs.

:func:`write_reports` writes, for one run:

- ``report.json``: the whole report (keys sorted, indented by 2, non-finite numbers as null);
- ``report.csv``: the summary, one ``metric,value`` row per figure (nested tables flattened
  to dotted names, such as ``drops_by_reason.lifetime_expired``);
- ``nodes.csv``: one row per node with its counters;
- ``occupancy.csv``: buffer occupancy over time (total, mean and largest bytes per node, and
  the bundles stored);
- ``messages.csv``: one row per message (when the caller has them);
- ``delivery.png``, ``latency_cdf.png``, ``occupancy.png``: plots drawn with matplotlib's Agg
  renderer (no display needed).

The JSON and CSV files are byte-identical for the same report. The PNG files carry no
timestamp or software version either, and come out byte-identical from the same installation
(the same matplotlib and fonts); across machines they may differ in rendering.

:func:`compare` reads ``report.json`` from several directories into :class:`Comparison`,
which prints as a table (:meth:`Comparison.table`) or as JSON (:meth:`Comparison.as_json`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dtncloud.errors import ConfigError

__all__ = [
    "COMPARE_COLUMNS",
    "Comparison",
    "compare",
    "load_report",
    "report_json",
    "write_reports",
]

#: The figures :func:`compare` puts side by side: (report key, column heading).
COMPARE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("created", "created"),
    ("delivered", "delivered"),
    ("delivery_prob", "delivery"),
    ("latency_avg", "lat avg s"),
    ("latency_med", "lat med s"),
    ("latency_p95", "lat p95 s"),
    ("overhead_ratio", "overhead"),
    ("hopcount_avg", "hops avg"),
    ("hopcount_med", "hops med"),
    ("dropped", "dropped"),
)


# -- values -------------------------------------------------------------------------------------


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(key): _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def report_json(report: Mapping[str, Any]) -> bytes:
    """The bytes of ``report.json``: deterministic for equal reports."""
    text = json.dumps(_finite(report), sort_keys=True, indent=2, allow_nan=False)
    return (text + "\n").encode("utf-8")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return str(value)


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return buffer.getvalue().encode("utf-8")


def _flatten(report: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Scalar figures with dotted names; lists and the per-node and occupancy tables are
    left to their own files."""
    for key in sorted(report, key=str):
        value = report[key]
        name = f"{prefix}{key}"
        if name in ("per_node", "occupancy"):
            continue
        if isinstance(value, Mapping):
            yield from _flatten(value, name + ".")
        elif not isinstance(value, list | tuple):
            yield name, value


# -- files --------------------------------------------------------------------------------------


def _replace(path: Path, data: bytes) -> None:
    """Write ``path`` through a temporary file renamed over it: a reader (``sim compare``
    while a sweep runs) sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _summary_csv(report: Mapping[str, Any]) -> bytes:
    return _csv(("metric", "value"), _flatten(report))


def _nodes_csv(report: Mapping[str, Any]) -> bytes:
    per_node: Mapping[str, Mapping[str, Any]] = report.get("per_node") or {}
    columns = sorted({key for counters in per_node.values() for key in counters})
    rows = ([node, *(per_node[node].get(key) for key in columns)] for node in sorted(per_node))
    return _csv(("node", *columns), rows)


def _occupancy_csv(report: Mapping[str, Any]) -> bytes:
    series: Mapping[str, Sequence[Any]] = report.get("occupancy") or {}
    columns = ["t_s", *sorted(key for key in series if key != "t_s")]
    times = series.get("t_s", [])
    rows = (
        [series[key][i] if i < len(series.get(key, ())) else None for key in columns]
        for i in range(len(times))
    )
    return _csv(columns, rows)


def _messages_csv(messages: Sequence[Mapping[str, Any]]) -> bytes:
    columns = list(messages[0]) if messages else ["message_id"]
    return _csv(columns, ([row.get(key) for key in columns] for row in messages))


def write_reports(
    out: str | Path,
    report: Mapping[str, Any],
    *,
    messages: Sequence[Mapping[str, Any]] | None = None,
    plots: bool = True,
) -> list[Path]:
    """Write the files listed in the module docstring to directory ``out`` (created if
    needed; each file replaced atomically) and return their paths."""
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {
        "report.json": report_json(report),
        "report.csv": _summary_csv(report),
        "nodes.csv": _nodes_csv(report),
        "occupancy.csv": _occupancy_csv(report),
    }
    if messages is not None:
        files["messages.csv"] = _messages_csv(messages)
    if plots:
        files.update(_plots(report, messages or ()))
    written = []
    for name, data in files.items():
        path = directory / name
        _replace(path, data)
        written.append(path)
    return written


# -- plots --------------------------------------------------------------------------------------


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    # No "Software" entry: the file does not change with matplotlib's version.
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def _plots(report: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]) -> dict[str, bytes]:
    # Imported here: matplotlib takes a while to load and only report writing needs it.
    # Figure objects are used directly, not pyplot, which keeps global state of its own.
    from matplotlib.figure import Figure

    scenario = report.get("scenario") or {}
    title = str(scenario.get("name") or "simulation")
    origin = float(scenario.get("start_s") or 0.0)  # plots count hours from the start
    created = [
        float(row["created_s"]) - origin for row in messages if row.get("created_s") is not None
    ]
    delivered = sorted(
        float(row["delivered_s"]) - origin for row in messages if row.get("delivered_s") is not None
    )
    latencies = sorted(
        float(row["latency_s"]) for row in messages if row.get("latency_s") is not None
    )
    total = len(created) or int(report.get("created") or 0)
    hours = 3600.0

    figure = Figure(figsize=(7, 4))
    axes = figure.add_subplot()
    if delivered and total:
        xs = [0.0] + [t / hours for t in delivered]
        ys = [0.0] + [(i + 1) / total for i in range(len(delivered))]
        axes.step(xs, ys, where="post", label="delivered")
    if created and total:
        times = sorted(created)
        axes.step(
            [t / hours for t in times],
            [(i + 1) / total for i in range(len(times))],
            where="post",
            linestyle="--",
            label="created",
        )
        axes.legend(loc="lower right")
    axes.set_xlabel("time (h)")
    axes.set_ylabel("fraction of messages")
    axes.set_ylim(0, 1.05)
    axes.set_title(f"{title}: delivery over time")
    axes.grid(True, alpha=0.3)
    files = {"delivery.png": _png(figure)}

    figure = Figure(figsize=(7, 4))
    axes = figure.add_subplot()
    if latencies:
        axes.step(
            [0.0] + [t / hours for t in latencies],
            [0.0] + [(i + 1) / len(latencies) for i in range(len(latencies))],
            where="post",
        )
    axes.set_xlabel("latency (h)")
    axes.set_ylabel("fraction of delivered messages")
    axes.set_ylim(0, 1.05)
    axes.set_title(f"{title}: latency CDF ({len(latencies)} delivered)")
    axes.grid(True, alpha=0.3)
    files["latency_cdf.png"] = _png(figure)

    series: Mapping[str, Sequence[Any]] = report.get("occupancy") or {}
    figure = Figure(figsize=(7, 4))
    axes = figure.add_subplot()
    times = [(float(t) - origin) / hours for t in series.get("t_s", [])]
    for key, label in (("mean_bytes", "mean per node"), ("max_bytes", "fullest node")):
        values = series.get(key)
        if times and values and len(values) == len(times):
            axes.plot(times, [float(v) / 2**20 for v in values], label=label)
    if times:
        axes.legend(loc="upper left")
    axes.set_xlabel("time (h)")
    axes.set_ylabel("buffer occupancy (MiB)")
    axes.set_title(f"{title}: buffer occupancy")
    axes.grid(True, alpha=0.3)
    files["occupancy.png"] = _png(figure)
    return files


# -- comparing runs -----------------------------------------------------------------------------


def load_report(directory: str | Path) -> dict[str, Any]:
    """The ``report.json`` of a run's directory (ConfigError naming it if missing or bad)."""
    path = Path(directory) / "report.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{directory}: no report.json (not the output of sim run?)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the report: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a report (expected a JSON object)")
    return data


def _routers(report: Mapping[str, Any]) -> str:
    scenario = report.get("scenario") or {}
    routers = scenario.get("routers") or {}
    names = sorted(set(routers.values())) if isinstance(routers, dict) else []
    return "+".join(str(name) for name in names) or "?"


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


@dataclass(frozen=True, slots=True)
class Comparison:
    """Runs side by side: one row per run directory, in the order given."""

    runs: tuple[str, ...]
    reports: tuple[dict[str, Any], ...]

    def rows(self) -> list[dict[str, Any]]:
        """One dict per run: ``run``, ``scenario``, ``routers``, ``seed``, the figures of
        :data:`COMPARE_COLUMNS` and ``drops_by_reason``."""
        rows = []
        for run, report in zip(self.runs, self.reports, strict=True):
            scenario = report.get("scenario") or {}
            row: dict[str, Any] = {
                "run": run,
                "scenario": scenario.get("name"),
                "routers": _routers(report),
                "seed": scenario.get("seed"),
            }
            for key, _ in COMPARE_COLUMNS:
                row[key] = report.get(key)
            row["drops_by_reason"] = report.get("drops_by_reason") or {}
            rows.append(row)
        return rows

    def as_json(self) -> str:
        return json.dumps({"runs": _finite(self.rows())}, sort_keys=True, indent=2)

    def table(self) -> str:
        """A plain-text table, columns aligned, one line per run, and a line of drops by
        reason under it where any run dropped messages."""
        headings = ["run", "router", "seed", *(title for _, title in COMPARE_COLUMNS)]
        lines = [
            [row["run"], row["routers"], _shown(row["seed"])]
            + [_shown(row[key]) for key, _ in COMPARE_COLUMNS]
            for row in self.rows()
        ]
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headings)]

        def render(cells: Sequence[str]) -> str:
            parts = [
                cell.ljust(width) if i < 2 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
            ]
            return "  ".join(parts).rstrip()

        out = [render(headings), render(["-" * w for w in widths])]
        out.extend(render(line) for line in lines)
        for row in self.rows():
            if row["drops_by_reason"]:
                reasons = ", ".join(f"{k} {v}" for k, v in sorted(row["drops_by_reason"].items()))
                out.append(f"drops in {row['run']}: {reasons}")
        return "\n".join(out)


def compare(directories: Sequence[str | Path]) -> Comparison:
    """The reports of the run directories, ready to tabulate."""
    return Comparison(
        tuple(str(d) for d in directories), tuple(load_report(d) for d in directories)
    )
