"""``dtncloud init DIR --node-id EID``: a node directory with a commented configuration."""

from __future__ import annotations

from pathlib import Path

import click

from dtncloud.daemon.template import write_node_directory

__all__ = ["init"]


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--node-id", required=True, metavar="EID", help="The node's ID: dtn://name/ or ipn:N.0."
)
@click.option("--force", is_flag=True, help="Overwrite an existing configuration file.")
def init(directory: Path, node_id: str, force: bool) -> None:
    """Create DIRECTORY for a node: a commented default configuration (dtncloud.toml) whose
    data directory is DIRECTORY itself. Start the node with `dtnd -c DIRECTORY/dtncloud.toml`."""
    path = write_node_directory(directory, node_id, force=force)
    click.echo(f"wrote {path}")
    click.echo(f"start the node with:  dtnd -c {path}")
    click.echo(f"then talk to it with: dtncloud status --api {path.parent / 'api.sock'}")
