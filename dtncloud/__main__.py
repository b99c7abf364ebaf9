"""``python -m dtncloud``: the ``dtncloud`` command."""

from dtncloud.cli import main

main()
