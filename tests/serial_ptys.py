"""Pseudo-terminals standing in for serial ports, and a relay joining two of them as a
null-modem cable: the serial CLA's tests and the CLA conformance suite share them.

Each CLA opens a pty's slave device (``Pty.name``) with pyserial as if it were a real port;
the test holds the masters and a :class:`Relay` copies bytes between them (optionally
mangling one direction on the way).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Pty", "Relay"]


class Pty:
    """A pseudo-terminal standing in for a serial port: CLAs open ``name``, tests hold ``master``."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        # Raw before the CLA opens it, so nothing written early is echoed or line-edited.
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.name = os.ttyname(self.slave)
        self._open = True

    def close(self) -> None:
        # Closing the master hangs the terminal up, like pulling a USB adapter out. Only once:
        # the descriptor numbers may belong to something else afterwards.
        if self._open:
            self._open = False
            os.close(self.master)
            os.close(self.slave)


@dataclass
class _Direction:
    source: int
    target: int
    mangle: Callable[[bytes], bytes] | None
    pending: bytearray = field(default_factory=bytearray)


class Relay:
    """Copies bytes between two pty masters in both directions, as a cable would."""

    def __init__(self, a: Pty, b: Pty, *, mangle_a_to_b: Callable[[bytes], bytes] | None = None):
        self._loop = asyncio.get_running_loop()
        self._directions = [
            _Direction(a.master, b.master, mangle_a_to_b),
            _Direction(b.master, a.master, None),
        ]
        self._writing: set[int] = set()
        self._closed = False
        for direction in self._directions:
            self._loop.add_reader(direction.source, self._readable, direction)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for direction in self._directions:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(direction.source)
            if direction.target in self._writing:
                with contextlib.suppress(ValueError, OSError):
                    self._loop.remove_writer(direction.target)
        self._writing.clear()

    def _readable(self, direction: _Direction) -> None:
        try:
            data = os.read(direction.source, 65536)
        except BlockingIOError:
            return
        except OSError:  # the other end is gone (EIO): stop this direction
            self._loop.remove_reader(direction.source)
            return
        if direction.mangle is not None:
            data = direction.mangle(data)
        direction.pending += data
        self._flush(direction)

    def _flush(self, direction: _Direction) -> None:
        try:
            written = os.write(direction.target, direction.pending) if direction.pending else 0
        except BlockingIOError:
            written = 0
        except OSError:
            direction.pending.clear()
            written = 0
        del direction.pending[:written]
        if direction.pending and direction.target not in self._writing:
            self._writing.add(direction.target)
            self._loop.add_writer(direction.target, self._flush, direction)
        elif not direction.pending and direction.target in self._writing:
            self._writing.discard(direction.target)
            self._loop.remove_writer(direction.target)
