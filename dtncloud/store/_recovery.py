"""What SqliteStore does at open to bring its files back in line with its database.

A killed process can leave exactly two kinds of debris, both harmless by construction, since
a payload file is on disk before the row that names it commits, and is removed only after the
row's deletion commits:

- temporary files of puts that were writing when it died: removed;
- payload files with no row (a put that died between file and commit, a delete that died
  between commit and unlink): *orphans*, removed.

A row whose payload file is missing, or shorter or longer than the bundle, cannot come from a
crash: someone or something removed or damaged the file. Such a bundle is lost whatever we do,
and refusing to open would keep the node from forwarding all the others, so the row is
dropped, with a warning that names each bundle, and listed in :class:`RecoveryReport`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiosqlite

from dtncloud.store._files import PayloadFiles

__all__ = ["RecoveryReport", "recover"]

log = logging.getLogger("dtncloud.store")


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What the last open cleaned up."""

    #: temporary files of interrupted puts, removed
    tmp_removed: int = 0
    #: payload files that no row named, removed
    orphans_removed: int = 0
    #: bundle IDs whose row was dropped because its payload file was missing or damaged
    dropped: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not (self.tmp_removed or self.orphans_removed or self.dropped)


async def recover(conn: aiosqlite.Connection, files: PayloadFiles, where: str) -> RecoveryReport:
    """Make rows and payload files agree (before any write can be in flight)."""
    # Only rows with a payload file, and only three short columns of each.
    rows = await conn.execute_fetchall(
        "SELECT file, bundle_id, size FROM bundles WHERE file IS NOT NULL"
    )
    named = {row[0]: (row[1], row[2]) for row in rows}
    sweep = await asyncio.to_thread(files.sweep)
    orphans = [name for name in sweep.present if name not in named]
    damaged = sorted(
        (bundle_id, name)
        for name, (bundle_id, size) in named.items()
        if sweep.present.get(name) != size
    )
    if damaged:
        log.warning(
            "%s: dropped %d bundle(s) whose payload file is missing or has the wrong size: %s",
            where,
            len(damaged),
            ", ".join(bundle_id for bundle_id, _ in damaged),
        )
        await conn.execute("BEGIN IMMEDIATE")
        await conn.executemany(
            "DELETE FROM bundles WHERE bundle_id = ?", [(bundle_id,) for bundle_id, _ in damaged]
        )
        await conn.execute("COMMIT")
    # Files go after the rows: a crash here leaves orphans for the next open, nothing worse.
    await asyncio.to_thread(files.remove, orphans + [name for _, name in damaged])
    if orphans or sweep.tmp_removed:
        log.info(
            "%s: removed %d orphan payload file(s) and %d temporary file(s) left by a crash",
            where,
            len(orphans),
            sweep.tmp_removed,
        )
    return RecoveryReport(
        tmp_removed=sweep.tmp_removed,
        orphans_removed=len(orphans),
        dropped=tuple(bundle_id for bundle_id, _ in damaged),
    )
