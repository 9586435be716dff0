"""The `strcli` command line: parse, call the library, print. Nothing else lives here.

Progress and errors go to stderr, results to stdout; `--json` prints machine-readable
results. A `StrcliError` becomes one line `error: ...` and its exit code (README table).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress
from rich import box
from rich.table import Table

from strcli import __version__
from strcli.errors import INTERRUPTED_HINT, Interrupted, StrcliError, torch_mismatch, write_failure
from strcli.options import X264_PRESETS
from strcli.progress import LineProgress, StageNotes, count_progress, download_progress, end_task, work_progress

if TYPE_CHECKING:
    from strcli.options import ModelSources, ReconstructOptions


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
    read-only folder or a permission error from wherever it comes (exit 6)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with _terminate_as_interrupt():
                return fn(*args, **kwargs)
        except (KeyboardInterrupt, Interrupted) as err:  # Ctrl-C (130) or SIGTERM (143): one line
            stop = err if isinstance(err, Interrupted) else Interrupted("Ctrl-C", 130)
            print(f"error: interrupted ({stop.signal_name}); {INTERRUPTED_HINT}", file=sys.stderr, flush=True)
            raise typer.Exit(stop.exit_code) from None
        except StrcliError as err:
            _refuse(err, kwargs.get("as_json", False))
        except Exception as err:
            mapped = write_failure(err) or torch_mismatch(err)
            if mapped is None:
                raise
            _refuse(mapped, kwargs.get("as_json", False))

    return wrapper  # type: ignore[return-value]


def _refuse(err: StrcliError, as_json: bool) -> None:
    """The command failed as a whole: `error: ...` on stderr and its exit code; with
    --json also a JSON object {"error", "exit_code"} on stdout, for the script reading it."""
    if as_json:
        print(json.dumps({"error": str(err), "exit_code": err.exit_code}, indent=2))
    print(f"error: {err}", file=sys.stderr)
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


def _print_table(table: Table) -> None:
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


@app.command()
@reports_errors
def info(
    ablation: Annotated[str, typer.Option(help=ABLATION_HELP)] = "full",
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
    authors = report["authors_parameters"]
    comparable = report["comparable_with_authors"]
    params.add_row("the authors' STR (about)" if comparable else "the authors' full STR (about)",
                   f"{authors['str'] / 1e6:.1f}M")
    ours = report["parameters"]["total"]
    stdout.print(config)
    stdout.print(params)
    theirs = (f"about {authors['str'] / 1e6:.1f}M ({authors['counted_with_hmr'] / 1e6:.2f}M counted with SPIN's "
              f"HMR, {authors['spin_hmr'] / 1e6:.2f}M)")
    if comparable:
        stdout.print(f"STR's own network (no backbone): {ours / 1e6:.1f}M parameters; the authors': {theirs}; "
                     f"{100 * (ours / authors['str'] - 1):+.1f}%", highlight=False)
    else:  # an ablation (or other widths) against the full model's count would be a false difference
        what = (f"ablation {report['ablation']}" if report["ablation"] != "full"
                else "the widths of this checkpoint")
        stdout.print(f"STR's own network (no backbone), {what}: {ours / 1e6:.1f}M parameters; the authors' "
                     f"{theirs} is the full model's, with the paper's widths", highlight=False)
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
    _print_table(table)
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
    from strcli.weights import Manifest, Status, check_asset, fetch_asset

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
                print(f"error: {asset.name}: {err}", file=sys.stderr)
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
    from strcli.errors import UsageError, output_error
    from strcli.generated_smpl import TEST_BODY_KEY, TEST_BODY_NOTE, write_test_body
    from strcli.smpl_files import SMPL_FILE_NAMES
    from strcli.weights import weights_root

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
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_test_body(target)
    except OSError as err:
        raise output_error(err, target) from err
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
    from strcli.weights import import_file

    state = import_file(file, name)
    print(f"{state.asset.name}: {state.path}")


class _RichProgress:
    """`strcli.reconstruct.Progress` on a progress display (stderr): rich bars or plain lines."""

    def __init__(self, bar: Progress | LineProgress | None, video: str) -> None:
        self.bar, self.video, self.task = bar, video, None

    def start(self, stage: str, total: int | None) -> None:
        if self.bar is not None:
            self.task = self.bar.add_task(f"{self.video}: {stage}", total=total,
                                          unit="bodies" if stage.startswith("bodies") else "frames")

    def advance(self, count: int = 1) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.advance(self.task, count)

    def finish(self, failed: bool = False) -> None:
        if self.bar is not None and self.task is not None:
            end_task(self.bar, self.task, failed)
            self.task = None

    def fail(self) -> None:
        self.finish(failed=True)


@app.command()
@reports_errors
def reconstruct(
    inputs: Annotated[list[Path] | None, typer.Argument(metavar="VIDEO",
                                                        help="Video files and/or folders of videos.")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder; each video gets "
                                         "<output>/<video-stem>/.")] = Path("out"),
    example: Annotated[bool, typer.Option("--example", help="Add the public sample video (downloaded "
                                          "and checksummed on first use) to the inputs.")] = False,
    detections: Annotated[Path | None, typer.Option(help="MOT Challenge detections "
                          "(frame,-1,x,y,w,h,score,...) instead of the detector: a file for one "
                          "video, or a folder of <video-stem>.det.txt, <video-stem>.txt or "
                          "<video-stem>/det/det.txt files.")] = None,
    detector: Annotated[Path | None, typer.Option(help="Ultralytics YOLO weights (.pt) or model "
                        "yaml (untrained); default: the manifest's yolo11m.pt.")] = None,
    model: Annotated[str, typer.Option("--model", help="Temporal model(s): str, tcmr, vibe, or several "
                     "(str,tcmr): the first's files go to <stem>/, the others' to <stem>/models/<name>/.")] = "str",
    checkpoint: Annotated[list[Path] | None, typer.Option(help="Weights of a --model, recognised by "
                          "their structure (strcli STR, TCMR or VIBE file); repeat for several models. "
                          "Default: the imported str_checkpoint, the manifest's tcmr_demo and "
                          "vibe_wo_3dpw.")] = None,
    backbone: Annotated[Path | None, typer.Option(help="SPIN checkpoint for the ResNet-50; "
                        "default: the manifest's spin_checkpoint.")] = None,
    smpl_dir: Annotated[Path | None, typer.Option(help="The SMPL neutral model: its folder, smplx's "
                        "model folder (DIR/smpl/SMPL_NEUTRAL.pkl) or the file.")] = None,
    untrained: Annotated[bool, typer.Option("--untrained", help="Run a randomly initialised STR "
                         "(its regressor from SPIN's file, downloaded if missing) when no trained weights "
                         "exist: the bodies are meaningless; for testing the pipeline.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the random initialisation (--untrained).")] = 0,
    offline: Annotated[bool, typer.Option("--offline", help="Never download; fail if a weights "
                       "file is missing (with --untrained, a missing SPIN file gives a random "
                       "backbone).")] = False,
    start: Annotated[str | None, typer.Option(help="First frame: a frame number (120) or seconds "
                     "(4.5s: the first frame whose timestamp is at or after it).")] = None,
    end: Annotated[str | None, typer.Option(help="Stop before this frame (number), or before the first "
                   "frame whose timestamp is at or after this time (4.5s).")] = None,
    stride: Annotated[int, typer.Option(help="Use every N-th frame.")] = 1,
    min_track_length: Annotated[int, typer.Option(help="Drop tracks shorter than this many frames.")] = 8,
    max_gap: Annotated[int, typer.Option(help="Fill gaps of up to this many frames by "
                       "interpolating the box.")] = 8,
    smooth: Annotated[int, typer.Option(help="Box smoothing window in frames (1 = off).")] = 5,
    max_people: Annotated[int | None, typer.Option(help="Keep only the N longest tracks.")] = None,
    detector_conf: Annotated[float, typer.Option(help="Detector confidence threshold.")] = 0.25,
    min_score: Annotated[float, typer.Option(help="Ignore --detections boxes scored below this.")] = 0.0,
    focal: Annotated[float | None, typer.Option(help="Focal length in pixels (default: the image "
                     "diagonal).")] = None,
    mesh_format: Annotated[str, typer.Option(help="obj, ply, obj,ply or none.")] = "obj",
    window_stride: Annotated[int | None, typer.Option(help="Frames between STR's 16-frame windows (1-16; "
                             "smaller = smoother and slower). Default 8; 16 with --fast.")] = None,
    detect_every: Annotated[int | None, typer.Option(help="Run the detector on every N-th frame; the "
                            "tracker and gap filling carry the boxes between. Default: every frame on a "
                            "GPU; on a CPU the largest N that still detects 10 times per second of video "
                            "(3 at 30 fps, 1 at 10 fps); with --fast 7.5 times (4 at 30 fps).")] = None,
    detector_imgsz: Annotated[int | None, typer.Option(help="Detector input size in pixels (multiple of "
                              "32). Default 640; 320 with --fast.")] = None,
    compile_backbone: Annotated[bool, typer.Option("--compile", help="torch.compile the ResNet-50: about "
                                "25 s once per run, then about 20% faster on a CPU; pays for long "
                                "videos or many of them (docs/performance.md).")] = False,
    fast: Annotated[bool, typer.Option("--fast", help="Trade accuracy for speed: the detector 7.5 times per "
                    "second of video (every 4th frame at 30 fps) at 320 px, STR windows every 16 frames (see "
                    "docs/performance.md for the trade-off measured).")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Crops per ResNet-50 batch on a GPU (a CPU runs "
                          "them 8 at a time) and windows per STR batch; lower it if the GPU runs out of "
                          "memory.")] = 64,
    detector_batch: Annotated[int, typer.Option(help="Frames per detector call (0 = auto: 16 on a GPU, "
                              "1 on a CPU); lower it if the GPU runs out of memory on 4K video.")] = 0,
    shard: Annotated[str | None, typer.Option(help="i/n: process only every n-th video from the "
                     "i-th (0-based), to split a folder across machines.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Redo videos that are already done, and "
                         "replace a folder that holds another video of the same stem.")] = False,
    render_overlay: Annotated[bool, typer.Option("--render", help="Also write <output>/<video-stem>/"
                              "overlay.mp4 right away (`strcli render` defaults; for its options run "
                              "`strcli render` instead).")] = False,
    export: Annotated[str | None, typer.Option("--export", help="Also write glb and/or bvh for each "
                      "video (`strcli export --format`).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summary table.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")] = False,
) -> None:
    """Reconstruct every person in the videos: tracks, per-frame SMPL, meshes, manifest."""
    from strcli.errors import UsageError
    from strcli.inputs import (Shard, check_detections, check_file, check_output_folder, find_videos,
                               missing_folders, remove_empty, run_problem, select_shard, video_problem)
    from strcli.options import (ModelSources, ReconstructOptions, parse_export_formats, parse_mesh_formats,
                                parse_models)
    from strcli.smpl_files import find_smpl_file, named_smpl_place
    from strcli.tracking import TrackingConfig
    from strcli.weights import Manifest

    # Everything about the command line and its files first: no torch, no model, no download.
    if not inputs and not example:
        raise UsageError("no input videos given.", "Pass video files or folders, or --example.")
    if max_people is not None and max_people < 1:
        raise UsageError(f"--max-people {max_people}: must be at least 1.")
    options = ReconstructOptions(
        start=start, end=end, stride=stride, detector_conf=detector_conf, min_score=min_score,
        tracking=TrackingConfig(min_length=min_track_length, max_gap=max_gap, smooth_window=smooth,
                                max_people=max_people),
        focal=focal, mesh_formats=parse_mesh_formats(mesh_format), device=device, batch_size=batch_size,
        detector_batch=detector_batch,
        window_stride=window_stride if window_stride is not None else 16 if fast else 8,
        detect_every=detect_every or 0,  # 0 = auto; every frame on a GPU (set once torch says there is one)
        detect_hz=7.5 if fast else 10.0, detector_imgsz=detector_imgsz or (320 if fast else 640))
    sources = ModelSources(models=parse_models(model), checkpoints=tuple(checkpoint or ()), backbone=backbone,
                           detector=detector, smpl_dir=smpl_dir, untrained=untrained, seed=seed,
                           download=not offline)
    if export:
        parse_export_formats(export)
    shard_spec = Shard.parse(shard)
    check_detections(detections)
    for path in checkpoint or ():
        check_file(path, "checkpoint")
    check_file(backbone, "--backbone")
    if named_smpl_place(smpl_dir) is not None:  # a place the user named must hold the file: no other is taken
        find_smpl_file("neutral", smpl_dir)
    if detections is None:
        check_file(detector, "--detector", allow_suffix=".yaml")
    check_output_folder(output)
    created = missing_folders(output)  # removed at the end if the run leaves them empty
    try:
        paths = list(inputs or [])
        found = find_videos(paths) if paths else []
        refused = {video: problem for video in found if (problem := video_problem(video)) is not None}
        sample = Manifest.load().get("sample_video").path() if example else None
        if sample is not None:  # downloaded with the weights (every missing file named at once)
            found.append(sample)
        candidates = select_shard(found, shard_spec)
        if detections is not None and detections.is_file() and len(candidates) > 1:
            raise UsageError(f"--detections {detections} is one file for {len(candidates)} videos.",
                             "For several videos, pass a folder holding <video-stem>.det.txt files.")
        # Each video decoded (header and first frame), its detections read and fitted, its
        # folder not busy in another process.
        for video in candidates:
            if video == sample and not video.exists():
                continue  # not downloaded yet: checked once it is
            if video not in refused and (problem := run_problem(
                    video, output, overwrite, detections, min_score=min_score)) is not None:
                refused[video] = problem
        videos = [v for v in candidates if v not in refused]
        for video in candidates:
            if video in refused:
                print(f"error: {video.name}: {refused[video]}", file=sys.stderr)

        results: list[Any] = []
        export_failures: list[int] = []
        if videos:
            results, export_failures = _reconstruct_videos(
                videos, output, options, sources, detections, quiet=quiet, overwrite=overwrite,
                render_overlay=render_overlay, export=export, fast=fast, compile_backbone=compile_backbone,
                also=("sample_video",) if example else ())
        done = {r.video: r for r in results}
        results = [done[v] if v in done else _Refused(v, str(refused[v]), refused[v].exit_code)
                   for v in candidates]
        _print_results(results, as_json, quiet)
    finally:
        remove_empty(created)
    code = next((r.exit_code for r in results if r.status == "failed"), 0) or next(iter(export_failures), 0)
    if code:
        raise typer.Exit(code)


@dataclasses.dataclass(frozen=True)
class _Refused:
    """A video refused before anything was loaded: missing, empty, unreadable, undecodable,
    a still image, or its folder busy in another process."""

    video: Path
    message: str
    exit_code: int
    status: str = "failed"
    output: Path | None = None
    tracks: int = 0
    frames: int = 0
    seconds: float = 0.0
    warnings: tuple[str, ...] = ()
    rendered: Path | None = None
    bytes: int = 0
    exported: tuple[Path, ...] = ()


def _reconstruct_videos(videos: list[Path], output: Path, options: ReconstructOptions, sources: ModelSources,
                        detections: Path | None, *, quiet: bool, overwrite: bool, render_overlay: bool,
                        export: str | None, fast: bool, compile_backbone: bool, also: tuple[str, ...] = ()
                        ) -> tuple[list[Any], list[int]]:
    """Import and load what the run needs (saying so on stderr), then run the batch of the
    checked `videos` with the checked `options` (`strcli.options.ReconstructOptions`) and
    `sources` (`ModelSources`); `also` names further assets gathered with the weights (the
    sample video of --example). Returns the results, and the exit codes of failed exports
    (--export)."""
    notes = StageNotes(stderr, quiet)
    with notes.showing("loading torch and ultralytics..."):
        from strcli.batch import run_batch
        from strcli.devices import resolve_device
        from strcli.export import export_after
        from strcli.reconstruct import load_models
        from strcli.render import RenderOptions

        exporter = export_after(export)
        if not options.detect_every and resolve_device(options.device).type == "cuda" and not fast:
            options = dataclasses.replace(options, detect_every=1)  # a GPU detects every frame
        notes.note("finding and checking the weights (downloaded on first use)...")
        # The networks are built when the first video that is not skipped needs them.
        models = load_models(sources, options.device, options.batch_size, need_detector=detections is None,
                             compile_backbone=compile_backbone, lazy=True, also=also,
                             download_progress=notes.download)
    # The networks' warnings (an untrained STR, a random backbone) once they are built: not
    # for a batch whose videos are all skipped. -q prints no warning: the manifests keep them.
    shown = set(models.warnings)

    def built() -> None:
        for warning in models.warnings if not quiet else ():
            print(f"warning: {warning}", file=sys.stderr)

    models.on_built = built

    export_failures: list[int] = []
    exported: dict[Path, Any] = {}  # video -> its result after --export (files, size counted again)

    def report(result: Any) -> None:
        failure = None
        if exporter is not None:
            exported[result.video], failure = exporter(result, models.ready().body)
        if failure is not None:
            print(f"error: {result.video.name}: export failed: {failure}", file=sys.stderr)
            export_failures.append(failure.exit_code)
        for warning in result.warnings if not quiet else ():
            if warning not in shown:
                print(f"warning: {result.video.name}: {warning}", file=sys.stderr)
        if result.status == "failed":
            print(f"error: {result.video.name}: {result.message}", file=sys.stderr)

    with work_progress(stderr, quiet) as bar:
        results = run_batch(videos, output, options, models, detections, overwrite,
                            progress_for=lambda v: _RichProgress(None if quiet else bar, v.name),
                            on_result=report, render=RenderOptions() if render_overlay else None)
    return [exported.get(r.video, r) for r in results], export_failures


def _print_results(results: list[Any], as_json: bool, quiet: bool) -> None:
    if as_json:
        print(json.dumps([{"video": str(r.video), "status": r.status,
                           "output": str(r.output) if r.output else None, "tracks": r.tracks,
                           "frames": r.frames, "seconds": round(r.seconds, 3), "message": r.message,
                           "overlay": str(r.rendered) if r.rendered else None,
                           "exported": [str(p) for p in r.exported], "bytes": r.bytes,
                           "exit_code": r.exit_code, "warnings": list(r.warnings)} for r in results],
                         indent=2))
    elif not quiet:
        table = Table(title="strcli reconstruct")
        for column in ("video", "status", "tracks", "frames", "seconds", "size", "output / reason"):
            # Names, paths and reasons fold onto more lines when the terminal is narrow: never cut.
            folds = column in ("video", "output / reason")
            table.add_column(column, justify="right" if column in ("tracks", "frames", "seconds", "size")
                             else "left", overflow="fold" if folds else "ellipsis", no_wrap=not folds)
        colours = {"done": "green", "skipped": "cyan", "failed": "red"}
        for r in results:
            table.add_row(r.video.name, f"[{colours[r.status]}]{r.status}[/]", str(r.tracks), str(r.frames),
                          f"{r.seconds:.1f}", _size(r.bytes) if r.output else "",
                          str(r.output) if r.status != "failed" else r.message)
        console = _results_console()
        console.print(table)
        for r in results:
            if r.exported:
                files = ", ".join(f"{p}/" if p.is_dir() else str(p) for p in r.exported)
                console.print(f"{r.video.name}: exported {files}", soft_wrap=True, markup=False)
        failed = sum(r.status == "failed" for r in results)
        total = sum(r.bytes for r in results)
        console.print(f"{len(results) - failed} of {len(results)} video(s) ok"
                      + (f", {failed} failed" if failed else "") + (f"; outputs take {_size(total)}" if total else ""),
                      soft_wrap=True)


def _results_console() -> Console:
    """stdout for a results table: the terminal's width on a terminal; anywhere else (a file,
    a pipe, a log) no width limit, so paths and reasons are never folded or cut."""
    if stdout.is_terminal:
        return stdout
    return Console(width=100_000, no_color=True, highlight=False)


def _size(count: int) -> str:
    from strcli.outputs import human_bytes

    return human_bytes(count)


@app.command()
@reports_errors
def render(
    outputs: Annotated[list[Path], typer.Argument(metavar="OUTPUT", help="reconstruct output folders: OUT (every video "
                                                       "in it) or OUT/<video-stem>.")],
    overlay: Annotated[bool, typer.Option("--overlay/--no-overlay", help="Draw over the video (default) "
                       "or on a plain background.")] = True,
    side_view: Annotated[bool, typer.Option("--side-view", help="Add a panel seen from the side.")] = False,
    compare: Annotated[bool, typer.Option("--compare", help="One labelled panel per model of "
                       "`reconstruct --model str,tcmr`, side by side, in compare.mp4.")] = False,
    tracks: Annotated[str | None, typer.Option(help="Only these track ids, e.g. 0,2.")] = None,
    alpha: Annotated[float, typer.Option(help="Opacity of the bodies (0-1].")] = 0.8,
    joints: Annotated[bool, typer.Option("--joints", help="Draw the 2D joints.")] = False,
    video: Annotated[bool, typer.Option("--video/--no-video", help="Write overlay.mp4.")] = True,
    frames: Annotated[str | None, typer.Option(help="Also write these frames as PNG: 0,10,20 or "
                      "start:stop[:step].")] = None,
    crf: Annotated[int, typer.Option(help="x264 quality (0-51, lower is better).")] = 20,
    preset: Annotated[str, typer.Option(help=f"x264 speed: {', '.join(X264_PRESETS)} (slower = smaller "
                      "files at the same quality).")] = "veryfast",
    fps: Annotated[float | None, typer.Option(help="Output a constant frame rate (default: each frame "
                   "keeps its source time, a variable rate included).")] = None,
    source: Annotated[Path | None, typer.Option("--video-file", help="The source video, if it moved "
                      "since reconstruct (one output folder only).")] = None,
    smpl_dir: Annotated[Path | None, typer.Option(help="The SMPL neutral model: its folder (or smplx's "
                        "model folder) or the file; default: the file the manifest records.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Overlay videos (and PNGs) of the reconstructed bodies on their input videos, headless."""
    from strcli.errors import UsageError
    from strcli.inputs import output_folders
    from strcli.options import check_device_name, check_render_values, parse_frames, parse_tracks
    from strcli.smpl_files import smpl_file_for_outputs

    # The flags, the folders and the SMPL file first, without torch: a bad value is refused at once.
    chosen_tracks, chosen_frames = parse_tracks(tracks), parse_frames(frames)
    check_render_values(alpha=alpha, crf=crf, fps=fps, preset=preset, video=video, frames=chosen_frames,
                        compare=compare, side_view=side_view)
    check_device_name(device)
    folders = output_folders(outputs)
    if source is not None and len(folders) > 1:
        raise UsageError("--video-file works with one output folder.", "Render the folders one at a time.")
    smpl_file, smpl_note = smpl_file_for_outputs(folders, smpl_dir)
    if smpl_note:
        print(f"warning: {smpl_note}", file=sys.stderr)

    from strcli.body import Body
    from strcli.devices import resolve_device
    from strcli.render import RenderOptions, render_video

    options = RenderOptions(overlay=overlay, side_view=side_view, tracks=chosen_tracks, alpha=alpha,
                            joints=joints, video=video, frames=chosen_frames, crf=crf, fps=fps,
                            preset=preset, compare=compare)
    torch_device = resolve_device(device)
    body = Body.from_file(smpl_file).to(torch_device)
    failed = 0
    with work_progress(stderr, quiet) as bar:
        for folder in folders:
            task = bar.add_task(f"{folder.name}: render", total=None, unit="frames")
            try:
                result = render_video(folder, body, options, torch_device, source,
                                      progress=lambda done, total, t=task: bar.update(t, completed=done,
                                                                                      total=total))
            except BaseException as err:
                end_task(bar, task, failed=True)  # no `done` line for it
                if not isinstance(err, StrcliError):
                    raise
                print(f"error: {folder.name}: {err}", file=sys.stderr)
                failed = failed or err.exit_code
                continue
            end_task(bar, task)
            print(_render_line(folder.name, result))
    if failed:
        raise typer.Exit(failed)


def _render_line(name: str, result: Any) -> str:
    """One summary line of a render: what was written where, how many frames, how long."""
    written = [str(result.video)] if result.video else []
    if result.pngs:
        written.append(f"{result.pngs} PNG{'s' if result.pngs > 1 else ''} in {result.png_folder}")
    return (f"{name}: {' and '.join(written) or 'nothing written'} "
            f"({result.frames} frame{'s' if result.frames != 1 else ''} drawn in {result.seconds:.1f} s)")


def _model_config(path: Path | None) -> Any:
    from strcli.model.config import STRConfig

    if path is None:
        return None
    from strcli.errors import UsageError

    try:
        return STRConfig.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as err:
        raise UsageError(f"--model-config {path}: not a readable STR config ({err}).",
                         "Pass a JSON object of STRConfig fields (docs/model.md).") from err


# Options shared by `train` and `evaluate --ablation` (which trains).
EpochsOpt = Annotated[int | None, typer.Option(help="Epochs (recipe: 30).")]
IterationsOpt = Annotated[int | None, typer.Option(help="Iterations per epoch (recipe: 500).")]
BatchOpt = Annotated[int | None, typer.Option(help="Clips per iteration (recipe: 32).")]
ModelConfigOpt = Annotated[Path | None, typer.Option(help="JSON of STRConfig fields (widths), for "
                                                          "experiments; default: docs/model.md's.")]
NoSpinOpt = Annotated[bool, typer.Option("--no-spin", help="Start the regressor from random weights.")]
SmplDirOpt = Annotated[Path | None, typer.Option(help="The SMPL neutral model: its folder, smplx's model folder (DIR/smpl/SMPL_NEUTRAL.pkl) or the file.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the initialisation and of the clip order.")]
WorkersOpt = Annotated[int, typer.Option(help="Data loading processes.")]
DataDirOpt = Annotated[Path, typer.Option(help="Folder of the pre-processed data (TCMR/VIBE layout).")]
OfflineOpt = Annotated[bool, typer.Option("--offline", help="Never download SPIN's files.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
PRECISION_HELP = "fp32, or bf16 (autocast to bfloat16; weights and loss stay fp32)."


def _names(text: str | None) -> tuple[str, ...] | None:
    return tuple(n.strip() for n in text.split(",") if n.strip()) if text else None


def _train_device(device: str) -> Any:
    import os

    from strcli.devices import resolve_device

    if "LOCAL_RANK" in os.environ and device in ("auto", "cuda"):
        device = f"cuda:{os.environ['LOCAL_RANK']}"
    return resolve_device(device)


def _epoch_line(record: Any, epochs: int, dataset: str, prefix: str = "") -> str:
    return (f"{prefix}epoch {record.epoch}/{epochs}: loss {record.loss['total']:.4f}, {dataset} MPJPE "
            f"{record.val.mpjpe:.1f} PA-MPJPE {record.val.pa_mpjpe:.1f} mm, lr {record.lr:.2g}"
            f"{' (best)' if record.best else ''}")


@app.command()
@reports_errors
def train(
    data_dir: DataDirOpt,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder (default runs/<recipe>[-<ablation>]).")] = None,
    recipe: Annotated[str, typer.Option(help="w3dpw (Table 1, with 3DPW) or wo3dpw (without; Table 2).")] = "w3dpw",
    ablation: Annotated[str, typer.Option(help=ABLATION_HELP)] = "full",
    datasets_2d: Annotated[str | None, typer.Option(help="Replace the recipe's 2D sets: insta,posetrack,pennaction "
                                                         "(any of them, comma-separated).")] = None,
    datasets_3d: Annotated[str | None, typer.Option(help="Replace the recipe's 3D sets: 3dpw,mpii3d,h36m.")] = None,
    epochs: EpochsOpt = None,
    iterations: IterationsOpt = None,
    batch_size: BatchOpt = None,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate (recipe: 5e-5).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last.pt.")] = False,
    spin: Annotated[Path | None, typer.Option(help="SPIN checkpoint for the regressor (default: the "
                                                   "manifest's spin_checkpoint).")] = None,
    no_spin: NoSpinOpt = False,
    model_config: ModelConfigOpt = None,
    smpl_dir: SmplDirOpt = None,
    seed: SeedOpt = 0,
    workers: WorkersOpt = 2,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N (under torchrun: the local GPU).")] = "auto",
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
    h36m_smpl: Annotated[bool, typer.Option("--h36m-smpl", help="Use Human3.6M's SMPL labels (NeuralAnnot fits) in "
                                                              "the pose and shape losses; off by default, as in the "
                                                              "paper and TCMR's w/ 3DPW recipe.")] = False,
    precision: Annotated[str, typer.Option(help=PRECISION_HELP)] = "bf16",
) -> None:
    """Train STR the paper's way (TCMR's recipe): log.csv, last.pt and best.pt in the run folder."""
    from strcli.errors import UsageError
    from strcli.model.config import STRConfig
    from strcli.train.evaluate import check_precision
    from strcli.train.trainer import RECIPES, Trainer, check_data_dir, training_assets

    if recipe not in RECIPES:
        raise UsageError(f"unknown --recipe {recipe!r}; choose {' or '.join(RECIPES)}.")
    STRConfig().ablate(ablation)  # an unknown name fails here, before any file is read
    check_precision(precision)
    chosen = RECIPES[recipe].replace(epochs=epochs, iterations=iterations, batch_size=batch_size, lr=lr,
                                     datasets_2d=_names(datasets_2d), datasets_3d=_names(datasets_3d),
                                     h36m_smpl=h36m_smpl or None)
    check_data_dir(chosen, data_dir)  # every missing file named at once, before any download
    out = out or Path("runs") / (recipe + ("" if ablation == "full" else f"-{ablation}"))
    if (out / "last.pt").is_file() and not resume:
        raise UsageError(f"{out} already holds a run.", "Add --resume to continue it, or choose another --out.")
    torch_device = _train_device(device)
    assets = training_assets(smpl_dir, spin, use_spin=not no_spin, download=not offline)
    trainer = Trainer(chosen, data_dir, out, assets.body, torch_device, ablation, assets.spin, seed, workers,
                      _model_config(model_config), assets.mean_params, precision)
    if trainer.rank == 0:
        for note in (*assets.notes, *trainer.notes):
            stderr.print(note, markup=False, highlight=False, soft_wrap=True)
    if resume:
        trainer.resume(out / "last.pt")
    with count_progress(stderr, quiet or trainer.rank != 0) as bar:
        task = bar.add_task(f"epoch {trainer.epoch + 1}", total=chosen.iterations, unit="iterations")

        def iteration(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=f"epoch {trainer.epoch + 1}")

        def epoch(record: Any) -> None:
            stderr.print(_epoch_line(record, chosen.epochs, chosen.val_dataset))

        try:
            trainer.fit(on_iteration=iteration, on_epoch=epoch)
        finally:
            trainer.close()
    if trainer.rank == 0:
        print(f"{out / 'best.pt'} (best validation PA-MPJPE {trainer.best:.1f} mm)")


@app.command()
@reports_errors
def evaluate(
    data_dir: DataDirOpt,
    checkpoint: Annotated[Path | None, typer.Option(help="Checkpoint to score: STR (e.g. runs/w3dpw/best.pt), "
                                                      "or a published TCMR or VIBE file.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="str, tcmr or vibe: refuse a --checkpoint of "
                                                            "another kind (default: whatever it is).")] = None,
    datasets: Annotated[str | None, typer.Option(help="3dpw,mpii3d,h36m (default: every test file found).")] = None,
    ablation: Annotated[str | None, typer.Option(help="Ablations instead: 'all' (Table 2), 'extra' (the "
                                                      "authors' extra ablations), 'everything', or variants "
                                                      "(no_ttr,ttr_2_fragments,...), trained with recipe wo3dpw "
                                                      "into --runs-dir (finished runs are reused, interrupted "
                                                      "ones resumed), scored on MPI-INF-3DHP beside the "
                                                      "reported numbers.")] = None,
    runs_dir: Annotated[Path, typer.Option(help="With --ablation: where the variants' runs go.")] = Path("runs"),
    epochs: EpochsOpt = None,
    iterations: IterationsOpt = None,
    batch_size: BatchOpt = None,
    model_config: ModelConfigOpt = None,
    no_spin: NoSpinOpt = False,
    seed: SeedOpt = 0,
    workers: WorkersOpt = 2,
    json_out: Annotated[Path | None, typer.Option(help="Write the table as JSON here (default: beside the "
                                                       "checkpoint, <name>.eval.json; with --ablation, "
                                                       "<runs-dir>/table2.json).")] = None,
    smpl_dir: SmplDirOpt = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    offline: OfflineOpt = False,
    quiet: QuietOpt = False,
    precision: Annotated[str, typer.Option(help=PRECISION_HELP)] = "fp32",
) -> None:
    """Score a checkpoint Table-1 style (MPJPE, PA-MPJPE, MPVPE, Accel in mm), or train and score the Table 2 variants (--ablation)."""
    from strcli.errors import UsageError
    from strcli.published import TEMPORAL_MODELS, load_temporal
    from strcli.train.evaluate import (DATASET_TITLES, check_precision, evaluate as score, scores_json, table_rows,
                                       test_data_problem)
    from strcli.train.trainer import training_assets

    check_precision(precision)
    if ablation is not None:
        if precision != "fp32":
            raise UsageError("--precision bf16 applies to scoring a --checkpoint; --ablation trains and scores "
                             "its variants in fp32.")
        _evaluate_ablations(ablation, data_dir, runs_dir, epochs, iterations, batch_size, model_config, no_spin,
                            seed, workers, json_out, smpl_dir, device, offline)
        return
    if checkpoint is None:
        raise UsageError("evaluate needs --checkpoint FILE (or --ablation NAME).")
    if model is not None and model not in TEMPORAL_MODELS:
        raise UsageError(f"--model {model}: choose {', '.join(TEMPORAL_MODELS)}.")
    names = [d.strip() for d in datasets.split(",") if d.strip()] if datasets else None
    _check_evaluate_paths(test_data_problem(data_dir, names), checkpoint)  # before any weights are fetched
    torch_device = _train_device(device)
    assets = training_assets(smpl_dir, None, use_spin=False, download=not offline)
    for note in assets.notes:
        stderr.print(note, markup=False, highlight=False, soft_wrap=True)
    network, kind, meta = load_temporal(checkpoint, model)
    network = network.to(torch_device)
    body = assets.body.to(torch_device)
    with count_progress(stderr, quiet) as bar:
        tasks: dict[str, Any] = {}

        def progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total, unit="sequences")
            bar.update(tasks[name], completed=done)

        scores = score(network, body, data_dir, torch_device, names, progress, precision)
    title = kind.upper() + (f", {meta['ablation']}" if kind == "str" else "")
    table = Table(title=f"{checkpoint.name} ({title})")
    for column in ("data set", "frames", "MPJPE", "PA-MPJPE", "MPVPE", "Accel"):
        table.add_column(column, justify="left" if column == "data set" else "right")
    for row in table_rows(scores):
        table.add_row(*row)
    stdout.print(table)
    stdout.print("millimetres (Accel: mm per frame squared); TCMR's protocol, see README")
    for result in scores:
        if result.skipped_videos:
            stdout.print(f"{DATASET_TITLES[result.dataset]}: skipped {result.skipped_videos} sequence(s), "
                         f"{result.skipped_frames} "
                         "frames, shorter than 16 frames after invalid rows were dropped (TCMR's rule)",
                         soft_wrap=True)
    target = json_out or checkpoint.with_name(checkpoint.stem + ".eval.json")
    _write_text(target, scores_json(scores, {"checkpoint": str(checkpoint), "model": kind,
                                             "ablation": meta.get("ablation"), "meta": meta}))
    print(f"{target}")


def _check_evaluate_paths(data_problem: str | None, checkpoint: Path) -> None:
    """Refuse, in one message, the data folder's problem (`test_data_problem`) and a
    --checkpoint that is missing: exit 2 when the data is wrong, else 3 (a missing
    weights file, as for reconstruct --checkpoint)."""
    from strcli.errors import MissingAssetError, UsageError

    checkpoint_problem = (f"--checkpoint {checkpoint} does not exist" if not checkpoint.exists() else
                          f"--checkpoint {checkpoint} is a folder, not a file" if checkpoint.is_dir() else None)
    data_hint = "See README, 'Reproducing the paper', for where to get the test files."
    if data_problem and checkpoint_problem:
        raise UsageError(f"{data_problem}; and {checkpoint_problem}.", f"Check both paths. {data_hint}")
    if data_problem:
        raise UsageError(f"{data_problem}.", data_hint)
    if checkpoint_problem:
        raise MissingAssetError(f"{checkpoint_problem}.", "Check the path (e.g. runs/w3dpw/best.pt).")


def _evaluate_ablations(ablation: str, data_dir: Path, runs_dir: Path, epochs: int | None,
                        iterations: int | None, batch_size: int | None, model_config: Path | None,
                        no_spin: bool, seed: int, workers: int, json_out: Path | None, smpl_dir: Path | None,
                        device: str, offline: bool) -> None:
    from strcli.train.ablations import parse_variants, run_ablations
    from strcli.train.trainer import RECIPES, training_assets

    from strcli.train.trainer import check_data_dir

    variants = parse_variants(ablation)
    recipe = RECIPES["wo3dpw"].replace(epochs=epochs, iterations=iterations, batch_size=batch_size)
    check_data_dir(recipe, data_dir)  # the variants train: every missing file named, before any download
    assets = training_assets(smpl_dir, None, use_spin=not no_spin, download=not offline)
    for note in assets.notes:
        stderr.print(note, markup=False, highlight=False, soft_wrap=True)

    def epoch(variant: str, record: Any) -> None:
        stderr.print(_epoch_line(record, recipe.epochs, recipe.val_dataset, f"{variant}: "))

    results = run_ablations(variants, recipe, data_dir, runs_dir, assets, _train_device(device),
                            _model_config(model_config), seed, workers, epoch)
    if not results:  # not process 0 under torchrun
        return
    table = Table(title="Ablations (Table 2 and the authors' extras): MPI-INF-3DHP")
    for column in ("variant", "PA-MPJPE", "Accel", "reported PA-MPJPE", "reported Accel", "reported by"):
        table.add_column(column, justify="left" if column in ("variant", "reported by") else "right")
    for r in results:
        rep = r.reported
        table.add_row(r.variant, f"{r.score.pa_mpjpe:.1f}", f"{r.score.accel:.1f}",
                      *("-" if v is None else f"{v:.1f}" for v in ((rep.pa_mpjpe, rep.accel) if rep else (None, None))),
                      {"paper": "paper, Table 2", "authors": "authors' repository"}.get(rep.source, "-")
                      if rep else "-")
    stdout.print(table)
    stdout.print("millimetres (Accel: mm per frame squared); TCMR's protocol, see README")
    target = json_out or runs_dir / "table2.json"
    _write_text(target, json.dumps({"recipe": recipe.name, "dataset": "mpii3d", "variants": [
        {"variant": r.variant, "checkpoint": str(r.checkpoint), "pa_mpjpe": r.score.pa_mpjpe,
         "mpjpe": r.score.mpjpe, "accel": r.score.accel, "frames": r.score.frames,
         "paper_pa_mpjpe": r.paper[0] if r.paper else None, "paper_accel": r.paper[1] if r.paper else None,
         "reported_pa_mpjpe": r.reported.pa_mpjpe if r.reported else None,
         "reported_accel": r.reported.accel if r.reported else None,
         "reported_by": r.reported.source if r.reported else None}
        for r in results]}, indent=2))
    print(f"{target}")


def _write_text(path: Path, text: str) -> None:
    """Write a result file under a temp name, then rename it (never half-written)."""
    import os

    from strcli.errors import output_error

    from strcli.locks import sweep_stale

    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(path.parent, f".{path.name}.")
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise output_error(err, path) from err


@app.command("export")
@reports_errors
def export_motion(
    outputs: Annotated[list[Path], typer.Argument(metavar="OUTPUT", help="reconstruct output folders: OUT (every video "
                                                       "in it) or OUT/<video-stem>.")],
    formats: Annotated[str, typer.Option("--format", help="glb (glTF 2.0 binary: skinned SMPL bodies, one "
                       "animation, the camera), bvh (one file per track), or glb,bvh.")] = "glb,bvh",
    smpl_dir: Annotated[Path | None, typer.Option(help="The SMPL neutral model: its folder, smplx's model folder (DIR/smpl/SMPL_NEUTRAL.pkl) or the file.")] = None,
) -> None:
    """Write OUT/<stem>/animation.glb and OUT/<stem>/bvh/<id>.bvh for Blender, three.js, game engines."""
    from strcli.inputs import output_folders
    from strcli.options import parse_export_formats
    from strcli.smpl_files import find_smpl_file

    # The flags, the folders and the SMPL file first, without torch: a bad value is refused at once.
    wanted = parse_export_formats(formats)
    folders = output_folders(outputs)
    smpl_file = find_smpl_file("neutral", smpl_dir)

    from strcli.body import Body
    from strcli.export import export_video

    body = Body.from_file(smpl_file)
    failed = 0
    for folder in folders:
        try:
            result = export_video(folder, body, wanted)
        except StrcliError as err:
            print(f"error: {folder.name}: {err}", file=sys.stderr)
            failed = failed or err.exit_code
            continue
        files = ([str(result.glb)] if result.glb else []) + ([f"{len(result.bvh)} BVH in {folder / 'bvh'}"]
                                                              if "bvh" in wanted else [])
        print(f"{folder.name}: {result.tracks} track(s): {', '.join(files)} in {result.seconds:.1f} s")
    if failed:
        raise typer.Exit(failed)


@app.command()
@reports_errors
def view(
    folder: Annotated[Path, typer.Argument(metavar="FOLDER", help="One reconstruct output folder, OUT/<video-stem>.")],
    host: Annotated[str, typer.Option(help="Address to serve on; 127.0.0.1 keeps it to this machine "
                    "(0.0.0.0 to reach it from others).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on (1-65535; 0: any free port). One in use is "
                                           "refused (exit 2).")] = 8080,
    smpl_dir: Annotated[Path | None, typer.Option(help="The SMPL neutral model: its folder, smplx's model folder (DIR/smpl/SMPL_NEUTRAL.pkl) or the file.")] = None,
    video_file: Annotated[Path | None, typer.Option("--video-file", help="The source video, if it moved "
                          "since reconstruct.")] = None,
) -> None:
    """Look at the bodies in 3D in the browser (viser): play/pause, frame slider, camera, tracks."""
    from strcli.options import check_serve_address

    check_serve_address(host, port)  # before torch and the body load: a bad port is refused at once
    from strcli.body import Body, find_smpl_file
    from strcli.viewer import serve

    body = Body.from_file(find_smpl_file("neutral", smpl_dir))
    serve(folder, body, host=host, port=port, source=video_file,
          announce=lambda url: print(f"strcli view: open {url} (Ctrl-C to stop)", flush=True))


def run() -> None:
    app()
