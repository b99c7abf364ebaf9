"""``python -m dtncloud.cli``: the ``dtncloud`` command."""

from dtncloud.cli import main

main()
