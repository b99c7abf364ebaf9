"""SqliteStore against MemoryStore: random sequences of calls, both must agree.

Hypothesis drives a small pool of bundle IDs (so that duplicates, deletes of missing bundles
and updates of deleted ones come up often), sizes on both sides of the inline threshold and a
quota that fills up. After every call the two stores must return the same value or raise the
same exception type; usage and scanned contents must match too, also across restarts (close,
then a new SqliteStore over the folder and a new MemoryStore over the same core).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from dtncloud.store import MemoryStore, MemoryStoreCore
from dtncloud.store.base import BundleMeta, Retention, Store
from dtncloud.store.sqlite import SqliteStore

pytestmark = pytest.mark.timeout(300)

QUOTA = 2_000
THRESHOLD = 64  # payloads above it go to files

ids = st.integers(min_value=0, max_value=7)
sizes = st.sampled_from([0, 1, 17, THRESHOLD, THRESHOLD + 1, 300, 700])
retentions = st.sampled_from(list(Retention)) | st.integers(0, 15).map(Retention)
keys = st.sampled_from(["sequence", "custody-id", ""])


def bundle_meta(n: int, size: int) -> BundleMeta:
    return BundleMeta(
        bundle_id=f"ipn:{n}.1-5-{n}",
        source=f"ipn:{n}.1",
        destination="ipn:9.1",
        creation_time=5,
        sequence=n,
        expires_at=1_000_000,
        size=size,
        received_at=7,
    )


def payload(n: int, size: int, salt: int) -> bytes:
    return bytes((n * 7 + salt + i) % 256 for i in range(size))


Outcome = tuple[str, Any]


async def outcome(call: Awaitable[Any]) -> Outcome:
    try:
        return ("ok", await call)
    except Exception as exc:  # compared by type: the two stores word messages differently
        return ("raised", type(exc))


class StoresAgree(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="dtncloud-store-sm-"))
        self.memory = MemoryStore(MemoryStoreCore(quota_bytes=QUOTA))
        self.sqlite = self._new_sqlite()
        self.run(self.memory.open())
        self.run(self.sqlite.open())

    def _new_sqlite(self) -> SqliteStore:
        return SqliteStore(self.folder, quota_bytes=QUOTA, inline_threshold=THRESHOLD)

    def run(self, call: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(call, 30))

    def both(self, call: Callable[[Store], Awaitable[Any]]) -> Outcome:
        expected = self.run(outcome(call(self.memory)))
        got = self.run(outcome(call(self.sqlite)))
        assert got == expected
        return got

    # -- rules --------------------------------------------------------------------------------

    @rule(n=ids, size=sizes, salt=st.integers(0, 255))
    def put(self, n: int, size: int, salt: int) -> None:
        self.both(lambda s: s.put(bundle_meta(n, size), payload(n, size, salt)))

    @rule(bundles=st.lists(st.tuples(ids, sizes), min_size=2, max_size=6, unique_by=lambda t: t[0]))
    def put_concurrently(self, bundles: list[tuple[int, int]]) -> None:
        # Distinct IDs: concurrent calls on one ID have no promised order. Each store gets the
        # same calls started in the same order, so the quota decides the same way.
        async def puts(store: Store) -> list[Outcome]:
            calls = [outcome(store.put(bundle_meta(n, z), payload(n, z, 1))) for n, z in bundles]
            return list(await asyncio.gather(*calls))

        self.both(puts)

    @rule(
        n=ids,
        retention=retentions,
        routing=st.binary(max_size=8),
        expires_at=st.integers(0, 2**64 - 1),
        grow=st.sampled_from([0, 0, 0, 1]),
    )
    def update(
        self, n: int, retention: Retention, routing: bytes, expires_at: int, grow: int
    ) -> None:
        async def update(store: Store) -> None:
            try:
                current = await store.get_meta(bundle_meta(n, 0).bundle_id)
            except Exception:
                current = bundle_meta(n, 0)  # update of a missing bundle
            changed = replace(
                current,
                retention=retention,
                routing=routing,
                expires_at=expires_at,
                size=current.size + grow,
            )
            await store.update(changed)

        self.both(update)

    @rule(n=ids)
    def delete(self, n: int) -> None:
        self.both(lambda s: s.delete(bundle_meta(n, 0).bundle_id))

    @rule(n=ids)
    def get(self, n: int) -> None:
        self.both(lambda s: s.get(bundle_meta(n, 0).bundle_id))
        self.both(lambda s: s.get_meta(bundle_meta(n, 0).bundle_id))

    @rule(key=keys, value=st.binary(max_size=20))
    def set_state(self, key: str, value: bytes) -> None:
        self.both(lambda s: s.set_state(key, value))

    @rule(key=keys)
    def get_state(self, key: str) -> None:
        self.both(lambda s: s.get_state(key))

    @rule()
    def restart(self) -> None:
        self.run(self.memory.close())
        self.run(self.sqlite.close())
        self.memory = MemoryStore(self.memory.core)
        self.sqlite = self._new_sqlite()
        self.run(self.memory.open())
        self.run(self.sqlite.open())
        # Nothing to clean up after an orderly close: no payload file leaked, none lost.
        assert self.sqlite.recovery is not None and self.sqlite.recovery.clean
        files = [p for p in (self.folder / "bundles").rglob("*") if p.is_file()]
        assert len(files) == sum(1 for m in self.memory.core.scan() if m.size > THRESHOLD)

    @rule()
    def scan(self) -> None:
        async def contents(store: Store) -> dict[str, BundleMeta]:
            return {m.bundle_id: m async for m in store.scan()}

        self.both(contents)

    @invariant()
    def usage_agrees(self) -> None:
        self.both(lambda s: s.usage())

    def teardown(self) -> None:
        try:
            self.run(self.memory.close())
            self.run(self.sqlite.close())
        finally:
            self.loop.close()
            shutil.rmtree(self.folder, ignore_errors=True)


StoresAgree.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestStoresAgree = StoresAgree.TestCase
