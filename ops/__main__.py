"""``python -m ops``: same as the ``ops`` command."""

from ops.cli import main

main()
