"""The asyncio shell of the SBD emulator: one pseudo-terminal per emulated modem.

:class:`SbdEmulator` opens a pty pair per modem of a :class:`~dtncloud.sbd.emulator.SbdNetwork`
(``os.openpty``, raw mode), watches each master side with the event loop, feeds what the host
writes to the modem model and writes back what the model answers. The slave side's path
(``/dev/pts/N``) is what a host opens as if it were a modem's serial port, e.g. the ``device``
of an SBD convergence layer. Virtual time is the event loop's clock in milliseconds.

The emulator keeps the slave side open itself, so the master never sees a hang-up while no
host has the port open, and a host may close and reopen it. Output that no host reads is
kept up to ``max_backlog`` bytes per modem; older bytes are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from dataclasses import dataclass

from dtncloud.sbd.emulator import SbdNetwork

__all__ = ["EmulatorPort", "SbdEmulator"]


@dataclass(frozen=True)
class EmulatorPort:
    number: int
    path: str
    imei: str
    serial: int


class SbdEmulator:
    """Serves the modems of ``network`` on pseudo-terminals (POSIX only)."""

    def __init__(self, network: SbdNetwork, *, max_backlog: int = 1 << 16) -> None:
        self.network = network
        self.max_backlog = max_backlog
        self.ports: list[EmulatorPort] = []
        self._masters: list[int] = []
        self._slaves: list[int] = []
        self._backlog: list[bytearray] = []
        self._writing: set[int] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> list[EmulatorPort]:
        """Open the pseudo-terminals; returns one :class:`EmulatorPort` per modem."""
        if self._loop is not None:
            return self.ports
        loop = asyncio.get_running_loop()
        self._loop = loop
        try:
            for index, modem in enumerate(self.network.modems):
                master, slave = os.openpty()
                self._masters.append(master)
                self._slaves.append(slave)
                self._backlog.append(bytearray())
                tty.setraw(slave)
                os.set_blocking(master, False)
                self.ports.append(
                    EmulatorPort(modem.number, os.ttyname(slave), modem.imei, modem.serial)
                )
                loop.add_reader(master, self._readable, index)
        except BaseException:
            self._close_all()
            raise
        return self.ports

    async def stop(self) -> None:
        self._close_all()

    def _close_all(self) -> None:
        loop = self._loop
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for master in self._masters:
            if loop is not None:
                loop.remove_reader(master)
                loop.remove_writer(master)
            with contextlib.suppress(OSError):
                os.close(master)
        for slave in self._slaves:
            with contextlib.suppress(OSError):
                os.close(slave)
        self._masters.clear()
        self._slaves.clear()
        self._writing.clear()
        self._loop = None

    def _now(self) -> int:
        assert self._loop is not None
        return int(self._loop.time() * 1000)

    def _readable(self, index: int) -> None:
        try:
            data = os.read(self._masters[index], 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # EIO while no one has the slave open on some systems; we hold it open
        if data:
            self.network.receive_data(index, data, self._now())
            self._flush()

    def _flush(self) -> None:
        for index in range(len(self._masters)):
            data = self.network.data_to_send(index)
            if data:
                backlog = self._backlog[index]
                backlog += data
                if len(backlog) > self.max_backlog:
                    del backlog[: len(backlog) - self.max_backlog]
                self._write(index)
        self._arm_timer()

    def _write(self, index: int) -> None:
        backlog = self._backlog[index]
        master = self._masters[index]
        try:
            written = os.write(master, backlog) if backlog else 0
        except (BlockingIOError, InterruptedError):
            written = 0
        except OSError:
            written = len(backlog)  # nothing can be delivered; forget it
        del backlog[:written]
        assert self._loop is not None
        if backlog and index not in self._writing:
            self._writing.add(index)
            self._loop.add_writer(master, self._writable, index)
        elif not backlog and index in self._writing:
            self._writing.discard(index)
            self._loop.remove_writer(master)

    def _writable(self, index: int) -> None:
        self._write(index)

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = self.network.get_timer()
        if when is None or self._loop is None:
            return
        delay = max(0, when - self._now() + 1) / 1000
        self._timer = self._loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.network.handle_timer(self._now())
        self._flush()
