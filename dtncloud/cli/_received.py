"""Saving bundles that arrived over a link, one file each (``tcpcl listen``, ``udp listen``)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from dtncloud.bpv7 import peek_bundle_id
from dtncloud.cla.base import ReceivedBundle
from dtncloud.cli._output import atomic_write

_UNSAFE = re.compile(r"[^A-Za-z0-9.@+=-]+")


def bundle_file_name(prefix: bytes, fallback: str) -> str:
    """A file name from the bundle ID in ``prefix`` (``fallback`` if it has none), safe on
    every common file system: ``ipn:1.0@5.3`` becomes ``ipn_1.0@5.3.bundle``."""
    bundle_id = peek_bundle_id(prefix)
    stem = _UNSAFE.sub("_", str(bundle_id)).strip("._") if bundle_id is not None else ""
    return f"{stem or fallback}.bundle"


def save_received(directory: Path, received: ReceivedBundle, fallback: str) -> Path:
    """Store ``received`` in ``directory`` under its bundle ID and return the path.

    A spooled bundle is moved (renamed when on the same file system), an in-memory one
    written through a synced temporary file, so a file in ``directory`` is always whole.
    An existing file of the same name is kept; the new one gets a numbered name.
    """
    if received.data is not None:
        prefix = received.data[:4096]
    else:
        assert received.path is not None
        with open(received.path, "rb") as handle:
            prefix = handle.read(4096)
    name = bundle_file_name(prefix, fallback)
    target = directory / name
    counter = 1
    while target.exists():
        target = directory / f"{name[: -len('.bundle')]}-{counter}.bundle"
        counter += 1
    if received.data is not None:
        atomic_write(target, received.data)
    else:
        assert received.path is not None
        try:
            os.replace(received.path, target)
        except OSError:
            shutil.copyfile(received.path, target)
        # Durable before the CLA acknowledges it (the spool file was not synced).
        with open(target, "rb") as handle:
            os.fsync(handle.fileno())
        _sync_directory(directory)
    return target


def _sync_directory(directory: Path) -> None:
    """Make a rename into ``directory`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
