"""The process that tests/integration/test_store_crash.py kills: it stores bundles until then.

Usage: ``python store_crash_child.py FOLDER FIRST``. Bundles are numbered from FIRST; their
size and bytes follow from the number (:func:`bundle`), so the test can check them. Puts run
in groups of 1 to 8 at a time (so the store commits them in groups), about one in ten is
larger than the inline threshold (a payload file), and now and then an earlier bundle is
deleted. A line goes to stdout only once the call has returned: ``+ID`` after a put, ``-ID``
after a delete; ``~ID`` says that a delete is about to start (killed before it returns, it may
or may not have happened).
"""

from __future__ import annotations

import asyncio
import sys

from dtncloud.store.base import BundleMeta
from dtncloud.store.sqlite import SqliteStore

INLINE_THRESHOLD = 4096


def bundle(n: int) -> tuple[BundleMeta, bytes]:
    size = (70_000 + n * 13) if n % 10 == 3 else (n * 37) % 3000
    shift = n % 256
    data = (bytes(range(256)) * (size // 256 + 2))[shift : shift + size]
    meta = BundleMeta(
        bundle_id=f"ipn:7.1-{n}-0",
        source="ipn:7.1",
        destination="ipn:8.1",
        creation_time=n,
        sequence=0,
        expires_at=10**9,
        size=size,
        received_at=n,
        routing=n.to_bytes(4, "big"),
    )
    return meta, data


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(folder: str, first: int) -> None:
    store = SqliteStore(folder, inline_threshold=INLINE_THRESHOLD)
    await store.open()

    async def put(n: int) -> None:
        meta, data = bundle(n)
        await store.put(meta, data)
        say(f"+{meta.bundle_id}")

    async def delete(n: int) -> None:
        meta, _ = bundle(n)
        say(f"~{meta.bundle_id}")
        if await store.delete(meta.bundle_id):
            say(f"-{meta.bundle_id}")

    n = first
    while True:
        width = 1 + n % 8
        calls = [put(i) for i in range(n, n + width)]
        if n % 5 == 0 and n - 3 >= first:
            calls.append(delete(n - 3))
        await asyncio.gather(*calls)
        n += width


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
