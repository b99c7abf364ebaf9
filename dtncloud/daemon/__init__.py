"""``dtnd``, the field-node daemon: its configuration, and the runner that drives a node.

:mod:`dtncloud.daemon.config` reads ``dtncloud.toml`` into frozen dataclasses and checks it;
:mod:`dtncloud.daemon.units` parses the sizes, durations, rates and addresses it contains;
:mod:`dtncloud.daemon.template` writes the commented default file ``dtncloud init`` creates.

This package's ``__init__`` imports nothing, so that a configuration can be loaded and
checked (``dtnd --check``, ``dtncloud init``) without pulling in asyncio and the runtime.
"""
