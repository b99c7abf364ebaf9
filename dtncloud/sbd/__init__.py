"""Iridium Short Burst Data (SBD), sans-IO: the AT dialect, a modem controller, segmentation.

The parts, from the wire up:

* :mod:`~dtncloud.sbd.at`: commands, checksums, the incremental response parser, ``+SBDIX``
  and ``+CSQ`` reports.
* :mod:`~dtncloud.sbd.modem`: :class:`ModemController`, the host side of one modem
  (initialisation, sessions, retries, signal gating, ring alerts, timeouts).
* :mod:`~dtncloud.sbd.segment`: bundles larger than one message, cut with a 4-byte header,
  and :class:`Reassembler`.
* :mod:`~dtncloud.sbd.cost`: credits and the daily :class:`CreditBudget`.
* :mod:`~dtncloud.sbd.terminal`: :class:`SbdTerminal`, all of the above behind one
  ``receive_data``/``data_to_send``/``get_timer`` interface for a driver.
* :mod:`~dtncloud.sbd.emulator`: an emulated modem and gateway for tests and the emulator
  command.

The asyncio driver is :mod:`dtncloud.cla.sbd`; operators read docs/sbd.md.
"""

from __future__ import annotations

from dtncloud.sbd.at import MO_MAX, MT_MAX, ResponseParser, SessionReport, checksum
from dtncloud.sbd.config import SbdConfig
from dtncloud.sbd.cost import CreditBudget, credits_for
from dtncloud.sbd.modem import (
    BudgetExhausted,
    MessageReceived,
    MessageSent,
    ModemController,
    ModemLost,
    ModemReady,
    ModemTrouble,
    RingReceived,
    SessionFailed,
    SessionSucceeded,
    SignalTooWeak,
)
from dtncloud.sbd.segment import HEADER_SIZE, Reassembler, split_bundle
from dtncloud.sbd.terminal import (
    BundleDropped,
    BundleReceived,
    BundleSent,
    SbdStats,
    SbdTerminal,
    TerminalEvent,
)

__all__ = [
    "MO_MAX",
    "MT_MAX",
    "HEADER_SIZE",
    "ResponseParser",
    "SessionReport",
    "checksum",
    "SbdConfig",
    "CreditBudget",
    "credits_for",
    "ModemController",
    "ModemReady",
    "ModemLost",
    "ModemTrouble",
    "RingReceived",
    "SignalTooWeak",
    "BudgetExhausted",
    "SessionSucceeded",
    "SessionFailed",
    "MessageSent",
    "MessageReceived",
    "Reassembler",
    "split_bundle",
    "SbdTerminal",
    "SbdStats",
    "BundleSent",
    "BundleDropped",
    "BundleReceived",
    "TerminalEvent",
]
