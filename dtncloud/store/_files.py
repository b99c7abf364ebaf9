"""Files of a SqliteStore beside its database: payload files, one per bundle above the inline
threshold, and the lock that keeps two stores out of one folder.

Layout: ``<store>/bundles/<xx>/<hash>-<token>``, where ``<hash>`` is the SHA-256 of the
bundle ID in hex (bundle IDs hold ``/`` and ``:``, so they cannot name files themselves),
``<xx>`` its first two digits (256 folders keep each one small) and ``<token>`` random, so
that two puts of the same ID, one of which will be refused as a duplicate, never write the
same file. The database row names the file; the file never names the row.

The payload functions block; SqliteStore calls them in a worker thread.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sys
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from dtncloud.errors import StoreError

__all__ = ["PayloadFiles", "Sweep", "lock_folder", "unlock_folder"]

_TMP = ".tmp"


def sync_directory(directory: Path) -> None:
    """fsync a folder, so that a file created or renamed in it survives a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class Sweep:
    """What :meth:`PayloadFiles.sweep` found: the payload files present with their sizes, and
    how many temporary files (puts cut short by a crash) it removed."""

    present: dict[str, int]
    tmp_removed: int


class PayloadFiles:
    """The ``bundles/`` folder of a store. Names are relative to it (``"ab/ab12...-9f..."``)."""

    def __init__(self, root: Path, *, durable: bool = True) -> None:
        self.root = root
        # durable=False skips the fsyncs: a file then survives a process crash (the kernel
        # has it) but maybe not a power cut, like the database under synchronous=NORMAL.
        self.durable = durable

    def create_root(self) -> None:
        if not self.root.is_dir():
            self.root.mkdir()
            if self.durable:
                sync_directory(self.root.parent)

    @staticmethod
    def new_name(bundle_id: str) -> str:
        digest = hashlib.sha256(bundle_id.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{digest[:2]}/{digest[2:34]}-{secrets.token_hex(6)}"

    def path(self, name: str) -> Path:
        return self.root / name

    def write(self, name: str, data: bytes) -> None:
        """Write a payload file so that it is complete under its name or absent, and (when
        durable) on disk with its directory entry before this returns: the row that names it
        is committed only afterwards, so a committed row never points at a missing file."""
        final = self.path(name)
        folder = final.parent
        if not folder.is_dir():
            folder.mkdir(exist_ok=True)
            if self.durable:
                sync_directory(self.root)
        tmp = final.with_name(final.name + _TMP)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                if self.durable:
                    os.fsync(handle.fileno())
            os.replace(tmp, final)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            raise
        if self.durable:
            sync_directory(folder)

    def read(self, name: str) -> bytes:
        return self.path(name).read_bytes()

    def remove(self, names: list[str]) -> None:
        """Remove payload files, ignoring those already gone. No fsync: a removal lost in a
        power cut leaves an orphan, which the next open removes."""
        for name in names:
            with suppress(FileNotFoundError):
                os.unlink(self.path(name))

    def sweep(self) -> Sweep:
        """Remove every temporary file and list the payload files (for recovery at open,
        before any put can be writing)."""
        present: dict[str, int] = {}
        tmp_removed = 0
        if not self.root.is_dir():
            return Sweep(present, 0)
        for folder in sorted(self.root.iterdir()):
            if not folder.is_dir():
                continue
            for entry in os.scandir(folder):
                if not entry.is_file(follow_symlinks=False):
                    continue
                if entry.name.endswith(_TMP):
                    with suppress(FileNotFoundError):
                        os.unlink(entry.path)
                    tmp_removed += 1
                else:
                    present[f"{folder.name}/{entry.name}"] = entry.stat().st_size
        return Sweep(present, tmp_removed)


def lock_folder(directory: Path) -> int | None:
    """Hold ``directory/lock`` so that no other SqliteStore (here or in another process) uses
    the store at the same time: its recovery would remove the files our puts are writing."""
    if sys.platform == "win32":
        return None  # no flock; one store per folder is then the operator's job
    import fcntl

    try:
        fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(
            f"{directory}: cannot open the store's lock file: {exc.strerror}"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise StoreError(
            f"{directory}: the store is already open (in another process or SqliteStore)"
        ) from None
    return fd


def unlock_folder(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the only descriptor releases the flock
