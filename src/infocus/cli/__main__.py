"""``python -m infocus.cli``: the same as the ``infocus`` command."""

from infocus.cli import main

main()
