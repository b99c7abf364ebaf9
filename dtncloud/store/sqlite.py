"""The durable store: SQLite (through aiosqlite) in WAL mode, large bundles as files beside it.

On disk, ``SqliteStore(path)`` owns the folder ``path`` (created if needed)::

    path/store.sqlite3       metadata of every bundle, small bundles inline, node state
    path/store.sqlite3-wal   SQLite's write-ahead log (and -shm, its index)
    path/bundles/xx/...      one file per bundle larger than ``inline_threshold``
    path/lock                held (flock) while a SqliteStore has the folder open

Writes go through one writer task that commits them in groups (see
:mod:`dtncloud.store._writer`); reads use a second connection, which in WAL mode sees every
commit made before the read starts and never waits for the writer. docs/store.md is the
operator's guide: durability, quota, recovery after a crash.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite

from dtncloud.errors import BundleNotFound, StoreCorrupt, StoreError, StoreFull
from dtncloud.store._check import check_meta, check_put, check_state
from dtncloud.store._files import PayloadFiles, lock_folder, unlock_folder
from dtncloud.store._recovery import RecoveryReport, recover
from dtncloud.store._schema import (
    APPLICATION_ID,
    CREATE_SCHEMA,
    META_COLUMNS,
    SCHEMA_VERSION,
    meta_from_row,
    meta_to_row,
)
from dtncloud.store._writer import (
    Counters,
    DeleteOp,
    Op,
    PutOp,
    SetStateOp,
    UpdateOp,
    Writer,
    translate,
)
from dtncloud.store.base import BundleMeta, StoreContext, StoreUsage

__all__ = ["DATABASE_NAME", "RecoveryReport", "SqliteStore"]

log = logging.getLogger("dtncloud.store")

DATABASE_NAME = "store.sqlite3"
#: rows fetched per query by scan(): bounds its memory, whatever the store holds
SCAN_PAGE = 500
_SELECT_META = f"SELECT {', '.join(META_COLUMNS)} FROM bundles"


class SqliteStore(StoreContext):
    """A :class:`~dtncloud.store.base.Store` in the folder ``path``.

    ``quota_bytes`` caps the sum of stored bundle sizes (None: no cap); ``put`` raises
    :class:`~dtncloud.errors.StoreFull` beyond it. Bundles of at most ``inline_threshold``
    bytes are kept in the database, larger ones in files. ``durable=True`` (the default)
    makes every write survive a power cut once its call returns (``synchronous=FULL`` and
    fsynced payload files); ``durable=False`` survives a crash of the process only.

    Use ``async with SqliteStore(path) as store:`` or ``open()``/``close()``. After
    ``open()``, :attr:`recovery` says what was cleaned up after a previous crash.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        quota_bytes: int | None = None,
        inline_threshold: int = 65536,
        durable: bool = True,
    ) -> None:
        if quota_bytes is not None and quota_bytes < 0:
            raise ValueError(f"quota_bytes must be None or >= 0, got {quota_bytes}")
        if inline_threshold < 0:
            raise ValueError(f"inline_threshold must be >= 0, got {inline_threshold}")
        self.directory = Path(path)
        self.database = self.directory / DATABASE_NAME
        self.quota_bytes = quota_bytes
        self.inline_threshold = inline_threshold
        self.durable = durable
        #: what the last open() cleaned up; None before the first open
        self.recovery: RecoveryReport | None = None
        self._where = str(self.database)
        self._files = PayloadFiles(self.directory / "bundles", durable=durable)
        self._write: aiosqlite.Connection | None = None
        self._read: aiosqlite.Connection | None = None
        self._writer: Writer | None = None
        self._counters = Counters(0, 0)
        self._quota_gate = asyncio.Lock()
        self._preparing = 0
        self._prepared = asyncio.Event()
        self._file_writes: set[asyncio.Future[None]] = set()
        self._lock_fd: int | None = None

    # -- opening and closing ------------------------------------------------------------------

    async def open(self) -> None:
        if self._writer is not None:
            raise StoreError(f"{self._where}: the store is already open")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.directory}: cannot create the store: {exc.strerror}") from None
        lock_fd = lock_folder(self.directory)
        write = read = None
        try:
            write = await _connect(self.database)
            await self._configure(write)
            await self._check_schema(write)
            await asyncio.to_thread(self._files.create_root)
            self.recovery = await recover(write, self._files, self._where)
            rows = await write.execute_fetchall(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM bundles"
            )
            (bundles, total) = next(iter(rows))
            read = await _connect(self.database)
            await read.execute("PRAGMA query_only = ON")
            await read.execute("PRAGMA busy_timeout = 10000")
        except BaseException as exc:
            for conn in (read, write):
                if conn is not None:
                    await _close_quietly(conn)
            unlock_folder(lock_fd)
            if isinstance(exc, sqlite3.Error | OSError):
                raise _io_error(exc, self._where) from None
            raise
        self._write, self._read, self._lock_fd = write, read, lock_fd
        self._counters = Counters(bundles, total)
        self._quota_gate = asyncio.Lock()
        self._prepared = asyncio.Event()
        self._prepared.set()
        self._writer = Writer(write, self._files, self._counters, self._where)
        self._writer.start()

    async def _configure(self, conn: aiosqlite.Connection) -> None:
        # The first statement reads the file header: a file that is not a database fails here.
        mode = await conn.execute_fetchall("PRAGMA journal_mode = WAL")
        if str(next(iter(mode))[0]).lower() != "wal":
            raise StoreError(f"{self._where}: SQLite cannot use WAL mode for this file")
        await conn.execute(f"PRAGMA synchronous = {'FULL' if self.durable else 'NORMAL'}")
        await conn.execute("PRAGMA busy_timeout = 10000")

    async def _check_schema(self, conn: aiosqlite.Connection) -> None:
        version = next(iter(await conn.execute_fetchall("PRAGMA user_version")))[0]
        app = next(iter(await conn.execute_fetchall("PRAGMA application_id")))[0]
        if version == 0:
            if list(await conn.execute_fetchall("SELECT name FROM sqlite_master")):
                raise StoreCorrupt(f"{self._where}: an SQLite database, but not a dtncloud store")
            # One transaction: a crash leaves an empty file (created again) or the schema.
            await conn.executescript(f"BEGIN IMMEDIATE; {CREATE_SCHEMA} COMMIT;")
        elif app != APPLICATION_ID:
            raise StoreCorrupt(f"{self._where}: an SQLite database, but not a dtncloud store")
        elif version != SCHEMA_VERSION:
            raise StoreCorrupt(
                f"{self._where}: store schema version {version}; this dtncloud reads version "
                f"{SCHEMA_VERSION} only"
            )

    async def close(self) -> None:
        """Finish every write already started, then close. Closing a closed store is a no-op."""
        writer, self._writer = self._writer, None  # from here on, new calls are refused
        if writer is None:
            return
        try:
            # Puts still writing their file reach the writer (or fail) before it stops, and
            # the file threads of cancelled puts end: nothing touches the folder after close.
            await self._prepared.wait()
            if self._file_writes:
                await asyncio.wait(set(self._file_writes))
            await writer.stop()
        finally:
            for conn in (self._read, self._write):
                if conn is not None:
                    await _close_quietly(conn)
            self._read = self._write = None
            unlock_folder(self._lock_fd)
            self._lock_fd = None

    # -- writes: through the writer task ---------------------------------------------------

    async def put(self, meta: BundleMeta, data: bytes) -> None:
        data = check_put(meta, data)
        writer = self._open_writer()
        # Counted until it reaches the writer (or fails), so that close() can wait for it.
        self._preparing += 1
        self._prepared.clear()
        try:
            future = await self._prepare_put(writer, meta, data)
        finally:
            self._preparing -= 1
            if not self._preparing:
                self._prepared.set()
        await future

    async def _prepare_put(
        self, writer: Writer, meta: BundleMeta, data: bytes
    ) -> asyncio.Future[Any]:
        """Reserve room, write the payload file if the bundle gets one, queue the row."""
        counters = await self._reserve(meta)
        size = meta.size
        file: str | None = None
        future: asyncio.Future[Any] | None = None
        try:
            if size > self.inline_threshold:
                # Do not write a large file only to have the writer refuse it.
                if await self._exists(meta.bundle_id):
                    raise _duplicate(meta.bundle_id)
                file = PayloadFiles.new_name(meta.bundle_id)
                await self._write_file(file, data)
            op = PutOp(meta.bundle_id, meta_to_row(meta), size, file, None if file else data)
            future = writer.submit(op)
        finally:
            if future is None:  # never reached the writer, which would otherwise settle it
                counters.release(size)
                if file is not None and not _cancelled():
                    await asyncio.to_thread(self._files.remove, [file])
        return future

    async def _reserve(self, meta: BundleMeta) -> Counters:
        """Reserve ``meta.size`` bytes of the quota for a put, or raise StoreFull.

        The common case decides at once, before any await, so that concurrent puts cannot
        overrun the quota together. Near the quota, a put that fits only if some put in flight
        gives its reservation back (a duplicate, a failure) waits, in line, for those to
        settle: the outcome is then the one the calls would have had one at a time, in the
        order they were made.
        """
        counters, quota, size = self._counters, self.quota_bytes, meta.size
        gate = self._quota_gate
        if quota is None or (
            not gate.locked() and counters.bytes + counters.reserved + size <= quota
        ):
            counters.reserved += size
            return counters
        async with gate:
            while counters.bytes + counters.reserved + size > quota:
                if counters.reserved == 0:
                    if await self._exists(meta.bundle_id):
                        raise _duplicate(meta.bundle_id)
                    raise StoreFull(
                        f"store full: bundle {meta.bundle_id} ({size} bytes) does not fit, "
                        f"{counters.bytes} of {quota} bytes in use"
                    )
                counters.released.clear()
                await counters.released.wait()
                self._open_writer()  # closed meanwhile?
            counters.reserved += size
            return counters

    async def _write_file(self, name: str, data: bytes) -> None:
        task = asyncio.get_running_loop().run_in_executor(None, self._files.write, name, data)
        self._file_writes.add(task)
        task.add_done_callback(self._file_writes.discard)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            # The thread cannot be stopped: remove the file once it has been written.
            task.add_done_callback(lambda _: self._files.remove([name]))
            raise
        except OSError as exc:
            raise _io_error(exc, str(self._files.path(name))) from None

    async def update(self, meta: BundleMeta) -> None:
        check_meta(meta)
        await self._submit(UpdateOp(meta, meta_to_row(meta)))

    async def delete(self, bundle_id: str) -> bool:
        return bool(await self._submit(DeleteOp(bundle_id)))

    async def set_state(self, key: str, value: bytes) -> None:
        check_state(key, value)
        await self._submit(SetStateOp(key, value))

    async def _submit(self, op: Op) -> Any:
        return await self._open_writer().submit(op)

    def _open_writer(self) -> Writer:
        if self._writer is None:
            raise StoreError(f"{self._where}: the store is not open")
        return self._writer

    # -- reads: on their own connection -----------------------------------------------------

    async def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        if self._read is None:
            raise StoreError(f"{self._where}: the store is not open")
        try:
            return list(await self._read.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise translate(exc, self._where) from None
        except ValueError:  # aiosqlite: the connection was closed under us
            raise StoreError(f"{self._where}: the store was closed") from None

    async def _exists(self, bundle_id: str) -> bool:
        return bool(await self._query("SELECT 1 FROM bundles WHERE bundle_id = ?", (bundle_id,)))

    async def get(self, bundle_id: str) -> bytes:
        sql = "SELECT size, file, data FROM bundles WHERE bundle_id = ?"
        rows = await self._query(sql, (bundle_id,))
        while rows:
            size, file, data = rows[0]
            if file is not None:
                try:
                    data = await asyncio.to_thread(self._files.read, file)
                except FileNotFoundError:
                    # Deleted (or deleted and stored again) since the row was read? Look again.
                    again = await self._query(sql, (bundle_id,))
                    if again and again[0][1] == file:
                        raise StoreCorrupt(
                            f"{self._where}: the payload file of {bundle_id} "
                            f"({self._files.path(file)}) is missing"
                        ) from None
                    rows = again
                    continue
                except OSError as exc:
                    raise _io_error(exc, str(self._files.path(file))) from None
            if len(data) != size:
                raise StoreCorrupt(
                    f"{self._where}: bundle {bundle_id} has {len(data)} bytes, not {size}"
                )
            return bytes(data)
        raise BundleNotFound(f"bundle {bundle_id} is not stored")

    async def get_meta(self, bundle_id: str) -> BundleMeta:
        rows = await self._query(f"{_SELECT_META} WHERE bundle_id = ?", (bundle_id,))
        if not rows:
            raise BundleNotFound(f"bundle {bundle_id} is not stored")
        return meta_from_row(rows[0])

    async def scan(self) -> AsyncIterator[BundleMeta]:
        """Every bundle's metadata, SCAN_PAGE rows per query (keyset paging on the rowid).

        Between pages no statement stays open, so reads and writes go on while a caller
        iterates slowly. A bundle stored for the whole scan is yielded exactly once; one put or
        deleted meanwhile may or may not be.
        """
        sql = f"SELECT pk, {', '.join(META_COLUMNS)} FROM bundles WHERE pk > ? ORDER BY pk LIMIT ?"
        last = -1
        while True:
            rows = await self._query(sql, (last, SCAN_PAGE))
            for row in rows:
                yield meta_from_row(row[1:])
            if len(rows) < SCAN_PAGE:
                return
            last = rows[-1][0]

    async def usage(self) -> StoreUsage:
        self._open_writer()
        counters = self._counters
        return StoreUsage(counters.bundles, counters.bytes, self.quota_bytes)

    async def get_state(self, key: str) -> bytes | None:
        rows = await self._query("SELECT value FROM state WHERE key = ?", (key,))
        return bytes(rows[0][0]) if rows else None


# -- helpers ----------------------------------------------------------------------------------


def _duplicate(bundle_id: str) -> StoreError:
    return StoreError(f"bundle {bundle_id} is already stored")


def _cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _io_error(exc: BaseException, where: str) -> StoreError:
    """One line for an OSError or sqlite3 error; a full disk is StoreFull, like the quota."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreFull(f"{where}: no space left on the device")
    if isinstance(exc, OSError):
        return StoreError(f"{where}: {exc.strerror or exc}")
    return translate(exc, where)


def _connect(database: Path) -> aiosqlite.Connection:
    conn = aiosqlite.connect(database, isolation_level=None)
    # aiosqlite runs each connection in a non-daemon thread: a store that is never closed
    # (the program died of an exception, say) would keep the interpreter from exiting.
    # Exiting in the middle of a commit is no worse than a crash, which the store survives.
    thread = getattr(conn, "_thread", None)
    if isinstance(thread, threading.Thread):
        thread.daemon = True
    return conn


async def _close_quietly(conn: aiosqlite.Connection) -> None:
    try:
        await conn.close()
    except (sqlite3.Error, ValueError) as exc:
        log.warning("closing the store database: %s", exc)
