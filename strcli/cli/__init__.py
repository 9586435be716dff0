"""The `strcli` command line: one module per command or group; `main` builds the app."""


def run() -> None:
    """The `strcli` console script (`pyproject.toml`): the app of `strcli.cli.main`."""
    from strcli.cli.main import run as run_app

    run_app()
