"""`strcli reconstruct`: check the command line and its files, run the batch, print the summary."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from strcli.cli import common
from strcli.cli.common import app, error_text, reports_errors, stderr
from strcli.utils.progress import LineProgress, StageNotes, end_task, work_progress

if TYPE_CHECKING:
    from strcli.road.options import ModelSources, ReconstructOptions


class _RichProgress:
    """`strcli.road.reconstruct.Progress` on a progress display (stderr): rich bars or plain lines."""

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
    example: Annotated[bool, typer.Option("--example", help="Add the public sample video (OpenCV's vtest.avi: "
                                          "downloaded and checksummed on first use; offline, `strcli weights "
                                          "import vtest.avi`) to the inputs.")] = False,
    detections: Annotated[Path | None, typer.Option(help="MOT Challenge detections "
                          "(frame,-1,x,y,w,h,score,...) instead of the detector: a file for one "
                          "video, or a folder of <video-stem>.det.txt, <video-stem>.txt or "
                          "<video-stem>/det/det.txt files.")] = None,
    detector: Annotated[Path | None, typer.Option(help="Ultralytics YOLO weights (.pt) or model "
                        "yaml (untrained); default: the manifest's yolo11m.pt.")] = None,
    model: Annotated[str, typer.Option("--model", help="Model(s): str, tcmr, vibe, spin (per frame, no temporal "
                     "module), or several (str,tcmr): the first's files go to <stem>/, the others' to "
                     "<stem>/models/<name>/. Real bodies today: --model tcmr (published weights, fetched on first "
                     "use). STR has no published weights: train it (`strcli train`) and pass --checkpoint, or "
                     "--untrained to test the pipeline.")] = "str",
    checkpoint: Annotated[list[Path] | None, typer.Option(help="Weights of a --model, recognised by "
                          "their structure (strcli STR, TCMR, VIBE or SPIN file); repeat for several models. "
                          "Default: the imported str_checkpoint, the manifest's tcmr_demo, "
                          "vibe_wo_3dpw and spin_checkpoint.")] = None,
    backbone: Annotated[Path | None, typer.Option(help="SPIN checkpoint for the ResNet-50; "
                        "default: the manifest's spin_checkpoint.")] = None,
    smpl_dir: Annotated[Path | None, typer.Option(help="The SMPL neutral model: its folder, smplx's "
                        "model folder (DIR/smpl/SMPL_NEUTRAL.pkl) or the file.")] = None,
    untrained: Annotated[bool, typer.Option("--untrained", help="For testing the pipeline: run a randomly initialised STR "
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
    mesh_format: Annotated[str, typer.Option(help="Also write a mesh file per person and frame: obj, ply or "
                           "obj,ply (about 0.5 MB each: 474 MB for 5 s of a crowd). Default none: the "
                           "track files, AMASS and `strcli export` carry the motion.")] = "none",
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
    camera: Annotated[str, typer.Option("--camera", help="The camera's motion: auto (found from the "
                      "background), static (tripod: no motion), rotating (pans and tilts), moving (also "
                      "travels; its metric scale is approximate). See docs/world.md.")] = "auto",
    foot_lock: Annotated[bool, typer.Option("--foot-lock", help="Move each body and bend its legs so its feet "
                         "in contact with the floor do not slide (root correction and leg IK; the pose is written "
                         "as world_body_pose; docs/world.md).")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    precision: Annotated[str, typer.Option(help="The detector's and the ResNet-50's: auto (bf16 on a GPU and "
                         "on a CPU with native bf16, AVX512-BF16 or AMX; else fp32), fp32, bf16, or onnx (the "
                         "ResNet-50 in ONNX Runtime, on a CPU; "
                         "docs/performance.md: speed and the accuracy each costs).")] = "auto",
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
    """Reconstruct every person in the videos: tracks, per-frame SMPL, manifest.

    Real bodies today: `strcli reconstruct VIDEO --model tcmr` (the published TCMR weights).
    STR needs weights you train (`strcli train`, then --checkpoint); --untrained runs a random
    STR to test the pipeline (meaningless bodies)."""
    from strcli.config import MANIFEST
    from strcli.utils.errors import OutputError, UsageError
    from strcli.road.inputs import (Shard, check_detections, check_stems, check_file, check_output_folder, find_videos,
                               missing_folders, remove_empty, run_problem, select_shard, video_problem)
    from strcli.road.options import (ModelSources, ReconstructOptions, parse_export_formats, parse_mesh_formats,
                                parse_models)
    from strcli.body.files import find_smpl_file, named_smpl_place
    from strcli.road.tracking import TrackingConfig
    from strcli.weights.registry import Manifest

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
        precision=precision.strip().lower(),
        camera=camera.strip().lower(), foot_lock=foot_lock,
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
    try:
        check_output_folder(output)
        unwritable = None
    except OutputError as err:  # read-only: finished videos are still skipped (skipping writes nothing)
        unwritable = err
    created = missing_folders(output)  # removed at the end if the run leaves them empty
    try:
        paths = list(inputs or [])
        found = find_videos(paths) if paths else []
        refused = {video: problem for video in found if (problem := video_problem(video)) is not None}
        sample = Manifest.load().get("sample_video").path() if example else None
        if sample is not None:  # downloaded with the weights (every missing file named at once)
            found.append(sample)
        # Inputs sharing a stem are refused, all of them, on the whole list: in every shard alike.
        refused |= {video: UsageError(why) for video, why in check_stems(found).items() if video not in refused}
        candidates = select_shard(found, shard_spec)
        if unwritable is not None and (overwrite or example or not candidates or any(
                not (output / video.stem / MANIFEST).is_file() for video in candidates)):
            raise unwritable  # a video to write: refused before any model loads
        if detections is not None and detections.is_file() and len(candidates) > 1:
            raise UsageError(f"--detections {detections} is one file for {len(candidates)} videos.",
                             "For several videos, pass a folder holding <video-stem>.det.txt files.")
        # Each video decoded (header and first frame), its detections read and fitted, its
        # folder not busy in another process.
        for video in candidates:
            if video == sample and not video.exists():
                continue  # not downloaded yet: checked once it is
            if video not in refused and (problem := run_problem(
                    video, output, overwrite, detections, min_score=min_score, start=start, end=end)) is not None:
                refused[video] = problem
        videos = [v for v in candidates if v not in refused]
        for video in candidates:
            if video in refused:
                print(f"error: {video.name}: {error_text(refused[video])}", file=sys.stderr)

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
    checked `videos` with the checked `options` (`strcli.road.options.ReconstructOptions`) and
    `sources` (`ModelSources`); `also` names further assets gathered with the weights (the
    sample video of --example). Returns the results, and the exit codes of failed exports
    (--export)."""
    notes = StageNotes(stderr, quiet)
    # Only torch and strcli load here; ultralytics (the tracker, and YOLO without --detections)
    # is imported with the first video that runs, so the line names torch alone.
    with notes.showing("loading torch..."):
        from strcli.road.batch import run_batch
        from strcli.utils.devices import resolve_device
        from strcli.export.writer import export_after
        from strcli.road.models import load_models
        from strcli.render.overlay import RenderOptions, render_result

        exporter = export_after(export)
        if not options.detect_every and resolve_device(options.device).type == "cuda" and not fast:
            options = dataclasses.replace(options, detect_every=1)  # a GPU detects every frame
        notes.note("finding and checking the weights (--offline: nothing is downloaded)..." if not sources.download
                   else "finding and checking the weights (downloaded on first use)...")
        # The networks are built when the first video that is not skipped needs them.
        models = load_models(sources, options.device, options.batch_size, need_detector=detections is None,
                             compile_backbone=compile_backbone, lazy=True, also=also, precision=options.precision,
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

    said: set[tuple[Path, str]] = set()

    def warn(result: Any) -> None:
        """The video's warnings not said yet (the networks' were said when they were built):
        called before its render too (--render), so the world stage's are not read as the render's."""
        for warning in result.warnings if not quiet else ():
            if warning not in shown and (result.video, warning) not in said:
                said.add((result.video, warning))
                print(f"warning: {result.video.name}: {warning}", file=sys.stderr)

    def render(result: Any, progress: Any) -> Any:
        warn(result)
        return render_result(result, models.ready().body, RenderOptions(), models.device, progress)

    def report(result: Any) -> None:
        failure = None
        if exporter is not None:
            exported[result.video], failure = exporter(result, models.ready().body)
        if failure is not None:
            print(f"error: {result.video.name}: export failed: {error_text(failure)}", file=sys.stderr)
            export_failures.append(failure.exit_code)
        warn(exported.get(result.video, result))  # with what the export said (the other frame's files it removed)
        if result.status == "failed":
            print(f"error: {result.video.name}: {error_text(result.message)}", file=sys.stderr)

    with work_progress(stderr, quiet) as bar:
        results = run_batch(videos, output, options, models, detections, overwrite,
                            progress_for=lambda v: _RichProgress(None if quiet else bar, v.name),
                            on_result=report,
                            after=render if render_overlay else None)
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
    if common.stdout.is_terminal:
        return common.stdout
    return Console(width=100_000, no_color=True, highlight=False)


def _size(count: int) -> str:
    from strcli.road.outputs import human_bytes

    return human_bytes(count)
