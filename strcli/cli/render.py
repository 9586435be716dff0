"""`strcli render`: overlay videos and PNGs of the reconstructed bodies, headless."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from strcli.cli.common import app, error_text, reports_errors, stderr, usable_outputs
from strcli.config import X264_PRESETS
from strcli.utils.errors import StrcliError
from strcli.utils.progress import end_task, work_progress


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
    from strcli.utils.errors import UsageError
    from strcli.road.inputs import check_render_frames, output_folders, render_targets
    from strcli.road.options import check_device_name, check_render_values, parse_frames, parse_tracks
    from strcli.body.files import smpl_file_for_outputs

    # The flags, the folders and the SMPL file first, without torch: a bad value is refused at once.
    chosen_tracks, chosen_frames = parse_tracks(tracks), parse_frames(frames)
    check_render_values(alpha=alpha, crf=crf, fps=fps, preset=preset, video=video, frames=chosen_frames,
                        compare=compare, side_view=side_view)
    check_device_name(device)
    folders, failed = usable_outputs(output_folders(outputs), smpl_dir)
    if source is not None and len(folders) > 1:
        raise UsageError("--video-file works with one output folder.", "Render the folders one at a time.")
    for folder in folders:  # a file or folder of the user's where one is written: refused before any work
        render_targets(folder, video, compare, bool(chosen_frames))
        check_render_frames(folder, chosen_frames, frames)  # a frame the output lacks: frames/ stays as it is
    smpl_file, smpl_note = smpl_file_for_outputs(folders, smpl_dir)
    if smpl_note:
        print(f"warning: {smpl_note}", file=sys.stderr)

    from strcli.body.smpl import Body
    from strcli.utils.devices import resolve_device
    from strcli.render.overlay import RenderOptions, render_video

    from strcli.body.files import TEST_BODY_NOTE, is_test_body

    options = RenderOptions(overlay=overlay, side_view=side_view, tracks=chosen_tracks, alpha=alpha,
                            joints=joints, video=video, frames=chosen_frames, crf=crf, fps=fps,
                            preset=preset, compare=compare,
                            body_note=TEST_BODY_NOTE if is_test_body(smpl_file) else "")
    torch_device = resolve_device(device)
    body = Body.from_file(smpl_file).to(torch_device)
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
                print(f"error: {folder.name}: {error_text(err)}", file=sys.stderr)
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
