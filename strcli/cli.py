"""The `strcli` command line: parse, call the library, print. Nothing else lives here.

Progress and errors go to stderr, results to stdout; `--json` prints machine-readable
results. A `StrcliError` becomes one line `error: ...` and its exit code (README table).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from strcli import __version__
from strcli.errors import StrcliError

app = typer.Typer(help="strcli: 3D human bodies (SMPL) from videos with the STR network.",
                  no_args_is_help=True, add_completion=False)
weights_app = typer.Typer(help="List, download and import weights files.", no_args_is_help=True)
app.add_typer(weights_app, name="weights")

stdout = Console()
stderr = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(fn: F) -> F:
    """Turn a StrcliError into one line on stderr and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StrcliError as err:
            print(f"error: {err}", file=sys.stderr)
            raise typer.Exit(err.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        print(f"strcli {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False) -> None:
    """strcli: 3D human bodies (SMPL) from videos with the STR network."""


@app.command()
@reports_errors
def info(
    ablation: Annotated[str, typer.Option(help="Table 2 variant: full, no_ttr, no_ste, no_ste_time, "
                                               "no_ste_frequency, no_self_integration, "
                                               "no_cross_integration.")] = "full",
    checkpoint: Annotated[Path | None, typer.Option(help="Describe the model of this strcli "
                                                         "checkpoint instead.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Print the STR configuration and its parameter count per component."""
    from strcli.info import describe_model

    report = describe_model(ablation=ablation, checkpoint=checkpoint)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    config = Table(title=f"STR configuration ({report['ablation']})", show_header=False)
    for key, value in report["config"].items():
        config.add_row(key, str(value))
    params = Table(title="Parameters")
    params.add_column("component")
    params.add_column("parameters", justify="right")
    for name, count in report["parameters"].items():
        params.add_row(name, f"{count:,}")
    stdout.print(config)
    stdout.print(params)
    stdout.print(f"strcli {report['strcli']}  torch {report['torch']}  devices: {report['devices']}")


@weights_app.command("list")
@reports_errors
def weights_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False
                 ) -> None:
    """Show every asset of the manifest: present, missing, corrupt or unverified."""
    from strcli.weights import list_states, weights_root

    states = list_states()
    if as_json:
        print(json.dumps([{"name": s.asset.name, "status": s.status.value, "path": str(s.path),
                           "detail": s.detail, "licence": s.asset.licence,
                           "needed_by": list(s.asset.needed_by), "manual": s.asset.manual}
                          for s in states], indent=2))
        return
    table = Table(title=f"weights in {weights_root()}")
    table.add_column("name", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for column in ("file", "needed by", "licence"):
        table.add_column(column)
    colours = {"present": "green", "missing": "red", "corrupt": "red", "unverified": "yellow"}
    for s in states:
        status = f"[{colours[s.status.value]}]{s.status.value}[/]" + (f" ({s.detail})" if s.detail else "")
        table.add_row(s.asset.name, status, s.asset.file, ", ".join(s.asset.needed_by), s.asset.licence)
    stdout.print(table)
    for s in states:
        if s.status.value in ("missing", "corrupt"):
            how = s.asset.instructions if s.asset.manual else f"strcli weights fetch {s.asset.name}"
            stdout.print(f"{s.asset.name}: {how}", soft_wrap=True, highlight=False, markup=False)


@weights_app.command("fetch")
@reports_errors
def weights_fetch(
    names: Annotated[list[str] | None, typer.Argument(help="Assets to fetch (default: every "
                                                           "downloadable one not yet present).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Download weights with progress, resume, checksum and atomic rename."""
    from strcli.weights import Manifest, Status, check_asset, fetch_asset

    manifest = Manifest.load()
    assets = ([manifest.get(n) for n in names] if names else
              [a for a in manifest.assets.values() if not a.manual])
    failures: list[StrcliError] = []
    for asset in assets:
        if check_asset(asset).status == Status.PRESENT:
            stderr.print(f"{asset.name}: present")
            continue
        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), console=stderr, disable=quiet, transient=True) as bar:
            task = bar.add_task(asset.name, total=asset.size or None)

            def update(done: int, total: int | None, task: Any = task, bar: Progress = bar) -> None:
                bar.update(task, completed=done, total=total)

            try:
                path = fetch_asset(asset, progress=update)
            except StrcliError as err:
                print(f"error: {asset.name}: {err}", file=sys.stderr)
                failures.append(err)
                continue
        print(f"{asset.name}: {path}")
    if failures:
        raise typer.Exit(failures[0].exit_code)


@weights_app.command("import")
@reports_errors
def weights_import(
    file: Annotated[Path, typer.Argument(help="A weights or SMPL file you already have.")],
    name: Annotated[str | None, typer.Option(help="The manifest asset it is (default: recognised "
                                                  "by checksum or file name).")] = None,
) -> None:
    """Register a file you already have (verifying or recording its checksum)."""
    from strcli.weights import import_file

    state = import_file(file, name)
    print(f"{state.asset.name}: {state.path}")


def run() -> None:
    app()
