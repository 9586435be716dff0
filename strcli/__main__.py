"""`python -m strcli` is the `strcli` command."""

from strcli.cli.main import run

run()
