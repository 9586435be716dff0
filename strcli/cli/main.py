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
    """Run the command line (the `strcli` console script, via `strcli.cli.run`).

    A flag or argument click refuses (a value of the wrong type, an unknown option, a
    missing argument) is one line on stderr, `error: ...` with the command's --help, and
    exit 2, like every other refusal (click's own form is a boxed, multi-line panel)."""
    import sys

    import typer

    try:  # typer 0.29 runs its own copy of click, with its own exception classes
        from typer._click import exceptions as click_errors
    except ImportError:  # older typers use click itself
        from click import exceptions as click_errors

    command = typer.main.get_command(app)
    try:
        code = command.main(prog_name="strcli", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as err:  # `strcli` or a group alone: its help, as before
        err.show()
        sys.exit(err.exit_code)
    except click_errors.UsageError as err:
        where = f" Run `{err.ctx.command_path} --help` for the options." if err.ctx is not None else ""
        message = " ".join(err.format_message().split())  # one line
        print(f"error: {message[0].lower() + message[1:] if message else 'bad usage'}.{where}".replace("..", "."),
              file=sys.stderr)
        sys.exit(err.exit_code)
    except typer.Abort as err:  # Ctrl-C outside a command's own handling (while click parses)
        cause = err.__cause__ or err.__context__
        if isinstance(cause, EOFError):  # click turns an EOFError into an Abort too: no Ctrl-C
            from strcli.cli.common import error_text, unexpected_end

            print(f"error: {error_text(unexpected_end(cause))}", file=sys.stderr)
            sys.exit(1)
        print("error: interrupted (Ctrl-C).", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # `python -m strcli.cli.main`, as `python -m strcli`
    run()
