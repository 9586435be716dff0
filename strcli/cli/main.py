"""The `strcli` app: the commands of `strcli.cli`, one module each, registered on `common.app`.

Each command module imports at its top only typer, rich and strcli's torch-free checks;
what a command runs (torch, the models, the video) is imported inside it, so each command
pays only for what it uses (`benchmarks/startup.py`).
"""

from __future__ import annotations

# The order of --help's command list.
from strcli.cli import info, weights, reconstruct, render, train, export, view  # noqa: F401, I001 (registration)
from strcli.cli.common import app

__all__ = ["app", "run"]


def run() -> None:
    """Run the command line (the `strcli` console script, via `strcli.cli.run`)."""
    app()
