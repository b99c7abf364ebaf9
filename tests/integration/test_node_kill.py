"""Nothing acknowledged is lost: a receiving node killed with SIGKILL mid-stream restarts
with every bundle whose transfer it had acknowledged."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dtncloud.bpv7 import Bundle, encode_bundle
from dtncloud.cla.base import SendOnly
from dtncloud.cla.tcpcl import TcpclConvergenceLayer, TcpclOptions
from dtncloud.errors import TransportError
from dtncloud.runtime import wall_clock_ms
from dtncloud.store.sqlite import SqliteStore

REPO = Path(__file__).resolve().parents[2]
# creation times from now, so that the bundles are alive when they arrive
T0 = wall_clock_ms()


def start_receiver(store: Path) -> tuple[subprocess.Popen[str], int, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.node_process", str(store)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    words = proc.stdout.readline().split()
    assert words[0] == "PORT", words
    return proc, int(words[1]), int(words[3])


def bundle(i: int) -> bytes:
    size = 100 if i % 3 else 80_000  # some stored inline, some as files beside the database
    return encode_bundle(
        Bundle.create(
            source="dtn://s/app",
            destination="dtn://r/inbox",
            payload=bytes([i % 251]) * size,
            creation_time=T0 + i,
        )
    )


async def send_until_killed(
    port: int, proc: subprocess.Popen[str], kill_after: int
) -> dict[str, bytes]:
    """Send bundles with 8 in flight; SIGKILL the receiver once ``kill_after`` are
    acknowledged. Returns the acknowledged bundles by ID."""
    cla = TcpclConvergenceLayer(SendOnly(), TcpclOptions(node_id="dtn://s/"))
    await cla.start()
    link = await cla.connect(f"127.0.0.1:{port}")
    acked: dict[str, bytes] = {}
    killed = asyncio.Event()

    async def sender(first: int) -> None:
        i = first
        while not killed.is_set():
            data = bundle(i)
            try:
                await link.send(data)
            except TransportError:
                return
            acked[f"dtn://s/@{T0 + i}.0"] = data
            if len(acked) >= kill_after and not killed.is_set():
                proc.send_signal(signal.SIGKILL)
                killed.set()
            i += 8

    await asyncio.gather(*(sender(k) for k in range(8)))
    await cla.stop()
    return acked


@pytest.mark.parametrize("kill_after", [1, 37, 150])
def test_killed_receiver_keeps_every_acknowledged_bundle(tmp_path: Path, kill_after: int) -> None:
    store_dir = tmp_path / "r"
    proc, port, held = start_receiver(store_dir)
    assert held == 0
    try:
        acked = asyncio.run(asyncio.wait_for(send_until_killed(port, proc, kill_after), 60))
    finally:
        proc.kill()
        proc.wait()
    assert len(acked) >= kill_after

    async def check() -> int:
        async with SqliteStore(store_dir) as store:
            for bundle_id, data in acked.items():
                assert await store.get(bundle_id) == data
            return (await store.usage()).bundles

    stored = asyncio.run(check())
    # the restarted node indexes everything the store holds, acknowledged or not yet
    proc, _, held = start_receiver(store_dir)
    try:
        assert held == stored >= len(acked)
    finally:
        proc.kill()
        proc.wait()
    assert not list(store_dir.rglob("*.tmp"))
