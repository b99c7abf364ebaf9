"""Group commit for SqliteStore: one writer task, one transaction and one commit per batch.

Every write (put, update, delete, set_state) becomes an operation with a future, queued for
the writer. The writer takes whatever has queued up (while one commit is being made to disk,
the next batch gathers, so batches grow with load and no call waits on a timer), and runs it:

1. ``BEGIN IMMEDIATE``; one ``SELECT`` fetches the stored size and file of every bundle ID the
   batch touches;
2. the batch is *planned* in order against that snapshot: a duplicate put, an update of a
   missing bundle or one that changes the size, a delete of a missing bundle are decided here,
   without touching the database, so one bad call cannot spoil the transaction of the others;
3. the planned statements run (consecutive ones of a kind as one ``executemany``), then
   ``COMMIT``; with ``synchronous=FULL`` the commit is on disk when it returns;
4. only then are files removed (payload files of deleted bundles and of refused puts), the
   counters moved and the futures resolved.

Pre-planning is exact because this task is the only writer of the database. Should the batch
fail anyway (an I/O error, a disk full, a value SQLite refuses), it is rolled back and each
operation is retried alone in its own transaction, so only the failing one fails.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from dtncloud.errors import BundleNotFound, StoreCorrupt, StoreError, StoreFull
from dtncloud.store._check import check_update_size
from dtncloud.store._files import PayloadFiles
from dtncloud.store._schema import INSERT_BUNDLE, UPDATE_BUNDLE, update_params
from dtncloud.store.base import BundleMeta

__all__ = ["Counters", "DeleteOp", "Op", "PutOp", "SetStateOp", "UpdateOp", "Writer"]

log = logging.getLogger("dtncloud.store")

#: Most operations in one transaction; bounds its size and the IN (...) list of the lookup.
MAX_BATCH = 256


@dataclass
class Counters:
    """Committed totals, and bytes reserved by puts on their way to the writer (so that
    concurrent puts cannot together overrun the quota)."""

    bundles: int
    bytes: int
    reserved: int = 0
    #: set whenever a reservation is given back (a put settled), for puts waiting for room
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self, size: int) -> None:
        self.reserved -= size
        self.released.set()


@dataclass(eq=False)
class Op:
    future: asyncio.Future[Any] = field(init=False)


@dataclass(eq=False)
class PutOp(Op):
    bundle_id: str
    row: tuple[Any, ...]
    size: int
    file: str | None
    data: bytes | None


@dataclass(eq=False)
class UpdateOp(Op):
    meta: BundleMeta
    row: tuple[Any, ...]

    @property
    def bundle_id(self) -> str:
        return self.meta.bundle_id


@dataclass(eq=False)
class DeleteOp(Op):
    bundle_id: str


@dataclass(eq=False)
class SetStateOp(Op):
    key: str
    value: bytes


@dataclass
class _Plan:
    statements: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    outcomes: list[tuple[Op, Any, BaseException | None]] = field(default_factory=list)
    unlink: list[str] = field(default_factory=list)
    bundles: int = 0
    bytes: int = 0


def translate(exc: BaseException, where: str) -> StoreError:
    """A dtncloud error for a SQLite or OS error, as one line naming the store."""
    if isinstance(exc, StoreError):
        return exc
    # Primary result code (the low byte of an extended one), set by SQLite's own errors.
    code = getattr(exc, "sqlite_errorcode", -1) & 0xFF
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return StoreCorrupt(f"{where}: {exc}")
    if code == sqlite3.SQLITE_FULL:
        return StoreFull(f"{where}: no space left for the database ({exc})")
    return StoreError(f"{where}: {exc}")


class Writer:
    """The writer task of one open SqliteStore."""

    def __init__(
        self,
        conn: aiosqlite.Connection,
        files: PayloadFiles,
        counters: Counters,
        where: str,
    ) -> None:
        self._conn = conn
        self._files = files
        self._counters = counters
        self._where = where
        self._queue: asyncio.Queue[Op | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        #: batches committed and operations run, for tests and benchmarks
        self.batches = 0
        self.operations = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="store-writer")

    def submit(self, op: Op) -> asyncio.Future[Any]:
        if self._closing:
            raise StoreError(f"{self._where}: the store is closing")
        op.future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(op)
        return op.future

    async def stop(self) -> None:
        """Run every operation already submitted, then end the task."""
        self._closing = True
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
            self._task = None

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            op = await self._queue.get()
            batch: list[Op] = []
            while op is not None:
                batch.append(op)
                if len(batch) >= MAX_BATCH or self._queue.empty():
                    break
                op = self._queue.get_nowait()
            stopping = op is None
            # A caller cancelled before its turn gets nothing done on its behalf.
            live = [o for o in batch if not o.future.cancelled()]
            self._forget(o for o in batch if o.future.cancelled())
            if not live:
                continue
            try:
                await self._execute(live, retry_alone=len(live) > 1)
            except Exception as exc:  # a bug here must not leave callers waiting forever
                log.exception("%s: store writer failed", self._where)
                for o in live:
                    if not o.future.done():
                        o.future.set_exception(translate(exc, self._where))

    async def _execute(self, ops: list[Op], *, retry_alone: bool) -> None:
        try:
            plan = await self._in_transaction(ops)
        except Exception as exc:
            if retry_alone:
                for op in ops:
                    await self._execute([op], retry_alone=False)
                return
            log.error("%s: write failed: %s", self._where, exc)
            plan = _Plan(outcomes=[(op, None, translate(exc, self._where)) for op in ops])
            plan.unlink = [op.file for op in ops if isinstance(op, PutOp) and op.file]
        else:
            self.batches += 1
            self.operations += len(ops)
            self._counters.bundles += plan.bundles
            self._counters.bytes += plan.bytes
        await self._settle(plan)

    async def _in_transaction(self, ops: list[Op]) -> _Plan:
        """Look up, decide, write and commit ``ops`` as one transaction.

        aiosqlite runs each call in its connection's thread and every call is a round trip
        between threads; a batch needs five of them. Where aiosqlite lets us run a function in
        that thread (``Connection._execute``, there since 0.17), the batch takes one: with a
        lone writer waiting for each commit, the round trips would otherwise cost as much as
        the commit itself.
        """
        run_in_thread = getattr(self._conn, "_execute", None)
        if run_in_thread is not None:
            plan: _Plan = await run_in_thread(self._transaction_in_thread, ops)
            return plan
        await self._conn.execute("BEGIN IMMEDIATE")
        try:
            plan = self._plan(ops, await self._lookup(ops))
            for sql, rows in _runs(plan.statements):
                await self._conn.executemany(sql, rows)
            await self._conn.execute("COMMIT")
        except BaseException:
            await self._rollback()
            raise
        return plan

    def _transaction_in_thread(self, ops: list[Op]) -> _Plan:
        conn: sqlite3.Connection = self._conn._conn  # aiosqlite's own sqlite3 connection
        conn.execute("BEGIN IMMEDIATE")
        try:
            ids = sorted(
                {op.bundle_id for op in ops if isinstance(op, PutOp | UpdateOp | DeleteOp)}
            )
            stored: dict[str, tuple[int, str | None]] = {}
            if ids:
                marks = ", ".join("?" * len(ids))
                for row in conn.execute(
                    f"SELECT bundle_id, size, file FROM bundles WHERE bundle_id IN ({marks})", ids
                ):
                    stored[row[0]] = (row[1], row[2])
            plan = self._plan(ops, stored)
            for sql, rows in _runs(plan.statements):
                conn.executemany(sql, rows)
            conn.execute("COMMIT")
        except BaseException:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        return plan

    async def _rollback(self) -> None:
        # Fails when no transaction is left (SQLite rolled it back itself): nothing to do then.
        with suppress(sqlite3.Error):
            await self._conn.execute("ROLLBACK")

    async def _lookup(self, ops: list[Op]) -> dict[str, tuple[int, str | None]]:
        ids = sorted({op.bundle_id for op in ops if isinstance(op, PutOp | UpdateOp | DeleteOp)})
        if not ids:
            return {}
        marks = ", ".join("?" * len(ids))
        rows = await self._conn.execute_fetchall(
            f"SELECT bundle_id, size, file FROM bundles WHERE bundle_id IN ({marks})", ids
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    def _plan(self, ops: list[Op], stored: dict[str, tuple[int, str | None]]) -> _Plan:
        """Decide every operation in order against ``stored`` (updated as the plan goes)."""
        plan = _Plan()
        for op in ops:
            result: Any = None
            error: BaseException | None = None
            if isinstance(op, PutOp):
                if op.bundle_id in stored:
                    error = StoreError(f"bundle {op.bundle_id} is already stored")
                    if op.file:
                        plan.unlink.append(op.file)
                else:
                    stored[op.bundle_id] = (op.size, op.file)
                    plan.statements.append((INSERT_BUNDLE, (*op.row, op.file, op.data)))
                    plan.bundles += 1
                    plan.bytes += op.size
            elif isinstance(op, UpdateOp):
                if op.bundle_id not in stored:
                    error = BundleNotFound(f"bundle {op.bundle_id} is not stored")
                else:
                    try:
                        check_update_size(op.meta, stored[op.bundle_id][0])
                    except ValueError as exc:
                        error = exc
                    else:
                        plan.statements.append((UPDATE_BUNDLE, update_params(op.row)))
            elif isinstance(op, DeleteOp):
                entry = stored.pop(op.bundle_id, None)
                result = entry is not None
                if entry is not None:
                    size, file = entry
                    plan.statements.append(
                        ("DELETE FROM bundles WHERE bundle_id = ?", (op.bundle_id,))
                    )
                    plan.bundles -= 1
                    plan.bytes -= size
                    if file:
                        # Removed after the commit: a crash in between leaves an orphan file,
                        # never a row without its file.
                        plan.unlink.append(file)
            elif isinstance(op, SetStateOp):
                plan.statements.append(
                    ("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (op.key, op.value))
                )
            plan.outcomes.append((op, result, error))
        return plan

    async def _settle(self, plan: _Plan) -> None:
        # Files first: once delete() returns, the bundle's file is gone too, and a refused put
        # leaves nothing behind when it raises.
        if plan.unlink:
            try:
                await asyncio.to_thread(self._files.remove, plan.unlink)
            except OSError as exc:  # left as orphans, removed at the next open
                log.warning("%s: could not remove payload files: %s", self._where, exc)
        for op, result, error in plan.outcomes:
            if isinstance(op, PutOp):
                self._counters.release(op.size)
            if op.future.done():
                continue  # the caller was cancelled; the outcome stands regardless
            if error is not None:
                op.future.set_exception(error)
            else:
                op.future.set_result(result)

    def _forget(self, ops: Iterable[Op]) -> None:
        names = []
        for op in ops:
            if isinstance(op, PutOp):
                self._counters.release(op.size)
                if op.file:
                    names.append(op.file)
        # Rare (cancellation), so removing in the loop's thread is acceptable.
        try:
            self._files.remove(names)
        except OSError as exc:
            log.warning("%s: could not remove payload files: %s", self._where, exc)


def _runs(
    statements: list[tuple[str, tuple[Any, ...]]],
) -> Iterable[tuple[str, list[tuple[Any, ...]]]]:
    """Consecutive statements with the same SQL, as (sql, rows) for executemany."""
    current: str | None = None
    rows: list[tuple[Any, ...]] = []
    for sql, params in statements:
        if sql != current and rows:
            assert current is not None
            yield current, rows
            rows = []
        current = sql
        rows.append(params)
    if rows:
        assert current is not None
        yield current, rows
