"""TCPCLv4 over loopback: dtncloud's driver against a plain asyncio stream, in one run.

Three figures, each with the receiver in its own process (a fresh one per measurement):

* **bulk**: one 256 MiB bundle streamed from a file. The baseline is a plain asyncio stream
  that copies the same file's bytes between the same two kinds of process (the receiver
  discards them and answers one byte at the end). Target: dtncloud at no less than 50% of
  the baseline's throughput.
* **receiver RSS**: the peak resident set size of the receiving process during the bulk
  transfer (``ru_maxrss``). Target: under 200 MB. The receiver spools to a file in the
  system temporary directory.
* **against a plain stream into a file** (reported, no target): the same ratio against a plain
  asyncio receiver that writes what it reads to a file in the spool directory, as dtncloud's
  receiver must; it separates the protocol's cost from the cost of storing the bytes.
* **receiver CPU** (reported, no target): CPU seconds the receiving process spends on the
  transfer (all its threads, setup excluded), as a multiple of the plain receiver's. Unlike
  wall-clock throughput it hardly depends on what else the machine is doing.
* **many small**: 10,000 bundles of 1 KiB over one session, all offered at once (the link
  pipelines them) and each acknowledged. Target: no less than 10,000 bundles per second.

Rounds alternate baseline and dtncloud so that machine load affects both; the figure is the
median over rounds. Missed targets are reported, never raised.

Every process of the benchmark runs with glibc's malloc told to keep the memory it frees
(``GLIBC_TUNABLES``, set by re-running the script; ``--default-malloc`` leaves it as it is).
Otherwise whether the plain receiver hands its 256 KiB read buffers back to the kernel after
each read, and faults them in again for the next, depends on where earlier allocations
happened to fall in its heap (what the process imported, for one): in that mode it makes
~85,000 page faults per 256 MiB instead of ~6,000 and runs at a third of its speed, and the
ratio swings with it. dtncloud's receiver, which reads into buffers it keeps, is hardly
affected either way.

    python benchmarks/bench_tcpcl.py [--size-mib 256] [--count 10000] [--rounds 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    import dtncloud  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dtncloud.bpv7 import Bundle, encode_bundle
from dtncloud.cla.base import Link, ReceivedBundle, SendOnly
from dtncloud.cla.tcpcl import TcpclConvergenceLayer, TcpclOptions
from dtncloud.cla.tcpcl_link import WRITE_HIGH_WATER, WRITE_LOW_WATER

SEGMENT = 1 << 20
#: glibc malloc settings for every process of the benchmark: no returning of freed heap
#: memory to the kernel, and allocations up to 32 MiB from the heap (see the docstring).
STEADY_MALLOC = "glibc.malloc.trim_threshold=268435456:glibc.malloc.mmap_threshold=33554432"
DEFAULT_SPOOL_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
TRANSFER_MRU = 1 << 30


# --- the receiving process -----------------------------------------------------------------


class _Counter:
    def __init__(self, expected: int, done: asyncio.Event) -> None:
        self.expected = expected
        self.done = done
        self.count = 0
        self.bytes = 0

    def link_up(self, link: Link) -> None:
        pass

    def link_down(self, link: Link, reason: str) -> None:
        pass

    async def bundle_received(self, bundle: ReceivedBundle) -> None:
        self.count += 1
        self.bytes += bundle.length
        if self.count >= self.expected:
            self.done.set()


async def _receive_dtncloud(expected: int, spool: Path) -> float:
    done = asyncio.Event()
    counter = _Counter(expected, done)
    options = TcpclOptions(
        node_id="ipn:2.0", listen="127.0.0.1", port=0, segment_mru=SEGMENT,
        max_segment_size=SEGMENT, transfer_mru=TRANSFER_MRU, spool_dir=spool,
    )  # fmt: skip
    cla = TcpclConvergenceLayer(counter, options)
    await cla.start()
    print(f"PORT {cla.port}", flush=True)
    cpu_at_start = time.process_time()
    await done.wait()
    cpu = time.process_time() - cpu_at_start
    await asyncio.sleep(0)  # let the final acknowledgement go out before stopping
    await cla.stop()
    return cpu


async def _receive_plain(expected_bytes: int, sink: Path | None = None) -> float:
    """The baseline receiver: reads the bytes and drops them, or (``sink``) writes them to a
    file there, as a receiver that stores what it gets must."""
    finished = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        remaining = expected_bytes
        with open(sink / "plain.bin", "wb", buffering=0) if sink else open(os.devnull, "wb") as out:
            while remaining > 0:
                chunk = await reader.read(1 << 20)
                if not chunk:
                    break
                remaining -= len(chunk)
                if sink:
                    out.write(chunk)
        writer.write(b"k")
        await writer.drain()
        writer.close()
        finished.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, limit=1 << 20)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    cpu_at_start = time.process_time()
    await finished.wait()
    cpu = time.process_time() - cpu_at_start
    server.close()
    return cpu


def _pin(cpu: int) -> None:
    """Keep this process on one CPU (when there are two or more): with ``--pin``, the sender
    on one and every receiver on another, for every contender alike. Left to the scheduler
    (the default, as two programs normally run), the processes sometimes share a core and
    sometimes do not, which moves the plain stream's figure by up to a factor of 3."""
    with contextlib.suppress(AttributeError, OSError):
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) >= 2:
            os.sched_setaffinity(0, {cpus[cpu]})


def _steady_malloc() -> None:
    """Re-run this script with :data:`STEADY_MALLOC` (receivers inherit it), unless set."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if STEADY_MALLOC in tunables or not sys.platform.startswith("linux"):
        return
    environment = dict(os.environ, GLIBC_TUNABLES=f"{tunables}:{STEADY_MALLOC}".lstrip(":"))
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, *sys.argv], environment)


def receiver_main(args: argparse.Namespace) -> None:
    if args.pin:
        _pin(1)
    if args.receiver == "plain":
        cpu = asyncio.run(_receive_plain(args.expected_bytes))
    elif args.receiver == "plain-file":
        with tempfile.TemporaryDirectory(prefix="bench-plain-", dir=args.spool_dir) as sink:
            cpu = asyncio.run(_receive_plain(args.expected_bytes, Path(sink)))
    else:
        with tempfile.TemporaryDirectory(prefix="bench-spool-", dir=args.spool_dir) as spool:
            cpu = asyncio.run(_receive_dtncloud(args.expected, Path(spool)))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps({"maxrss_mb": usage.ru_maxrss / 1024, "cpu_s": cpu, "minflt": usage.ru_minflt}),
        flush=True,
    )


# --- the sending side (this process) -------------------------------------------------------


class _Receiver:
    """A receiver subprocess; its port is read from its first line."""

    def __init__(self, *arguments: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, *arguments], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"receiver failed to start: {line!r}")
        self.port = int(line.split()[1])

    def result(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        out = self.process.stdout.read()
        self.process.wait(timeout=60)
        return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _sender_cla() -> TcpclConvergenceLayer:
    options = TcpclOptions(
        node_id="ipn:1.0", segment_mru=SEGMENT, max_segment_size=SEGMENT, transfer_mru=TRANSFER_MRU
    )
    return TcpclConvergenceLayer(SendOnly(), options)


async def _send_file_dtncloud(port: int, path: Path) -> float:
    cla = _sender_cla()
    await cla.start()
    link = await cla.connect(f"127.0.0.1:{port}")
    started = time.perf_counter()
    await link.send(path)
    elapsed = time.perf_counter() - started
    await link.close()
    await cla.stop()
    return elapsed


async def _send_file_plain(port: int, path: Path) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    # The same write buffer limits as the TCPCL link, so both sides of the ratio pipeline alike.
    writer.transport.set_write_buffer_limits(WRITE_HIGH_WATER, WRITE_LOW_WATER)
    started = time.perf_counter()
    with open(path, "rb") as source:
        while chunk := source.read(SEGMENT):
            writer.write(chunk)
            if writer.transport.get_write_buffer_size() > WRITE_LOW_WATER:
                await writer.drain()
    await reader.readexactly(1)
    elapsed = time.perf_counter() - started
    writer.close()
    return elapsed


async def _send_many_dtncloud(port: int, bundles: list[bytes]) -> float:
    cla = _sender_cla()
    await cla.start()
    link = await cla.connect(f"127.0.0.1:{port}")
    started = time.perf_counter()
    await asyncio.gather(*(link.send(data) for data in bundles))
    elapsed = time.perf_counter() - started
    await link.close()
    await cla.stop()
    return elapsed


def _store_seconds(size: int, spool_dir: str) -> float:
    """How long writing ``size`` bytes into a new file in ``spool_dir`` takes on its own, in
    1 MiB writes: the least any receiver that keeps the bytes must spend beyond reading them
    (on tmpfs it is mostly the kernel finding pages for the file, not copying)."""
    block = bytes(SEGMENT)
    with tempfile.NamedTemporaryFile(dir=spool_dir, buffering=0) as out:
        started = time.perf_counter()
        for _ in range(size // SEGMENT):
            out.write(block)
        return time.perf_counter() - started


def _bulk(path: Path, size: int, rounds: int, spool_dir: str, pinned: bool) -> dict[str, Any]:
    ratios, ours_rates, plain_rates, rss, cpu_ratios = [], [], [], [], []
    file_ratios, plain_faults, ceilings = [], [], []
    for _ in range(rounds):
        pin = ("--pin",) if pinned else ()
        plain = _Receiver("--receiver", "plain", "--expected-bytes", str(size), *pin)
        plain_s = asyncio.run(_send_file_plain(plain.port, path))
        plain_result = plain.result()
        plain_cpu = plain_result["cpu_s"]
        plain_faults.append(plain_result["minflt"])
        to_file = _Receiver(
            "--receiver",
            "plain-file",
            "--expected-bytes",
            str(size),
            "--spool-dir",
            spool_dir,
            *pin,
        )
        to_file_s = asyncio.run(_send_file_plain(to_file.port, path))
        to_file.result()
        ours = _Receiver(
            "--receiver", "dtncloud", "--expected", "1", "--spool-dir", spool_dir, *pin
        )
        ours_s = asyncio.run(_send_file_dtncloud(ours.port, path))
        ours_result = ours.result()
        rss.append(ours_result["maxrss_mb"])
        cpu_ratios.append(ours_result["cpu_s"] / max(plain_cpu, 1e-6))
        plain_rates.append(size / plain_s / 1e6)
        ours_rates.append(size / ours_s / 1e6)
        ratios.append(plain_s / ours_s)
        file_ratios.append(to_file_s / ours_s)
        # The ratio a receiver would reach if storing could not overlap reading at all.
        ceilings.append(plain_s / (plain_s + _store_seconds(size, spool_dir)))
        print(
            f"  round: plain {plain_rates[-1]:8.0f} MB/s   dtncloud {ours_rates[-1]:8.0f} MB/s"
            f"   ratio {ratios[-1]:.2f} (vs plain into a file {file_ratios[-1]:.2f})"
            f"   receiver peak RSS {rss[-1]:.0f} MB"
            f"   receiver CPU x{cpu_ratios[-1]:.1f} of plain"
            f"   (read-then-store ceiling {ceilings[-1]:.2f})",
            flush=True,
        )
    return {
        "plain_mb_s": statistics.median(plain_rates),
        "dtncloud_mb_s": statistics.median(ours_rates),
        "ratio": statistics.median(ratios),
        "receiver_peak_rss_mb": max(rss),
        "receiver_cpu_ratio": statistics.median(cpu_ratios),
        "ratio_vs_plain_into_file": statistics.median(file_ratios),
        "plain_receiver_page_faults": statistics.median(plain_faults),
        "read_then_store_ceiling": statistics.median(ceilings),
    }


def _many(count: int, rounds: int) -> dict[str, Any]:
    bundles = [
        encode_bundle(
            Bundle.create(source="ipn:1.1", destination="ipn:2.1", payload=os.urandom(1024 - 40),
                          creation_time=1, sequence=i)
        )
        for i in range(count)
    ]  # fmt: skip
    rates = []
    for _ in range(rounds):
        receiver = _Receiver("--receiver", "dtncloud", "--expected", str(count))
        elapsed = asyncio.run(_send_many_dtncloud(receiver.port, bundles))
        receiver.result()
        rates.append(count / elapsed)
        print(f"  round: {rates[-1]:8.0f} bundles/s ({len(bundles[0])} bytes each)", flush=True)
    return {"bundles_per_s": statistics.median(rates), "bundle_bytes": len(bundles[0])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--pin", action="store_true", help="sender on one CPU, receivers on another"
    )
    parser.add_argument(
        "--default-malloc",
        action="store_true",
        help="leave glibc's malloc as it is (the plain receiver's speed then depends on its "
        "heap layout; see the module docstring)",
    )
    parser.add_argument(
        "--receiver", choices=["plain", "plain-file", "dtncloud"], help=argparse.SUPPRESS
    )
    parser.add_argument("--expected", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--expected-bytes", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--spool-dir",
        default=DEFAULT_SPOOL_DIR,
        help="where the receiver spools the large bundle (default: %(default)s, memory-backed "
        "where available, so the figure measures the convergence layer and not the disk)",
    )
    args = parser.parse_args()
    if args.receiver:
        receiver_main(args)
        return 0
    if not args.default_malloc:
        _steady_malloc()  # returns only if it is already in place

    if args.pin:
        _pin(0)
    size = args.size_mib << 20
    with tempfile.TemporaryDirectory(prefix="bench-tcpcl-") as tmp:
        path = Path(tmp) / "big.bundle"
        with open(path, "wb") as out:
            block = os.urandom(1 << 20)
            for _ in range(args.size_mib):
                out.write(block)
        print(f"bulk: one {args.size_mib} MiB bundle, {args.rounds} rounds", flush=True)
        malloc = "glibc default" if args.default_malloc else "freed memory kept"
        print(f"  (receiver spools to {args.spool_dir}; malloc: {malloc})", flush=True)
        bulk = _bulk(path, size, args.rounds, args.spool_dir, args.pin)
    print(f"many small: {args.count} bundles of 1 KiB, {args.rounds} rounds", flush=True)
    many = _many(args.count, args.rounds)

    results = {"bulk": bulk, "many": many}
    checks = [
        ("bulk throughput >= 50% of a plain asyncio stream", bulk["ratio"] >= 0.5,
         f"{bulk['ratio'] * 100:.0f}% ({bulk['dtncloud_mb_s']:.0f} vs {bulk['plain_mb_s']:.0f} MB/s)"),
        ("receiver peak RSS < 200 MB", bulk["receiver_peak_rss_mb"] < 200,
         f"{bulk['receiver_peak_rss_mb']:.0f} MB"),
        ("10,000 x 1 KiB at >= 10,000 bundles/s", many["bundles_per_s"] >= 10_000,
         f"{many['bundles_per_s']:.0f} bundles/s"),
    ]  # fmt: skip
    print()
    for name, ok, figure in checks:
        print(f"{'met ' if ok else 'MISSED'}  {name}: {figure}")
    print(
        f"info  bulk against a plain stream into a file: {bulk['ratio_vs_plain_into_file'] * 100:.0f}%;"
        f" receiver CPU {bulk['receiver_cpu_ratio']:.1f}x the plain receiver's;"
        f" plain receiver page faults {bulk['plain_receiver_page_faults']:.0f}"
    )
    print(
        f"info  a receiver that stores the bytes after reading them, with no overlap, reaches"
        f" {bulk['read_then_store_ceiling'] * 100:.0f}% of the plain stream here"
        f" (storing the same bytes in the spool directory alone is timed each round)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
