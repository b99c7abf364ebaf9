"""SqliteStore survives SIGKILL: what a call confirmed is there after a restart, and no debris.

A child process (store_crash_child.py) stores bundles, some concurrently, some in payload
files, deleting a few, and prints each bundle ID once its call has returned. The test reads a
number of those lines, kills the child with SIGKILL wherever it happens to be (mid file
write, mid commit, between commit and unlink...), reopens the store and checks it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dtncloud.errors import BundleNotFound
from dtncloud.store.sqlite import DATABASE_NAME, SqliteStore
from tests.integration.store_crash_child import bundle

pytestmark = pytest.mark.timeout(180)

CHILD = Path(__file__).with_name("store_crash_child.py")
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Confirmed:
    """What the child said (including lines written before the kill landed)."""

    stored: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    #: deletes started: the bundle may be gone even if the delete was not confirmed
    deleting: set[str] = field(default_factory=set)

    def __ior__(self, other: Confirmed) -> Confirmed:
        self.stored |= other.stored
        self.deleted |= other.deleted
        self.deleting |= other.deleting
        return self


def crash(folder: Path, first: int, lines: int) -> Confirmed:
    """Run the child until it has written ``lines`` lines, then SIGKILL it."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(folder), str(first)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert child.stdout is not None
    output: list[str] = []
    try:
        while len(output) < lines:
            line = child.stdout.readline()
            if not line:
                stderr = child.stderr.read() if child.stderr else ""
                raise AssertionError(f"the child ended early:\n{stderr}")
            output.append(line)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    output.extend(child.stdout.read().splitlines())
    child.stdout.close()
    if child.stderr:
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    said = [(line[:1], line.strip()[1:]) for line in output]
    return Confirmed(
        stored={i for kind, i in said if kind == "+"},
        deleted={i for kind, i in said if kind == "-"},
        deleting={i for kind, i in said if kind == "~"},
    )


def number(bundle_id: str) -> int:
    return int(bundle_id.split("-")[1])


async def check(folder: Path, said: Confirmed) -> None:
    """Reopen the store and check it against what the child confirmed."""
    store = SqliteStore(folder)
    async with store:
        for bundle_id in said.stored - said.deleting:
            meta, data = bundle(number(bundle_id))
            assert await store.get_meta(bundle_id) == meta
            assert await store.get(bundle_id) == data
        for bundle_id in said.deleted:
            with pytest.raises(BundleNotFound):
                await store.get_meta(bundle_id)
        # Whatever else is there (puts that committed just before the kill) is whole too.
        count = 0
        total = 0
        async for meta in store.scan():
            assert await store.get(meta.bundle_id) == bundle(number(meta.bundle_id))[1]
            count += 1
            total += meta.size
        usage = await store.usage()
        assert (usage.bundles, usage.bytes) == (count, total)
        assert store.recovery is not None
        assert store.recovery.dropped == ()
    # No temporary or orphan payload file is left: the files are exactly the rows' files.
    on_disk = {
        str(p.relative_to(folder / "bundles"))
        for p in (folder / "bundles").rglob("*")
        if p.is_file()
    }
    with sqlite3.connect(folder / DATABASE_NAME) as conn:
        named = {r[0] for r in conn.execute("SELECT file FROM bundles WHERE file IS NOT NULL")}
    conn.close()
    assert on_disk == named
    # And the store is usable.
    async with SqliteStore(folder) as store:
        meta, data = bundle(10_000_003)
        await store.put(meta, data)
        assert await store.get(meta.bundle_id) == data
        assert await store.delete(meta.bundle_id)


@pytest.mark.parametrize("lines", [1, 40, 300])
def test_a_killed_store_keeps_every_confirmed_call(tmp_path: Path, lines: int) -> None:
    said = crash(tmp_path, 0, lines)
    assert said.stored
    asyncio.run(check(tmp_path, said))


def test_a_store_killed_again_and_again_recovers_each_time(tmp_path: Path) -> None:
    said = Confirmed()
    first = 0
    for lines in (150, 7, 60, 220):
        said |= crash(tmp_path, first, lines)
        asyncio.run(check(tmp_path, said))
        # The next run starts past every number this one may have used.
        first = max(number(i) for i in said.stored) + 100
