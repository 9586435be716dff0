"""`python -m strcli` is the `strcli` command."""

from strcli.cli import run

run()
