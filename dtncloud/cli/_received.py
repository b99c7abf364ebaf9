"""Saving bundles that arrived over a link, one file each (``tcpcl listen``, ``udp listen``)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import signal
from pathlib import Path
from urllib.parse import quote

from dtncloud.bpv7 import peek_bundle_id
from dtncloud.cla.base import ReceivedBundle
from dtncloud.cli._output import atomic_write, sync_directory

# Longest file name most file systems take is 255 bytes; leave room for the suffix.
_MAX_NAME = 200
_SUFFIX = ".bundle"


def bundle_file_name(bundle_id: str) -> str:
    """A safe file name for a bundle ID, distinct for distinct IDs: characters that are not
    safe in file names are percent-encoded (``ipn:1.0@5.3`` -> ``ipn%3A1.0@5.3.bundle``),
    and over-long IDs are shortened with a hash of the whole ID."""
    name = quote(bundle_id, safe="@.+-_")
    if len(name) > _MAX_NAME:
        digest = hashlib.sha256(bundle_id.encode("utf-8")).hexdigest()[:16]
        name = f"{name[: _MAX_NAME - 17]}-{digest}"
    return name + _SUFFIX


def save_received(
    directory: Path, received: ReceivedBundle, fallback: str, bundle_id: str | None = None
) -> Path:
    """Store ``received`` in ``directory`` under its bundle ID and return the path.

    ``bundle_id`` is the ID's text if the caller knows it (a BPv6 bundle, say); otherwise it
    is read from the bundle's primary block, and ``fallback`` names a bundle that has none.
    A spooled bundle is moved (renamed when on the same file system), an in-memory one
    written through a synced temporary file, so a file in ``directory`` is always whole and
    on disk before the bundle is acknowledged. An existing file of the same name is kept;
    the new one gets a numbered name.
    """
    if bundle_id is None:
        if received.data is not None:
            prefix = received.data[:4096]
        else:
            assert received.path is not None
            with open(received.path, "rb") as handle:
                prefix = handle.read(4096)
        peeked = peek_bundle_id(prefix)
        bundle_id = str(peeked) if peeked is not None else None
    name = bundle_file_name(bundle_id) if bundle_id is not None else fallback + _SUFFIX
    target = directory / name
    counter = 1
    while target.exists():
        target = directory / f"{name[: -len(_SUFFIX)]}-{counter}{_SUFFIX}"
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
        sync_directory(directory)
    return target


def stop_on_signals(done: asyncio.Event) -> None:
    """Let SIGINT and SIGTERM end a listening command cleanly (it sets ``done``)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, done.set)
