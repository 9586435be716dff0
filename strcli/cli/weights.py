"""`strcli weights list|fetch|make-test-smpl|import`: the weights files."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from strcli.cli.common import app, error_text, print_table, reports_errors, stderr, stdout
from strcli.utils.errors import StrcliError
from strcli.utils.progress import download_progress, end_task

weights_app = typer.Typer(help="List, download and import weights files.", no_args_is_help=True)
app.add_typer(weights_app, name="weights")


@weights_app.command("list")
@reports_errors
def weights_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False
                 ) -> None:
    """Show every asset of the manifest: present, missing, corrupt or unverified."""
    from strcli.road.assets import list_states
    from strcli.weights.registry import weights_root

    states = list_states()
    if as_json:
        print(json.dumps([{"name": s.asset.name, "status": s.status.value, "path": str(s.path),
                           "detail": s.detail, "licence": s.asset.licence,
                           "needed_by": list(s.asset.needed_by), "manual": s.asset.manual}
                          for s in states], indent=2))
        return
    # Names and files stay whole: below 120 columns the table drops "needed by" and
    # "licence" (in --json), and the status detail goes to a line of its own.
    wide = stdout.width >= 120
    table = Table(title=f"weights in {weights_root()}", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("name", no_wrap=True, overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("file", no_wrap=True, overflow="fold")
    for column in ("needed by", "licence") if wide else ():
        table.add_column(column)
    colours = {"present": "green", "missing": "red", "corrupt": "red", "unverified": "yellow"}
    for s in states:
        status = f"[{colours[s.status.value]}]{s.status.value}[/]"
        if wide:
            table.add_row(s.asset.name, status + (f" ({s.detail})" if s.detail else ""), s.asset.file,
                          ", ".join(s.asset.needed_by), s.asset.licence)
            continue
        table.add_row(s.asset.name, status, s.asset.file)
        if s.detail:
            table.add_row("", "", f"({s.detail})")
    print_table(table)
    if not wide:
        stdout.print("(which commands need each file, and its licence: a wider terminal, or --json)",
                     highlight=False)
    for s in states:
        if s.status.value in ("missing", "corrupt"):
            how = s.asset.instructions if s.asset.manual else f"strcli weights fetch {s.asset.name}"
            stdout.print(f"{s.asset.name}: {how}", soft_wrap=True, highlight=False, markup=False)


@weights_app.command("fetch")
@reports_errors
def weights_fetch(
    names: Annotated[list[str] | None, typer.Argument(metavar="NAME", help="Assets to fetch (default: every "
                                                           "downloadable one not yet present, except "
                                                           "the optional TCMR/VIBE files).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Download weights with progress, resume, checksum and atomic rename."""
    import strcli.road.assets  # noqa: F401 (registers the check of a download with no checksum)
    from strcli.weights.registry import Manifest, Status, check_asset, fetch_asset

    manifest = Manifest.load()
    assets = ([manifest.get(n) for n in names] if names else
              [a for a in manifest.assets.values() if not a.manual and not a.optional])
    failures: list[StrcliError] = []
    for asset in assets:
        state = check_asset(asset)
        if state.status == Status.PRESENT:
            print(f"{asset.name}: {state.path} (present)")  # a result: stdout, as a fetched file's line
            continue
        with download_progress(stderr, quiet) as bar:
            task = bar.add_task(asset.name, total=asset.size or None, unit="bytes")

            def update(done: int, total: int | None, task: Any = task, bar: Any = bar) -> None:
                bar.update(task, completed=done, total=total)

            try:
                path = fetch_asset(asset, progress=update)
            except StrcliError as err:
                end_task(bar, task, failed=True)  # no `done` line for it
                print(f"error: {asset.name}: {error_text(err)}", file=sys.stderr)
                failures.append(err)
                continue
        print(f"{asset.name}: {path}")
    if failures:
        raise typer.Exit(failures[0].exit_code)


@weights_app.command("make-test-smpl")
@reports_errors
def weights_make_test_smpl(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="Folder to write SMPL_NEUTRAL.pkl into (made if "
                                                               "missing); then pass --smpl-dir DIR.")],
    into_weights: Annotated[bool, typer.Option("--into-weights", help="Allow DIR to be strcli's weights/smpl/ "
                            "folder, where every command then finds the test body without --smpl-dir.")] = False,
) -> None:
    """Write a generated SMPL-format test body (NOT SMPL: meaningless shapes) to try the pipeline without the SMPL file."""
    from strcli.utils.errors import UsageError
    from strcli.utils.locks import WholeFile
    from strcli.road.inputs import missing_folders, remove_empty
    from strcli.body.generated import TEST_BODY_KEY, TEST_BODY_NOTE, write_test_body
    from strcli.body.files import SMPL_FILE_NAMES
    from strcli.weights.registry import weights_root

    probe = folder  # the first part of DIR that exists must be a folder (DIR itself, or where it is made)
    while not probe.exists() and not probe.is_symlink() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UsageError(f"{probe} is a file, not a folder.",
                         "Pass a folder (it is made when missing), then --smpl-dir with it.")
    real_place = (weights_root() / "smpl").resolve()
    if folder.resolve() == real_place and not into_weights:
        raise UsageError(f"{folder} is strcli's weights/smpl/ folder, where the real SMPL file goes.",
                         "Write the test body elsewhere and pass --smpl-dir DIR, or add --into-weights to put it "
                         "there anyway (remove it before you import the real file).")
    target = folder / SMPL_FILE_NAMES["neutral"][0]
    for name in SMPL_FILE_NAMES["neutral"]:
        present = folder / name
        if present.is_file() and TEST_BODY_KEY.encode() not in present.read_bytes():
            raise UsageError(f"{present} is there already and is not a generated test body; strcli does not "
                             "replace an SMPL file with one.", "Choose another folder.")
    created = missing_folders(folder)  # removed again if the write fails (a full disk): nothing is left
    try:
        with WholeFile(target) as tmp:
            write_test_body(tmp)
    except BaseException:
        remove_empty(created)
        raise
    print(target)
    print(f"warning: {target} is {TEST_BODY_NOTE}: use it to try the pipeline only (--smpl-dir {folder}).",
          file=sys.stderr)


@weights_app.command("import")
@reports_errors
def weights_import(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A weights or SMPL file you already have.")],
    name: Annotated[str | None, typer.Option(help="The manifest asset it is (default: recognised "
                                                  "by checksum or file name).")] = None,
) -> None:
    """Register a file you already have (verifying or recording its checksum)."""
    from strcli.road.assets import import_file

    state = import_file(file, name)
    print(f"{state.asset.name}: {state.path}")
