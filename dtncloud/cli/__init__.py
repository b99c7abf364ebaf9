"""The ``dtncloud`` command line: commands that talk to a running node (``send``, ``recv``,
``ping``, ``status``, the listings), ``init``, bundle tools (``dtncloud bundle ...``), link
tools (``dtncloud tcpcl ...``, ``dtncloud udp ...``), ``demo`` and ``tour``.

A shell around the sans-IO core: it reads files and the clock and hands bytes and times to
the library. Errors caused by bad input come out as one line on stderr,
``dtncloud: error: <where>: <what>``, with exit status 1 (2 for usage errors); ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import click

from dtncloud import __version__
from dtncloud.cli import sim_run  # noqa: F401  (adds run, compare and sweep to the sim group)
from dtncloud.cli._output import DEBUG_KEY, PROG, DtnGroup
from dtncloud.cli.bundle import bundle
from dtncloud.cli.demo import demo
from dtncloud.cli.init import init
from dtncloud.cli.mule import mule
from dtncloud.cli.node import NODE_COMMANDS
from dtncloud.cli.sbd import sbd_emulator
from dtncloud.cli.sim import sim
from dtncloud.cli.tcpcl import tcpcl
from dtncloud.cli.tour import tour
from dtncloud.cli.udp import udp

__all__ = ["cli", "main"]


@click.group(name=PROG, cls=DtnGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name=PROG)
@click.option("--debug", is_flag=True, help="Show Python tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """dtncloud: delay-tolerant networking for clouds of small, scattered machines.

    Talk to a running node (dtnd) with send, recv, ping, status and the listings; create a
    node with init; build and inspect bundles with `bundle`; test links with tcpcl and udp.
    `dtncloud demo` runs a small deployment of three nodes on this machine.
    """
    ctx.meta[DEBUG_KEY] = debug


for command in (bundle, demo, init, mule, *NODE_COMMANDS, sbd_emulator, sim, tcpcl, tour, udp):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``dtncloud`` console script; exits with the command's status."""
    cli.main(args=argv, prog_name=PROG)
