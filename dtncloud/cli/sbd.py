"""``dtncloud sbd-emulator``: emulated Iridium SBD modems on pseudo-terminals.

A shell around :class:`dtncloud.cla.sbd_emulator.SbdEmulator`: it prints one line per modem
(``modem 1: /dev/pts/5 (imei ..., serial ...)``) before anything else, so that scripts can
read the device paths, then serves the modems until interrupted.
"""

from __future__ import annotations

import asyncio
import random

import click

from dtncloud.cla.sbd_emulator import SbdEmulator
from dtncloud.cli._params import DURATION
from dtncloud.cli._received import stop_on_signals
from dtncloud.sbd.emulator import EmulatorConfig, SbdNetwork

__all__ = ["sbd_emulator"]


@click.command("sbd-emulator", short_help="Emulate Iridium SBD modems on pseudo-terminals.")
@click.option(
    "--modems", type=click.IntRange(1, 64), default=2, show_default=True, help="How many modems."
)
@click.option(
    "--latency",
    type=DURATION,
    default="2s",
    show_default=True,
    help="How long an AT+SBDIX session takes.",
)
@click.option(
    "--failure-rate",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Probability that a session fails.",
)
@click.option(
    "--signal",
    type=click.IntRange(0, 5),
    default=5,
    show_default=True,
    help="Signal strength that AT+CSQ reports (0: no network, every session fails).",
)
@click.option(
    "--delivery-delay",
    type=DURATION,
    default="0s",
    show_default=True,
    help="Time from a sent message to its ring alert at the receiving modem.",
)
@click.option("--seed", type=int, help="Seed of the failures (default: a random one, printed).")
def sbd_emulator(
    modems: int,
    latency: int,
    failure_rate: float,
    signal: int,
    delivery_delay: int,
    seed: int | None,
) -> None:
    """Run emulated Iridium 9602 modems, each on its own pseudo-terminal, joined by an
    emulated gateway, until interrupted (Ctrl-C).

    Modems are paired 1-2, 3-4, ...: what one sends arrives at the other. A message that
    starts with RB and a modem's 7-digit serial number goes to that modem instead, as with
    RockBLOCK-to-RockBLOCK messaging. Open a printed path as the device of an SBD link.
    """
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 32)
    config = EmulatorConfig(
        session_latency_ms=latency,
        failure_rate=failure_rate,
        signal=signal,
        delivery_delay_ms=delivery_delay,
    )
    asyncio.run(_serve(SbdNetwork(modems, config, seed=seed), seed))


async def _serve(network: SbdNetwork, seed: int) -> None:
    emulator = SbdEmulator(network)
    done = asyncio.Event()
    stop_on_signals(done)
    ports = await emulator.start()
    try:
        for port in ports:
            click.echo(
                f"modem {port.number}: {port.path} (imei {port.imei}, serial {port.serial:07d})"
            )
        pairs = [f"{a.number}-{b.number}" for a, b in zip(ports[::2], ports[1::2], strict=False)]
        if pairs:
            click.echo(f"gateway pairs: {', '.join(pairs)}; seed {seed}")
        else:
            click.echo(f"no pairs: address messages with RB and a serial number; seed {seed}")
        click.echo("press Ctrl-C to stop")
        await done.wait()
    finally:
        await emulator.stop()
    gateway = network.gateway.stats
    click.echo(
        f"gateway carried {gateway.delivered} message{'s' if gateway.delivered != 1 else ''}"
        f" ({gateway.unroutable} unroutable, {gateway.too_big} too big)"
    )
