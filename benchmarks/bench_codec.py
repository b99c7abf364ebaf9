"""BPv7 codec speed: dtncloud against pyd3tn and bare cbor2, side by side in one run.

Every figure comes from interleaved rounds: in each round every contender of a group runs for
about the same wall time (one "slot"), in a rotating order, with the garbage collector off.
Per-operation times are summarised by their median (and minimum) over rounds, and a ratio is
the median of the per-round ratios, so load from other processes on a busy machine slows both
sides of a ratio alike. Correctness is checked before anything is timed; a failed check is the
only thing that makes the exit status non-zero (a missed speed target is reported, never
raised).

    python benchmarks/bench_codec.py [--rounds N] [--slot-ms MS] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.metadata
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2

try:
    import dtncloud  # noqa: F401  (only to learn whether the repository needs adding)
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dtncloud.bpv7 import (
    Bundle,
    CanonicalBlock,
    CrcType,
    bundle_age_block,
    decode_bundle,
    encode_bundle,
    hop_count_block,
    previous_node_block,
)
from dtncloud.bpv7 import decode as _decode_module
from dtncloud.dtntime import dtn_time_from_unix
from dtncloud.eid import EID

p7: Any  # pyd3tn.bundle7, untyped
try:
    p7 = importlib.import_module("pyd3tn.bundle7")
except ImportError:  # pyd3tn is a dev dependency; without it only dtncloud and cbor2 run
    p7 = None

KIB = 1024
MIB = 1024 * KIB
SOURCE = "dtn://sensor-17/telemetry"
DESTINATION = "dtn://cloud/ingest"
PREVIOUS_NODE = "dtn://gateway-3/"
UNIX_START = 1_763_700_000  # creation times: one bundle a second from here
LIFETIME_S = 3600
# A contender slower than this per operation is not timed (pyd3tn's pure-Python CRC-32C
# needs about half a second to serialise 1 MiB; 25 rounds of that would take minutes).
MAX_OP_NS = 100_000_000
# Fresh inputs (the cold-EID stream) are encoded anew for every round: capping how many a slot
# takes bounds memory and the time spent preparing them.
MAX_FRESH_OPS_PER_SLOT = 1500
# Where decode_bundle leaves cbor2 for its exact, streaming path (a private detail, so only
# used to label the figures).
FAST_PATH_LIMIT: int = getattr(_decode_module, "_FAST_PATH_LIMIT", 256 * KIB)


# -- the bundles --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """One bundle, described once and built by both libraries from the same values."""

    source: str
    payload: bytes
    sequence: int
    crc: CrcType = CrcType.CRC32C
    extensions: bool = False  # previous node, hop count and bundle age blocks

    @property
    def unix_time(self) -> int:
        return UNIX_START + self.sequence

    def create_kwargs(self) -> dict[str, Any]:
        """Arguments of dtncloud's Bundle.create for this bundle."""
        blocks: tuple[CanonicalBlock, ...] = ()
        if self.extensions:
            # Numbered and ordered as pyd3tn lays them out, so both produce the same bytes.
            blocks = (
                previous_node_block(EID.parse(PREVIOUS_NODE), 3, crc_type=self.crc),
                hop_count_block(32, 3, 2, crc_type=self.crc),
                bundle_age_block(2000, 4, crc_type=self.crc),
            )
        return {
            "source": self.source,
            "destination": DESTINATION,
            "report_to": self.source,
            "payload": self.payload,
            "creation_time": dtn_time_from_unix(self.unix_time),
            "sequence": self.sequence,
            "lifetime": LIFETIME_S * 1000,
            "crc_type": self.crc,
            "block_crc_type": self.crc,
            "extension_blocks": blocks,
        }

    def bundle(self) -> Bundle:
        return Bundle.create(**self.create_kwargs())

    def pyd3tn_kwargs(self) -> dict[str, Any]:
        """Arguments of pyd3tn's serialize_bundle7 for the same bundle."""
        crc = p7.CRCType(int(self.crc))
        kwargs: dict[str, Any] = {
            "source_eid": self.source,
            "destination_eid": DESTINATION,
            "payload": self.payload,
            "report_to_eid": self.source,
            "crc_type_primary": crc,
            "crc_type_canonical": crc,
            "creation_timestamp": self.unix_time,  # Unix seconds; pyd3tn converts
            "sequence_number": self.sequence,
            "lifetime": LIFETIME_S,  # seconds
        }
        if self.extensions:
            kwargs.update(hop_limit=32, hop_count=3, bundle_age=2, previous_node_eid=PREVIOUS_NODE)
        return kwargs


@dataclass(frozen=True)
class Scenario:
    """A kind of bundle: a stream of ``count`` of them from one source to one destination."""

    key: str
    title: str
    payload_size: int
    count: int
    crc: CrcType = CrcType.CRC32C
    extensions: bool = False

    def specs(self, seed: int = 17) -> list[Spec]:
        rng = random.Random(seed)
        return [
            Spec(SOURCE, rng.randbytes(self.payload_size), n, self.crc, self.extensions)
            for n in range(1, self.count + 1)
        ]


HEADLINE = Scenario("1k", "1 KiB payload, CRC-32C", KIB, 64)
INFORMATIONAL = (
    Scenario("1k-ext", "1 KiB + previous node/hop count/bundle age", KIB, 64, extensions=True),
    Scenario("1k-crc16", "1 KiB payload, CRC-16", KIB, 64, crc=CrcType.CRC16),
    Scenario("64k", "64 KiB payload, CRC-32C", 64 * KIB, 8),
    Scenario("1m", "1 MiB payload, CRC-32C", MIB, 2),
)


class ColdStream:
    """Encoded bundles whose source EIDs have never been seen, so that decode_bundle's EID
    memo misses on every one (a stream from many sensors rather than one)."""

    def __init__(self, payload_size: int) -> None:
        # A token per stream keeps a second run in the same process cold as well.
        self._token = f"{time.perf_counter_ns():x}"
        self._payload = random.Random(99).randbytes(payload_size)
        self._next = 1

    def spec(self) -> Spec:
        number = self._next
        self._next += 1
        source = f"dtn://sensor-{self._token}-{number}/telemetry"
        return Spec(source, self._payload, number)

    def batch(self, n: int) -> list[bytes]:
        return [encode_bundle(self.spec().bundle()) for _ in range(n)]


# -- correctness --------------------------------------------------------------------------------


@dataclass
class Checks:
    count: int = 0
    problems: list[str] = field(default_factory=list)

    def expect(self, ok: bool, what: str) -> None:
        self.count += 1
        if not ok:
            self.problems.append(what)


def check_specs(checks: Checks, label: str, specs: Sequence[Spec]) -> None:
    """Round trips through dtncloud for every bundle; both directions through pyd3tn for a
    sample (pyd3tn's pure-Python CRC makes it slow on large bundles)."""
    for spec in specs:
        bundle = spec.bundle()
        data = encode_bundle(bundle)
        checks.expect(
            decode_bundle(data) == bundle, f"{label} #{spec.sequence}: decode(encode(b)) != b"
        )
        items = cbor2.loads(data)
        checks.expect(len(items) == 1 + len(bundle.blocks), f"{label}: cbor2 sees other blocks")
    if p7 is None:
        return
    sample = [specs[0]] if len(specs[0].payload) > 64 * KIB else [specs[0], specs[-1]]
    for spec in sample:
        what = f"{label} #{spec.sequence}"
        bundle = spec.bundle()
        data = encode_bundle(bundle)
        parsed = p7.Bundle.parse(data)
        primary = parsed.primary_block
        checks.expect(
            (str(primary.source), str(primary.destination), str(primary.report_to))
            == (spec.source, DESTINATION, spec.source)
            and list(primary.creation_time) == [bundle.primary.creation_time, spec.sequence]
            and primary.lifetime == LIFETIME_S * 1000
            and parsed.payload_block.data == spec.payload
            and len(parsed.blocks) == len(bundle.blocks) - 1,
            f"{what}: pyd3tn parses our bytes to other values",
        )
        if len(data) <= 128 * KIB:
            blocks = [primary, *parsed.blocks, parsed.payload_block]
            checks.expect(
                all(b.calculate_crc() == b.crc_provided for b in blocks),
                f"{what}: pyd3tn's CRC code disagrees with our CRCs",
            )
        theirs = bytes(p7.serialize_bundle7(**spec.pyd3tn_kwargs()))
        checks.expect(decode_bundle(theirs) == bundle, f"{what}: pyd3tn's bytes decode otherwise")
        checks.expect(theirs == data, f"{what}: pyd3tn and dtncloud encode different bytes")


# -- timing -------------------------------------------------------------------------------------


@dataclass
class Contender:
    """One way of doing an operation: ``op`` applied to each input of a slot."""

    name: str
    op: Callable[[Any], object]
    inputs: Sequence[Any] = ()  # cycled through; ignored when the group has a fresh feed


@dataclass
class Group:
    key: str
    operation: str  # "encode" or "decode"
    title: str
    size: int  # encoded bytes of one bundle
    contenders: list[Contender]
    # Fresh inputs for every round (cold EIDs): called with the number needed.
    feed: Callable[[int], list[Any]] | None = None
    skipped: list[str] = field(default_factory=list)


@dataclass
class Result:
    name: str
    ops_per_slot: int
    per_op_ns: list[float]

    @property
    def median_ns(self) -> float:
        return statistics.median(self.per_op_ns)

    @property
    def min_ns(self) -> float:
        return min(self.per_op_ns)


@dataclass(frozen=True)
class Settings:
    rounds: int = 25
    slot_ns: int = 20_000_000
    warmup_ns: int = 60_000_000


def run_slot(op: Callable[[Any], object], inputs: Sequence[Any]) -> int:
    """Nanoseconds to apply ``op`` to every input (the loop is the same for everyone)."""
    clock = time.perf_counter_ns
    start = clock()
    for item in inputs:
        op(item)
    return clock() - start


def cycle(items: Sequence[Any], n: int) -> list[Any]:
    return [items[i % len(items)] for i in range(n)]


def calibrate(contender: Contender, group: Group, settings: Settings) -> int:
    """Warm ``contender`` up (code paths, caches, the EID memo) and return how many operations
    fill one slot, or 0 when a single operation is too slow to time in rounds."""
    take = group.feed or (lambda n: cycle(contender.inputs, n))
    first = run_slot(contender.op, take(1))
    if first > MAX_OP_NS:
        return 0
    best = float(first)
    spent, batch = first, 1
    while spent < settings.warmup_ns:
        elapsed = run_slot(contender.op, take(batch))
        best = min(best, elapsed / batch)
        spent += elapsed
        if elapsed < settings.warmup_ns // 8:
            batch *= 2
    n = max(1, round(settings.slot_ns / max(best, 1.0)))
    return min(n, MAX_FRESH_OPS_PER_SLOT) if group.feed is not None else n


def measure(group: Group, settings: Settings) -> list[Result]:
    """Time the group's contenders in interleaved rounds (see the module docstring)."""
    timed: list[tuple[Contender, int]] = []
    for contender in group.contenders:
        n = calibrate(contender, group, settings)
        if n:
            timed.append((contender, n))
        else:
            group.skipped.append(
                f"{contender.name}: one operation takes over {MAX_OP_NS / 1e6:g} ms"
            )
    results = [Result(c.name, n, []) for c, n in timed]
    if not timed:
        return results
    fixed = [cycle(c.inputs, n) for c, n in timed] if group.feed is None else []
    for round_number in range(settings.rounds):
        if group.feed is not None:
            # One fresh batch a round, shared: every contender gets the same bundles.
            batch = group.feed(max(n for _, n in timed))
            inputs = [batch[:n] for _, n in timed]
        else:
            inputs = fixed
        order = [(i + round_number) % len(timed) for i in range(len(timed))]
        gc.collect()
        gc.disable()
        try:
            for i in order:
                elapsed = run_slot(timed[i][0].op, inputs[i])
                results[i].per_op_ns.append(elapsed / timed[i][1])
        finally:
            gc.enable()
    return results


def paired_ratios(fast: Result, slow: Result) -> list[float]:
    """Per round: how many times faster ``fast`` was than ``slow`` in that same round."""
    return [s / f for f, s in zip(fast.per_op_ns, slow.per_op_ns, strict=True)]


# -- the groups ---------------------------------------------------------------------------------


def _serialize(kwargs: dict[str, Any]) -> bytes:
    return bytes(p7.serialize_bundle7(**kwargs))


def _create_and_encode(kwargs: dict[str, Any]) -> bytes:
    return encode_bundle(Bundle.create(**kwargs))


def groups_for(scenario: Scenario, specs: Sequence[Spec], headline: bool) -> list[Group]:
    bundles = [s.bundle() for s in specs]
    encoded = [encode_bundle(b) for b in bundles]
    values = [cbor2.loads(d) for d in encoded]
    size = len(encoded[0])
    encoders = [Contender("dtncloud encode_bundle", encode_bundle, bundles)]
    if headline:
        encoders.append(
            Contender(
                "dtncloud Bundle.create+encode",
                _create_and_encode,
                [s.create_kwargs() for s in specs],
            )
        )
    if p7 is not None:
        encoders.append(
            Contender("pyd3tn serialize_bundle7", _serialize, [s.pyd3tn_kwargs() for s in specs])
        )
    encoders.append(Contender("cbor2.dumps (no CRC)", cbor2.dumps, values))
    path = " (exact path)" if size > FAST_PATH_LIMIT else ""
    decoders = [Contender(f"dtncloud decode_bundle{path}", decode_bundle, encoded)]
    if p7 is not None:
        decoders.append(Contender("pyd3tn Bundle.parse (no CRC)", p7.Bundle.parse, encoded))
    decoders.append(Contender("cbor2.loads", cbor2.loads, encoded))
    return [
        Group(scenario.key, "encode", scenario.title, size, encoders),
        Group(scenario.key, "decode", scenario.title, size, decoders),
    ]


def cold_group() -> Group:
    stream = ColdStream(KIB)
    decoders = [Contender("dtncloud decode_bundle", decode_bundle)]
    if p7 is not None:
        decoders.append(Contender("pyd3tn Bundle.parse (no CRC)", p7.Bundle.parse))
    decoders.append(Contender("cbor2.loads", cbor2.loads))
    size = len(stream.batch(1)[0])
    title = "1 KiB payload, CRC-32C, cold EIDs (a new source EID every bundle)"
    return Group("1k-cold", "decode", title, size, decoders, feed=stream.batch)


# -- report -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    operation: str
    fast: str
    slow: str
    minimum: float  # rate of ``fast`` over rate of ``slow``


# All three on the headline scenario (1 KiB payload, CRC-32C, EIDs shared by the stream).
TARGETS = (
    Target("encode", "dtncloud encode_bundle", "pyd3tn serialize_bundle7", 20.0),
    Target("decode", "dtncloud decode_bundle", "pyd3tn Bundle.parse (no CRC)", 2.0),
    Target("decode", "dtncloud decode_bundle", "cbor2.loads", 0.30),
)


def environment() -> dict[str, Any]:
    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "cpu model", "Processor"):
                cpu = value.strip()
                break
    except OSError:
        pass
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    cbor2_c = type(cbor2.loads).__name__ == "builtin_function_or_method"
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cbor2": version("cbor2") + (" (C extension)" if cbor2_c else " (pure Python)"),
        "pyd3tn": version("pyd3tn"),
        "dtncloud": version("dtncloud"),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "load_average": load,
    }


def print_group(group: Group, results: list[Result]) -> None:
    print(f"\n{group.operation} | {group.title} | {group.size:,} bytes a bundle")
    print(f"  {'contender':<42} {'ops/slot':>8} {'median us':>11} {'min us':>10} {'ops/s':>10}")
    for r in results:
        print(
            f"  {r.name:<42} {r.ops_per_slot:>8} {r.median_ns / 1e3:>11.2f} "
            f"{r.min_ns / 1e3:>10.2f} {1e9 / r.median_ns:>10,.0f}"
        )
    for note in group.skipped:
        print(f"  not timed: {note}")


def group_ratios(results: list[Result]) -> list[dict[str, Any]]:
    """Each dtncloud contender against each other library's contender."""
    records = []
    for fast in (r for r in results if r.name.startswith("dtncloud")):
        for slow in (r for r in results if not r.name.startswith("dtncloud")):
            ratios = sorted(paired_ratios(fast, slow))
            quarter = len(ratios) // 4
            records.append(
                {
                    "fast": fast.name,
                    "slow": slow.name,
                    "median": statistics.median(ratios),
                    "p25": ratios[quarter],
                    "p75": ratios[-1 - quarter],
                    "of_minimums": slow.min_ns / fast.min_ns,
                }
            )
    return records


def fmt_ratio(value: float, percent: bool) -> str:
    return f"{value * 100:.1f}%" if percent else f"{value:.1f}x"


def pair_name(record: dict[str, Any]) -> str:
    fast = "dtncloud+create" if "create" in record["fast"] else "dtncloud"
    return f"{fast}/{record['slow'].split()[0]}"


def report_targets(headline: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Print the target lines (PASS/FAIL; SKIP when a contender was not timed)."""
    print(f"\ntargets ({HEADLINE.title}, EIDs shared by the stream; rate of first over second)")
    outcome = []
    for target in TARGETS:
        record = next(
            (
                r
                for r in headline.get(target.operation, [])
                if (r["fast"], r["slow"]) == (target.fast, target.slow)
            ),
            None,
        )
        percent = target.minimum < 1
        goal = fmt_ratio(target.minimum, percent).replace(".0", "")
        pair = f"dtncloud/{target.slow.split()[0]}"
        if record is None:
            print(f"  {target.operation:<7} {pair:<22} =    n/a  (target >= {goal})  SKIP")
            outcome.append(
                {
                    "operation": target.operation,
                    "pair": pair,
                    "target": target.minimum,
                    "pass": None,
                }
            )
            continue
        ok = record["median"] >= target.minimum
        spread = f"[{fmt_ratio(record['p25'], percent)} - {fmt_ratio(record['p75'], percent)}]"
        print(
            f"  {target.operation:<7} {pair:<22} = {fmt_ratio(record['median'], percent):>6}  "
            f"(target >= {goal})  {'PASS' if ok else 'FAIL'}  rounds p25-p75 {spread}"
        )
        outcome.append(
            {
                **record,
                "operation": target.operation,
                "pair": pair,
                "target": target.minimum,
                "pass": ok,
            }
        )
    return outcome


def settings_from(args: argparse.Namespace) -> Settings:
    settings = (
        Settings(rounds=3, slot_ns=2_000_000, warmup_ns=4_000_000) if args.quick else Settings()
    )
    if args.rounds is not None:
        settings = Settings(max(1, args.rounds), settings.slot_ns, settings.warmup_ns)
    if args.slot_ms is not None:
        settings = Settings(
            settings.rounds, max(100_000, int(args.slot_ms * 1e6)), settings.warmup_ns
        )
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, help="interleaved rounds per group (default 25)")
    parser.add_argument("--slot-ms", type=float, help="time per contender per round (default 20)")
    parser.add_argument("--quick", action="store_true", help="a few short rounds (smoke test)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    args = parser.parse_args(argv)
    settings = settings_from(args)

    env = environment()
    print("dtncloud BPv7 codec benchmark")
    for key in ("python", "cbor2", "pyd3tn", "dtncloud"):
        print(f"  {key:<9} {env[key]}")
    print(
        f"  cpu       {env['cpu']} ({env['cpus']} logical CPUs, load average {env['load_average']})"
    )
    print(
        f"  method    {settings.rounds} rounds; contenders interleaved in rotating order, "
        f"~{settings.slot_ns / 1e6:g} ms each a round,\n"
        "            gc off while timing; per-op median and min over rounds"
    )

    checks = Checks()
    scenarios = [(HEADLINE, HEADLINE.specs())] + [(s, s.specs()) for s in INFORMATIONAL]
    for scenario, specs in scenarios:
        check_specs(checks, scenario.key, specs)
    cold = ColdStream(KIB)
    check_specs(checks, "1k-cold", [cold.spec() for _ in range(4)])
    if checks.problems:
        print(f"\nINCORRECT: {len(checks.problems)} of {checks.count} checks failed; nothing timed")
        for problem in checks.problems:
            print(f"  {problem}")
        return 1
    where = "dtncloud round trips, pyd3tn both ways" if p7 is not None else "dtncloud round trips"
    print(f"  checks    {checks.count} correctness checks passed ({where})")

    groups: list[Group] = []
    for scenario, specs in scenarios:
        groups.extend(groups_for(scenario, specs, headline=scenario is HEADLINE))
        if scenario is HEADLINE:
            groups.append(cold_group())
    report: dict[str, Any] = {
        "environment": env,
        "settings": {"rounds": settings.rounds, "slot_ns": settings.slot_ns, "quick": args.quick},
        "checks": checks.count,
        "correct": True,
        "groups": [],
    }
    headline: dict[str, list[dict[str, Any]]] = {}
    informational: list[tuple[Group, dict[str, Any]]] = []
    for group in groups:
        results = measure(group, settings)
        print_group(group, results)
        ratios = group_ratios(results)
        if group.key == HEADLINE.key:
            headline[group.operation] = ratios
        informational.extend((group, r) for r in ratios)
        report["groups"].append(
            {
                "scenario": group.key,
                "operation": group.operation,
                "title": group.title,
                "bundle_bytes": group.size,
                "not_timed": group.skipped,
                "contenders": [
                    {
                        "name": r.name,
                        "ops_per_slot": r.ops_per_slot,
                        "median_ns": r.median_ns,
                        "min_ns": r.min_ns,
                        "ops_per_s": 1e9 / r.median_ns,
                        "per_round_ns": r.per_op_ns,
                    }
                    for r in results
                ],
                "ratios": ratios,
            }
        )

    print(
        "\nall ratios (rate of first over second: median of the per-round ratios, their p25-p75,"
        "\n            and the ratio of the two minimums as a cross-check; no targets here)"
    )
    for group, record in informational:
        spread = f"[{record['p25']:.2f} - {record['p75']:.2f}]"
        print(
            f"  {group.operation:<7} {group.key:<9} {pair_name(record):<28} "
            f"= {record['median']:>6.2f}x  {spread:<18} mins {record['of_minimums']:.2f}x"
        )
    report["targets"] = report_targets(headline)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
