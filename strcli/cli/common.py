"""What every command shares: the typer app, the consoles, the error reporting.

Progress and errors go to stderr, results to stdout; `--json` prints machine-readable
results. A `StrcliError` becomes one line `error: ...` and its exit code (docs/exit-codes.md).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from strcli import __version__
from strcli.utils.errors import INTERRUPTED_HINT, Interrupted, StrcliError, torch_mismatch, write_failure


def _flags_take_no_value() -> None:
    """typer 0.29 prints every flag's type in --help as `<bool>` (its own --help too), as if
    the flag took a value; a flag takes none, so no type is shown for it (older typers show
    none either). It prints a list's type as `<list[Path]>`, Python's spelling: an argument
    shows none (its name, VIDEO..., says it), a repeatable option its item's (`<path>`).
    A no-op where the methods do not exist."""
    core = getattr(typer, "core", None)
    for cls in (getattr(core, "TyperOption", None), getattr(core, "TyperArgument", None)):
        shown = getattr(cls, "display_type_rich", None)
        if cls is None or shown is None or getattr(shown, "_strcli", False):
            continue

        def display_type_rich(self: Any, ctx: Any, shown: Any = shown, argument: bool = cls is core.TyperArgument
                              ) -> str | None:
            if getattr(self, "is_flag", False):
                return None
            text = shown(self, ctx)
            if isinstance(text, str) and text.startswith("<list[") and text.endswith("]>"):
                return None if argument else f"<{text[6:-2].lower()}>"
            return text

        display_type_rich._strcli = True  # type: ignore[attr-defined]
        cls.display_type_rich = display_type_rich


def _plain_argument_usage() -> None:
    """typer 0.29 writes a required argument as `{file}` in the usage line, a shape no
    other tool uses; write it FILE (required), [FILE] (optional), FILE... (several), as
    click and man pages do (a no-op where typer has no such method)."""
    argument = getattr(getattr(typer, "core", None), "TyperArgument", None)
    shown = getattr(argument, "_usage_display_name", None)
    if argument is None or shown is None or getattr(shown, "_strcli", False):
        return

    def usage_name(self: Any) -> str:
        name = str(getattr(self, "display_name_raw", None) or self.name).upper()
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    usage_name._strcli = True  # type: ignore[attr-defined]
    argument._usage_display_name = usage_name


_flags_take_no_value()
_plain_argument_usage()
app = typer.Typer(help="strcli: 3D human bodies (SMPL) from videos with the STR network.",
                  no_args_is_help=True, add_completion=False)
weights_app = typer.Typer(help="List, download and import weights files.", no_args_is_help=True)
app.add_typer(weights_app, name="weights")

stdout = Console()
stderr = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(fn: F) -> F:
    """Turn a StrcliError into one line on stderr and its exit code; so too a full disk, a
    read-only folder or a permission error from wherever it comes (exit 6). Only a real
    Ctrl-C (or SIGTERM) is reported as an interruption: an EOFError that escapes (a file
    read to a sudden end where nothing maps it), which click would turn into an Abort, is one
    line and exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _shown_paths[:] = _argument_paths(kwargs)
        try:
            with _terminate_as_interrupt():
                return fn(*args, **kwargs)
        except (KeyboardInterrupt, Interrupted) as err:  # Ctrl-C (130) or SIGTERM (143): one line
            stop = err if isinstance(err, Interrupted) else Interrupted("Ctrl-C", 130)
            print(f"error: interrupted ({stop.signal_name}); {getattr(stop, 'hint', None) or INTERRUPTED_HINT}",
                  file=sys.stderr, flush=True)
            raise typer.Exit(stop.exit_code) from None
        except StrcliError as err:
            _refuse(err, kwargs.get("as_json", False))
        except EOFError as err:
            _refuse(unexpected_end(err), kwargs.get("as_json", False))
        except Exception as err:
            mapped = write_failure(err) or torch_mismatch(err)
            if mapped is None:
                raise
            _refuse(mapped, kwargs.get("as_json", False))

    return wrapper  # type: ignore[return-value]


def unexpected_end(err: EOFError) -> StrcliError:
    """An EOFError no loader mapped (exit 1): a file or stream that ended early, never a Ctrl-C."""
    detail = f"EOFError: {err}" if str(err) else "EOFError"
    return StrcliError(f"a file or stream strcli was reading ended early ({detail}), and nothing said which.",
                       "Please report it with the command you ran (an internal error: the file should have "
                       "been named).")


# The paths of the running command's arguments and of $STRCLI_* variables: in an error line,
# a newline (or other control character) inside one of them is shown escaped, never a break.
_shown_paths: list[str] = []


def _argument_paths(kwargs: dict[str, Any]) -> list[str]:
    values = [v for value in kwargs.values() for v in (value if isinstance(value, (list, tuple)) else [value])]
    paths = [str(v) for v in values if isinstance(v, os.PathLike)]
    paths += [v for k, v in os.environ.items() if k.startswith("STRCLI_")]
    return sorted({p for p in paths if not p.isprintable()}, key=len, reverse=True)


_BREAK = re.compile(r"[ \t]*(?:\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029])\s*")


def error_text(err: BaseException | str) -> str:
    """The text after `error: ` on one line: a library's message wrapped over lines is joined
    with spaces, and a path of the command's arguments (or $STRCLI_*) holding a newline or
    another control character is shown with it escaped (`a\\nb`), so that nothing splits the
    line. An error laid out on lines of its own on purpose (`StrcliError.lines`: a list of
    missing files) keeps those lines, each made one line the same way."""
    lines = getattr(err, "lines", ()) or (str(err),)
    return "\n".join(_one_line(line) for line in lines)


def _one_line(text: str) -> str:
    for path in _shown_paths:
        text = text.replace(path, "".join(c if c.isprintable() else repr(c)[1:-1] for c in path))
    return _BREAK.sub(" ", text).rstrip()


def _refuse(err: StrcliError, as_json: bool) -> None:
    """The command failed as a whole: `error: ...` on stderr and its exit code; with
    --json also a JSON object {"error", "exit_code"} on stdout, for the script reading it."""
    text = error_text(err)
    if as_json:
        print(json.dumps({"error": text, "exit_code": err.exit_code}, indent=2))
    print(f"error: {text}", file=sys.stderr)
    raise typer.Exit(err.exit_code) from None


@contextlib.contextmanager
def _terminate_as_interrupt() -> Any:
    """While a command runs, SIGTERM (kill, Slurm's scancel, a CI timeout) raises
    `Interrupted` as Ctrl-C raises KeyboardInterrupt, so temporary outputs are removed and
    locks released on the way out. Only in the main thread (where Python runs handlers)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: Any) -> None:
        raise Interrupted("SIGTERM", 128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def print_table(table: Table) -> None:
    """A rich table on stdout; when stdout is no terminal (a file, a pipe), without the
    spaces rich pads every line with to the console's width."""
    if stdout.is_terminal:
        stdout.print(table)
        return
    with stdout.capture() as captured:
        stdout.print(table)
    print("\n".join(line.rstrip() for line in captured.get().splitlines()))


def _version(value: bool) -> None:
    if value:
        print(f"strcli {__version__}")
        raise typer.Exit()


ABLATION_HELP = ("Ablation variant. The paper's Table 2: full, no_ttr, no_ste, no_ste_time, no_ste_frequency, "
                 "no_self_integration, no_cross_integration. The authors' extras: ttr_1_fragment, "
                 "ttr_2_fragments, ttr_8_fragments, plain_gru_for_ttr, senet_for_ste, ste_plain_difference, "
                 "self_integration_only, cross_integration_only, plain_aggregation (docs/model.md).")


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False) -> None:
    """strcli: 3D human bodies (SMPL) from videos with the STR network."""


def usable_outputs(folders: list[Any], smpl_dir: Any = None) -> tuple[list[Any], int]:
    """The output folders of `render`, `export` and `view` whose manifest passes the check,
    and the exit code of the first that does not (0: none): each such one is said on one line
    now, before the SMPL file is looked for through the manifests, so a damaged folder is
    never reported as a missing SMPL file. One folder, damaged: its error is raised (its exit
    code). A place the user named for the SMPL file (`smpl_dir`, $STRCLI_SMPL_DIR) is checked
    first: it does not depend on the manifests (MissingAssetError, exit 3, as `reconstruct`)."""
    from strcli.body.files import find_smpl_file, named_smpl_place
    from strcli.road.output_check import readable_outputs

    if named_smpl_place(smpl_dir) is not None:
        find_smpl_file("neutral", smpl_dir)

    good, errors = readable_outputs(folders)
    if errors and len(folders) == 1:
        raise errors[0]
    for err in errors:
        print(f"error: {error_text(err)}", file=sys.stderr)
    if not good:
        raise typer.Exit(errors[0].exit_code)
    return good, errors[0].exit_code if errors else 0
