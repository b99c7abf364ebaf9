"""The ``dtncloud`` command line: bundle tools (``dtncloud bundle ...``), link tools
(``dtncloud tcpcl ...``, ``dtncloud udp ...``) and ``dtncloud demo``.

A shell around the sans-IO core: it reads files and the clock and hands bytes and times to
the library. Errors caused by bad input come out as one line on stderr,
``dtncloud: error: <where>: <what>``, with exit status 1 (2 for usage errors); ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import click

from dtncloud import __version__
from dtncloud.cli._output import DEBUG_KEY, PROG, DtnGroup
from dtncloud.cli.bundle import bundle
from dtncloud.cli.demo import demo
from dtncloud.cli.tcpcl import tcpcl
from dtncloud.cli.udp import udp

__all__ = ["cli", "main"]


@click.group(name=PROG, cls=DtnGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name=PROG)
@click.option("--debug", is_flag=True, help="Show Python tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """dtncloud: delay-tolerant networking tools.

    Build, inspect, sign, encrypt, fragment and reassemble BPv7 bundles, or watch it all
    happen in `dtncloud demo`.
    """
    ctx.meta[DEBUG_KEY] = debug


cli.add_command(bundle)
cli.add_command(demo)
cli.add_command(tcpcl)
cli.add_command(udp)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``dtncloud`` console script; exits with the command's status."""
    cli.main(args=argv, prog_name=PROG)
