"""``dtncloud mule``: carry bundles between sites with no network on a USB stick.

``dtncloud mule sync PATH --api S`` asks the node to sync with the mule directory PATH now
and prints what moved each way; ``dtncloud mule key KEYFILE --node-id ID`` makes (or shows)
a node's mule key and prints the public key line to give the other sites. See
``docs/mule.md``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from dtncloud.cli._output import CliError
from dtncloud.cli._params import SIZE
from dtncloud.cli.node import _run, api_options, json_option
from dtncloud.client import Client
from dtncloud.mule.keys import check_node_id, public_key_line
from dtncloud.mule.report import SyncReport
from dtncloud.mule.stick import load_or_create_key

__all__ = ["mule"]


@click.group()
def mule() -> None:
    """Carry bundles on a USB stick (a data mule) between sites with no network."""


class _Progress:
    """One status line on stderr, rewritten in place, while a long sync runs (terminals
    only)."""

    def __init__(self) -> None:
        self.shown = False
        self.enabled = sys.stderr.isatty()

    def __call__(self, report: dict[str, Any]) -> None:
        if not self.enabled:
            return
        line = SyncReport.from_dict(report).progress_line()
        click.echo(f"\r{line[:78]:<78}", nl=False, err=True)
        self.shown = True

    def finish(self) -> None:
        if self.shown:
            click.echo("\r" + " " * 78 + "\r", nl=False, err=True)


@mule.command()
@api_options
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Say what would move; write and import nothing.")
@click.option(
    "--any-destination",
    is_flag=True,
    help="Also take bundles that have no better route (the link to the carrier node).",
)
@click.option(
    "--capacity",
    type=SIZE,
    help="Fill the stick with at most this many bytes of bundles (e.g. 500M).",
)
@json_option
def sync(
    api: str | None,
    token: str | None,
    path: Path,
    dry_run: bool,
    any_destination: bool,
    capacity: int | None,
    as_json: bool,
) -> None:
    """Exchange bundles between the node and the mule directory PATH (on a USB stick).

    Bundles on the stick for this node, or for it to pass on, are imported; bundles the
    node routes to the sites reached through the mule are written to the stick; copies
    that reached their destination or expired are removed. Exit status 1 if the sync
    failed (the stick went away, say); files skipped for damage or a missing signature
    are listed but do not fail the sync.
    """
    progress = _Progress()

    async def work(client: Client) -> dict[str, Any]:
        return await client.mule_sync(
            path,
            dry_run=dry_run,
            any_destination=True if any_destination else None,
            capacity=capacity,
            progress=progress,
        )

    try:
        answer = _run(api, token, work)
    finally:
        progress.finish()
    report = SyncReport.from_dict(answer)
    if as_json:
        click.echo(json.dumps(answer, indent=2, sort_keys=True))
    else:
        for line in report.summary():
            click.echo(line)
    if report.error:
        raise CliError(f"mule sync with {path}: {report.error}")


@mule.command()
@click.argument("key_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--node-id", required=True, metavar="EID", help="The node the key belongs to.")
def key(key_file: Path, node_id: str) -> None:
    """Print the public key line of the mule key KEY_FILE, making the key if it is missing.

    dtnd makes the key on first use (the mule's key_path, by default DATA_DIR/mule.key);
    give the line to the other sites, who put it in their trusted directory as a .pub
    file.
    """
    node = check_node_id(node_id, "--node-id")
    node_key = load_or_create_key(key_file, node)
    click.echo(public_key_line(node, node_key.public_hex), nl=False)
