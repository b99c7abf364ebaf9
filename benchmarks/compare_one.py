"""Compare ``dtncloud sim replay`` with a run of the ONE simulator on the same traces.

The ONE (https://github.com/akeranen/the-one) is the reference simulator of the DTN
literature; ``dtncloud sim replay`` reads its external-events format and reports its
MessageStatsReport figures. This script runs both on identical traces and prints the figures
side by side.

It needs a compiled ONE (Java) that runs headless: a directory of classes holding at least
``core.DTNSim``, the routers, ``input.ExternalEventsQueue``, ``movement.StationaryMovement``,
``interfaces.SimpleBroadcastInterface`` and ``report.MessageStatsReport``. No ONE code is
part of dtncloud: build it yourself, e.g.::

    git clone https://github.com/akeranen/the-one && cd the-one
    javac -d /tmp/one-ref/classes $(find src -name '*.java')   # or ./compile.sh

and pass ``--one-classes`` (default ``/tmp/one-ref/classes``).

Usage::

    python benchmarks/compare_one.py --router epidemic --hosts 40 --contacts 3000 \\
        --messages 300 --seed 1
    python benchmarks/compare_one.py --router epidemic --rate 20000 --json out.json
    python benchmarks/compare_one.py --router spray_and_wait --copies 8
    python benchmarks/compare_one.py --router prophet
    python benchmarks/compare_one.py --router direct
    python benchmarks/compare_one.py --router epidemic \\
        --contacts-file c.txt --messages-file m.txt      # your own traces
    python benchmarks/compare_one.py --generate-only --workdir /tmp/traces

What is made the same on both sides:

- the hosts (``0 .. N-1``; the ONE addresses hosts by number, dtncloud names host ``k``
  ``dtn://nk/``), stationary, connected only by the trace's ``CONN`` events
  (``Scenario.simulateConnections = false``);
- the link rate (``--rate`` bytes/s each way; without it dtncloud's links have no limit and
  the ONE's interface gets ``--unlimited-rate``, as its rate is a whole number of bytes/s);
- the buffer (``--buffer`` bytes, default none on either side), the message lifetime
  (``--ttl-min`` minutes: the ONE's ``msgTtl`` is in minutes; default longer than the run);
- the end of the run (the last event of the traces unless ``--until``);
- the router: epidemic, spray_and_wait (binary, ``--copies``), prophet, direct;
- the ONE's send queue is FIFO (``Group.sendQueue = 2``; its default is random order).

What is not (and shows in the figures), see ``--help-differences``.

Times: trace times and every reported latency are seconds on both sides (dtncloud works in
milliseconds inside and reports seconds). The ONE advances in steps of
``--update-interval`` seconds (default 0.1): a transfer ends at the first step after it is
done, so each hop costs up to one step more than dtncloud's event-exact timing.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: Figures compared, in table order, with the ONE report's names.
FIGURES = (
    "created",
    "delivered",
    "delivery_prob",
    "overhead_ratio",
    "latency_avg",
    "latency_med",
    "hopcount_avg",
    "relayed",
    "started",
    "aborted",
    "dropped",
)

#: dtncloud router name -> the ONE's router class.
ONE_ROUTERS = {
    "epidemic": "EpidemicRouter",
    "spray_and_wait": "SprayAndWaitRouter",
    "prophet": "ProphetRouter",
    "direct": "DirectDeliveryRouter",
}

DIFFERENCES = """\
Known modelling differences between the ONE and dtncloud (explain most gaps):

1. Link concurrency. A ONE host (ActiveRouter) sends or receives one message at a time over
   all of its connections (a connection is half duplex and a busy host refuses new
   transfers); dtncloud's links are full duplex and a node sends on all its links at once.
   With a rate limit dtncloud moves far more data per contact.
2. Bytes on the link. A ONE message of S bytes takes S/rate; dtncloud sends a BPv7 bundle
   (payload S plus ~60-90 bytes of blocks) and routers exchange control bundles at each
   contact (epidemic summary vectors, PRoPHET tables) that use the link too.
3. Time steps. The ONE finishes transfers only at update steps (Scenario.updateInterval),
   so every hop takes at least one step even at "unlimited" rate; dtncloud is event-exact
   (unlimited rate: a whole multi-hop journey can happen in the same millisecond).
4. Copies after delivery. The ONE's epidemic and PRoPHET keep relaying a message after it
   reached its destination (deleteDelivered = false); a dtncloud relay drops its copy once
   it hands it to the destination, and the destination never holds it. Overhead ratios
   differ accordingly.
5. PRoPHET. The ONE's ProphetRouter is the original PRoPHET (P_init 0.75, additive
   transitivity, beta 0.25, gamma 0.98 per secondsInTimeUnit, set to 30 s here);
   dtncloud's follows RFC 6693 (P_encounter_max 0.7, beta 0.9, gamma 0.999 per 30 s, the
   larger of old and transitive value). --prophet-like-one gives dtncloud settings that
   make its encounter and aging rules the ONE's (transitivity still differs).
6. Full buffers. Both drop the oldest messages not being sent to make room (sim replay's
   default buffer policy), but dtncloud never drops one that is being sent: when that is
   the only way to make room it refuses the new bundle instead.
7. Expiry. The ONE's TTL is whole minutes and checked every 60 s (a message can go up to a
   minute early or late); dtncloud's lifetime is exact to the millisecond.
8. Relayed/started. The ONE counts every transfer that completed (relayed) or began
   (started), deliveries included; dtncloud counts the same for message bundles only
   (control bundles are not counted), and leaves out of relayed the copies a receiver
   already had (reported as duplicates: a ONE host turns those away before the transfer,
   dtncloud's learn of them from summary vectors, which can be out of date within a
   contact).
"""


# -- traces ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TraceSpec:
    """What :func:`generate_traces` makes: random encounters among ``hosts`` hosts over
    ``duration_s`` seconds, and ``messages`` random messages."""

    hosts: int = 40
    contacts: int = 3000
    messages: int = 300
    duration_s: float = 86_400.0
    contact_min_s: float = 10.0
    contact_max_s: float = 600.0
    size_min: int = 5_000
    size_max: int = 100_000
    #: messages are created in the first this share of the run
    message_window: float = 0.5
    seed: int = 1


def generate_traces(spec: TraceSpec, contacts_path: Path, messages_path: Path) -> tuple[int, int]:
    """Write a contact trace and a message trace in the ONE's external-events format.

    Encounters pick a random pair of distinct hosts, a start uniform over the run and a
    duration uniform in [contact_min_s, contact_max_s]; an encounter that would overlap (or
    touch) another of the same pair is left out, so every pair is up or down, never twice
    up. Times have a resolution of 0.1 s. Returns (contacts written, messages written)."""
    if spec.hosts < 2:
        raise ValueError("at least 2 hosts are needed")
    rng = random.Random(spec.seed)
    busy: dict[tuple[int, int], list[tuple[float, float]]] = {}
    conn: list[tuple[float, int, str]] = []  # (time, order, line)
    attempts = 0
    written = 0
    while written < spec.contacts and attempts < 20 * spec.contacts:
        attempts += 1
        a, b = sorted(rng.sample(range(spec.hosts), 2))
        length = round(rng.uniform(spec.contact_min_s, spec.contact_max_s), 1)
        start = round(rng.uniform(0.0, max(0.0, spec.duration_s - length)), 1)
        end = round(start + length, 1)
        spans = busy.setdefault((a, b), [])
        if any(start <= e + 1.0 and s <= end + 1.0 for s, e in spans):
            continue
        spans.append((start, end))
        conn.append((start, 1, f"{start:.1f} CONN {a} {b} up"))
        conn.append((end, 0, f"{end:.1f} CONN {a} {b} down"))
        written += 1
    conn.sort(key=lambda item: (item[0], item[1]))
    contacts_path.write_text("".join(line + "\n" for _, _, line in conn), encoding="utf-8")

    created: list[tuple[float, str]] = []
    window = spec.duration_s * spec.message_window
    for number in range(1, spec.messages + 1):
        src, dst = rng.sample(range(spec.hosts), 2)
        at = round(rng.uniform(0.0, window), 1)
        size = rng.randint(spec.size_min, spec.size_max)
        created.append((at, f"{at:.1f} C M{number} {src} {dst} {size}"))
    created.sort(key=lambda item: item[0])
    messages_path.write_text("".join(line + "\n" for _, line in created), encoding="utf-8")
    return written, len(created)


def trace_extent(*paths: Path) -> tuple[float, int]:
    """(time of the last event, highest host number) over the given trace files."""
    last = 0.0
    highest = -1
    for path in paths:
        for text in path.read_text(encoding="utf-8").splitlines():
            fields = text.split()
            if not fields or fields[0].startswith("#"):
                continue
            last = max(last, float(fields[0]))
            hosts = fields[2:4] if fields[1] == "CONN" else fields[3:5]
            for host in hosts:
                if not host.isdigit():
                    raise ValueError(
                        f"{path}: host {host!r} is not a number (the ONE needs 0..N-1)"
                    )
                highest = max(highest, int(host))
    return last, highest


# -- the ONE ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunSpec:
    """The scenario both simulators run."""

    router: str
    hosts: int
    end_s: float
    rate: float | None
    unlimited_rate: int
    buffer: int | None
    ttl_min: int
    copies: int
    seed: int
    update_interval: float
    #: router settings for dtncloud (sim replay --param)
    dtn_params: tuple[str, ...] = ()


#: dtncloud PRoPHET settings under which its encounter rule, P += (1 - delta - P) * P_enc,
#: and its aging are the ONE's P += (1 - P) * P_init and gamma per 30 s (P_enc is always
#: p_encounter_max once i_typ_ms is 1 ms; nothing falls below a zero threshold).
PROPHET_LIKE_ONE = (
    "p_encounter_max=0.75",
    "p_encounter_first=0.75",
    "p_first_threshold=0.0",
    "delta=0.0",
    "i_typ_ms=1",
    "beta=0.25",
    "gamma=0.98",
    "time_unit_ms=30000",
)


def one_settings(spec: RunSpec, contacts: Path, messages: Path, report_dir: Path) -> str:
    """The ONE settings file text for ``spec``."""
    rate = spec.unlimited_rate if spec.rate is None else round(spec.rate)
    lines = [
        "Scenario.name = compare",
        "Scenario.simulateConnections = false",
        f"Scenario.updateInterval = {spec.update_interval}",
        f"Scenario.endTime = {spec.end_s}",
        "Scenario.nrofHostGroups = 1",
        "Group.groupID = n",
        f"Group.nrofHosts = {spec.hosts}",
        "Group.movementModel = StationaryMovement",
        "Group.nodeLocation = 0,0",
        f"Group.router = {ONE_ROUTERS[spec.router]}",
        "Group.sendQueue = 2",
        f"Group.msgTtl = {spec.ttl_min}",
        "Group.nrofInterfaces = 1",
        "Group.interface1 = link",
        "link.type = SimpleBroadcastInterface",
        f"link.transmitSpeed = {rate}",
        "link.transmitRange = 0",
        "Events.nrof = 2",
        "Events1.class = ExternalEventsQueue",
        f"Events1.filePath = {contacts}",
        "Events2.class = ExternalEventsQueue",
        f"Events2.filePath = {messages}",
        "MovementModel.worldSize = 100,100",
        f"MovementModel.rngSeed = {spec.seed}",
        "Report.nrofReports = 1",
        f"Report.reportDir = {report_dir}",
        "Report.report1 = MessageStatsReport",
        "Report.precision = 4",
        "SprayAndWaitRouter.binaryMode = true",
        f"SprayAndWaitRouter.nrofCopies = {spec.copies}",
        "ProphetRouter.secondsInTimeUnit = 30",
    ]
    if spec.buffer is not None:
        lines.append(f"Group.bufferSize = {spec.buffer}")
    return "\n".join(lines) + "\n"


def run_one(
    spec: RunSpec, contacts: Path, messages: Path, work: Path, classes: Path, java: str
) -> dict[str, float | None]:
    """Run the ONE in batch mode and return its MessageStatsReport figures."""
    report_dir = work / "one-reports"
    settings = work / "one_settings.txt"
    settings.write_text(
        one_settings(spec, contacts.resolve(), messages.resolve(), report_dir.resolve()),
        encoding="utf-8",
    )
    command = [java, "-Xss8m", "-cp", str(classes), "core.DTNSim", "-b", "1", str(settings)]
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, check=False)
    (work / "one_stdout.txt").write_text(done.stdout + done.stderr, encoding="utf-8")
    report = report_dir / "compare_MessageStatsReport.txt"
    if done.returncode != 0 or not report.exists():
        raise RuntimeError(f"the ONE failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return parse_one_report(report.read_text(encoding="utf-8"))


def parse_one_report(text: str) -> dict[str, float | None]:
    """``key: value`` lines of a MessageStatsReport; ``NaN`` becomes None."""
    figures: dict[str, float | None] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        figures[key.strip()] = None if math.isnan(number) else number
    return figures


# -- dtncloud ---------------------------------------------------------------------------------


def run_dtncloud(spec: RunSpec, contacts: Path, messages: Path, work: Path) -> dict[str, Any]:
    """Run ``dtncloud sim replay`` on the traces and return its report."""
    out = work / "dtncloud"
    command = [
        sys.executable,
        "-m",
        "dtncloud",
        "sim",
        "replay",
        "--contacts",
        str(contacts),
        "--messages",
        str(messages),
        "--router",
        spec.router,
        "--seed",
        str(spec.seed),
        "--until",
        str(spec.end_s),
        "--lifetime",
        f"{spec.ttl_min}m",
        "--out",
        str(out),
    ]
    if spec.router == "spray_and_wait":
        command += ["--copies", str(spec.copies)]
    for setting in spec.dtn_params:
        command += ["--param", setting]
    if spec.rate is not None:
        command += ["--rate", str(spec.rate)]
    if spec.buffer is not None:
        command += ["--buffer", str(spec.buffer)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    (work / "dtncloud_stdout.txt").write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode != 0:
        raise RuntimeError(f"dtncloud failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    report: dict[str, Any] = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return report


# -- output -----------------------------------------------------------------------------------


def _cell(value: float | None) -> str:
    if value is None:
        return "-"
    if float(value).is_integer() and abs(value) < 1e12:
        return f"{int(value)}"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"


def compare(one: dict[str, float | None], ours: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per figure: the ONE's value, dtncloud's, and dtncloud / ONE."""
    rows = []
    for name in FIGURES:
        a = one.get(name)
        b = ours.get(name)
        ratio = None
        if a is not None and b is not None and a != 0:
            ratio = float(b) / float(a)
        rows.append({"figure": name, "one": a, "dtncloud": b, "ratio": ratio})
    return rows


def render_table(rows: list[dict[str, Any]], title: str) -> str:
    lines = [title, f"{'figure':<16}{'ONE':>14}{'dtncloud':>14}{'dtn/ONE':>10}"]
    for row in rows:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.3f}"
        lines.append(
            f"{row['figure']:<16}{_cell(row['one']):>14}{_cell(row['dtncloud']):>14}{ratio:>10}"
        )
    return "\n".join(lines)


# -- command line -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Run the ONE simulator and dtncloud sim replay on the same traces.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=DIFFERENCES,
    )
    parser.add_argument("--router", choices=sorted(ONE_ROUTERS), default="epidemic")
    parser.add_argument("--copies", type=int, default=8, help="spray_and_wait copies (binary)")
    parser.add_argument("--rate", type=float, help="link rate, bytes/s each way (default none)")
    parser.add_argument(
        "--unlimited-rate",
        type=int,
        default=1_000_000_000,
        help="the ONE's transmitSpeed when --rate is not given (bytes/s)",
    )
    parser.add_argument("--buffer", type=int, help="buffer of every host, bytes (default none)")
    parser.add_argument("--ttl-min", type=int, help="message lifetime, minutes (default: > run)")
    parser.add_argument("--until", type=float, help="end of the run, s (default: last event)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the traces and both runs")
    parser.add_argument("--update-interval", type=float, default=0.1, help="the ONE's step, s")
    parser.add_argument(
        "--dtn-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a router setting for dtncloud (sim replay --param), repeatable",
    )
    parser.add_argument(
        "--prophet-like-one",
        action="store_true",
        help="give dtncloud's prophet the ONE's encounter and aging rules and parameters",
    )
    traces = parser.add_argument_group("generated traces (unless --contacts-file)")
    traces.add_argument("--hosts", type=int, default=40)
    traces.add_argument("--contacts", type=int, default=3000)
    traces.add_argument("--messages", type=int, default=300)
    traces.add_argument("--duration", type=float, default=86_400.0, help="seconds")
    traces.add_argument("--contact-min", type=float, default=10.0, help="seconds")
    traces.add_argument("--contact-max", type=float, default=600.0, help="seconds")
    traces.add_argument("--size-min", type=int, default=5_000, help="bytes")
    traces.add_argument("--size-max", type=int, default=100_000, help="bytes")
    parser.add_argument("--contacts-file", type=Path, help="your own CONN trace")
    parser.add_argument("--messages-file", type=Path, help="your own C trace")
    parser.add_argument("--one-classes", type=Path, default=Path("/tmp/one-ref/classes"))
    parser.add_argument("--java", default="java")
    parser.add_argument("--workdir", type=Path, help="keep files here (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the comparison as JSON")
    parser.add_argument("--generate-only", action="store_true", help="write the traces and stop")
    parser.add_argument(
        "--skip-one", action="store_true", help="run dtncloud only (no ONE build needed)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (args.contacts_file is None) != (args.messages_file is None):
        print("give both --contacts-file and --messages-file, or neither", file=sys.stderr)
        return 2
    needs_one = not (args.generate_only or args.skip_one)
    if needs_one and not (args.one_classes / "core" / "DTNSim.class").exists():
        print(
            f"no ONE build in {args.one_classes} (core/DTNSim.class is missing).\n"
            "Compile the ONE (https://github.com/akeranen/the-one) outside this project, "
            "e.g.\n  javac -d /tmp/one-ref/classes $(find the-one/src -name '*.java')\n"
            "and pass --one-classes DIR (or use --skip-one for dtncloud alone).",
            file=sys.stderr,
        )
        return 2
    if needs_one and shutil.which(args.java) is None:
        print(f"no Java runtime ({args.java!r} not found)", file=sys.stderr)
        return 2

    work = args.workdir or Path(tempfile.mkdtemp(prefix="compare-one-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.contacts_file is not None:
        contacts, messages = args.contacts_file.resolve(), args.messages_file.resolve()
    else:
        contacts, messages = work / "contacts.txt", work / "messages.txt"
        spec = TraceSpec(
            hosts=args.hosts,
            contacts=args.contacts,
            messages=args.messages,
            duration_s=args.duration,
            contact_min_s=args.contact_min,
            contact_max_s=args.contact_max,
            size_min=args.size_min,
            size_max=args.size_max,
            seed=args.seed,
        )
        n_contacts, n_messages = generate_traces(spec, contacts, messages)
        print(f"traces: {n_contacts} contacts, {n_messages} messages in {work}")
    if args.generate_only:
        return 0

    last, highest = trace_extent(contacts, messages)
    end_s = args.until if args.until is not None else last
    ttl_min = args.ttl_min if args.ttl_min is not None else int(end_s // 60) + 60
    run = RunSpec(
        router=args.router,
        hosts=max(highest + 1, args.hosts if args.contacts_file is None else 0),
        end_s=end_s,
        rate=args.rate,
        unlimited_rate=args.unlimited_rate,
        buffer=args.buffer,
        ttl_min=ttl_min,
        copies=args.copies,
        seed=args.seed,
        update_interval=args.update_interval,
        dtn_params=(*(PROPHET_LIKE_ONE if args.prophet_like_one else ()), *args.dtn_param),
    )
    ours = run_dtncloud(run, contacts, messages, work)
    if args.skip_one:
        print(json.dumps({name: ours.get(name) for name in FIGURES}, indent=2))
        return 0
    one = run_one(run, contacts, messages, work, args.one_classes, args.java)
    rows = compare(one, ours)
    rate = "unlimited" if run.rate is None else f"{run.rate:g} B/s"
    title = (
        f"router {run.router}, {run.hosts} hosts, rate {rate}, buffer "
        f"{'none' if run.buffer is None else run.buffer}, until {end_s:g} s, seed {run.seed}"
    )
    print(render_table(rows, title))
    if args.json is not None:
        payload = {"scenario": title, "run": asdict(run), "rows": rows}
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
