"""Many videos: find them, split them into shards, run each, never let one stop the rest.

Inputs are files or folders (searched for video files, not recursively, in name order).
`--shard i/n` keeps every n-th video starting at the i-th (0-based), so n processes (a
Slurm array, several machines) share one folder without coordination; each video's
outputs are written under a temporary name and renamed when complete (`strcli.outputs`),
so they can share one output folder too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from strcli.errors import StrcliError, UsageError, write_failure
from strcli.inputs import VIDEO_SUFFIXES, Shard, detections_for, find_videos, select_shard  # noqa: F401 (re-exported)
from strcli.outputs import MANIFEST, folder_bytes
from strcli.reconstruct import Models, Progress, ReconstructOptions, VideoResult, reconstruct_video
from strcli.render import OVERLAY, RenderOptions, render_video

def check_stems(videos: Sequence[Path]) -> dict[Path, str]:
    """Outputs are named by stem: two inputs with one stem would overwrite each other."""
    seen: dict[str, Path] = {}
    clashes: dict[Path, str] = {}
    for video in videos:
        if video.stem in seen:
            clashes[video] = (f"{video} and {seen[video.stem]} share the name {video.stem!r}, "
                              "so their outputs would collide: rename one or run them into "
                              "different -o folders.")
        else:
            seen[video.stem] = video
    return clashes


def run_batch(videos: Sequence[Path], out_root: Path, options: ReconstructOptions, models: Models,
              detections: Path | None = None, overwrite: bool = False,
              progress_for: Callable[[Path], Progress] | None = None,
              on_result: Callable[[VideoResult], None] | None = None,
              render: RenderOptions | None = None) -> list[VideoResult]:
    """Reconstruct every video (and render it, with `render`); a failure is recorded and the
    next video goes on."""
    results = []
    clashes = check_stems(videos)
    for video in videos:
        if video in clashes:
            result = VideoResult(video, "failed", message=clashes[video], exit_code=UsageError.exit_code)
        else:
            progress = None
            try:
                dets = detections_for(video, detections, single=len(videos) == 1)
                progress = progress_for(video) if progress_for else None
                result = reconstruct_video(video, out_root, options, models, dets, overwrite, progress)
                if render is not None and result.output is not None:
                    result = _render(result, models, render, progress)
            except Exception as err:  # a full disk from any stage is one line too, and the batch goes on
                if progress is not None:
                    progress.fail()  # the stage it stopped in is not `done`
                if err is models.build_error:
                    raise  # the networks could not be built: no video can run
                failure = err if isinstance(err, StrcliError) else write_failure(err)
                if failure is None:
                    raise
                result = VideoResult(video, "failed", message=str(failure), exit_code=failure.exit_code)
        results.append(result)
        if on_result:
            on_result(result)
    return results


def _render(result: VideoResult, models: Models, options: RenderOptions, progress: Progress | None
            ) -> VideoResult:
    """`reconstruct --render`: the overlay, unless a skipped video's one is newer than its outputs."""
    assert result.output is not None
    overlay = result.output / OVERLAY
    if (result.status == "skipped" and options.video and not options.frames and overlay.is_file()
            and overlay.stat().st_mtime >= (result.output / MANIFEST).stat().st_mtime):
        return replace(result, rendered=overlay)

    def advance(done: int, total: int | None) -> None:
        if progress is not None:
            if done == 0:  # called once before the first frame, with the frame count
                progress.start("render", total)
            else:
                progress.advance()

    try:
        rendered = render_video(result.output, models.ready().body, options, models.device, progress=advance)
    except Exception as err:  # the reconstruction stands; the video counts as failed
        if progress is not None:
            progress.fail()
        failure = err if isinstance(err, StrcliError) else write_failure(err)
        if failure is None:
            raise
        return replace(result, status="failed", message=f"rendering failed: {failure}", exit_code=failure.exit_code)
    if progress is not None:
        progress.finish()
    return replace(result, rendered=rendered.video, seconds=result.seconds + rendered.seconds,
                   bytes=folder_bytes(result.output))


def exit_code(results: Sequence[VideoResult]) -> int:
    """0 when every video succeeded (or was skipped), else the code of the first failure."""
    return next((r.exit_code for r in results if r.status == "failed"), 0)
