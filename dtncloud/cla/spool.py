"""Where an incoming transfer's bytes wait until the bundle is complete.

Small transfers stay in memory; once a transfer grows past a threshold (or announces a
length past it) its bytes go to a spool file instead, so a 1 GiB bundle never sits whole in
memory. The file is created in the CLA's spool directory and handed to the node with the
bundle; whatever the node leaves behind is deleted.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

#: Transfers up to this size are kept in memory.
DEFAULT_SPOOL_THRESHOLD = 4 << 20
#: How many leading bytes are kept in memory for a look at the primary block.
PREFIX_SIZE = 4096


class IncomingTransfer:
    """The bytes of one incoming transfer so far."""

    __slots__ = (
        "_buffer",
        "_file",
        "_head",
        "length",
        "path",
        "spool_dir",
        "threshold",
        "transfer_id",
    )

    def __init__(
        self,
        transfer_id: int,
        spool_dir: Path,
        threshold: int = DEFAULT_SPOOL_THRESHOLD,
        expected_length: int | None = None,
    ) -> None:
        self.transfer_id = transfer_id
        self.spool_dir = spool_dir
        self.threshold = threshold
        self.length = 0
        self.path: Path | None = None
        self._buffer: bytearray | None = bytearray()
        self._head = bytearray()
        self._file: BinaryIO | None = None
        if expected_length is not None and expected_length > threshold:
            self._spill()

    @property
    def prefix(self) -> bytes:
        """The first bytes received (up to 4 KiB), for peeking at the bundle ID."""
        return bytes(self._head)

    def append(self, data: bytes | memoryview) -> None:
        """Add the next segment's bytes."""
        if len(self._head) < PREFIX_SIZE:
            self._head += data[: PREFIX_SIZE - len(self._head)]
        self.length += len(data)
        if self._buffer is not None:
            self._buffer += data
            if len(self._buffer) > self.threshold:
                self._spill()
            return
        assert self._file is not None
        self._file.write(data)

    def _spill(self) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="incoming-", suffix=".bundle", dir=self.spool_dir)
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        if self._buffer:
            self._file.write(self._buffer)
        self._buffer = None

    def finish(self) -> tuple[bytes | None, Path | None]:
        """The complete transfer: ``(data, None)`` in memory or ``(None, path)`` on disk.

        A spool file is flushed and closed but not synced: the node that takes it over
        syncs it as part of storing it (one sync, where the file ends up; syncing here as
        well would double the cost of every large bundle).
        """
        if self._buffer is not None:
            data = bytes(self._buffer)
            self._buffer = None
            return data, None
        assert self._file is not None
        self._file.close()
        self._file = None
        return None, self.path

    def discard(self) -> None:
        """Forget the transfer and delete its spool file, if any."""
        self._buffer = None
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.path = None
