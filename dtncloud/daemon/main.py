"""``dtnd``: run one node in the foreground until SIGTERM or SIGINT.

    dtnd -c /etc/dtncloud/dtncloud.toml
    dtnd --data-dir /var/lib/dtncloud            # embedded defaults, no configuration file
    dtnd -c node.toml --check                    # validate the configuration and exit

Logs go to stderr (``[log] format = "json"`` for JSON lines). Exit status: 0 after a clean
shutdown, 2 for a configuration error (one line on stderr naming the key), 1 for any other
failure to start (a port in use, a store another process holds).
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path

import click

from dtncloud.daemon.config import NodeConfig, default_config, load_config
from dtncloud.daemon.logs import configure_logging
from dtncloud.errors import ConfigError, DtnError

__all__ = ["main"]


def resolve_config(
    config_file: Path | None,
    data_dir: Path | None,
    node_id: str | None,
    log_level: str | None,
    log_format: str | None,
) -> NodeConfig:
    """The configuration ``dtnd`` runs with: the file, or the embedded defaults for a data
    directory, with the command line's overrides."""
    if config_file is not None:
        if data_dir is not None:
            raise ConfigError("give either -c FILE or --data-dir DIR, not both")
        config = load_config(config_file)
        if node_id is not None and node_id != config.node_id:
            raise ConfigError(f"--node-id {node_id} differs from node_id in {config_file}")
    elif data_dir is not None:
        config = default_config(data_dir.resolve(), node_id)
    else:
        raise ConfigError("no configuration: pass -c FILE (see `dtncloud init`) or --data-dir DIR")
    log = config.log
    if log_level is not None:
        log = dataclasses.replace(log, level=log_level)
    if log_format is not None:
        log = dataclasses.replace(log, format=log_format)
    return dataclasses.replace(config, log=log)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The node's TOML configuration (see `dtncloud init`).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Run on embedded defaults with this data directory (no configuration file).",
)
@click.option("--node-id", help="The node ID with --data-dir (default: dtn://<hostname>/).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default=None)
@click.option("--log-format", type=click.Choice(["human", "json"]), default=None)
@click.option("--check", is_flag=True, help="Validate the configuration, print it, and exit.")
def main(
    config_file: Path | None,
    data_dir: Path | None,
    node_id: str | None,
    log_level: str | None,
    log_format: str | None,
    check: bool,
) -> None:
    """Run a dtncloud node in the foreground."""
    # Imported here so that `dtnd --help` answers at once on a slow Raspberry Pi.
    from dtncloud.daemon.runner import Daemon, check_config

    try:
        config = resolve_config(config_file, data_dir, node_id, log_level, log_format)
        configure_logging(config.log.level, config.log.format)
        if check:
            check_config(config)
            click.echo(
                f"{config.source or 'embedded defaults'}: configuration of {config.node_id} is valid"
            )
            return
        daemon = Daemon(config)
    except ConfigError as exc:
        message = str(exc)
        if config_file is not None and not message.startswith(str(config_file)):
            message = f"{config_file}: {message}"  # found while building the node's parts
        click.echo(f"dtnd: configuration error: {message}", err=True)
        sys.exit(2)
    try:
        asyncio.run(daemon.run())
    except DtnError as exc:
        click.echo(f"dtnd: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"dtnd: cannot start: {exc.strerror or exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        sys.exit(130)


if __name__ == "__main__":
    main()
